/*
 * outcome.c
 *		The failure policy, once for both worker kinds: what a finished run
 *		means for its job (record the result, fail it with or without a
 *		retry, hand it back, or write nothing), with which error code of the
 *		closed set and which message.  The child names the code on its
 *		progress channel ("error <code>") just before a failing exit; without
 *		that line the exit status decides.  Messages are cut on character
 *		boundaries and made valid UTF-8, so that the database takes them.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>

#include "common/text_clip.h"
#include "supervise.h"

/* The codes a child may name: the causes it can see itself. */
static const char *const child_codes[] = {
	"bad_media", "checksum_mismatch", "missing_original", "storage_refused",
	"storage_unavailable", "no_temp_space", "out_of_memory", "internal",
};

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

/* The error code of an exit status when the child named none. */
const char *
sup_error_code_of_exit(int code)
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

/* Whether a child may name this code on its "error <code>" line. */
static bool
error_code_from_child(const char *code)
{
	for (size_t i = 0; i < sizeof(child_codes) / sizeof(child_codes[0]); i++)
		if (strcmp(code, child_codes[i]) == 0)
			return true;
	return false;
}

/* Set the verdict, the code and the message (made valid UTF-8, cut to fit). */
static void
set_outcome(SupOutcome *outcome, SupVerdict verdict, const char *code, const char *message)
{
	outcome->verdict = verdict;
	snprintf(outcome->error_code, sizeof(outcome->error_code), "%s", code);
	text_clip_copy(outcome->message, sizeof(outcome->message), message);
}

/* What a finished run comes to, by the failure policy. */
void
sup_run_outcome(const SupRun *run, SupOutcome *outcome)
{
	const SupChild *child = &run->child;
	int			status = child->wait_status;
	char		line_buffer[SUP_STDERR_TAIL + 1];
	const char *last_line = sup_child_last_error_line(child, line_buffer, sizeof(line_buffer));
	char		message[sizeof(outcome->message)];

	memset(outcome, 0, sizeof(*outcome));
	if (child->exited && WIFEXITED(status) && WEXITSTATUS(status) == 0)
	{
		if (child->output_len > 0 && !child->output_too_long)
			set_outcome(outcome, SUP_SUCCEEDED, "", "");
		else
			set_outcome(outcome, SUP_RETRY, "internal", child->output_len == 0 ?
						"vproxy-transcode succeeded but printed no result" :
						"vproxy-transcode printed a result over 1 MB");
	}
	else if (run->stop == SUP_STOP_LEASE_LOST || run->stop == SUP_STOP_LEASE_EXPIRED)
		set_outcome(outcome, SUP_ABANDON, "", "");
	else if (run->stop == SUP_STOP_SHUTDOWN)
		set_outcome(outcome, SUP_HAND_BACK, "", "");
	else if (run->stop == SUP_STOP_TIMEOUT)
	{
		snprintf(message, sizeof(message), "timed out after %d s (vproxy.job_timeout)",
				 run->timeout_seconds);
		set_outcome(outcome, SUP_RETRY, "timeout", message);
	}
	else if (child->exited && WIFEXITED(status))
	{
		int			code = WEXITSTATUS(status);

		if (last_line[0])
			snprintf(message, sizeof(message), "%s", last_line);
		else
			snprintf(message, sizeof(message), "vproxy-transcode exited with status %d", code);
		set_outcome(outcome, sup_exit_status_retryable(code) ? SUP_RETRY : SUP_FAIL,
					error_code_from_child(child->error_code) ?
					child->error_code : sup_error_code_of_exit(code),
					message);
	}
	else if (child->exited && WIFSIGNALED(status))
	{
		snprintf(message, sizeof(message), "vproxy-transcode was killed by signal %d (%s)%s%s",
				 WTERMSIG(status), strsignal(WTERMSIG(status)),
				 last_line[0] ? "; last message: " : "", last_line);
		set_outcome(outcome, SUP_RETRY, "crashed", message);
	}
	else
		set_outcome(outcome, SUP_RETRY, "internal", "vproxy-transcode ended in an unknown way");
}
