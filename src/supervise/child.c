/*
 * child.c
 *		Start and feed `vproxy-transcode job`, read its pipes without blocking
 *		into bounded buffers, signal and reap it.  Its stdin stays open until
 *		it ends: after the job's first lines come the lease lines
 *		{"lease_until_ms": N}, the newest only when the pipe is full.  The
 *		child gets its own
 *		session, so its own process group (the postmaster signals the process
 *		groups of its children, and procsignal SIGUSR1s must not reach it;
 *		vproxy-worker's terminal's ^C must not either) and its own scheduler
 *		autogroup (as every backend has: children of one vproxy-worker must
 *		not share one CPU share where the in-server ones each have theirs),
 *		dies with its parent (PR_SET_PDEATHSIG), and inherits no descriptor
 *		but its four pipes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "supervise.h"

/* descriptors the pipes are parked on in the child before taking 0..3 */
#define PARKING_FD 10

/* Close every descriptor from 4 up: the child must not inherit the parent's files. */
static void
close_inherited_fds(void)
{
	long		max_fd;

#ifdef SYS_close_range
	if (syscall(SYS_close_range, 4U, ~0U, 0U) == 0)
		return;
#endif
	max_fd = sysconf(_SC_OPEN_MAX);
	for (long fd = 4; fd < (max_fd > 0 ? max_fd : 65536); fd++)
		close((int) fd);
}

/*
 * In the forked child: the parent's signal handlers (latch, shutdown flags)
 * must not run here, nor survive as "ignored" into the program: every
 * signal gets its default action (vproxy-transcode sets up its own).
 */
static void
reset_signal_handlers(void)
{
	struct sigaction default_action;

	memset(&default_action, 0, sizeof(default_action));
	default_action.sa_handler = SIG_DFL;
	sigemptyset(&default_action.sa_mask);
	for (int signo = 1; signo < NSIG; signo++)
		(void) sigaction(signo, &default_action, NULL);	/* SIGKILL, SIGSTOP: EINVAL */
}

/* Append text to a fixed buffer, truncating. */
static void
append_text(char *buffer, size_t size, const char *text)
{
	size_t		used = strlen(buffer);

	if (used + 1 < size)
		snprintf(buffer + used, size - used, "%s", text);
}

/*
 * In the forked child, with every signal blocked: wire the pipes to 0..3,
 * restore the default signal actions, unblock and exec; never returns.  A
 * signal sent meanwhile waits for the unblocking and then acts as it would
 * on the program.
 */
static void
exec_in_child(pid_t parent, const char *program, char *const argv[], const int ends[4])
{
	int			parked[4];
	sigset_t	no_signals;
	int			exec_errno;
	char		message[PATH_MAX + 256];
	ssize_t		written;

	reset_signal_handlers();
	if (setsid() < 0)
		(void) setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(75);				/* the parent died before we could watch it */

	/* park first: a pipe end may itself be one of 0..3 */
	for (int i = 0; i < 4; i++)
		if ((parked[i] = fcntl(ends[i], F_DUPFD_CLOEXEC, PARKING_FD)) < 0)
			_exit(71);
	for (int i = 0; i < 4; i++)
		if (dup2(parked[i], i) < 0)
			_exit(71);
	close_inherited_fds();

	sigemptyset(&no_signals);
	sigprocmask(SIG_SETMASK, &no_signals, NULL);

	execv(program, argv);
	exec_errno = errno;
	message[0] = '\0';
	append_text(message, sizeof(message), "vproxy-transcode: cannot execute ");
	append_text(message, sizeof(message), program);
	append_text(message, sizeof(message), ": ");
	append_text(message, sizeof(message), strerror(exec_errno));
	append_text(message, sizeof(message), "\n");
	written = write(2, message, strlen(message));
	(void) written;				/* nowhere else to say it */
	_exit(exec_errno == ENOENT ? 127 : 126);
}

/* Close a descriptor we own and mark it closed. */
static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Start program with "job --progress-fd 3", input (its first lines) on its stdin. */
bool
sup_child_start(SupChild *child, const char *program, const char *input, size_t input_len)
{
	int			pipes[4][2] = {{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}};
	int			child_ends[4];
	char	   *argv[] = {(char *) program, "job", "--progress-fd", "3", NULL};
	pid_t		parent = getpid();
	pid_t		pid;
	sigset_t	all_signals,
				parent_mask;
	int			fork_errno;
	int			saved_errno;

	memset(child, 0, sizeof(*child));
	child->pid = -1;
	child->stdin_fd = child->stdout_fd = child->stderr_fd = child->progress_fd = -1;
	child->input = input;
	child->input_len = input_len;
	child->output = malloc(1);
	if (child->output == NULL)
		return false;
	child->output[0] = '\0';
	child->output_cap = 1;

	for (int i = 0; i < 4; i++)
		if (pipe2(pipes[i], O_CLOEXEC) != 0)
			goto failed;
	/* the child reads stdin and writes the others */
	child_ends[0] = pipes[0][0];
	for (int i = 1; i < 4; i++)
		child_ends[i] = pipes[i][1];

	/*
	 * Block every signal across fork: the child must not run the parent's
	 * handlers, and a SIGTERM before its exec must not be lost.
	 */
	fflush(NULL);
	sigfillset(&all_signals);
	sigprocmask(SIG_SETMASK, &all_signals, &parent_mask);
	pid = fork();
	if (pid == 0)
		exec_in_child(parent, program, argv, child_ends);
	fork_errno = errno;
	sigprocmask(SIG_SETMASK, &parent_mask, NULL);
	if (pid < 0)
	{
		errno = fork_errno;
		goto failed;
	}

	/*
	 * The child makes its session itself (setsid fails in a process group
	 * leader, so we must not make it one first); until then a signal to its
	 * group falls back to the child alone, which has nothing else yet.
	 */
	child->pid = pid;
	close(pipes[0][0]);
	for (int i = 1; i < 4; i++)
		close(pipes[i][1]);
	child->stdin_fd = pipes[0][1];
	child->stdout_fd = pipes[1][0];
	child->stderr_fd = pipes[2][0];
	child->progress_fd = pipes[3][0];
	{
		int			ours[4] = {child->stdin_fd, child->stdout_fd, child->stderr_fd, child->progress_fd};

		for (int i = 0; i < 4; i++)
			(void) fcntl(ours[i], F_SETFL, fcntl(ours[i], F_GETFL) | O_NONBLOCK);
	}
	return true;

failed:
	saved_errno = errno;
	for (int i = 0; i < 4; i++)
	{
		close_fd(&pipes[i][0]);
		close_fd(&pipes[i][1]);
	}
	free(child->output);
	child->output = NULL;
	errno = saved_errno;
	return false;
}

/* The child's open pipes to wait on; their number. */
int
sup_child_wait_fds(const SupChild *child, SupWaitFd fds[4])
{
	int			n = 0;

	if (child->stdin_fd >= 0 &&
		(child->input_sent < child->input_len || child->lease_line_len > 0))
		fds[n++] = (SupWaitFd) {child->stdin_fd, true};
	if (child->stdout_fd >= 0)
		fds[n++] = (SupWaitFd) {child->stdout_fd, false};
	if (child->stderr_fd >= 0)
		fds[n++] = (SupWaitFd) {child->stderr_fd, false};
	if (child->progress_fd >= 0)
		fds[n++] = (SupWaitFd) {child->progress_fd, false};
	return n;
}

/* Keep the last SUP_STDERR_TAIL bytes of stderr. */
static void
keep_stderr(SupChild *child, const char *data, size_t len)
{
	if (len >= SUP_STDERR_TAIL)
	{
		memcpy(child->stderr_tail, data + len - SUP_STDERR_TAIL, SUP_STDERR_TAIL);
		child->stderr_len = SUP_STDERR_TAIL;
	}
	else
	{
		size_t		room = SUP_STDERR_TAIL - len;
		size_t		keep = child->stderr_len < room ? child->stderr_len : room;

		memmove(child->stderr_tail, child->stderr_tail + child->stderr_len - keep, keep);
		memcpy(child->stderr_tail + keep, data, len);
		child->stderr_len = keep + len;
	}
	child->stderr_tail[child->stderr_len] = '\0';
}

/* Keep stdout, up to SUP_STDOUT_MAX. */
static void
keep_stdout(SupChild *child, const char *data, size_t len)
{
	if (child->output_too_long || child->output_len + len > SUP_STDOUT_MAX)
	{
		child->output_too_long = true;
		return;
	}
	if (child->output_len + len + 1 > child->output_cap)
	{
		size_t		cap = child->output_cap;
		char	   *bigger;

		while (cap < child->output_len + len + 1)
			cap *= 2;
		bigger = realloc(child->output, cap);
		if (bigger == NULL)
		{
			child->output_too_long = true;
			return;
		}
		child->output = bigger;
		child->output_cap = cap;
	}
	memcpy(child->output + child->output_len, data, len);
	child->output_len += len;
	child->output[child->output_len] = '\0';
}

/* Take one complete line "progress <fraction> <stage>" or "error <code>". */
static void
take_progress_line(SupChild *child, const char *line)
{
	double		fraction;
	char		stage[32];
	char		code[SUP_ERROR_CODE_MAX];

	if (sscanf(line, "progress %lf %31s", &fraction, stage) == 2 &&
		fraction >= 0.0 && fraction <= 1.0)
	{
		child->progress = fraction;
		memcpy(child->stage, stage, sizeof(child->stage));
	}
	else if (sscanf(line, "error %31s", code) == 1)
		memcpy(child->error_code, code, sizeof(child->error_code));
}

/* Split progress data into lines; an over-long line is dropped. */
static void
keep_progress(SupChild *child, const char *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
	{
		if (data[i] == '\n')
		{
			if (child->partial_len < sizeof(child->partial_line))
			{
				child->partial_line[child->partial_len] = '\0';
				take_progress_line(child, child->partial_line);
			}
			child->partial_len = 0;
		}
		else if (child->partial_len < sizeof(child->partial_line) - 1)
			child->partial_line[child->partial_len++] = data[i];
		else
			child->partial_len = sizeof(child->partial_line);	/* too long: drop */
	}
}

/* Read what one pipe has; close it at end of file. */
static void
drain(SupChild *child, int *fd)
{
	char		buffer[8192];

	while (*fd >= 0)
	{
		ssize_t		got = read(*fd, buffer, sizeof(buffer));

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (got <= 0)
		{
			close_fd(fd);
			return;
		}
		if (fd == &child->stdout_fd)
			keep_stdout(child, buffer, (size_t) got);
		else if (fd == &child->stderr_fd)
			keep_stderr(child, buffer, (size_t) got);
		else
			keep_progress(child, buffer, (size_t) got);
	}
}

/*
 * Write what the stdin pipe takes: the job's first lines, then the pending
 * lease line (short enough to be written whole or not at all).  The pipe is
 * closed only when the child stops reading it (EPIPE) or ends.
 */
static void
feed(SupChild *child)
{
	while (child->stdin_fd >= 0 && child->input_sent < child->input_len)
	{
		ssize_t		put = write(child->stdin_fd, child->input + child->input_sent,
								child->input_len - child->input_sent);

		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (put < 0)
		{
			close_fd(&child->stdin_fd); /* EPIPE: the child stopped reading */
			return;
		}
		child->input_sent += (size_t) put;
	}
	while (child->stdin_fd >= 0 && child->lease_line_len > 0)
	{
		ssize_t		put = write(child->stdin_fd, child->lease_line, child->lease_line_len);

		if (put < 0 && errno == EINTR)
			continue;
		if (put < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (put < 0)
			close_fd(&child->stdin_fd);
		child->lease_line_len = 0;
	}
}

/* Queue the line {"lease_until_ms": N} for the child, replacing one not yet written. */
void
sup_child_send_lease(SupChild *child, int64_t fence_ms)
{
	int			len = snprintf(child->lease_line, sizeof(child->lease_line),
							   "{\"lease_until_ms\": %lld}\n", (long long) fence_ms);

	child->lease_line_len = len > 0 && (size_t) len < sizeof(child->lease_line) ? (size_t) len : 0;
	feed(child);
}

/* Reap the child if it has exited, with what it used. */
static void
reap(SupChild *child)
{
	int			status;

	if (child->exited || child->pid <= 0)
		return;
	if (wait4(child->pid, &status, WNOHANG, &child->usage) == child->pid)
	{
		child->exited = true;
		child->wait_status = status;
		/* nobody reads the rest of its input: feed may have left it open */
		close_fd(&child->stdin_fd);
	}
}

/* Write and read what can be without blocking; reap the child if it exited. */
void
sup_child_pump(SupChild *child)
{
	feed(child);
	drain(child, &child->stdout_fd);
	drain(child, &child->stderr_fd);
	drain(child, &child->progress_fd);
	reap(child);
}

/* Signal the child's whole process group. */
void
sup_child_signal(SupChild *child, int signo)
{
	if (child->pid > 0 && !child->exited)
	{
		if (kill(-child->pid, signo) < 0)
			(void) kill(child->pid, signo);
	}
}

/* Whether the child has exited and every pipe is closed. */
bool
sup_child_done(const SupChild *child)
{
	return child->exited && child->stdin_fd < 0 && child->stdout_fd < 0 &&
		child->stderr_fd < 0 && child->progress_fd < 0;
}

/* Close what is left of the pipes (the child is gone). */
void
sup_child_close_pipes(SupChild *child)
{
	drain(child, &child->stdout_fd);
	drain(child, &child->stderr_fd);
	drain(child, &child->progress_fd);
	close_fd(&child->stdin_fd);
	close_fd(&child->stdout_fd);
	close_fd(&child->stderr_fd);
	close_fd(&child->progress_fd);
}

/* Stop the child now, blocking: SIGTERM, up to grace_ms, then SIGKILL; reaped. */
void
sup_child_stop_now(SupChild *child, int grace_ms)
{
	struct timespec tick = {0, 10 * 1000 * 1000};

	if (child->pid <= 0 || child->exited)
		return;
	sup_child_signal(child, SIGTERM);
	for (int waited = 0; waited < grace_ms; waited += 10)
	{
		reap(child);
		if (child->exited)
			return;
		nanosleep(&tick, NULL);
	}
	sup_child_signal(child, SIGKILL);
	while (!child->exited)
	{
		if (wait4(child->pid, &child->wait_status, 0, &child->usage) == child->pid)
			child->exited = true;
		else if (errno != EINTR)
			break;
	}
}

/* Free the output buffer and close the pipes. */
void
sup_child_free(SupChild *child)
{
	sup_child_close_pipes(child);
	free(child->output);
	child->output = NULL;
	child->output_len = child->output_cap = 0;
}

/* The last line the child wrote on stderr, without the program's prefix. */
const char *
sup_child_last_error_line(const SupChild *child, char *buffer, size_t size)
{
	char	   *start;
	size_t		len = child->stderr_len < size - 1 ? child->stderr_len : size - 1;
	const char *prefix = "vproxy-transcode: ";

	memcpy(buffer, child->stderr_tail + child->stderr_len - len, len);
	buffer[len] = '\0';
	while (len > 0 && (buffer[len - 1] == '\n' || buffer[len - 1] == '\r' || buffer[len - 1] == ' '))
		buffer[--len] = '\0';
	start = strrchr(buffer, '\n');
	start = start ? start + 1 : buffer;
	if (strncmp(start, prefix, strlen(prefix)) == 0)
		start += strlen(prefix);
	return start;
}

/* CPU seconds (user + system) the exited child used. */
double
sup_child_cpu_seconds(const SupChild *child)
{
	return child->usage.ru_utime.tv_sec + child->usage.ru_utime.tv_usec / 1e6 +
		child->usage.ru_stime.tv_sec + child->usage.ru_stime.tv_usec / 1e6;
}
