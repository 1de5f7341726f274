/*
 * keys.c
 *		The key rule and the key templates of src/common/storage_key.h, for
 *		SQL: key_problem, expand_key, tenant_prefixes, original_path_problem,
 *		and the trigger check_video_keys on vproxy.videos (the application
 *		writes original_path under the rules, and never proxy_path or
 *		thumbnail_path).  The same C code checks the keys in the child, so a
 *		key refused anywhere is refused when the row is written.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type_d.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/rel.h"
#include "utils/uuid.h"

#include "common/storage_key.h"
#include "jobs.h"
#include "settings.h"

PG_FUNCTION_INFO_V1(vproxy_key_problem);
PG_FUNCTION_INFO_V1(vproxy_expand_key);
PG_FUNCTION_INFO_V1(vproxy_tenant_prefixes);
PG_FUNCTION_INFO_V1(vproxy_original_path_problem);
PG_FUNCTION_INFO_V1(vproxy_check_video_keys);

/* Argument n as a C string, or NULL. */
static char *
text_arg(FunctionCallInfo fcinfo, int n)
{
	return PG_ARGISNULL(n) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(n));
}

/* A template filled in, in memory of its own (no length limit here: the key rule has one). */
static char *
expand(const char *template, const StorageKeyNames *names)
{
	size_t		longest = 36;
	size_t		size;
	char	   *buffer;

	if (names->mall_id && strlen(names->mall_id) > longest)
		longest = strlen(names->mall_id);
	if (names->pin_id && strlen(names->pin_id) > longest)
		longest = strlen(names->pin_id);
	/* every placeholder is at least 8 bytes: no expansion is longer */
	size = strlen(template) * (longest / 8 + 1) + 1;
	buffer = palloc(size);
	if (!storage_key_expand(template, names, buffer, size))
		elog(ERROR, "vproxy: expanding a key template overflowed");
	return buffer;
}

/*
 * The prefixes of a tenant's keys: each template filled in up to its
 * {mall_id} segment, or (an output template without one) wholly, for the
 * video; NIL when vproxy.upload_prefix_template names no tenant.
 */
static List *
tenant_prefixes(const StorageKeyNames *names)
{
	const char *templates[] = {vproxy_upload_prefix_template, vproxy_proxy_key_template,
	vproxy_thumbnail_key_template};
	List	   *prefixes = NIL;
	char		prefix[STORAGE_KEY_MAX + 2];

	if (!storage_key_tenant_prefix(vproxy_upload_prefix_template, names, prefix, sizeof(prefix)))
		return NIL;
	for (size_t i = 0; i < lengthof(templates); i++)
	{
		char	   *allowed;
		ListCell   *cell;
		bool		known = false;

		if (storage_key_tenant_prefix(templates[i], names, prefix, sizeof(prefix)))
			allowed = pstrdup(prefix);
		else
			allowed = expand(templates[i], names);
		foreach(cell, prefixes)
			known = known || strcmp(lfirst(cell), allowed) == 0;
		if (!known)
			prefixes = lappend(prefixes, allowed);
	}
	return prefixes;
}

/* the root of a split proxy's parts, as vproxy_internal.split_prefix() makes them */
#define SPLIT_PARTS_ROOT "vproxy-split/"

/*
 * NULL if the application may write original_path for these names: a safe
 * key below vproxy.upload_prefix_template filled in, and none that vproxy
 * writes its outputs to (with templates that overlap the prefix, a tenant
 * could otherwise name another tenant's proxy as its upload); else why not,
 * the SQLSTATE in *sqlstate and a hint in *hint.
 */
static char *
original_path_problem(const char *original_path, const StorageKeyNames *names, int *sqlstate,
					  char **hint)
{
	const char *problem = storage_key_problem(original_path);
	char	   *prefix;

	*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
	*hint = NULL;
	if (problem != NULL)
		return psprintf("%s", problem);
	*sqlstate = ERRCODE_INSUFFICIENT_PRIVILEGE;
	if (storage_key_template_matches(vproxy_proxy_key_template, original_path) ||
		storage_key_template_matches(vproxy_thumbnail_key_template, original_path) ||
		strncmp(original_path, SPLIT_PARTS_ROOT, strlen(SPLIT_PARTS_ROOT)) == 0)
	{
		*hint = psprintf("Keys that vproxy.proxy_key_template or vproxy.thumbnail_key_template can make, "
						 "and those below \"%s\", are vproxy's outputs.", SPLIT_PARTS_ROOT);
		return psprintf("is a key vproxy writes its outputs to");
	}
	if (vproxy_upload_prefix_template[0] == '\0')
		return NULL;
	prefix = expand(vproxy_upload_prefix_template, names);
	if (strncmp(original_path, prefix, strlen(prefix)) == 0)
		return NULL;
	*hint = psprintf("Store the uploads of mall_id \"%s\" below that prefix.", names->mall_id);
	return psprintf("is not below \"%s\" (vproxy.upload_prefix_template filled in for its mall_id)",
					prefix);
}

/* key_problem(key text, output boolean) RETURNS text: NULL if safe, else why not. */
Datum
vproxy_key_problem(PG_FUNCTION_ARGS)
{
	char	   *key = text_arg(fcinfo, 0);
	const char *problem = PG_GETARG_BOOL(1) ? storage_key_output_problem(key) : storage_key_problem(key);

	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

/* The names of a video from arguments mall_id, pin_id and (optional) video_id. */
static void
names_from_args(FunctionCallInfo fcinfo, int first, bool with_video, StorageKeyNames *names,
				char video_id[UUID_TEXT_SIZE])
{
	names->mall_id = text_arg(fcinfo, first);
	names->pin_id = text_arg(fcinfo, first + 1);
	names->video_id = NULL;
	if (with_video && !PG_ARGISNULL(first + 2))
		names->video_id = uuid_text(PG_GETARG_UUID_P(first + 2), video_id);
}

/* expand_key(template, mall_id, pin_id, video_id) RETURNS text. */
Datum
vproxy_expand_key(PG_FUNCTION_ARGS)
{
	StorageKeyNames names;
	char		video_id[UUID_TEXT_SIZE];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	names_from_args(fcinfo, 1, true, &names, video_id);
	PG_RETURN_TEXT_P(cstring_to_text(expand(text_arg(fcinfo, 0), &names)));
}

/* tenant_prefixes(mall_id, pin_id, video_id) RETURNS text[]; NULL without tenants. */
Datum
vproxy_tenant_prefixes(PG_FUNCTION_ARGS)
{
	StorageKeyNames names;
	char		video_id[UUID_TEXT_SIZE];
	List	   *prefixes;
	Datum	   *items;
	int			n = 0;
	ListCell   *cell;

	names_from_args(fcinfo, 0, true, &names, video_id);
	prefixes = tenant_prefixes(&names);
	if (prefixes == NIL)
		PG_RETURN_NULL();
	items = palloc(sizeof(Datum) * list_length(prefixes));
	foreach(cell, prefixes)
		items[n++] = CStringGetTextDatum(lfirst(cell));
	PG_RETURN_ARRAYTYPE_P(construct_array(items, n, TEXTOID, -1, false, TYPALIGN_INT));
}

/* original_path_problem(original_path, mall_id, pin_id) RETURNS text. */
Datum
vproxy_original_path_problem(PG_FUNCTION_ARGS)
{
	StorageKeyNames names;
	char	   *problem;
	int			sqlstate;
	char	   *hint;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	names_from_args(fcinfo, 1, false, &names, NULL);
	problem = original_path_problem(text_arg(fcinfo, 0), &names, &sqlstate, &hint);
	if (problem == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(problem));
}

/* Whether the current user is a superuser or the extension's owner (a restore writes as them). */
static bool
writes_as_owner(void)
{
	Oid			extension = get_extension_oid("vproxy", true);

	return superuser() || (OidIsValid(extension) && pg_extension_ownercheck(extension, GetUserId()));
}

/* A text column of a row as a C string, or NULL. */
static char *
column_text(HeapTuple tuple, TupleDesc desc, const char *column)
{
	int			n = SPI_fnumber(desc, column);
	bool		isnull;
	Datum		value;

	if (n <= 0)
		elog(ERROR, "vproxy: vproxy.videos has no column %s", column);
	value = heap_getattr(tuple, n, desc, &isnull);
	return isnull ? NULL : TextDatumGetCString(value);
}

/* Whether two nullable strings differ. */
static bool
differ(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a != NULL && strcmp(a, b) != 0);
}

/*
 * Trigger BEFORE INSERT OR UPDATE on vproxy.videos: a writer other than a
 * superuser or the extension's owner (vproxy's own functions run as the
 * owner; a restore runs as a superuser) may not write proxy_path or
 * thumbnail_path (42501), and writes original_path only as a safe key
 * (22023) below vproxy.upload_prefix_template filled in (42501).
 */
Datum
vproxy_check_video_keys(PG_FUNCTION_ARGS)
{
	TriggerData *trigger = (TriggerData *) fcinfo->context;
	TupleDesc	desc;
	HeapTuple	new_row;
	HeapTuple	old_row = NULL;
	StorageKeyNames names;
	char	   *original_path;
	char	   *problem;
	int			sqlstate;
	char	   *hint;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigger->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigger->tg_event) ||
		!(TRIGGER_FIRED_BY_INSERT(trigger->tg_event) || TRIGGER_FIRED_BY_UPDATE(trigger->tg_event)))
		elog(ERROR, "vproxy: check_video_keys must fire before INSERT or UPDATE, for each row");
	desc = trigger->tg_relation->rd_att;
	new_row = trigger->tg_trigtuple;
	if (TRIGGER_FIRED_BY_UPDATE(trigger->tg_event))
	{
		old_row = trigger->tg_trigtuple;
		new_row = trigger->tg_newtuple;
	}
	if (writes_as_owner())
		return PointerGetDatum(new_row);

	if (old_row == NULL ?
		(column_text(new_row, desc, "proxy_path") != NULL ||
		 column_text(new_row, desc, "thumbnail_path") != NULL) :
		(differ(column_text(old_row, desc, "proxy_path"), column_text(new_row, desc, "proxy_path")) ||
		 differ(column_text(old_row, desc, "thumbnail_path"), column_text(new_row, desc, "thumbnail_path"))))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("proxy_path and thumbnail_path of vproxy.videos are written by vproxy only"),
				 errhint("A proxy job writes them; vproxy_url() signs them.")));

	original_path = column_text(new_row, desc, "original_path");
	names.mall_id = column_text(new_row, desc, "mall_id");
	names.pin_id = column_text(new_row, desc, "pin_id");
	names.video_id = NULL;
	if (original_path == NULL ||
		(old_row != NULL && !differ(column_text(old_row, desc, "original_path"), original_path) &&
		 !differ(column_text(old_row, desc, "mall_id"), names.mall_id) &&
		 !differ(column_text(old_row, desc, "pin_id"), names.pin_id)))
		return PointerGetDatum(new_row);
	problem = original_path_problem(original_path, &names, &sqlstate, &hint);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("original_path \"%s\" %s", original_path, problem),
				 hint == NULL ?
				 errdetail("A storage key is relative, valid UTF-8, at most 1024 bytes, "
						   "with no empty, \".\" or \"..\" component and no control character.") :
				 errhint("%s", hint)));
	return PointerGetDatum(new_row);
}
