/*
 * vproxy.c
 *		Module entry: settings everywhere; with shared_preload_libraries also
 *		the shared memory, the launcher, the database guard and the log
 *		redaction.  vproxy.so links no libav and no libcurl: the media work
 *		happens in the child program vproxy-transcode.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

#include "guard.h"
#include "redact.h"
#include "settings.h"
#include "state.h"
#include "wakeup.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Register the launcher, a static background worker. */
static void
register_launcher(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	strlcpy(worker.bgw_library_name, "vproxy", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "vproxy_launcher_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "vproxy launcher", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "vproxy launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

/*
 * Module load.  vproxy needs shared memory, the launcher and its hooks
 * from the start: loaded later (CREATE EXTENSION on a server without the
 * preload) it refuses with an ERROR and a hint, as pg_cron does, and the
 * session goes on.
 */
void
_PG_init(void)
{
	if (!process_shared_preload_libraries_in_progress)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("vproxy can only be loaded through shared_preload_libraries"),
				 errhint("Add vproxy to shared_preload_libraries in postgresql.conf, restart the server, "
						 "then run CREATE EXTENSION vproxy in the database named by vproxy.database.")));
	define_settings();
	install_wakeup_callback();
	install_state_hooks();
	install_database_guard();
	install_secret_redaction();
	if (vproxy_workers > 0)
		register_launcher();
}
