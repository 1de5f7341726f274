/*
 * guard.c
 *		DROP DATABASE, ALTER DATABASE ... RENAME / SET TABLESPACE and CREATE
 *		DATABASE ... TEMPLATE refuse to run while anybody is connected to the
 *		database.  Before such a command on vproxy.database, run by a user
 *		whom PostgreSQL will let run it (its owner, a superuser) where it can
 *		run, the hook asks the launcher to stop the workers (they hand their
 *		jobs back) and waits for them; the pause ends with the command's
 *		transaction, after which the launcher looks for the database again
 *		(TimescaleDB's loader does the same for its scheduler).  DROP
 *		EXTENSION vproxy wakes the workers at commit so that they leave at
 *		once.  CREATE EXTENSION vproxy in another database than
 *		vproxy.database is refused: no worker would ever serve its queue.
 *		So are CREATE EXTENSION and ALTER EXTENSION UPDATE of vproxy into a
 *		schema that a role other than a superuser owns, may create objects
 *		in, or has objects in.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_database.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type_d.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"

#include "guard.h"
#include "settings.h"
#include "state.h"
#include "wakeup.h"

/* how long a command waits for the workers before it goes on anyway */
#define PAUSE_WAIT_MS 30000

static ProcessUtility_hook_type prev_process_utility = NULL;
static bool holding_pause = false;

/* Whether a DefElem list has an option of that name naming our database. */
static bool
option_names_database(List *options, const char *option)
{
	ListCell   *cell;

	foreach(cell, options)
	{
		DefElem    *elem = lfirst_node(DefElem, cell);

		if (strcmp(elem->defname, option) == 0 && elem->arg != NULL &&
			strcmp(defGetString(elem), vproxy_database) == 0)
			return true;
	}
	return false;
}

/* Whether a DefElem list has an option of that name. */
static bool
has_option(List *options, const char *option)
{
	ListCell   *cell;

	foreach(cell, options)
		if (strcmp(lfirst_node(DefElem, cell)->defname, option) == 0)
			return true;
	return false;
}

/* The OID of vproxy.database, or InvalidOid if there is none. */
static Oid
our_database_oid(void)
{
	return get_database_oid(vproxy_database, true);
}

/* Whether the current user owns vproxy.database (superusers do). */
static bool
owns_our_database(void)
{
	Oid			dboid = our_database_oid();

	return OidIsValid(dboid) && pg_database_ownercheck(dboid, GetUserId());
}

/* Whether vproxy.database is marked as a template anyone may copy. */
static bool
our_database_is_template(void)
{
	Oid			dboid = our_database_oid();
	HeapTuple	tuple;
	bool		is_template;

	if (!OidIsValid(dboid))
		return false;
	tuple = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	if (!HeapTupleIsValid(tuple))
		return false;
	is_template = ((Form_pg_database) GETSTRUCT(tuple))->datistemplate;
	ReleaseSysCache(tuple);
	return is_template;
}

/*
 * Whether a command that refuses transaction blocks (and functions) would
 * run here, as PreventInTransactionBlock decides.
 */
static bool
outside_transaction_block(ProcessUtilityContext context)
{
	return context == PROCESS_UTILITY_TOPLEVEL && !IsTransactionBlock() &&
		!IsSubTransaction();
}

/*
 * Whether the statement needs vproxy.database free of connections and would
 * get past PostgreSQL's own checks: where it may run and who may run it.
 * Anybody else would stop every running job for a command that then fails.
 */
static bool
needs_database_alone(Node *stmt, ProcessUtilityContext context)
{
	switch (nodeTag(stmt))
	{
		case T_DropdbStmt:
			return strcmp(((DropdbStmt *) stmt)->dbname, vproxy_database) == 0 &&
				outside_transaction_block(context) && owns_our_database();
		case T_RenameStmt:
			/* RENAME may run in a transaction block: the pause lasts as long */
			return ((RenameStmt *) stmt)->renameType == OBJECT_DATABASE &&
				strcmp(((RenameStmt *) stmt)->subname, vproxy_database) == 0 &&
				owns_our_database() && have_createdb_privilege();
		case T_AlterDatabaseStmt:
			return strcmp(((AlterDatabaseStmt *) stmt)->dbname, vproxy_database) == 0 &&
				has_option(((AlterDatabaseStmt *) stmt)->options, "tablespace") &&
				outside_transaction_block(context) && owns_our_database();
		case T_CreatedbStmt:
			return option_names_database(((CreatedbStmt *) stmt)->options, "template") &&
				outside_transaction_block(context) && have_createdb_privilege() &&
				(our_database_is_template() || owns_our_database());
		default:
			return false;
	}
}

/* Ask the launcher to stop the workers and wait until they are gone. */
static void
pause_workers(void)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), PAUSE_WAIT_MS);

	SpinLockAcquire(&vproxy_state->mutex);
	vproxy_state->pause_requests++;
	holding_pause = true;
	SpinLockRelease(&vproxy_state->mutex);
	wake_launcher();

	for (;;)
	{
		bool		done;

		SpinLockAcquire(&vproxy_state->mutex);
		done = vproxy_state->workers_paused || vproxy_state->launcher_pid == 0;
		SpinLockRelease(&vproxy_state->mutex);
		if (done)
			return;
		if (GetCurrentTimestamp() >= deadline)
		{
			ereport(WARNING,
					(errmsg("vproxy workers did not stop within %d seconds", PAUSE_WAIT_MS / 1000)));
			return;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* End this backend's pause with its transaction; the launcher looks again. */
static void
end_pause(XactEvent event, void *arg)
{
	if (!holding_pause)
		return;
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT && event != XACT_EVENT_PREPARE)
		return;
	SpinLockAcquire(&vproxy_state->mutex);
	vproxy_state->pause_requests--;
	holding_pause = false;
	SpinLockRelease(&vproxy_state->mutex);
	wake_launcher();
}

/* Whether the statement is a DROP EXTENSION of vproxy. */
static bool
drops_vproxy(Node *stmt)
{
	ListCell   *cell;

	if (!IsA(stmt, DropStmt) || ((DropStmt *) stmt)->removeType != OBJECT_EXTENSION)
		return false;
	foreach(cell, ((DropStmt *) stmt)->objects)
		if (strcmp(strVal(lfirst(cell)), "vproxy") == 0)
			return true;
	return false;
}

/*
 * Refuse CREATE EXTENSION vproxy outside vproxy.database (but in a binary
 * upgrade, which restores what was there).
 */
static void
refuse_other_database(Node *stmt)
{
	char	   *here;

	if (!IsA(stmt, CreateExtensionStmt) || strcmp(((CreateExtensionStmt *) stmt)->extname, "vproxy") != 0 ||
		IsBinaryUpgrade)
		return;
	here = get_database_name(MyDatabaseId);
	if (here == NULL || strcmp(here, vproxy_database) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("vproxy can only be created in database \"%s\" (vproxy.database), not in \"%s\"",
					vproxy_database, here),
			 errdetail("The workers serve the queue of vproxy.database only: jobs queued here would never run."),
			 errhint("Connect to \"%s\", or set vproxy.database = '%s' and restart the server.",
					 vproxy_database, here)));
}

/*
 * What makes a schema unsafe for vproxy, one problem after the other, or
 * NULL: an owner that is not a superuser, another role (or PUBLIC) with
 * CREATE on it, objects in it that such a role owns.  Fully qualified, as
 * it runs with the caller's search_path.
 */
static const char *const unsafe_schema_sql =
"SELECT pg_catalog.string_agg(p.problem, '; ' ORDER BY p.problem) FROM ("
" SELECT pg_catalog.format('%s owns it', r.rolname) AS problem"
"   FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner"
"  WHERE n.oid OPERATOR(pg_catalog.=) $1 AND NOT r.rolsuper"
" UNION ALL"
" SELECT pg_catalog.format('%s may create objects in it', coalesce(r.rolname, 'PUBLIC'))"
"   FROM pg_catalog.pg_namespace n CROSS JOIN pg_catalog.aclexplode(n.nspacl) a"
"   LEFT JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) a.grantee"
"  WHERE n.oid OPERATOR(pg_catalog.=) $1 AND a.privilege_type OPERATOR(pg_catalog.=) 'CREATE'"
"    AND a.grantee OPERATOR(pg_catalog.<>) n.nspowner AND NOT coalesce(r.rolsuper, false)"
" UNION ALL"
" SELECT pg_catalog.format('%s owns %s', r.rolname, pg_catalog.pg_describe_object(o.classid, o.objid, 0))"
"   FROM (SELECT 'pg_catalog.pg_proc'::pg_catalog.regclass, f.oid, f.proowner, f.pronamespace"
"           FROM pg_catalog.pg_proc f"
"         UNION ALL SELECT 'pg_catalog.pg_operator'::pg_catalog.regclass, o.oid, o.oprowner, o.oprnamespace"
"           FROM pg_catalog.pg_operator o"
"         UNION ALL SELECT 'pg_catalog.pg_class'::pg_catalog.regclass, c.oid, c.relowner, c.relnamespace"
"           FROM pg_catalog.pg_class c"
"         UNION ALL SELECT 'pg_catalog.pg_type'::pg_catalog.regclass, t.oid, t.typowner, t.typnamespace"
"           FROM pg_catalog.pg_type t"
"          WHERE t.typrelid OPERATOR(pg_catalog.=) 0::pg_catalog.oid"
"            AND t.typcategory OPERATOR(pg_catalog.<>) 'A'::pg_catalog.\"char\""
"         UNION ALL SELECT 'pg_catalog.pg_collation'::pg_catalog.regclass, c.oid, c.collowner, c.collnamespace"
"           FROM pg_catalog.pg_collation c"
"         UNION ALL SELECT 'pg_catalog.pg_conversion'::pg_catalog.regclass, c.oid, c.conowner, c.connamespace"
"           FROM pg_catalog.pg_conversion c) AS o (classid, objid, owner, namespace)"
"   JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) o.owner"
"  WHERE o.namespace OPERATOR(pg_catalog.=) $1 AND NOT r.rolsuper) p";

/*
 * Refuse a schema of vproxy's (InvalidOid: none yet) that a role other than
 * a superuser could have filled: such a role could rename it and put
 * tables of its own under vproxy's names, or overload vproxy's functions,
 * and have them run by the SECURITY DEFINER functions as the extension's
 * owner, or by the extension's scripts.
 */
static void
refuse_unsafe_schema(Oid namespace)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(namespace)};
	char	   *name;
	char	   *problems = NULL;
	bool		isnull;
	Datum		value;

	if (!OidIsValid(namespace))
		return;
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "vproxy: SPI_connect failed");
	if (SPI_execute_with_args(unsafe_schema_sql, 1, types, values, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "vproxy: the check of schema %u failed", namespace);
	value = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (!isnull)
		problems = TextDatumGetCString(value);
	SPI_finish();
	if (problems == NULL)
		return;
	name = get_namespace_name(namespace);
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("schema \"%s\" is not safe for extension vproxy: %s", name, problems),
			 errdetail("Its owner, or a role that may create objects in it, could put objects of its "
					   "own in the place of vproxy's, and vproxy would run them as a superuser."),
			 errhint("Drop schema \"%s\" (CREATE EXTENSION makes it), or give it to a superuser, "
					 "revoke CREATE on it from other roles and drop their objects in it.", name)));
}

/* The schema of extension vproxy, or InvalidOid. */
static Oid
vproxy_schema(void)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tuple;
	Oid			namespace = InvalidOid;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("vproxy"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tuple = systable_getnext(scan);
	if (HeapTupleIsValid(tuple))
		namespace = ((Form_pg_extension) GETSTRUCT(tuple))->extnamespace;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return namespace;
}

/*
 * Refuse CREATE EXTENSION vproxy into a schema vproxy, and ALTER EXTENSION
 * vproxy UPDATE in an extension schema or a vproxy_internal, that is not a
 * superuser's alone.
 */
static void
refuse_unsafe_schemas(Node *stmt)
{
	if (IsBinaryUpgrade)
		return;
	if (IsA(stmt, CreateExtensionStmt) && strcmp(((CreateExtensionStmt *) stmt)->extname, "vproxy") == 0)
		refuse_unsafe_schema(get_namespace_oid("vproxy", true));
	else if (IsA(stmt, AlterExtensionStmt) && strcmp(((AlterExtensionStmt *) stmt)->extname, "vproxy") == 0)
	{
		refuse_unsafe_schema(vproxy_schema());
		refuse_unsafe_schema(get_namespace_oid("vproxy_internal", true));
	}
}

/*
 * ProcessUtility hook: pause the workers before commands that need it; wake
 * them for commands that change what they should do.
 */
static void
guard_process_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
					  ProcessUtilityContext context, ParamListInfo params,
					  QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	Node	   *stmt = pstmt->utilityStmt;

	refuse_other_database(stmt);
	refuse_unsafe_schemas(stmt);
	if (vproxy_state != NULL && !holding_pause && needs_database_alone(stmt, context))
		pause_workers();
	/* a new database of our name: the launcher may start the workers */
	if (vproxy_state != NULL && IsA(stmt, CreatedbStmt) &&
		strcmp(((CreatedbStmt *) stmt)->dbname, vproxy_database) == 0)
		wake_launcher_at_commit();
	/* the workers notice at once that their extension is gone, and leave */
	if (vproxy_state != NULL && drops_vproxy(stmt))
		wake_all_workers_at_commit();

	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
	/* a prepared enqueue or cancel has just become visible */
	if (vproxy_state != NULL && IsA(stmt, TransactionStmt) &&
		((TransactionStmt *) stmt)->kind == TRANS_STMT_COMMIT_PREPARED)
		wake_all_workers_after_commit_prepared();
}

/* Install the ProcessUtility hook and its transaction callback. */
void
install_database_guard(void)
{
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = guard_process_utility;
	RegisterXactCallback(end_pause, NULL);
}
