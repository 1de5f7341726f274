/*
 * supervise.h
 *		Running `vproxy-transcode job` under supervision, for both worker
 *		kinds (the background workers inside PostgreSQL and vproxy-worker
 *		over libpq).  Plain POSIX: no PostgreSQL header, no libpq.  The
 *		caller owns the waiting (a WaitEventSet on its latch, or poll()) over
 *		the descriptors this room names, and the database calls; this room
 *		owns the child (spawn, pipes, signals, reaping), the run of one job
 *		(heartbeat due, deadline, lease fence, stop with SIGTERM then
 *		SIGKILL) and the failure policy: what an exit status and the child's
 *		"error <code>" line mean for the job.
 */
#ifndef VPROXY_SUPERVISE_H
#define VPROXY_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "common/lease_clock.h"

/* the last bytes of stderr kept for the error message */
#define SUP_STDERR_TAIL 4096
/* stdout is one JSON object; more than this is a broken child */
#define SUP_STDOUT_MAX (1024 * 1024)
/* after SIGTERM, how long the child has to clean up before SIGKILL */
#define SUP_GRACE_MS 5000
/* heartbeat (lease and progress) period */
#define SUP_HEARTBEAT_MS 1000
/*
 * The lease fence: a run whose lease was last granted for L seconds by a
 * call sent at t0 stops writing at t0 + L - margin, margin = max(L / 4,
 * SUP_GRACE_MS + SUP_FENCE_SLACK_MS).  The database counts the lease from
 * its transaction's start, after t0; so a child stopped at the fence with
 * the full SIGTERM grace is killed SUP_FENCE_SLACK_MS (or more) before the
 * database's lease ends: the slack covers a late wake-up of the supervisor,
 * a request in flight when the kill comes and the clocks' rate skew.
 */
#define SUP_FENCE_SLACK_MS 2000
/* longest error code, NUL included */
#define SUP_ERROR_CODE_MAX 32
/*
 * What a worker records instead of a failure's message the database
 * refuses (an application's trigger, an encoding that cannot hold it): the
 * job must not stay running for its words.
 */
#define SUP_REFUSED_MESSAGE "the error message could not be stored"

/* One run of `PROGRAM job --progress-fd 3`, its pipes and what it said. */
typedef struct SupChild
{
	pid_t		pid;
	int			stdin_fd;		/* our ends; -1 once closed */
	int			stdout_fd;
	int			stderr_fd;
	int			progress_fd;
	const char *input;			/* the job's first lines, written to stdin */
	size_t		input_len;
	size_t		input_sent;
	char		lease_line[64];	/* {"lease_until_ms": N}, not yet written */
	size_t		lease_line_len;
	char	   *output;			/* stdout, NUL-terminated (malloc'd) */
	size_t		output_len;
	size_t		output_cap;
	bool		output_too_long;
	char		stderr_tail[SUP_STDERR_TAIL + 1];
	size_t		stderr_len;
	char		partial_line[256];	/* progress line being read */
	size_t		partial_len;
	double		progress;		/* last progress line */
	char		stage[32];
	char		error_code[SUP_ERROR_CODE_MAX];	/* from "error <code>" (unchecked), or "" */
	bool		exited;
	int			wait_status;	/* from waitpid, once exited */
	struct rusage usage;		/* the child's resources, once exited */
} SupChild;

/* A descriptor to wait on, and for what. */
typedef struct SupWaitFd
{
	int			fd;
	bool		for_write;		/* else for reading */
} SupWaitFd;

/*
 * Start program with "job --progress-fd 3", input (its first lines, each
 * ending in a newline) on its stdin; false and errno on failure.  The stdin
 * stays open for the lease lines until the child ends.
 */
extern bool sup_child_start(SupChild *child, const char *program, const char *input, size_t input_len);

/* Queue the line {"lease_until_ms": N} for the child's stdin, replacing one not yet written. */
extern void sup_child_send_lease(SupChild *child, int64_t fence_ms);

/* The child's open pipes to wait on (at most 4); their number. */
extern int	sup_child_wait_fds(const SupChild *child, SupWaitFd fds[4]);

/* Write and read what the pipes take and have, without blocking; reap the child if it exited. */
extern void sup_child_pump(SupChild *child);

/* Signal the child's whole process group. */
extern void sup_child_signal(SupChild *child, int signo);

/* Whether the child has exited and every pipe is closed. */
extern bool sup_child_done(const SupChild *child);

/* Close what is left of the pipes (the child is gone). */
extern void sup_child_close_pipes(SupChild *child);

/* Stop the child now, blocking: SIGTERM, up to grace_ms, then SIGKILL; reaped. For exit paths. */
extern void sup_child_stop_now(SupChild *child, int grace_ms);

/* Free the child's output buffer and close its pipes. */
extern void sup_child_free(SupChild *child);

/* The last line the child wrote on stderr, without the program's prefix; "" if none. */
extern const char *sup_child_last_error_line(const SupChild *child, char *buffer, size_t size);

/* CPU seconds (user + system) the exited child used. */
extern double sup_child_cpu_seconds(const SupChild *child);

/* Why a run is being stopped before its child ends by itself. */
typedef enum SupStop
{
	SUP_STOP_NONE,
	SUP_STOP_SHUTDOWN,			/* the worker is leaving: hand the job back */
	SUP_STOP_LEASE_LOST,		/* cancelled or taken over: write nothing */
	SUP_STOP_LEASE_EXPIRED,		/* the fence passed without a renewal: write nothing */
	SUP_STOP_TIMEOUT			/* the job timeout passed: a retryable failure */
} SupStop;

/* What a heartbeat call came to. */
typedef enum SupLease
{
	SUP_LEASE_RENEWED,			/* granted for the seconds given, from the call */
	SUP_LEASE_LOST,				/* cancelled or taken over */
	SUP_LEASE_UNKNOWN			/* the call failed or was not made: the fence stays */
} SupLease;

/* One job's run: the child and the clock around it (milliseconds, monotonic). */
typedef struct SupRun
{
	SupChild	child;
	int64_t		started_ms;
	int64_t		deadline_ms;	/* 0: no timeout */
	int64_t		fence_ms;		/* 0: no lease fence */
	int64_t		last_heartbeat_ms;
	int64_t		kill_at_ms;
	int64_t		exited_at_ms;
	int			timeout_seconds;
	bool		heartbeat_asked;
	bool		terminating;	/* SIGTERM sent */
	bool		killed;			/* SIGKILL sent */
	SupStop		stop;
	bool		finished;
} SupRun;

/* The margin of the lease fence for a lease of lease_seconds (see SUP_FENCE_SLACK_MS). */
extern int64_t sup_lease_margin_ms(double lease_seconds);

/* The fence of a lease granted for lease_seconds by a call sent at sent_ms. */
extern int64_t sup_lease_fence_ms(int64_t sent_ms, double lease_seconds);

/*
 * Start a run: the child with input (its first lines: the spec and the
 * local part, which carries fence_ms as "lease_until_ms") on its stdin;
 * fence_ms 0 means no fence, timeout_seconds <= 0 no timeout.  False and
 * errno if the child could not start.
 */
extern bool sup_run_start(SupRun *run, const char *program, const char *input, size_t input_len,
						  int timeout_seconds, int64_t fence_ms);

/* Whether a heartbeat is due (every SUP_HEARTBEAT_MS, or asked); never while stopping. */
extern bool sup_run_heartbeat_due(const SupRun *run, int64_t now_ms);

/*
 * The heartbeat sent at sent_ms has come back at now_ms: renewed for
 * lease_seconds (the fence moves and the child is told), lost (the run
 * stops), or unknown (the fence stays where it was).
 */
extern void sup_run_heartbeat_done(SupRun *run, int64_t sent_ms, int64_t now_ms,
								   SupLease lease, double lease_seconds);

/* Ask for a heartbeat at once (a canceller may have taken the lease). */
extern void sup_run_ask_heartbeat(SupRun *run);

/* Stop the run for this reason; a child that has already exited is left to count. */
extern void sup_run_stop(SupRun *run, SupStop why);

/* Move the run on (deadline, fence, SIGTERM, SIGKILL, end); true once it has finished. */
extern bool sup_run_advance(SupRun *run, int64_t now_ms);

/* How long the caller may wait (for the child's pipes or its own events) before the next advance. */
extern int	sup_run_wait_ms(const SupRun *run, int64_t now_ms);

/* Seconds since the run started. */
extern double sup_run_seconds(const SupRun *run, int64_t now_ms);

/* What a finished run means for the job. */
typedef enum SupVerdict
{
	SUP_SUCCEEDED,				/* record the output with finish_job */
	SUP_RETRY,					/* fail_job, retryable */
	SUP_FAIL,					/* fail_job, not retryable */
	SUP_HAND_BACK,				/* release_job: the attempt does not count */
	SUP_ABANDON					/* the lease is lost: write nothing */
} SupVerdict;

typedef struct SupOutcome
{
	SupVerdict	verdict;
	char		error_code[SUP_ERROR_CODE_MAX]; /* for RETRY and FAIL: fail_job's code */
	char		message[SUP_STDERR_TAIL + 256]; /* why, for RETRY and FAIL: valid UTF-8 */
} SupOutcome;

/*
 * The failure policy (outcome.c): 64 (bad spec), 65 (bad media or checksum
 * mismatch), 66 (original missing) and 77 (storage refused) fail at once;
 * 75 (transient), 70 (internal) and anything else are retried.
 */
extern bool sup_exit_status_retryable(int code);

/*
 * The error code of an exit status when the child named none: 64 and 70
 * internal, 65 bad_media, 66 missing_original, 75 storage_unavailable, 77
 * storage_refused, anything else internal.
 */
extern const char *sup_error_code_of_exit(int code);

/* What a finished run comes to, by the failure policy. */
extern void sup_run_outcome(const SupRun *run, SupOutcome *outcome);

#endif							/* VPROXY_SUPERVISE_H */
