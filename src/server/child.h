/*
 * child.h
 *		One run of `vproxy-transcode job --progress-fd 3` under supervision:
 *		started in its own process group with pipes for stdin, stdout, stderr
 *		and progress, read without blocking into bounded buffers, stopped
 *		with SIGTERM then SIGKILL, reaped.
 */
#ifndef VPROXY_CHILD_H
#define VPROXY_CHILD_H

#include <sys/resource.h>

#include "lib/stringinfo.h"

/* the last bytes of stderr kept for the error message */
#define CHILD_STDERR_TAIL 4096
/* stdout is one JSON object; more than this is a broken child */
#define CHILD_STDOUT_MAX (1024 * 1024)

typedef struct Child
{
	pid_t		pid;
	int			stdin_fd;		/* our ends; -1 once closed */
	int			stdout_fd;
	int			stderr_fd;
	int			progress_fd;
	const char *input;			/* the job spec, written to stdin */
	size_t		input_len;
	size_t		input_sent;
	StringInfoData output;		/* stdout */
	bool		output_too_long;
	char		stderr_tail[CHILD_STDERR_TAIL + 1];
	size_t		stderr_len;
	char		partial_line[256];	/* progress line being read */
	size_t		partial_len;
	double		progress;		/* last progress line */
	char		stage[32];
	bool		exited;
	int			wait_status;	/* from waitpid, once exited */
	struct rusage usage;		/* the child's resources, once exited */
} Child;

/* Start program with "job --progress-fd 3", input on its stdin; false and errno on failure. */
extern bool child_start(Child *child, const char *program, const char *input, size_t input_len);

/* Wait up to timeout_ms for the child's pipes, the latch or its exit; then read and write what can be. */
extern void child_wait(Child *child, long timeout_ms);

/* Signal the child's whole process group. */
extern void child_signal(Child *child, int signo);

/* Whether the child has exited and every pipe is closed. */
extern bool child_done(Child *child);

/* Close what is left of the pipes (the child is gone). */
extern void child_close_pipes(Child *child);

/* The last line the child wrote on stderr, without the program's prefix; "" if none. */
extern const char *child_last_error_line(Child *child);

/* Call from a SIGCHLD handler: the latch wakes the waiting worker. */
extern void child_handle_sigchld(SIGNAL_ARGS);

#endif							/* VPROXY_CHILD_H */
