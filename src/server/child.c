/*
 * child.c
 *		Start and supervise `vproxy-transcode job`.  The child gets its own
 *		process group (the postmaster signals the process groups of its
 *		children, and procsignal SIGUSR1s must not reach it), dies with the
 *		worker (PR_SET_PDEATHSIG), and inherits no descriptor but its four
 *		pipes.  The worker reads without blocking into bounded buffers.
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/memutils.h"

#include "child.h"

/* descriptors the pipes are parked on in the child before taking 0..3 */
#define PARKING_FD 10

/* Close every descriptor from 4 up: the child must not inherit the server's files. */
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
 * In the forked child: the worker's signal handlers (latch, shutdown flags)
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
	char		message[MAXPGPATH + 256];
	ssize_t		written;

	reset_signal_handlers();
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(75);				/* the worker died before we could watch it */

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
	strlcpy(message, "vproxy-transcode: cannot execute ", sizeof(message));
	strlcat(message, program, sizeof(message));
	strlcat(message, ": ", sizeof(message));
	strlcat(message, strerror(exec_errno), sizeof(message));
	strlcat(message, "\n", sizeof(message));
	written = write(2, message, strlen(message));
	(void) written;				/* nowhere else to say it */
	_exit(exec_errno == ENOENT ? 127 : 126);
}

/* Make a pipe whose both ends close on exec. */
static bool
make_pipe(int ends[2])
{
	return pipe2(ends, O_CLOEXEC) == 0;
}

/* Close a descriptor we own and mark it closed. */
static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* Start program with "job --progress-fd 3", input on its stdin. */
bool
child_start(Child *child, const char *program, const char *input, size_t input_len)
{
	int			in[2] = {-1, -1},
				out[2] = {-1, -1},
				err[2] = {-1, -1},
				prog[2] = {-1, -1};
	int			child_ends[4];
	char	   *argv[] = {(char *) program, "job", "--progress-fd", "3", NULL};
	pid_t		parent = getpid();
	pid_t		pid;
	sigset_t	all_signals,
				worker_mask;
	int			fork_errno;
	int			saved_errno;

	memset(child, 0, sizeof(*child));
	child->pid = -1;
	child->stdin_fd = child->stdout_fd = child->stderr_fd = child->progress_fd = -1;
	child->input = input;
	child->input_len = input_len;
	initStringInfo(&child->output);

	if (!make_pipe(in) || !make_pipe(out) || !make_pipe(err) || !make_pipe(prog))
		goto failed;
	child_ends[0] = in[0];
	child_ends[1] = out[1];
	child_ends[2] = err[1];
	child_ends[3] = prog[1];

	/*
	 * Block every signal across fork: the child must not run the worker's
	 * handlers, and a SIGTERM before its exec must not be lost.
	 */
	fflush(NULL);
	sigfillset(&all_signals);
	sigprocmask(SIG_SETMASK, &all_signals, &worker_mask);
	pid = fork();
	if (pid == 0)
		exec_in_child(parent, program, argv, child_ends);
	fork_errno = errno;
	sigprocmask(SIG_SETMASK, &worker_mask, NULL);
	if (pid < 0)
	{
		errno = fork_errno;
		goto failed;
	}

	/* both sides set the group, whichever runs first */
	(void) setpgid(pid, pid);
	child->pid = pid;
	close(in[0]);
	close(out[1]);
	close(err[1]);
	close(prog[1]);
	child->stdin_fd = in[1];
	child->stdout_fd = out[0];
	child->stderr_fd = err[0];
	child->progress_fd = prog[0];
	for (int i = 0; i < 4; i++)
	{
		int			fd = i == 0 ? in[1] : i == 1 ? out[0] : i == 2 ? err[0] : prog[0];

		(void) fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	}
	if (input_len == 0)
		close_fd(&child->stdin_fd);
	return true;

failed:
	saved_errno = errno;
	for (int i = 0; i < 2; i++)
	{
		close_fd(&in[i]);
		close_fd(&out[i]);
		close_fd(&err[i]);
		close_fd(&prog[i]);
	}
	errno = saved_errno;
	return false;
}

/* Keep the last CHILD_STDERR_TAIL bytes of stderr. */
static void
keep_stderr(Child *child, const char *data, size_t len)
{
	if (len >= CHILD_STDERR_TAIL)
	{
		memcpy(child->stderr_tail, data + len - CHILD_STDERR_TAIL, CHILD_STDERR_TAIL);
		child->stderr_len = CHILD_STDERR_TAIL;
	}
	else
	{
		size_t		keep = Min(child->stderr_len, CHILD_STDERR_TAIL - len);

		memmove(child->stderr_tail, child->stderr_tail + child->stderr_len - keep, keep);
		memcpy(child->stderr_tail + keep, data, len);
		child->stderr_len = keep + len;
	}
	child->stderr_tail[child->stderr_len] = '\0';
}

/* Take one complete line "progress <fraction> <stage>". */
static void
take_progress_line(Child *child, const char *line)
{
	double		fraction;
	char		stage[32];

	if (sscanf(line, "progress %lf %31s", &fraction, stage) == 2 &&
		fraction >= 0.0 && fraction <= 1.0)
	{
		child->progress = fraction;
		strlcpy(child->stage, stage, sizeof(child->stage));
	}
}

/* Split progress data into lines; an over-long line is dropped. */
static void
keep_progress(Child *child, const char *data, size_t len)
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
drain(Child *child, int *fd)
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
		{
			if (child->output.len + got > CHILD_STDOUT_MAX)
				child->output_too_long = true;
			else
				appendBinaryStringInfo(&child->output, buffer, got);
		}
		else if (fd == &child->stderr_fd)
			keep_stderr(child, buffer, got);
		else
			keep_progress(child, buffer, got);
	}
}

/* Write what the stdin pipe takes of the job spec; close it when all is sent. */
static void
feed(Child *child)
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
			break;				/* EPIPE: the child stopped reading */
		child->input_sent += put;
	}
	close_fd(&child->stdin_fd);
}

/* Reap the child if it has exited, with what it used. */
static void
reap(Child *child)
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

/* Wait up to timeout_ms for the pipes, the latch or the child's exit; then pump. */
void
child_wait(Child *child, long timeout_ms)
{
	WaitEventSet *set;
	WaitEvent	events[6];

	set = CreateWaitEventSet(CurrentMemoryContext, 6);
	AddWaitEventToSet(set, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(set, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	if (child->stdin_fd >= 0)
		AddWaitEventToSet(set, WL_SOCKET_WRITEABLE, child->stdin_fd, NULL, NULL);
	if (child->stdout_fd >= 0)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, child->stdout_fd, NULL, NULL);
	if (child->stderr_fd >= 0)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, child->stderr_fd, NULL, NULL);
	if (child->progress_fd >= 0)
		AddWaitEventToSet(set, WL_SOCKET_READABLE, child->progress_fd, NULL, NULL);
	(void) WaitEventSetWait(set, timeout_ms, events, lengthof(events), PG_WAIT_EXTENSION);
	FreeWaitEventSet(set);

	feed(child);
	drain(child, &child->stdout_fd);
	drain(child, &child->stderr_fd);
	drain(child, &child->progress_fd);
	reap(child);
}

/* Signal the child's whole process group. */
void
child_signal(Child *child, int signo)
{
	if (child->pid > 0 && !child->exited)
	{
		if (kill(-child->pid, signo) < 0)
			(void) kill(child->pid, signo);
	}
}

/* Whether the child has exited and every pipe is closed. */
bool
child_done(Child *child)
{
	return child->exited && child->stdin_fd < 0 && child->stdout_fd < 0 &&
		child->stderr_fd < 0 && child->progress_fd < 0;
}

/* Close what is left of the pipes (the child is gone). */
void
child_close_pipes(Child *child)
{
	drain(child, &child->stdout_fd);
	drain(child, &child->stderr_fd);
	drain(child, &child->progress_fd);
	close_fd(&child->stdin_fd);
	close_fd(&child->stdout_fd);
	close_fd(&child->stderr_fd);
	close_fd(&child->progress_fd);
}

/* The last line the child wrote on stderr, without the program's prefix. */
const char *
child_last_error_line(Child *child)
{
	static char line[CHILD_STDERR_TAIL + 1];
	char	   *start;
	size_t		len = child->stderr_len;
	const char *prefix = "vproxy-transcode: ";

	memcpy(line, child->stderr_tail, len);
	line[len] = '\0';
	while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
		line[--len] = '\0';
	start = strrchr(line, '\n');
	start = start ? start + 1 : line;
	if (strncmp(start, prefix, strlen(prefix)) == 0)
		start += strlen(prefix);
	return start;
}

/* SIGCHLD handler: wake the worker so that it reaps its child. */
void
child_handle_sigchld(SIGNAL_ARGS)
{
	int			save_errno = errno;

	SetLatch(MyLatch);
	errno = save_errno;
}
