/*
 * run.c
 *		One job's run as a state machine the caller drives: it waits (on its
 *		latch, or in poll()) for at most sup_run_wait_ms(), pumps the child,
 *		sends the heartbeats that come due and calls sup_run_advance() until
 *		the run has finished; then sup_run_outcome() (outcome.c) says, by the
 *		failure policy, what the database is to be told.  A child that has
 *		already exited is never stopped: its result counts.
 *
 *		The lease fence: every renewal moves it (sup_lease_fence_ms) and is
 *		written to the child, which stops writing to the storage at the
 *		fence by itself; when the fence passes without a renewal the run is
 *		stopped here too (SIGTERM, SIGKILL SUP_GRACE_MS later, still before
 *		the database's lease ends) and comes to nothing: the lease is lost.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "supervise.h"

/* after the child's exit, how long a grandchild may hold its pipes open */
#define PIPES_AFTER_EXIT_MS 1000

/* The margin of the lease fence for a lease of lease_seconds. */
int64_t
sup_lease_margin_ms(double lease_seconds)
{
	int64_t		quarter = (int64_t) (lease_seconds * 1000.0 / 4.0);
	int64_t		least = SUP_GRACE_MS + SUP_FENCE_SLACK_MS;

	return quarter > least ? quarter : least;
}

/* The fence of a lease granted for lease_seconds by a call sent at sent_ms. */
int64_t
sup_lease_fence_ms(int64_t sent_ms, double lease_seconds)
{
	return sent_ms + (int64_t) (lease_seconds * 1000.0) - sup_lease_margin_ms(lease_seconds);
}

/* Start a run: the child and its first lines, which carry the first fence. */
bool
sup_run_start(SupRun *run, const char *program, const char *input, size_t input_len,
			  int timeout_seconds, int64_t fence_ms)
{
	int64_t		now = lease_clock_ms();

	memset(run, 0, sizeof(*run));
	run->started_ms = now;
	run->last_heartbeat_ms = now;
	run->timeout_seconds = timeout_seconds;
	run->deadline_ms = timeout_seconds > 0 ? now + (int64_t) timeout_seconds * 1000 : 0;
	run->fence_ms = fence_ms;
	return sup_child_start(&run->child, program, input, input_len);
}

/* Whether a heartbeat is due; never while stopping. */
bool
sup_run_heartbeat_due(const SupRun *run, int64_t now_ms)
{
	if (run->terminating || run->stop != SUP_STOP_NONE || run->finished)
		return false;
	return run->heartbeat_asked || now_ms >= run->last_heartbeat_ms + SUP_HEARTBEAT_MS;
}

/* The heartbeat sent at sent_ms came back at now_ms: renewed, lost or unknown. */
void
sup_run_heartbeat_done(SupRun *run, int64_t sent_ms, int64_t now_ms, SupLease lease,
					   double lease_seconds)
{
	run->last_heartbeat_ms = now_ms;
	run->heartbeat_asked = false;
	if (lease == SUP_LEASE_LOST)
		sup_run_stop(run, SUP_STOP_LEASE_LOST);
	else if (lease == SUP_LEASE_RENEWED && run->fence_ms != 0 && run->stop == SUP_STOP_NONE)
	{
		run->fence_ms = sup_lease_fence_ms(sent_ms, lease_seconds);
		sup_child_send_lease(&run->child, run->fence_ms);
	}
}

/* Ask for a heartbeat at once. */
void
sup_run_ask_heartbeat(SupRun *run)
{
	run->heartbeat_asked = true;
}

/* Stop the run for this reason; a child that has already exited is left to count. */
void
sup_run_stop(SupRun *run, SupStop why)
{
	if (run->terminating || run->stop != SUP_STOP_NONE)
		return;
	if (why == SUP_STOP_SHUTDOWN && run->child.exited)
		return;
	run->stop = why;
}

/* Move the run on; true once it has finished. */
bool
sup_run_advance(SupRun *run, int64_t now_ms)
{
	SupChild   *child = &run->child;

	if (run->finished)
		return true;
	if (run->stop == SUP_STOP_NONE && !child->exited && run->fence_ms != 0 &&
		now_ms >= run->fence_ms)
		run->stop = SUP_STOP_LEASE_EXPIRED;
	if (run->stop == SUP_STOP_NONE && !child->exited && run->deadline_ms != 0 &&
		now_ms >= run->deadline_ms)
		run->stop = SUP_STOP_TIMEOUT;
	if (!run->terminating && run->stop != SUP_STOP_NONE)
	{
		sup_child_signal(child, SIGTERM);
		run->terminating = true;
		run->kill_at_ms = now_ms + SUP_GRACE_MS;
	}
	if (run->terminating && !run->killed && now_ms >= run->kill_at_ms)
	{
		sup_child_signal(child, SIGKILL);
		run->killed = true;
	}
	if (child->exited && run->exited_at_ms == 0)
	{
		run->exited_at_ms = now_ms;
		/* a failure at or past the fence: the lease may be gone, it is not ours to tell */
		if (run->stop == SUP_STOP_NONE && run->fence_ms != 0 && now_ms >= run->fence_ms &&
			!(WIFEXITED(child->wait_status) && WEXITSTATUS(child->wait_status) == 0))
			run->stop = SUP_STOP_LEASE_EXPIRED;
	}
	if (sup_child_done(child))
		run->finished = true;
	else if (run->exited_at_ms != 0 && now_ms >= run->exited_at_ms + PIPES_AFTER_EXIT_MS)
	{
		/* a grandchild holds a pipe open: do not wait for it */
		sup_child_close_pipes(child);
		run->finished = true;
	}
	return run->finished;
}

/* How long the caller may wait before the next advance. */
int
sup_run_wait_ms(const SupRun *run, int64_t now_ms)
{
	int64_t		wait = run->last_heartbeat_ms + SUP_HEARTBEAT_MS - now_ms;

	if (run->heartbeat_asked)
		wait = 0;
	if (!run->terminating)
	{
		if (run->deadline_ms != 0 && run->deadline_ms - now_ms < wait)
			wait = run->deadline_ms - now_ms;
		if (run->fence_ms != 0 && run->fence_ms - now_ms < wait)
			wait = run->fence_ms - now_ms;
	}
	else if (!run->killed && run->kill_at_ms - now_ms < wait)
		wait = run->kill_at_ms - now_ms;
	if (run->exited_at_ms != 0 && wait > 100)
		wait = 100;
	return wait < 1 ? 1 : (int) wait;
}

/* Seconds since the run started. */
double
sup_run_seconds(const SupRun *run, int64_t now_ms)
{
	return (now_ms - run->started_ms) / 1000.0;
}
