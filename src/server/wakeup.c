/*
 * wakeup.c
 *		Wake-ups at commit, as pg_net does: the SQL functions only note what
 *		to wake; the transaction callback sets the latches once the commit is
 *		visible, and a rollback forgets it all.  A prepared transaction
 *		commits in another command (COMMIT PREPARED, maybe in another
 *		session, after a restart): the module's ProcessUtility hook
 *		(guard.c) wakes the workers once that command has committed.
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "utils/uuid.h"

#include "state.h"
#include "wakeup.h"

/* jobs whose cancellation one transaction can announce by name */
#define MAX_JOBS_TO_CHECK 64

static int	idle_workers_wanted = 0;
static pg_uuid_t jobs_to_check[MAX_JOBS_TO_CHECK];
static int	njobs_to_check = 0;
static bool check_all_jobs = false;
static bool launcher_wanted = false;
static bool all_workers_wanted = false;


PG_FUNCTION_INFO_V1(vproxy_wake_workers_at_commit);
PG_FUNCTION_INFO_V1(vproxy_wake_launcher_at_commit);

/* Whether job is one of those this transaction cancelled. */
static bool
job_to_check(const pg_uuid_t *job)
{
	if (check_all_jobs)
		return true;
	for (int i = 0; i < njobs_to_check; i++)
		if (memcmp(jobs_to_check[i].data, job->data, UUID_LEN) == 0)
			return true;
	return false;
}

/* Set the latches the committed transaction asked for. */
static void
send_wakeups(void)
{
	Latch	   *latches[64];
	int			nlatches = 0;
	int			idle_left = idle_workers_wanted;

	if (vproxy_state == NULL)
		return;
	SpinLockAcquire(&vproxy_state->mutex);
	for (int i = 0; i < vproxy_state->nslots && nlatches < (int) lengthof(latches); i++)
	{
		WorkerSlot *slot = &vproxy_state->slots[i];

		if (slot->latch == NULL)
			continue;
		if (all_workers_wanted)
		{
			slot->check_lease = true;
			latches[nlatches++] = slot->latch;
		}
		else if (slot->state == WORKER_IDLE && !slot->woken && idle_left > 0)
		{
			slot->woken = true;
			idle_left--;
			latches[nlatches++] = slot->latch;
		}
		else if (slot->state == WORKER_RUNNING && slot->has_job &&
				 (njobs_to_check > 0 || check_all_jobs) && job_to_check(&slot->job_id))
		{
			slot->check_lease = true;
			latches[nlatches++] = slot->latch;
		}
	}
	SpinLockRelease(&vproxy_state->mutex);
	for (int i = 0; i < nlatches; i++)
		SetLatch(latches[i]);
	if (launcher_wanted)
		request_launcher_recheck();
}

/* Wake one idle worker that no one has woken yet, if there is one. */
void
wake_idle_worker(void)
{
	Latch	   *latch = NULL;

	SpinLockAcquire(&vproxy_state->mutex);
	for (int i = 0; i < vproxy_state->nslots && latch == NULL; i++)
	{
		WorkerSlot *slot = &vproxy_state->slots[i];

		if (slot->latch != NULL && slot->state == WORKER_IDLE && !slot->woken)
		{
			slot->woken = true;
			latch = slot->latch;
		}
	}
	SpinLockRelease(&vproxy_state->mutex);
	if (latch)
		SetLatch(latch);
}

/* Transaction callback: wake at commit, forget at the end either way. */
static void
at_transaction_end(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			if (idle_workers_wanted > 0 || njobs_to_check > 0 || check_all_jobs ||
				launcher_wanted || all_workers_wanted)
				send_wakeups();
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			idle_workers_wanted = 0;
			njobs_to_check = 0;
			check_all_jobs = false;
			launcher_wanted = false;
			all_workers_wanted = false;
			break;
		default:
			break;
	}
}

/*
 * Wake every worker now, after COMMIT PREPARED.  What the prepared
 * transaction asked for was forgotten at PREPARE (this session may not be
 * the one that commits it): the idle workers claim, the busy ones check
 * their lease (a vproxy_cancel() may have been prepared).  A wake-up for a
 * prepared transaction that queued nothing costs one empty claim.
 */
void
wake_all_workers_after_commit_prepared(void)
{
	all_workers_wanted = true;
	send_wakeups();
	all_workers_wanted = false;
}

/* Register the transaction callback that sends the wake-ups. */
void
install_wakeup_callback(void)
{
	RegisterXactCallback(at_transaction_end, NULL);
}

/* At commit, wake the launcher. */
void
wake_launcher_at_commit(void)
{
	launcher_wanted = true;
}

/* At commit, wake every worker to look at the extension and its lease. */
void
wake_all_workers_at_commit(void)
{
	all_workers_wanted = true;
}

/*
 * wake_workers_at_commit(job_id uuid): with NULL, one more idle worker is
 * woken at commit to claim; with a job, the worker running it re-checks its
 * lease at once (the job was cancelled).
 */
Datum
vproxy_wake_workers_at_commit(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		idle_workers_wanted++;
	else if (njobs_to_check < MAX_JOBS_TO_CHECK)
		jobs_to_check[njobs_to_check++] = *PG_GETARG_UUID_P(0);
	else
		check_all_jobs = true;
	PG_RETURN_VOID();
}

/* wake_launcher_at_commit(): the launcher looks again at commit. */
Datum
vproxy_wake_launcher_at_commit(PG_FUNCTION_ARGS)
{
	wake_launcher_at_commit();
	PG_RETURN_VOID();
}
