/*
 * pruner.c
 *		The vproxy pruner: a short-lived background worker the launcher
 *		starts about once a minute in vproxy.database.  It removes ended jobs
 *		past their retention (vproxy.job_retention, vproxy.failed_job_retention)
 *		in small batches, each in a transaction of its own, and leaves.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"

#include "jobs.h"
#include "settings.h"

PGDLLEXPORT void vproxy_pruner_main(Datum main_arg);

/* ended jobs removed per transaction */
#define PRUNE_BATCH 500

static volatile sig_atomic_t pruner_stop = false;

/* SIGTERM of the pruner: finish the batch in progress, then leave. */
static void
pruner_handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	pruner_stop = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/*
 * Entry point of the pruner: remove ended jobs past their retention, in
 * batches of PRUNE_BATCH rows, each in a transaction of its own (short row
 * locks on the ended jobs only: enqueues and claims never wait for it).
 */
void
vproxy_pruner_main(Datum main_arg)
{
	int64		removed;

	pqsignal(SIGTERM, pruner_handle_sigterm);
	BackgroundWorkerUnblockSignals();
	jobs_connect(vproxy_database);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	pgstat_report_appname("vproxy pruner");
	jobs_set_stop_flag(&pruner_stop);
	removed = jobs_prune(vproxy_job_retention, vproxy_failed_job_retention, PRUNE_BATCH);
	if (removed > 0)
		ereport(LOG, (errmsg("vproxy: removed " INT64_FORMAT " ended job(s) past their retention",
							 removed)));
	proc_exit(0);
}
