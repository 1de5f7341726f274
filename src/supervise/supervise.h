/*
 * supervise.h
 *		Running `vproxy-transcode job` under supervision, for both worker
 *		kinds (the background workers inside PostgreSQL and vproxy-worker
 *		over libpq).  Plain POSIX: no PostgreSQL header, no libpq.  The
 *		caller owns the waiting (a WaitEventSet on its latch, or poll()) over
 *		the descriptors this room names, and the database calls; this room
 *		owns the child (spawn, pipes, signals, reaping), the run of one job
 *		(heartbeat due, deadline, stop with SIGTERM then SIGKILL) and the
 *		failure policy by exit status.
 */
#ifndef VPROXY_SUPERVISE_H
#define VPROXY_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

/* the last bytes of stderr kept for the error message */
#define SUP_STDERR_TAIL 4096
/* stdout is one JSON object; more than this is a broken child */
#define SUP_STDOUT_MAX (1024 * 1024)
/* after SIGTERM, how long the child has to clean up before SIGKILL */
#define SUP_GRACE_MS 5000
/* heartbeat (lease and progress) period */
#define SUP_HEARTBEAT_MS 1000

/* One run of `PROGRAM job --progress-fd 3`, its pipes and what it said. */
typedef struct SupChild
{
	pid_t		pid;
	int			stdin_fd;		/* our ends; -1 once closed */
	int			stdout_fd;
	int			stderr_fd;
	int			progress_fd;
	const char *input;			/* the job spec, written to stdin */
	size_t		input_len;
	size_t		input_sent;
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

/* Start program with "job --progress-fd 3", input on its stdin; false and errno on failure. */
extern bool sup_child_start(SupChild *child, const char *program, const char *input, size_t input_len);

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
	SUP_STOP_TIMEOUT			/* the job timeout passed: a retryable failure */
} SupStop;

/* One job's run: the child and the clock around it (milliseconds, monotonic). */
typedef struct SupRun
{
	SupChild	child;
	int64_t		started_ms;
	int64_t		deadline_ms;	/* 0: no timeout */
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

/* Milliseconds of the monotonic clock. */
extern int64_t sup_now_ms(void);

/* Start a run; timeout_seconds <= 0 means none.  False and errno if the child could not start. */
extern bool sup_run_start(SupRun *run, const char *program, const char *input, size_t input_len,
						  int timeout_seconds);

/* Whether a heartbeat is due (every SUP_HEARTBEAT_MS, or asked); never while stopping. */
extern bool sup_run_heartbeat_due(const SupRun *run, int64_t now_ms);

/* The caller has sent the heartbeat; lease_held false stops the run (lease lost). */
extern void sup_run_heartbeat_sent(SupRun *run, int64_t now_ms, bool lease_held);

/* Ask for a heartbeat at once (a canceller may have taken the lease). */
extern void sup_run_ask_heartbeat(SupRun *run);

/* Stop the run for this reason; a child that has already exited is left to count. */
extern void sup_run_stop(SupRun *run, SupStop why);

/* Move the run on (deadline, SIGTERM, SIGKILL, end); true once it has finished. */
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
	char		error_code[32]; /* processing_jobs.error_code, for RETRY and FAIL */
	char		message[SUP_STDERR_TAIL + 256]; /* why, for RETRY and FAIL */
} SupOutcome;

/*
 * The failure policy: 64 (bad spec), 65 (bad media or checksum mismatch),
 * 66 (original missing) and 77 (storage refused) fail at once; 75
 * (transient), 70 (internal) and anything else are retried.
 */
extern bool sup_exit_status_retryable(int code);

/*
 * The error code of an exit status: 64 and 70 internal, 65 bad_media, 66
 * missing_original, 75 storage_unavailable, 77 storage_refused, any other
 * internal.
 */
extern const char *sup_exit_status_error_code(int code);

/* What a finished run comes to, by the failure policy. */
extern void sup_run_outcome(const SupRun *run, SupOutcome *outcome);

#endif							/* VPROXY_SUPERVISE_H */
