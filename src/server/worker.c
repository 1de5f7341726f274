/*
 * worker.c
 *		A vproxy worker: a dynamic background worker connected to
 *		vproxy.database that claims jobs, runs `vproxy-transcode job` for each
 *		under supervision (heartbeat, progress, timeout, cancel, shutdown) and
 *		records the outcome by the failure policy.  Idle, it sleeps on its
 *		latch until a commit wakes it or a delayed job becomes due.
 */
#include "postgres.h"

#include <signal.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "child.h"
#include "jobs.h"
#include "settings.h"
#include "state.h"
#include "wakeup.h"

PGDLLEXPORT void vproxy_worker_main(Datum main_arg);

/* after SIGTERM, how long the child has to clean up before SIGKILL */
#define CHILD_GRACE_MS 5000
/* longest sleep of an idle worker, in case a wake-up was lost */
#define MAX_IDLE_SLEEP_MS 60000
/* heartbeat (lease and progress) period */
#define HEARTBEAT_MS 1000
/* longest wait for a lock the application holds, shorter than any lease */
#define WORKER_LOCK_TIMEOUT "5s"

static volatile sig_atomic_t got_sigterm = false;
static WorkerSlot *my_slot = NULL;
static int	my_number;
static Child *current_child = NULL;
static char holder[128];
static char server_prefix[64];
static char life_prefix[96];

/* SIGTERM: remember it; the worker hands its job back and leaves. */
static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Publish a new state in the worker's slot. */
static void
set_state(WorkerState state)
{
	SpinLockAcquire(&vproxy_state->mutex);
	if (my_slot->state != state)
	{
		my_slot->state = state;
		my_slot->state_since = GetCurrentTimestamp();
	}
	if (state != WORKER_RUNNING)
		my_slot->has_job = false;
	SpinLockRelease(&vproxy_state->mutex);
}

/* Exit callback: give the slot back (if it is still this worker's). */
static void
leave_slot(int code, Datum arg)
{
	SpinLockAcquire(&vproxy_state->mutex);
	if (my_slot->pid == MyProcPid)
	{
		my_slot->pid = 0;
		my_slot->latch = NULL;
		my_slot->state = WORKER_STOPPED;
		my_slot->state_since = GetCurrentTimestamp();
		my_slot->has_job = false;
	}
	SpinLockRelease(&vproxy_state->mutex);
}

/* Exit callback: a child must not outlive its worker, even after an ERROR. */
static void
stop_child_at_exit(int code, Datum arg)
{
	Child	   *child = current_child;
	int			status;

	if (child == NULL || child->exited)
		return;
	child_signal(child, SIGTERM);
	for (int waited = 0; waited < CHILD_GRACE_MS; waited += 10)
	{
		if (waitpid(child->pid, &status, WNOHANG) == child->pid)
			return;
		pg_usleep(10000L);
	}
	child_signal(child, SIGKILL);
	(void) waitpid(child->pid, &status, 0);
}

/*
 * Serve interrupts, and reload the configuration if a SIGHUP asked for it.
 * Called between the worker's calls only: a query cancel (pg_cancel_backend)
 * that lands here has no statement to cancel, and would otherwise end the
 * worker with an ERROR outside any transaction, killing its child.
 */
static void
reload_if_asked(void)
{
	QueryCancelPending = false;
	/* absorbs procsignal barriers too (DROP DATABASE waits for them) */
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

/* The job spec of the claim with the storage part and temp directory added. */
static StringInfo
full_spec(const ClaimedJob *job)
{
	StringInfo	spec = makeStringInfo();
	size_t		len = strlen(job->spec);

	/* the claim's spec is a JSON object: reopen it before its closing brace */
	Assert(len > 2 && job->spec[len - 1] == '}');
	appendBinaryStringInfo(spec, job->spec, len - 1);
	appendStringInfoString(spec, ", \"storage\": {\"url\": ");
	escape_json(spec, vproxy_storage_url);
	appendStringInfoString(spec, ", \"s3_endpoint\": ");
	escape_json(spec, vproxy_s3_endpoint);
	appendStringInfoString(spec, ", \"s3_region\": ");
	escape_json(spec, vproxy_s3_region);
	appendStringInfoString(spec, ", \"access_key_id\": ");
	escape_json(spec, vproxy_s3_access_key_id);
	appendStringInfoString(spec, ", \"secret_access_key\": ");
	escape_json(spec, vproxy_s3_secret_access_key);
	if (vproxy_s3_session_token[0] != '\0')
	{
		appendStringInfoString(spec, ", \"session_token\": ");
		escape_json(spec, vproxy_s3_session_token);
	}
	appendStringInfoString(spec, ", \"ca_file\": ");
	escape_json(spec, vproxy_s3_ca_file);
	appendStringInfoString(spec, "}, \"temp_directory\": ");
	escape_json(spec, vproxy_temp_directory);
	/* the database comes first: the child bounds itself with these */
	appendStringInfo(spec, ", \"limits\": {\"nice\": %d, \"threads\": %d, \"memory_limit_bytes\": " INT64_FORMAT
					 ", \"yield_to_postmaster\": %d, \"yield_db_cpu\": %d}",
					 vproxy_child_nice, vproxy_transcode_threads,
					 (int64) vproxy_child_memory_limit * 1024 * 1024,
					 (int) PostmasterPid, vproxy_child_yield_db_cpu);
	appendStringInfoString(spec, "}\n");
	return spec;
}

/* Show the job in the slot and in pg_stat_activity. */
static void
report_job(const ClaimedJob *job, Child *child)
{
	char		activity[256];

	SpinLockAcquire(&vproxy_state->mutex);
	my_slot->progress = child ? (float4) child->progress : 0;
	strlcpy(my_slot->stage, child && child->stage[0] ? child->stage : "starting",
			sizeof(my_slot->stage));
	SpinLockRelease(&vproxy_state->mutex);
	snprintf(activity, sizeof(activity), "vproxy: %s job %s of video %s, attempt %d: %.0f%% %s",
			 job->job_type, job->job_id_text, job->video_id_text, job->attempt,
			 child ? child->progress * 100.0 : 0.0,
			 child && child->stage[0] ? child->stage : "starting");
	pgstat_report_activity(STATE_RUNNING, activity);
}

/*
 * Publish the claimed job in the slot.  A commit that woke this worker
 * while it was claiming may have queued another job than the one it took:
 * the wake-up goes on to an idle worker, or the job would wait for the next
 * timeout.
 */
static void
enter_job(const ClaimedJob *job)
{
	bool		was_woken;

	SpinLockAcquire(&vproxy_state->mutex);
	was_woken = my_slot->woken;
	my_slot->woken = false;
	my_slot->state = WORKER_RUNNING;
	my_slot->state_since = GetCurrentTimestamp();
	my_slot->job_started_at = my_slot->state_since;
	my_slot->has_job = true;
	my_slot->check_lease = false;
	my_slot->job_id = job->job_id;
	my_slot->video_id = job->video_id;
	strlcpy(my_slot->job_type, job->job_type, sizeof(my_slot->job_type));
	my_slot->attempt = job->attempt;
	SpinLockRelease(&vproxy_state->mutex);
	if (was_woken)
		wake_idle_worker();
	report_job(job, NULL);
}

/* Whether a canceller asked this worker to check its lease now. */
static bool
lease_check_asked(void)
{
	bool		asked;

	SpinLockAcquire(&vproxy_state->mutex);
	asked = my_slot->check_lease;
	my_slot->check_lease = false;
	SpinLockRelease(&vproxy_state->mutex);
	return asked;
}

/*
 * Record a failed attempt and say in the log what becomes of the job.  A
 * worker told to stop while the database was in the way hands it back.
 */
static void
record_failure(const ClaimedJob *job, const char *cause, bool retryable)
{
	char	   *status = NULL;
	char	   *error = NULL;
	const char *job_text = job->job_id_text;

	switch (jobs_fail(job, cause, retryable, &status, &error))
	{
		case CALL_DONE:
			if (strcmp(status, "pending") == 0)
				ereport(LOG, (errmsg("vproxy: job %s attempt %d failed, will retry: %s",
									 job_text, job->attempt, cause)));
			else
				ereport(LOG, (errmsg("vproxy: job %s failed after %d attempt(s): %s",
									 job_text, job->attempt, cause)));
			break;
		case CALL_LEASE_LOST:
			ereport(LOG, (errmsg("vproxy: job %s lost its lease; the failure \"%s\" was not recorded",
								 job_text, cause)));
			break;
		default:
			if (got_sigterm && jobs_release(job))
				ereport(LOG, (errmsg("vproxy: job %s handed back on shutdown, attempt not counted "
									 "(its failure could not be recorded: %s)", job_text, error)));
			break;
	}
}

/*
 * What an exit status means by the failure policy: 64 (bad spec), 65 (bad
 * media or checksum mismatch), 66 (original missing) and 77 (storage refused)
 * fail at once; 75 (transient), 70 (internal: out of memory, a library
 * assertion) and anything unknown are retried.
 */
static bool
exit_status_retryable(int code)
{
	switch (code)
	{
		case EX_USAGE:
		case EX_DATAERR:
		case EX_NOINPUT:
		case EX_NOPERM:
			return false;
		default:
			return true;
	}
}

/*
 * Record the child's result.  A result that does not fit the tables (a
 * data error) fails the job at once; while the database fails for a reason
 * that passes (a lock the application holds, a deadlock, a cancel), the
 * result is offered again, keeping the lease (jobs.c).
 */
static void
record_result(const ClaimedJob *job, Child *child, double seconds)
{
	char	   *error = NULL;
	CallOutcome outcome = jobs_finish(job, child->output.data, &error);

	switch (outcome)
	{
		case CALL_DONE:
			ereport(LOG, (errmsg("vproxy: job %s (%s) of video %s completed in %.1f s, attempt %d "
								 "(child: %.1f s CPU, %ld MB peak memory)",
								 job->job_id_text, job->job_type, job->video_id_text, seconds,
								 job->attempt,
								 child->usage.ru_utime.tv_sec + child->usage.ru_utime.tv_usec / 1e6 +
								 child->usage.ru_stime.tv_sec + child->usage.ru_stime.tv_usec / 1e6,
								 child->usage.ru_maxrss / 1024)));
			break;
		case CALL_LEASE_LOST:
			ereport(LOG, (errmsg("vproxy: job %s lost its lease; its result was not recorded",
								 job->job_id_text)));
			break;
		case CALL_BAD_DATA:
			record_failure(job, psprintf("cannot record the result: %s", error), false);
			break;
		case CALL_FAILED:
			if (!got_sigterm)
				record_failure(job, psprintf("cannot record the result: %s", error), true);
			else if (jobs_release(job))
				ereport(LOG, (errmsg("vproxy: job %s handed back on shutdown, attempt not counted "
									 "(its result could not be recorded: %s)", job->job_id_text, error)));
			break;
	}
}

/* Record what the child's run came to. */
static void
record_outcome(const ClaimedJob *job, Child *child, double seconds)
{
	const char *last_line = child_last_error_line(child);
	int			status = child->wait_status;

	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
	{
		if (child->output_too_long || child->output.len == 0)
			record_failure(job, child->output.len == 0 ?
						   "vproxy-transcode succeeded but printed no result" :
						   "vproxy-transcode printed a result over 1 MB", true);
		else
			record_result(job, child, seconds);
	}
	else if (WIFEXITED(status))
		record_failure(job, last_line[0] ? last_line :
					   psprintf("vproxy-transcode exited with status %d", WEXITSTATUS(status)),
					   exit_status_retryable(WEXITSTATUS(status)));
	else
		record_failure(job, psprintf("vproxy-transcode was killed by signal %d (%s)%s%s",
									 WTERMSIG(status), strsignal(WTERMSIG(status)),
									 last_line[0] ? "; last message: " : "", last_line),
					   true);
}

/* Run one claimed job to its end and record the outcome. */
static void
run_job(ClaimedJob *job)
{
	StringInfo	spec = full_spec(job);
	const char *program = transcode_program();
	Child		child;
	TimestampTz started = GetCurrentTimestamp();
	TimestampTz deadline = TimestampTzPlusMilliseconds(started, (int64) vproxy_job_timeout * 1000);
	TimestampTz last_heartbeat = started;
	TimestampTz kill_at = 0;
	TimestampTz exited_at = 0;
	bool		lease_lost = false,
				timed_out = false,
				stopping = false,
				terminating = false,
				killed = false,
				succeeded;

	enter_job(job);
	ereport(LOG, (errmsg("vproxy: job %s (%s) of video %s started, attempt %d",
						 job->job_id_text, job->job_type,
						 job->video_id_text, job->attempt)));
	if (!child_start(&child, program, spec->data, spec->len))
	{
		record_failure(job, psprintf("cannot start %s: %m", program), true);
		return;
	}
	current_child = &child;

	for (;;)
	{
		TimestampTz now;
		long		wait_ms;

		ResetLatch(MyLatch);
		reload_if_asked();
		now = GetCurrentTimestamp();
		/* a child that has already exited is not stopped: its result counts */
		if (got_sigterm && !terminating && !child.exited)
			stopping = true;
		if (!terminating && !stopping &&
			(lease_check_asked() || now >= TimestampTzPlusMilliseconds(last_heartbeat, HEARTBEAT_MS)))
		{
			char	   *error;
			CallOutcome outcome = jobs_heartbeat(job, child.progress, &error);

			if (outcome == CALL_LEASE_LOST)
				lease_lost = true;
			else if (outcome != CALL_DONE)
				ereport(LOG, (errmsg("vproxy: job %s: heartbeat failed, trying again: %s",
									 job->job_id_text, error)));
			last_heartbeat = now;
			report_job(job, &child);
		}
		if (!terminating && !stopping && !lease_lost && !child.exited && now >= deadline)
			timed_out = true;
		if (!terminating && (stopping || lease_lost || timed_out))
		{
			child_signal(&child, SIGTERM);
			terminating = true;
			kill_at = TimestampTzPlusMilliseconds(now, CHILD_GRACE_MS);
		}
		if (terminating && !killed && now >= kill_at)
		{
			child_signal(&child, SIGKILL);
			killed = true;
		}
		if (child.exited && exited_at == 0)
			exited_at = now;
		if (child_done(&child))
			break;
		if (exited_at != 0 && now >= TimestampTzPlusMilliseconds(exited_at, 1000))
		{
			/* a grandchild holds a pipe open: do not wait for it */
			child_close_pipes(&child);
			break;
		}

		wait_ms = HEARTBEAT_MS - TimestampDifferenceMilliseconds(last_heartbeat, now);
		if (!terminating)
			wait_ms = Min(wait_ms, TimestampDifferenceMilliseconds(now, deadline));
		else if (!killed)
			wait_ms = Min(wait_ms, TimestampDifferenceMilliseconds(now, kill_at));
		if (exited_at != 0)
			wait_ms = Min(wait_ms, 100);
		child_wait(&child, Max(wait_ms, 1));
	}
	current_child = NULL;
	succeeded = child.exited && WIFEXITED(child.wait_status) && WEXITSTATUS(child.wait_status) == 0;

	if (jobs_extension_gone)
		return;
	if (succeeded || !(lease_lost || stopping || timed_out))
		record_outcome(job, &child, (double) TimestampDifferenceMilliseconds(started, GetCurrentTimestamp()) / 1000.0);
	else if (lease_lost)
		ereport(LOG, (errmsg("vproxy: job %s was cancelled or taken over; its child was stopped",
							 job->job_id_text)));
	else if (stopping)
	{
		if (jobs_release(job))
			ereport(LOG, (errmsg("vproxy: job %s handed back on shutdown, attempt not counted",
								 job->job_id_text)));
	}
	else
		record_failure(job, psprintf("timed out after %d s (vproxy.job_timeout)",
									 vproxy_job_timeout), true);
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Whether the program can be run; logs once when it cannot. */
static bool
program_usable(void)
{
	static char reported[MAXPGPATH];
	const char *program = transcode_program();

	if (access(program, X_OK) == 0)
	{
		reported[0] = '\0';
		return true;
	}
	if (strcmp(reported, program) != 0)
	{
		ereport(WARNING,
				(errmsg("vproxy: cannot execute \"%s\": %m; no job is taken until it can be", program),
				 errhint("Install vproxy-transcode or set vproxy.transcode_path, then reload.")));
		strlcpy(reported, program, sizeof(reported));
	}
	return false;
}

/* Milliseconds an idle worker may sleep before a claim could find work. */
static long
idle_sleep_ms(TimestampTz next_claim_at)
{
	TimestampTz now = GetCurrentTimestamp();

	if (next_claim_at == 0)
		return MAX_IDLE_SLEEP_MS;
	if (next_claim_at <= now)
		return 100;				/* due but locked by another claimer */
	return Min(TimestampDifferenceMilliseconds(now, next_claim_at) + 1, MAX_IDLE_SLEEP_MS);
}

/* Clear the slot's wake-up mark before looking for work. */
static void
clear_woken(void)
{
	SpinLockAcquire(&vproxy_state->mutex);
	my_slot->woken = false;
	SpinLockRelease(&vproxy_state->mutex);
}

/*
 * Take the slot and name this life of the server in the lease holder; false
 * if a worker started by an earlier launcher still holds the slot.
 */
static bool
attach_to_slot(int number)
{
	pid_t		slot_holder;

	my_number = number;
	my_slot = &vproxy_state->slots[number];
	SpinLockAcquire(&vproxy_state->mutex);
	slot_holder = my_slot->pid;
	if (slot_holder == 0)
	{
		my_slot->pid = MyProcPid;
		my_slot->latch = MyLatch;
		my_slot->state = WORKER_STARTING;
		my_slot->state_since = GetCurrentTimestamp();
		my_slot->has_job = false;
		my_slot->woken = false;
	}
	SpinLockRelease(&vproxy_state->mutex);
	if (slot_holder != 0)
	{
		ereport(LOG, (errmsg("vproxy worker %d: process %d already serves this slot; exiting",
							 number + 1, (int) slot_holder)));
		return false;
	}
	before_shmem_exit(leave_slot, (Datum) 0);
	before_shmem_exit(stop_child_at_exit, (Datum) 0);

	snprintf(server_prefix, sizeof(server_prefix), "postgres " UINT64_FORMAT "/",
			 GetSystemIdentifier());
	snprintf(life_prefix, sizeof(life_prefix), "%s" UINT64_FORMAT "/", server_prefix,
			 vproxy_state->life_id);
	snprintf(holder, sizeof(holder), "%s%d", life_prefix, MyProcPid);
	return true;
}

/*
 * Whatever ALTER DATABASE or ALTER ROLE set for the application, the
 * worker's calls are short read-committed writes that no statement timeout
 * may cut; a lock the application holds stalls them (and the supervision
 * of the child) for a bounded time only: the call is then tried again.
 */
static void
set_session_defaults(void)
{
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_deferrable", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("idle_in_transaction_session_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", WORKER_LOCK_TIMEOUT, PGC_SUSET, PGC_S_OVERRIDE);
}

/* Entry point of a worker; main_arg is its slot number. */
void
vproxy_worker_main(Datum main_arg)
{
	MemoryContext loop_context;

	pqsignal(SIGTERM, handle_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGCHLD, child_handle_sigchld);
	BackgroundWorkerUnblockSignals();
	if (!attach_to_slot(DatumGetInt32(main_arg)))
		proc_exit(0);

	BackgroundWorkerInitializeConnection(vproxy_database, NULL, 0);
	set_session_defaults();
	jobs_set_stop_flag(&got_sigterm);
	pgstat_report_appname("vproxy worker");

	if (jobs_expire_earlier_lives(server_prefix, life_prefix) > 0)
		ereport(LOG, (errmsg("vproxy: released the jobs of workers from before the last restart")));
	if (!jobs_extension_gone)
		ereport(LOG, (errmsg("vproxy worker %d started in database \"%s\"", my_number + 1,
							 vproxy_database)));

	loop_context = AllocSetContextCreate(TopMemoryContext, "vproxy worker loop",
										 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		ClaimedJob	job;
		TimestampTz next_claim_at;

		/* what one turn allocates (the spec, the child's output) goes with it */
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(loop_context);
		MemoryContextSwitchTo(loop_context);
		/* reset before looking at the flags, so no SIGTERM is slept through */
		ResetLatch(MyLatch);
		reload_if_asked();
		if (got_sigterm || jobs_extension_gone)
			break;
		if (!program_usable())
		{
			set_state(WORKER_WAITING);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 MAX_IDLE_SLEEP_MS, PG_WAIT_EXTENSION);
			continue;
		}
		set_state(WORKER_IDLE);
		clear_woken();
		if (jobs_claim(holder, &job, &next_claim_at))
		{
			run_job(&job);
			continue;
		}
		if (jobs_extension_gone)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 idle_sleep_ms(next_claim_at), PG_WAIT_EXTENSION);
	}

	if (jobs_extension_gone)
	{
		SpinLockAcquire(&vproxy_state->mutex);
		vproxy_state->extension_missing = true;
		SpinLockRelease(&vproxy_state->mutex);
	}
	set_state(WORKER_STOPPING);
	proc_exit(0);
}
