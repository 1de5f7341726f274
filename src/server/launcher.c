/*
 * launcher.c
 *		The vproxy launcher: a static background worker connected to no
 *		database (it reads the shared catalog pg_database, as the logical
 *		replication launcher does).  It keeps vproxy.workers workers running
 *		in vproxy.database, restarts those that die (with a growing delay if
 *		they die young), stops them while a command needs their database
 *		alone, and waits quietly while the database or the extension is
 *		missing.  About once a minute it starts a short-lived pruner in the
 *		database that removes ended jobs past their retention in small
 *		batches (pruner.c).
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "jobs.h"
#include "settings.h"
#include "state.h"

PGDLLEXPORT void vproxy_launcher_main(Datum main_arg);

/* how often to look for a missing database or extension */
#define DATABASE_POLL_MS 5000
#define EXTENSION_POLL_MS 60000
/* a worker that dies younger than this is restarted after a growing delay */
#define YOUNG_DEATH_MS 10000
#define MAX_RESTART_DELAY_MS 60000
/*
 * the pruner (pruner.c) runs at most this often, or as often as the
 * shortest retention (a retention of seconds is for tests)
 */
#define PRUNE_INTERVAL_MS 60000

typedef struct WorkerHandle
{
	BackgroundWorkerHandle *handle; /* NULL: not started by this launcher */
	pid_t		adopted_pid;	/* a worker of an earlier launcher, running */
	TimestampTz started_at;
	TimestampTz restart_after;
	int			young_deaths;
} WorkerHandle;

typedef enum LauncherMood
{
	MOOD_RUNNING,
	MOOD_NO_DATABASE,
	MOOD_NO_EXTENSION,
	MOOD_PAUSED
} LauncherMood;

static WorkerHandle *workers;
static LauncherMood mood = MOOD_RUNNING;
static TimestampTz extension_looked_at = 0;
static BackgroundWorkerHandle *pruner = NULL;
static TimestampTz pruner_started_at = 0;

/* Exit callback: the launcher is gone. */
static void
leave_launcher(int code, Datum arg)
{
	SpinLockAcquire(&vproxy_state->mutex);
	vproxy_state->launcher_pid = 0;
	vproxy_state->launcher_latch = NULL;
	SpinLockRelease(&vproxy_state->mutex);
}

/* Say once in the log that the launcher is now in a new mood. */
static void
enter_mood(LauncherMood new_mood)
{
	if (new_mood == mood)
		return;
	mood = new_mood;
	if (mood == MOOD_NO_DATABASE)
		ereport(LOG, (errmsg("vproxy: database \"%s\" does not exist; workers start when it does",
							 vproxy_database)));
	else if (mood == MOOD_NO_EXTENSION)
		ereport(LOG, (errmsg("vproxy: extension vproxy is not installed in database \"%s\"; "
							 "workers start after CREATE EXTENSION vproxy", vproxy_database)));
}

/*
 * Whether vproxy.database exists.  A plain heap scan of pg_database: with no
 * database selected its indexes cannot be opened before the shared relcache
 * init file exists (the logical replication launcher scans the same way).
 */
static bool
database_exists(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tuple;
	bool		found = false;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while (!found && (tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		found = strcmp(NameStr(((Form_pg_database) GETSTRUCT(tuple))->datname),
					   vproxy_database) == 0;
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
	return found;
}

/* The process serving slot i, 0 if none. */
static pid_t
slot_pid(int i)
{
	pid_t		pid;

	SpinLockAcquire(&vproxy_state->mutex);
	pid = vproxy_state->slots[i].pid;
	SpinLockRelease(&vproxy_state->mutex);
	return pid;
}

/*
 * Whether slot i is served by a worker this launcher did not start (an
 * earlier launcher did, before it was terminated or failed): that worker is
 * adopted, watched through its slot, and not started twice.
 */
static bool
adopted_worker_runs(int i)
{
	WorkerHandle *w = &workers[i];
	pid_t		pid = slot_pid(i);

	if (w->adopted_pid != 0 && pid != w->adopted_pid)
	{
		/* it stopped: start a new one at once */
		w->adopted_pid = 0;
		w->restart_after = 0;
	}
	if (w->adopted_pid == 0 && w->handle == NULL && pid != 0)
	{
		w->adopted_pid = pid;
		ereport(LOG, (errmsg("vproxy launcher: adopted worker %d (process %d), still running",
							 i + 1, (int) pid)));
	}
	return w->adopted_pid != 0;
}

/* Notice the workers that have stopped; count those still running. */
static int
collect_stopped_workers(void)
{
	int			running = 0;
	TimestampTz now = GetCurrentTimestamp();

	for (int i = 0; i < vproxy_workers; i++)
	{
		WorkerHandle *w = &workers[i];
		pid_t		pid;

		if (w->handle == NULL)
		{
			if (adopted_worker_runs(i))
				running++;
			continue;
		}
		if (GetBackgroundWorkerPid(w->handle, &pid) != BGWH_STOPPED)
		{
			running++;
			continue;
		}
		pfree(w->handle);
		w->handle = NULL;
		if (now < TimestampTzPlusMilliseconds(w->started_at, YOUNG_DEATH_MS))
			w->young_deaths++;
		else
			w->young_deaths = 0;
		w->restart_after = w->young_deaths == 0 ? now :
			TimestampTzPlusMilliseconds(now, Min(MAX_RESTART_DELAY_MS,
												 1000L << Min(w->young_deaths - 1, 16)));
	}
	return running;
}

/*
 * Start the next workers without delay: their deaths were asked for (a
 * pause) or explained (the extension was missing and may be back now).
 */
static void
forgive_deaths(void)
{
	for (int i = 0; i < vproxy_workers; i++)
	{
		workers[i].young_deaths = 0;
		workers[i].restart_after = 0;
	}
}

/*
 * Start a dynamic background worker of this launcher (it is told when the
 * worker stops); false when no slot is free.
 */
static bool
start_dynamic_worker(const char *function, const char *type, const char *name,
					 int main_arg, BackgroundWorkerHandle **handle)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(worker.bgw_library_name, "vproxy", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, function, BGW_MAXLEN);
	strlcpy(worker.bgw_name, name, BGW_MAXLEN);
	strlcpy(worker.bgw_type, type, BGW_MAXLEN);
	worker.bgw_main_arg = Int32GetDatum(main_arg);
	worker.bgw_notify_pid = MyProcPid;
	if (RegisterDynamicBackgroundWorker(&worker, handle))
		return true;
	*handle = NULL;
	return false;
}

/* Whether the pruner runs; forgets it once it has stopped. */
static bool
pruner_runs(void)
{
	pid_t		pid;

	if (pruner == NULL)
		return false;
	if (GetBackgroundWorkerPid(pruner, &pid) != BGWH_STOPPED)
		return true;
	pfree(pruner);
	pruner = NULL;
	return false;
}

/* How long the pruner waits between runs, in ms. */
static long
prune_interval_ms(void)
{
	long		interval = PRUNE_INTERVAL_MS;

	if (vproxy_job_retention > 0)
		interval = Min(interval, vproxy_job_retention * 1000L);
	if (vproxy_failed_job_retention > 0)
		interval = Min(interval, vproxy_failed_job_retention * 1000L);
	return interval;
}

/*
 * Start the pruner if its interval has passed since the last one started
 * and retention is on; ms until the next is due.  No free slot: the next
 * interval will do.
 */
static long
start_pruner(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		interval = prune_interval_ms();
	TimestampTz due = TimestampTzPlusMilliseconds(pruner_started_at, interval);

	if (vproxy_job_retention == 0 && vproxy_failed_job_retention == 0)
		return PRUNE_INTERVAL_MS;
	if (pruner_runs())
		return interval;
	if (pruner_started_at != 0 && now < due)
		return TimestampDifferenceMilliseconds(now, due) + 1;
	pruner_started_at = now;
	(void) start_dynamic_worker("vproxy_pruner_main", "vproxy pruner", "vproxy pruner", 0, &pruner);
	return interval;
}

/* Ask every running worker (and the pruner) to stop (they hand their jobs back). */
static void
stop_workers(void)
{
	if (pruner_runs())
		TerminateBackgroundWorker(pruner);
	for (int i = 0; i < vproxy_workers; i++)
	{
		if (workers[i].handle != NULL)
			TerminateBackgroundWorker(workers[i].handle);
		else if (workers[i].adopted_pid != 0)
			(void) kill(workers[i].adopted_pid, SIGTERM);
	}
}

/* Start the workers whose restart delay has passed; ms until the next is due. */
static long
start_workers(void)
{
	TimestampTz now = GetCurrentTimestamp();
	long		next_ms = EXTENSION_POLL_MS;

	for (int i = 0; i < vproxy_workers; i++)
	{
		WorkerHandle *w = &workers[i];
		char		name[BGW_MAXLEN];

		if (w->handle != NULL || w->adopted_pid != 0)
			continue;
		if (now < w->restart_after)
		{
			next_ms = Min(next_ms, TimestampDifferenceMilliseconds(now, w->restart_after) + 1);
			continue;
		}
		snprintf(name, sizeof(name), "vproxy worker %d", i + 1);
		if (!start_dynamic_worker("vproxy_worker_main", "vproxy worker", name, i, &w->handle))
		{
			w->young_deaths++;
			w->restart_after = TimestampTzPlusMilliseconds(now, MAX_RESTART_DELAY_MS);
			if (w->young_deaths == 1)
				ereport(WARNING,
						(errmsg("vproxy: cannot start worker %d: no free background worker slot", i + 1),
						 errhint("Raise max_worker_processes (vproxy needs vproxy.workers + 2: the launcher and the pruner).")));
			continue;
		}
		w->started_at = now;
	}
	return next_ms;
}

/* One look at the world; returns how long to sleep. */
static long
launcher_step(void)
{
	int			running = collect_stopped_workers();
	bool		pruning = pruner_runs();
	long		sleep_ms;
	bool		pause_wanted,
				extension_missing,
				recheck;

	SpinLockAcquire(&vproxy_state->mutex);
	pause_wanted = vproxy_state->pause_requests > 0;
	if (!pause_wanted)
		vproxy_state->workers_paused = false;
	else if (running == 0 && !pruning)
		vproxy_state->workers_paused = true;
	recheck = vproxy_state->recheck_requested;
	vproxy_state->recheck_requested = false;
	if (recheck)
	{
		vproxy_state->extension_missing = false;
		mood = MOOD_RUNNING;
	}
	extension_missing = vproxy_state->extension_missing;
	SpinLockRelease(&vproxy_state->mutex);

	if (recheck)
		forgive_deaths();
	if (pause_wanted)
	{
		enter_mood(MOOD_PAUSED);
		stop_workers();
		forgive_deaths();
		return 1000;
	}
	if (!database_exists())
	{
		enter_mood(MOOD_NO_DATABASE);
		return DATABASE_POLL_MS;
	}
	if (extension_missing)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (mood != MOOD_NO_EXTENSION)
		{
			enter_mood(MOOD_NO_EXTENSION);
			extension_looked_at = now;
		}
		if (now < TimestampTzPlusMilliseconds(extension_looked_at, EXTENSION_POLL_MS))
			return TimestampDifferenceMilliseconds(now, TimestampTzPlusMilliseconds(extension_looked_at, EXTENSION_POLL_MS)) + 1;
		/* the poll ran out: let the workers look again */
		extension_looked_at = now;
		forgive_deaths();
		SpinLockAcquire(&vproxy_state->mutex);
		vproxy_state->extension_missing = false;
		SpinLockRelease(&vproxy_state->mutex);
	}
	if (running >= vproxy_workers)
		enter_mood(MOOD_RUNNING);
	sleep_ms = start_workers();
	/* the workers first: the pruner never takes a slot one of them needs */
	if (running >= vproxy_workers)
		sleep_ms = Min(sleep_ms, start_pruner());
	return sleep_ms;
}

/* Entry point of the launcher. */
void
vproxy_launcher_main(Datum main_arg)
{
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);

	workers = MemoryContextAllocZero(TopMemoryContext, sizeof(WorkerHandle) * vproxy_workers);
	SpinLockAcquire(&vproxy_state->mutex);
	vproxy_state->launcher_pid = MyProcPid;
	vproxy_state->launcher_latch = MyLatch;
	vproxy_state->extension_missing = false;
	vproxy_state->workers_paused = false;
	SpinLockRelease(&vproxy_state->mutex);
	before_shmem_exit(leave_launcher, (Datum) 0);
	ereport(LOG, (errmsg("vproxy launcher started: %d worker(s) for database \"%s\"",
						 vproxy_workers, vproxy_database)));

	for (;;)
	{
		long		sleep_ms;

		/* reset before looking at the flags, so no SIGTERM is slept through */
		ResetLatch(MyLatch);
		/* absorbs procsignal barriers (DROP DATABASE waits for them) */
		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		sleep_ms = launcher_step();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 sleep_ms, PG_WAIT_EXTENSION);
	}

	/*
	 * Exit status 1: a static worker that exits with 0 is never started
	 * again, so a launcher terminated by hand would leave its workers
	 * orphaned until the next server start.  The postmaster restarts it
	 * after bgw_restart_time, and it adopts the workers still running.
	 */
	proc_exit(1);
}
