/*
 * run.c
 *		One job's run as a state machine the caller drives: it waits (on its
 *		latch, or in poll()) for at most sup_run_wait_ms(), pumps the child,
 *		sends the heartbeats that come due and calls sup_run_advance() until
 *		the run has finished; then sup_run_outcome() says, by the failure
 *		policy, what the database is to be told.  A child that has already
 *		exited is never stopped: its result counts.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>

#include "supervise.h"

/* after the child's exit, how long a grandchild may hold its pipes open */
#define PIPES_AFTER_EXIT_MS 1000

/* Milliseconds of the monotonic clock. */
int64_t
sup_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Start a run; timeout_seconds <= 0 means none. */
bool
sup_run_start(SupRun *run, const char *program, const char *input, size_t input_len,
			  int timeout_seconds)
{
	int64_t		now = sup_now_ms();

	memset(run, 0, sizeof(*run));
	run->started_ms = now;
	run->last_heartbeat_ms = now;
	run->timeout_seconds = timeout_seconds;
	run->deadline_ms = timeout_seconds > 0 ? now + (int64_t) timeout_seconds * 1000 : 0;
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

/* The caller has sent the heartbeat; lease_held false stops the run. */
void
sup_run_heartbeat_sent(SupRun *run, int64_t now_ms, bool lease_held)
{
	run->last_heartbeat_ms = now_ms;
	run->heartbeat_asked = false;
	if (!lease_held)
		sup_run_stop(run, SUP_STOP_LEASE_LOST);
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
		run->exited_at_ms = now_ms;
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
	if (!run->terminating && run->deadline_ms != 0 && run->deadline_ms - now_ms < wait)
		wait = run->deadline_ms - now_ms;
	else if (run->terminating && !run->killed && run->kill_at_ms - now_ms < wait)
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

/*
 * What an exit status means by the failure policy: 64 (bad spec), 65 (bad
 * media or checksum mismatch), 66 (original missing) and 77 (storage
 * refused) fail at once; 75 (transient), 70 (internal: out of memory, a
 * library assertion) and anything unknown are retried.
 */
bool
sup_exit_status_retryable(int code)
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

/* The error code of an exit status. */
const char *
sup_exit_status_error_code(int code)
{
	switch (code)
	{
		case EX_DATAERR:
			return "bad_media";
		case EX_NOINPUT:
			return "missing_original";
		case EX_TEMPFAIL:
			return "storage_unavailable";
		case EX_NOPERM:
			return "storage_refused";
		default:
			return "internal";
	}
}

/* What a finished run comes to, by the failure policy. */
void
sup_run_outcome(const SupRun *run, SupOutcome *outcome)
{
	const SupChild *child = &run->child;
	int			status = child->wait_status;
	char		line_buffer[SUP_STDERR_TAIL + 1];
	const char *last_line = sup_child_last_error_line(child, line_buffer, sizeof(line_buffer));

	outcome->message[0] = '\0';
	snprintf(outcome->error_code, sizeof(outcome->error_code), "internal");
	if (child->exited && WIFEXITED(status) && WEXITSTATUS(status) == 0)
	{
		outcome->verdict = SUP_SUCCEEDED;
		if (child->output_len == 0 || child->output_too_long)
		{
			outcome->verdict = SUP_RETRY;
			snprintf(outcome->message, sizeof(outcome->message), "%s",
					 child->output_len == 0 ?
					 "vproxy-transcode succeeded but printed no result" :
					 "vproxy-transcode printed a result over 1 MB");
		}
		else
			outcome->error_code[0] = '\0';
	}
	else if (run->stop == SUP_STOP_LEASE_LOST)
		outcome->verdict = SUP_ABANDON;
	else if (run->stop == SUP_STOP_SHUTDOWN)
		outcome->verdict = SUP_HAND_BACK;
	else if (run->stop == SUP_STOP_TIMEOUT)
	{
		outcome->verdict = SUP_RETRY;
		snprintf(outcome->error_code, sizeof(outcome->error_code), "timeout");
		snprintf(outcome->message, sizeof(outcome->message),
				 "timed out after %d s (vproxy.job_timeout)", run->timeout_seconds);
	}
	else if (child->exited && WIFEXITED(status))
	{
		outcome->verdict = sup_exit_status_retryable(WEXITSTATUS(status)) ? SUP_RETRY : SUP_FAIL;
		snprintf(outcome->error_code, sizeof(outcome->error_code), "%s",
				 sup_exit_status_error_code(WEXITSTATUS(status)));
		if (last_line[0])
			snprintf(outcome->message, sizeof(outcome->message), "%s", last_line);
		else
			snprintf(outcome->message, sizeof(outcome->message),
					 "vproxy-transcode exited with status %d", WEXITSTATUS(status));
	}
	else if (child->exited && WIFSIGNALED(status))
	{
		outcome->verdict = SUP_RETRY;
		snprintf(outcome->error_code, sizeof(outcome->error_code), "crashed");
		snprintf(outcome->message, sizeof(outcome->message),
				 "vproxy-transcode was killed by signal %d (%s)%s%s",
				 WTERMSIG(status), strsignal(WTERMSIG(status)),
				 last_line[0] ? "; last message: " : "", last_line);
	}
	else
	{
		outcome->verdict = SUP_RETRY;
		snprintf(outcome->message, sizeof(outcome->message),
				 "vproxy-transcode ended in an unknown way");
	}
}
