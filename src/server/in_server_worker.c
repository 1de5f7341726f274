/*
 * in_server_worker.c
 *		A vproxy worker: a dynamic background worker connected to
 *		vproxy.database that claims jobs, runs `vproxy-transcode job` for each
 *		under supervision (heartbeat, progress, lease fence, timeout, cancel,
 *		shutdown) and records the outcome by the failure policy.  Idle, it
 *		sleeps on its latch until a commit wakes it or a delayed job becomes
 *		due, and shows "idle" in pg_stat_activity meanwhile.
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

#include "jobs.h"
#include "settings.h"
#include "state.h"
#include "wakeup.h"
#include "supervise/supervise.h"

PGDLLEXPORT void vproxy_worker_main(Datum main_arg);

/* longest sleep of an idle worker, in case a wake-up was lost */
#define MAX_IDLE_SLEEP_MS 60000
/* longest wait for a lock the application holds, shorter than any lease */
#define WORKER_LOCK_TIMEOUT_MS 5000

static volatile sig_atomic_t got_sigterm = false;
static WorkerSlot *my_slot = NULL;
static int	my_number;
static SupChild *current_child = NULL;
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
	if (current_child != NULL)
		sup_child_stop_now(current_child, SUP_GRACE_MS);
}

/* SIGCHLD handler: wake the worker so that it reaps its child. */
static void
handle_sigchld(SIGNAL_ARGS)
{
	int			save_errno = errno;

	SetLatch(MyLatch);
	errno = save_errno;
}

/* The longest wait of this worker's calls for a lock, in milliseconds. */
static void
set_lock_timeout(int64_t ms)
{
	char		value[32];

	snprintf(value, sizeof(value), "%lld", (long long) ms);
	SetConfigOption("lock_timeout", value, PGC_SUSET, PGC_S_OVERRIDE);
}

/* Wait up to timeout_ms for the child's pipes, the latch or the child's exit; then pump. */
static void
wait_for_child(SupChild *child, long timeout_ms)
{
	WaitEventSet *set;
	WaitEvent	events[6];
	SupWaitFd	fds[4];
	int			nfds = sup_child_wait_fds(child, fds);

	set = CreateWaitEventSet(CurrentMemoryContext, 6);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	for (int i = 0; i < nfds; i++)
		AddWaitEventToSet(set, fds[i].for_write ? WL_SOCKET_WRITEABLE : WL_SOCKET_READABLE,
						  fds[i].fd, NULL, NULL);
	(void) WaitEventSetWait(set, timeout_ms, events, lengthof(events), PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);
	sup_child_pump(child);
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

/*
 * What the child reads on stdin (src/transcode/job-protocol.md): line 1,
 * the claim's spec as it came; line 2, this worker's local part, the
 * credentials (from the superuser-only settings, never from the tables),
 * the CA file, the temp directory, the limits the child bounds itself with
 * (the database comes first) and the first lease fence.
 */
static StringInfo
child_input(const ClaimedJob *job, int64_t fence_ms)
{
	StringInfo	input = makeStringInfo();

	appendStringInfo(input, "%s\n{\"credentials\": {\"access_key_id\": ", job->spec);
	escape_json(input, vproxy_s3_access_key_id);
	appendStringInfoString(input, ", \"secret_access_key\": ");
	escape_json(input, vproxy_s3_secret_access_key);
	appendStringInfoString(input, ", \"session_token\": ");
	escape_json(input, vproxy_s3_session_token);
	appendStringInfoString(input, "}, \"ca_file\": ");
	escape_json(input, vproxy_s3_ca_file);
	appendStringInfoString(input, ", \"temp_directory\": ");
	escape_json(input, vproxy_temp_directory);
	appendStringInfo(input, ", \"limits\": {\"nice\": %d, \"threads\": %d, \"memory_limit_bytes\": " INT64_FORMAT
					 ", \"yield_to_postmaster\": %d, \"yield_db_cpu\": %d}, \"lease_until_ms\": " INT64_FORMAT "}\n",
					 vproxy_child_nice, vproxy_transcode_threads,
					 (int64) vproxy_child_memory_limit * 1024 * 1024,
					 (int) PostmasterPid, vproxy_child_yield_db_cpu, (int64) fence_ms);
	return input;
}

/* Show the job in the slot and in pg_stat_activity. */
static void
report_job(const ClaimedJob *job, SupChild *child)
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

/* Log what became of a failed attempt the database took. */
static void
log_failure(const ClaimedJob *job, const char *status, const char *cause)
{
	if (strcmp(status, "pending") == 0)
		ereport(LOG, (errmsg("vproxy: job %s attempt %d failed, will retry: %s",
							 job->job_id_text, job->attempt, cause)));
	else
		ereport(LOG, (errmsg("vproxy: job %s failed after %d attempt(s): %s",
							 job->job_id_text, job->attempt, cause)));
}

/*
 * Record a failed attempt and say in the log what becomes of the job (a
 * message the database refuses is replaced by SUP_REFUSED_MESSAGE in
 * jobs_fail).  A worker told to stop while the database was in the way
 * hands the job back.
 */
static void
record_failure(const ClaimedJob *job, const SupOutcome *outcome)
{
	char	   *status = NULL;
	char	   *error = NULL;
	const char *job_text = job->job_id_text;

	switch (jobs_fail(job, outcome->error_code, outcome->message, outcome->verdict != SUP_FAIL,
					  &status, &error))
	{
		case CALL_DONE:
			log_failure(job, status, outcome->message);
			break;
		case CALL_LEASE_LOST:
			ereport(LOG, (errmsg("vproxy: job %s lost its lease; the failure \"%s\" was not recorded",
								 job_text, outcome->message)));
			break;
		default:
			if (got_sigterm && jobs_release(job))
				ereport(LOG, (errmsg("vproxy: job %s handed back on shutdown, attempt not counted "
									 "(its failure could not be recorded: %s)", job_text, error)));
			break;
	}
}

/* Record a failure the worker itself found (not the child's): the outcome it makes. */
static void
record_worker_failure(const ClaimedJob *job, const char *cause, bool retryable)
{
	SupOutcome	outcome;

	memset(&outcome, 0, sizeof(outcome));
	outcome.verdict = retryable ? SUP_RETRY : SUP_FAIL;
	strlcpy(outcome.error_code, "internal", sizeof(outcome.error_code));
	strlcpy(outcome.message, cause, sizeof(outcome.message));
	record_failure(job, &outcome);
}

/*
 * Record the child's result.  A result that does not fit the tables (a
 * data error) fails the job at once; while the database fails for a reason
 * that passes (a lock the application holds, a deadlock, a cancel), the
 * result is offered again, keeping the lease (jobs.c).
 */
static void
record_result(const ClaimedJob *job, SupChild *child, double seconds)
{
	char	   *error = NULL;
	CallOutcome outcome = jobs_finish(job, child->output, &error);

	switch (outcome)
	{
		case CALL_DONE:
			ereport(LOG, (errmsg("vproxy: job %s (%s) of video %s completed in %.1f s, attempt %d "
								 "(child: %.1f s CPU, %ld MB peak memory)",
								 job->job_id_text, job->job_type, job->video_id_text, seconds,
								 job->attempt,
								 sup_child_cpu_seconds(child),
								 child->usage.ru_maxrss / 1024)));
			break;
		case CALL_LEASE_LOST:
			ereport(LOG, (errmsg("vproxy: job %s lost its lease; its result was not recorded",
								 job->job_id_text)));
			break;
		case CALL_BAD_DATA:
			record_worker_failure(job, psprintf("cannot record the result: %s", error), false);
			break;
		case CALL_FAILED:
			if (!got_sigterm)
				record_worker_failure(job, psprintf("cannot record the result: %s", error), true);
			else if (jobs_release(job))
				ereport(LOG, (errmsg("vproxy: job %s handed back on shutdown, attempt not counted "
									 "(its result could not be recorded: %s)", job->job_id_text, error)));
			break;
	}
}

/*
 * Extend the lease and store progress; the lease granted moves the fence.
 * The send time is noted before the call's transaction starts: the
 * database counts the lease from a later instant.  The call waits for a
 * lock (the application's, on the job's row) until the fence at most: the
 * child is stopped on time however long the lock is held.
 */
static void
heartbeat(ClaimedJob *job, SupRun *run)
{
	int64_t		sent = lease_clock_ms();
	double		lease_seconds = 0;
	char	   *error;
	CallOutcome call;
	SupLease	lease;

	if (run->fence_ms != 0 && run->fence_ms - sent < WORKER_LOCK_TIMEOUT_MS)
		set_lock_timeout(Max(run->fence_ms - sent, 1));
	call = jobs_heartbeat(job, run->child.progress, &lease_seconds, &error);
	set_lock_timeout(WORKER_LOCK_TIMEOUT_MS);
	lease = call == CALL_DONE ? SUP_LEASE_RENEWED :
		call == CALL_LEASE_LOST ? SUP_LEASE_LOST : SUP_LEASE_UNKNOWN;

	if (lease == SUP_LEASE_UNKNOWN)
		ereport(LOG, (errmsg("vproxy: job %s: heartbeat failed, trying again: %s",
							 job->job_id_text, error)));
	sup_run_heartbeat_done(run, sent, lease_clock_ms(), lease, lease_seconds);
	report_job(job, &run->child);
}

/*
 * Run one claimed job to its end and record the outcome.  claim_sent is
 * when the claim was sent: its lease sets the first fence.
 */
static void
run_job(ClaimedJob *job, int64_t claim_sent)
{
	int64_t		fence = sup_lease_fence_ms(claim_sent, job->lease_seconds);
	StringInfo	input = child_input(job, fence);
	const char *program = transcode_program();
	SupRun		run;
	SupOutcome	outcome;

	enter_job(job);
	ereport(LOG, (errmsg("vproxy: job %s (%s) of video %s started, attempt %d",
						 job->job_id_text, job->job_type,
						 job->video_id_text, job->attempt)));
	if (!sup_run_start(&run, program, input->data, input->len, (int) job->timeout_seconds, fence))
	{
		record_worker_failure(job, psprintf("cannot start %s: %m", program), true);
		return;
	}
	current_child = &run.child;

	for (;;)
	{
		int64_t		now;

		ResetLatch(MyLatch);
		reload_if_asked();
		if (got_sigterm)
			sup_run_stop(&run, SUP_STOP_SHUTDOWN);
		if (lease_check_asked())
			sup_run_ask_heartbeat(&run);
		if (sup_run_heartbeat_due(&run, lease_clock_ms()))
			heartbeat(job, &run);
		now = lease_clock_ms();
		if (sup_run_advance(&run, now))
			break;
		wait_for_child(&run.child, sup_run_wait_ms(&run, now));
	}
	current_child = NULL;

	if (!jobs_extension_gone)
	{
		sup_run_outcome(&run, &outcome);
		switch (outcome.verdict)
		{
			case SUP_SUCCEEDED:
				record_result(job, &run.child, sup_run_seconds(&run, lease_clock_ms()));
				break;
			case SUP_RETRY:
			case SUP_FAIL:
				record_failure(job, &outcome);
				break;
			case SUP_ABANDON:
				if (run.stop == SUP_STOP_LEASE_EXPIRED)
					ereport(LOG, (errmsg("vproxy: job %s: its lease was not renewed in time; its child was stopped and nothing is recorded",
										 job->job_id_text)));
				else
					ereport(LOG, (errmsg("vproxy: job %s was cancelled or taken over; its child was stopped",
										 job->job_id_text)));
				break;
			case SUP_HAND_BACK:
				if (jobs_release(job))
					ereport(LOG, (errmsg("vproxy: job %s handed back on shutdown, attempt not counted",
										 job->job_id_text)));
				break;
		}
	}
	sup_child_free(&run.child);
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
	set_lock_timeout(WORKER_LOCK_TIMEOUT_MS);
}

/* Entry point of a worker; main_arg is its slot number. */
void
vproxy_worker_main(Datum main_arg)
{
	MemoryContext loop_context;

	pqsignal(SIGTERM, handle_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGCHLD, handle_sigchld);
	BackgroundWorkerUnblockSignals();
	if (!attach_to_slot(DatumGetInt32(main_arg)))
		proc_exit(0);

	jobs_connect(vproxy_database);
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
		int64_t		claim_sent;

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
			pgstat_report_activity(STATE_IDLE, NULL);
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 MAX_IDLE_SLEEP_MS, PG_WAIT_EXTENSION);
			continue;
		}
		set_state(WORKER_IDLE);
		clear_woken();
		claim_sent = lease_clock_ms();
		pgstat_report_activity(STATE_RUNNING, "vproxy: looking for a job");
		if (jobs_claim(holder, &job, &next_claim_at))
		{
			run_job(&job, claim_sent);
			continue;
		}
		if (jobs_extension_gone)
			break;
		/* pg_stat_activity shows an idle worker as idle */
		pgstat_report_activity(STATE_IDLE, NULL);
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
