/*
 * gate.c
 *		The gate of the application's API.  vproxy.vproxy_enqueue, _cancel,
 *		_retry, _url, _upload_url, _delete_video and _reprocess are this one
 *		C function, running as the caller (SECURITY INVOKER).  It checks, as
 *		the caller, that the video or job its first argument names is
 *		visible: privileges and row-level security apply, and a row the
 *		caller cannot see does not exist (SQLSTATE P0002).  Then it calls
 *		vproxy_internal's function of the same name and argument types, a
 *		SECURITY DEFINER function that runs as the extension's owner, through
 *		fmgr (fmgr_security_definer switches the user and applies the
 *		function's search_path); the caller holds no privilege on
 *		vproxy_internal and needs none.
 *
 *		A job is visible when its row is, and its video's row too (job ids
 *		are no secret: every listener of vproxy_jobs hears them).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type_d.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

#include "jobs.h"

PG_FUNCTION_INFO_V1(vproxy_gate);

/* What the first argument of a gated function names. */
typedef enum GateKind
{
	GATE_VIDEO,
	GATE_JOB
} GateKind;

static const struct
{
	const char *name;
	GateKind	kind;
}			gated[] = {
	{"vproxy_enqueue", GATE_VIDEO},
	{"vproxy_url", GATE_VIDEO},
	{"vproxy_upload_url", GATE_VIDEO},
	{"vproxy_delete_video", GATE_VIDEO},
	{"vproxy_reprocess", GATE_VIDEO},
	{"vproxy_cancel", GATE_JOB},
	{"vproxy_retry", GATE_JOB},
};

/* Whether a row is visible to the caller; fully qualified, typed, as the caller. */
static const char *const visible_sql[] = {
	[GATE_VIDEO] = "SELECT 1 FROM vproxy.videos v WHERE v.id OPERATOR(pg_catalog.=) $1",
	[GATE_JOB] = "SELECT 1 FROM vproxy.processing_jobs j WHERE j.id OPERATOR(pg_catalog.=) $1 "
	"AND (j.video_id IS NULL OR EXISTS (SELECT 1 FROM vproxy.videos v "
	"WHERE v.id OPERATOR(pg_catalog.=) j.video_id))",
};

static const char *const kind_word[] = {[GATE_VIDEO] = "video",[GATE_JOB] = "job"};

/* the plans of visible_sql, kept for the session */
static SPIPlanPtr visible_plans[lengthof(visible_sql)];

/* What a gated function needs at each call, found at its first. */
typedef struct GateTarget
{
	GateKind	kind;
	FmgrInfo	internal;		/* vproxy_internal.<name>(<same argument types>) */
} GateTarget;

/* The target of the gated function being called, looked up once per call site. */
static GateTarget *
gate_target(FunctionCallInfo fcinfo)
{
	FmgrInfo   *flinfo = fcinfo->flinfo;
	GateTarget *target = flinfo->fn_extra;
	HeapTuple	proc;
	Form_pg_proc form;
	Oid			internal_oid;
	size_t		i;

	if (target != NULL)
		return target;
	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(flinfo->fn_oid));
	if (!HeapTupleIsValid(proc))
		elog(ERROR, "vproxy: cache lookup failed for function %u", flinfo->fn_oid);
	form = (Form_pg_proc) GETSTRUCT(proc);
	for (i = 0; i < lengthof(gated); i++)
		if (strcmp(NameStr(form->proname), gated[i].name) == 0)
			break;
	if (i == lengthof(gated))
		elog(ERROR, "vproxy: %s is not a function of the gate", NameStr(form->proname));
	/* by OID, not by name: no lookup in a schema the caller may not use */
	internal_oid = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
								   CStringGetDatum(gated[i].name),
								   PointerGetDatum(&form->proargtypes),
								   ObjectIdGetDatum(get_namespace_oid("vproxy_internal", false)));
	ReleaseSysCache(proc);
	if (!OidIsValid(internal_oid))
		elog(ERROR, "vproxy: vproxy_internal.%s is missing; reinstall the extension", gated[i].name);
	target = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(GateTarget));
	target->kind = gated[i].kind;
	fmgr_info_cxt(internal_oid, &target->internal, flinfo->fn_mcxt);
	flinfo->fn_extra = target;
	return target;
}

/* Whether the caller can see the video or job id. */
static bool
visible_to_caller(GateKind kind, Datum id)
{
	Oid			types[1] = {UUIDOID};
	bool		visible;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "vproxy: SPI_connect failed");
	if (visible_plans[kind] == NULL)
	{
		SPIPlanPtr	plan = SPI_prepare(visible_sql[kind], 1, types);

		if (plan == NULL)
			elog(ERROR, "vproxy: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "vproxy: SPI_keepplan failed");
		visible_plans[kind] = plan;
	}
	if (SPI_execute_plan(visible_plans[kind], &id, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "vproxy: the visibility check failed");
	visible = SPI_processed > 0;
	SPI_finish();
	return visible;
}

/*
 * vproxy_gate: the body of every gated function of the application's API.
 * A NULL first argument goes through unchecked: the internal function
 * refuses it with its own message.
 */
Datum
vproxy_gate(PG_FUNCTION_ARGS)
{
	GateTarget *target = gate_target(fcinfo);
	LOCAL_FCINFO(call, FUNC_MAX_ARGS);
	Datum		result;

	if (!PG_ARGISNULL(0) && !visible_to_caller(target->kind, PG_GETARG_DATUM(0)))
	{
		char		id[UUID_TEXT_SIZE];

		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("%s %s does not exist", kind_word[target->kind],
						uuid_text(PG_GETARG_UUID_P(0), id))));
	}
	InitFunctionCallInfoData(*call, &target->internal, PG_NARGS(), PG_GET_COLLATION(), NULL, NULL);
	for (int i = 0; i < PG_NARGS(); i++)
	{
		call->args[i] = fcinfo->args[i];
		if (call->args[i].isnull && target->internal.fn_strict)
			PG_RETURN_NULL();
	}
	result = FunctionCallInvoke(call);
	fcinfo->isnull = call->isnull;
	return result;
}
