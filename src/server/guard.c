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
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "tcop/utility.h"
#include "utils/acl.h"
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
