/*
 * sandbox_test.c
 *		Unit test of src/transcode/sandbox: a process confined as a job is
 *		(its temp directory, a file:// storage directory inside a fake data
 *		directory, or an S3 endpoint's port) tries what a decoder taken over
 *		by an upload would: read the data directory beside the storage
 *		directory, connect to the server's Unix socket, reach another TCP
 *		port, exec, fork, ptrace or read another process, signal it, look at
 *		its descriptors, chmod the data directory.  Each attempt is first made
 *		unconfined where it can be, so that the test fails without the
 *		sandbox; what a job needs (its files, TCP, threads) must still work.
 *		Each confinement runs in a child process of its own.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/personality.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <seccomp.h>

#include "transcode/sandbox.h"
#include "unit_tap.h"

/* read by process_vm_readv in the helper, at the same address as here */
static char peer_memory[] = "the helper's memory";

typedef struct Fixture
{
	char		base[64];
	char		data[128];		/* the fake data directory */
	char		secret[192];	/* its configuration file */
	char		storage[192];	/* the storage directory, inside it */
	char		storage_url[256];
	char		work[128];		/* the job's temp directory */
	char		socket_path[100];	/* a listening Unix socket */
	int			allowed_port;	/* two listening TCP ports */
	int			other_port;
	pid_t		helper;			/* a process that is not the job */
} Fixture;

/* Write a file. */
static void
put_file(const char *path, const char *text)
{
	int			fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t) strlen(text))
		tap_ok(false, "cannot write %s: %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Whether a file can be opened for reading. */
static bool
readable(const char *path)
{
	int			fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

/* Whether a directory can be listed. */
static bool
listable(const char *path)
{
	DIR		   *dir = opendir(path);

	if (dir != NULL)
		closedir(dir);
	return dir != NULL;
}

/* A TCP server on 127.0.0.1; its port. */
static int
tcp_listener(void)
{
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t	length = sizeof(address);
	int			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *) &address, sizeof(address)) != 0 || listen(fd, 8) != 0 ||
		getsockname(fd, (struct sockaddr *) &address, &length) != 0)
		return 0;
	return ntohs(address.sin_port);
}

/* Connect to a TCP port of 127.0.0.1: 0 or the errno. */
static int
tcp_connect(int port)
{
	struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port),
	.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int			fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int			rc;

	if (fd < 0)
		return errno;
	rc = connect(fd, (struct sockaddr *) &address, sizeof(address)) == 0 ? 0 : errno;
	close(fd);
	return rc;
}

/* Connect to the Unix socket: 0 or the errno (of socket() or connect()). */
static int
unix_connect(const char *path)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	int			fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int			rc;

	if (fd < 0)
		return errno;
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *) &address, sizeof(address)) == 0 ? 0 : errno;
	close(fd);
	return rc;
}

/* Read the helper's copy of peer_memory: 0 or the errno. */
static int
read_peer(pid_t pid)
{
	char		buffer[sizeof(peer_memory)] = "";
	struct iovec local = {buffer, sizeof(buffer)};
	struct iovec remote = {peer_memory, sizeof(peer_memory)};

	if (process_vm_readv(pid, &local, 1, &remote, 1, 0) < 0)
		return errno;
	return strcmp(buffer, peer_memory) == 0 ? 0 : EIO;
}

/* Whether a call failed with that errno. */
static bool
refused(long rc, int expected)
{
	return rc == -1 && errno == expected;
}

/* A thread that does nothing. */
static void *
idle_thread(void *arg)
{
	return arg;
}

/* Whether a thread can be started and joined. */
static bool
thread_runs(void)
{
	pthread_t	thread;

	return pthread_create(&thread, NULL, idle_thread, NULL) == 0 && pthread_join(thread, NULL) == 0;
}

/* Run checks in a child process and take over its TAP count. */
static void
in_child(void (*checks) (const Fixture *), const Fixture *fixture)
{
	int			ends[2];
	int			counts[2];
	int			status;
	pid_t		pid;

	fflush(stdout);
	if (pipe(ends) != 0 || (pid = fork()) < 0)
	{
		tap_ok(false, "cannot start a child: %s", strerror(errno));
		return;
	}
	if (pid == 0)
	{
		close(ends[0]);
		checks(fixture);
		fflush(stdout);
		counts[0] = tap_count;
		counts[1] = tap_failed;
		_exit(write(ends[1], counts, sizeof(counts)) == sizeof(counts) ? 0 : 1);
	}
	close(ends[1]);
	if (read(ends[0], counts, sizeof(counts)) == sizeof(counts))
	{
		tap_count = counts[0];
		tap_failed = counts[1];
	}
	close(ends[0]);
	waitpid(pid, &status, 0);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child ran to its end (status %d)", status);
}

/* A job on file:// storage inside the data directory: files, sockets, processes. */
static void
file_job(const Fixture *f)
{
	const char *work[] = {f->work, NULL};
	StorageConfig storage = {.url = f->storage_url};
	SandboxRules rules = {NULL, work, NULL, &storage};
	char		why[SANDBOX_WHY_MAX] = "";
	char		path[512];
	char		moved[512];
	char		proc[64];
	char	   *const argv[] = {"/nonexistent/vproxy-decoder-shell", NULL};
	int			fds[2];
	pid_t		child;

	/* unconfined, all of this works: the test can fail */
	tap_ok(readable(f->secret), "unconfined: the data directory's configuration is readable");
	tap_ok(unix_connect(f->socket_path) == 0, "unconfined: the Unix socket takes a connection");
	tap_ok(read_peer(f->helper) == 0, "unconfined: another process's memory is readable");
	snprintf(proc, sizeof(proc), "/proc/%d/fd", (int) getppid());
	tap_ok(listable(proc), "unconfined: the parent's descriptors are listed in /proc");
	tap_ok(kill(f->helper, 0) == 0, "unconfined: another process can be signalled");

	if (!tap_ok(sandbox_apply(&rules, why) == 0, "the sandbox applies"))
		printf("# %s\n", why);

	/* what a job needs */
	snprintf(path, sizeof(path), "%s/uploads/clip.mp4", f->storage);
	tap_ok(readable(path), "the original in the storage directory is readable");
	snprintf(path, sizeof(path), "%s/videos", f->storage);
	tap_ok(mkdir(path, 0777) == 0, "a directory is made in the storage directory");
	snprintf(path, sizeof(path), "%s/videos/.proxy.mp4.part", f->storage);
	put_file(path, "proxy");
	snprintf(moved, sizeof(moved), "%s/videos/proxy.mp4", f->storage);
	tap_ok(rename(path, moved) == 0, "and a file written and renamed there");
	tap_ok(unlink(moved) == 0, "and removed");
	snprintf(path, sizeof(path), "%s/original.mp4", f->work);
	put_file(path, "downloaded");
	tap_ok(readable(path) && unlink(path) == 0, "the temp directory is written, read and emptied");
	tap_ok(readable("/etc/hosts") && readable("/usr/share") && readable("/proc/self/status"),
		   "/etc/hosts, /usr/share and /proc/self are readable");
	tap_ok(open("/dev/null", O_WRONLY | O_TRUNC) >= 0 && readable("/dev/urandom"),
		   "/dev/null is writable, /dev/urandom readable");
	tap_ok(thread_runs(), "a thread starts");
	tap_ok(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "a connected stream pair is made (libcurl's)");
	tap_ok(socket(AF_INET, SOCK_STREAM, 0) >= 0, "a TCP socket is made");

	/* what a decoder taken over by an upload would try */
	tap_ok(!readable(f->secret) && errno == EACCES, "the data directory's configuration is not readable");
	tap_ok(!listable(f->data) && errno == EACCES, "the data directory is not listed");
	snprintf(path, sizeof(path), "%s/global/pg_control", f->data);
	tap_ok(open(path, O_WRONLY) < 0 && errno == EACCES, "nor its files written");
	snprintf(path, sizeof(path), "%s/planted", f->data);
	tap_ok(open(path, O_WRONLY | O_CREAT, 0600) < 0 && errno == EACCES, "nor a file made in it");
	snprintf(path, sizeof(path), "%s/uploads/clip.mp4", f->storage);
	snprintf(moved, sizeof(moved), "%s/stolen.mp4", f->data);
	tap_ok(rename(path, moved) != 0, "a stored file is not moved out into the data directory");
	snprintf(path, sizeof(path), "%s/uploads/linked", f->storage);
	tap_ok(link(f->secret, path) != 0, "the configuration is not hard-linked into the storage directory");
	tap_ok(refused(symlink(f->secret, path), EACCES), "nor symbolically");
	tap_ok(refused(chmod(f->secret, 0644), EPERM), "chmod of the data directory's files is refused");
	tap_ok(refused(setxattr(f->secret, "user.x", "y", 1, 0), EPERM), "and so is setxattr");
	tap_ok(refused(truncate(f->secret, 0), EPERM), "and truncate by path");
	tap_ok(!readable(f->base) && !readable("/etc/passwd"), "neither the temp directory's parent nor /etc as a whole is readable");
	tap_ok(unix_connect(f->socket_path) == EPERM, "no Unix socket is made: the server's socket is out of reach");
	tap_ok(refused(socketpair(AF_UNIX, SOCK_DGRAM, 0, fds), EPERM), "nor a datagram pair (it could send to any socket)");
	tap_ok(tcp_connect(f->allowed_port) == EACCES, "no TCP connection: the storage is a directory");
	/* a program that is not there: refused (EPERM), not looked for (ENOENT) */
	tap_ok(refused(execve(argv[0], argv, NULL), EPERM), "execve is refused");
	child = fork();
	if (child == 0)
		_exit(0);
	if (child > 0)
		waitpid(child, NULL, 0);
	tap_ok(child == -1 && errno == EPERM, "fork is refused");
	tap_ok(refused(ptrace(PTRACE_ATTACH, f->helper, NULL, NULL), EPERM), "ptrace is refused");
	tap_ok(read_peer(f->helper) == EPERM, "process_vm_readv is refused");
	snprintf(proc, sizeof(proc), "/proc/%d/mem", (int) f->helper);
	tap_ok(!readable(proc) && errno == EACCES, "another process's /proc/PID/mem is not readable");
	snprintf(proc, sizeof(proc), "/proc/%d/fd", (int) getppid());
	tap_ok(!listable(proc), "the parent's (the supervisor's) descriptors are not listed");
	tap_ok(refused(syscall(SYS_pidfd_open, getppid(), 0), EPERM), "nor reached through a pidfd");
	tap_ok(refused(kill(f->helper, SIGCONT), EPERM), "another process is not signalled");
	tap_ok(kill(getpid(), 0) == 0, "but the process itself is");
	tap_ok(refused(unshare(CLONE_NEWUSER), EPERM), "unshare is refused");
	tap_ok(refused(personality(PER_LINUX32), EPERM), "personality is refused");
	tap_ok(refused(syscall(SYS_io_uring_setup, 1, NULL), EPERM), "io_uring is refused");
	tap_ok(refused(syscall(SYS_add_key, "user", "k", "v", 1, -3), EPERM), "keyrings are refused");
}

/* A job on S3: TCP to the endpoint's port only. */
static void
s3_job(const Fixture *f)
{
	char		endpoint[64];
	StorageConfig storage = {.url = "s3://bucket", .s3_endpoint = endpoint};
	SandboxRules rules = {NULL, NULL, NULL, &storage};
	char		why[SANDBOX_WHY_MAX] = "";

	snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", f->allowed_port);
	tap_ok(tcp_connect(f->other_port) == 0, "unconfined: any TCP port takes a connection");
	if (!tap_ok(sandbox_apply(&rules, why) == 0, "the sandbox applies for S3"))
		printf("# %s\n", why);
	tap_ok(tcp_connect(f->allowed_port) == 0, "the endpoint's port takes a connection");
	tap_ok(tcp_connect(f->other_port) == EACCES, "another port does not");
}

/* The command line's rules: an input read, an output made beside it. */
static void
command(const Fixture *f)
{
	char		input[256];
	char		output[256];
	const char *read[] = {input, NULL};
	const char *outputs[] = {output, NULL};
	SandboxRules rules = {read, NULL, outputs, NULL};
	char		why[SANDBOX_WHY_MAX] = "";
	char		other[256];

	snprintf(input, sizeof(input), "%s/uploads/clip.mp4", f->storage);
	snprintf(output, sizeof(output), "%s/thumb.jpg", f->work);
	snprintf(other, sizeof(other), "%s/uploads/other.mp4", f->storage);
	if (!tap_ok(sandbox_apply(&rules, why) == 0, "the sandbox applies to a command"))
		printf("# %s\n", why);
	tap_ok(readable(input), "its input is readable");
	put_file(output, "jpeg");
	tap_ok(readable(output), "its output is made");
	tap_ok(!readable(other), "a file beside its input is not readable");
}

/* A thread that waits for the process's end. */
static void *
waiting_thread(void *arg)
{
	pause();
	return arg;
}

/* Landlock confines the calling thread only: refused once a thread runs. */
static void
late(const Fixture *f)
{
	pthread_t	thread;
	SandboxRules rules = {NULL, NULL, NULL, NULL};
	char		why[SANDBOX_WHY_MAX] = "";

	(void) f;
	if (!tap_ok(pthread_create(&thread, NULL, waiting_thread, NULL) == 0, "a thread starts"))
		return;
	tap_ok(sandbox_apply(&rules, why) != 0 && strstr(why, "before any thread") != NULL,
		   "the sandbox refuses a process that has a thread already (%s)", why);
}

/* A kernel without Landlock: one line on stderr, and the filter still applies. */
static void
no_landlock(const Fixture *f)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	SandboxRules rules = {NULL, NULL, NULL, NULL};
	char		why[SANDBOX_WHY_MAX] = "";
	char		log[512] = "";
	int			ends[2];
	ssize_t		n;

	if (ctx == NULL || seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(landlock_create_ruleset), 0) != 0 ||
		seccomp_load(ctx) != 0 || pipe(ends) != 0 || dup2(ends[1], STDERR_FILENO) < 0)
	{
		tap_ok(false, "cannot hide Landlock");
		return;
	}
	seccomp_release(ctx);
	if (!tap_ok(sandbox_apply(&rules, why) == 0, "without Landlock the sandbox still applies"))
		printf("# %s\n", why);
	close(ends[1]);
	close(STDERR_FILENO);
	n = read(ends[0], log, sizeof(log) - 1);
	log[n > 0 ? n : 0] = '\0';
	tap_ok(strstr(log, "no Landlock") != NULL && strchr(log, '\n') == log + strlen(log) - 1,
		   "and says so in one line: %.*s", (int) strcspn(log, "\n"), log);
	tap_ok(readable(f->secret), "files are not confined then");
	tap_ok(unix_connect(f->socket_path) == EPERM, "but the filter refuses Unix sockets");
}

/* Make the directories, files, sockets and helper process; false if impossible. */
static bool
make_fixture(Fixture *f)
{
	struct sockaddr_un address = {.sun_family = AF_UNIX};
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char		path[256];
	int			fd;

	snprintf(f->base, sizeof(f->base), "%s/vproxy-sandbox-XXXXXX", tmp);
	if (mkdtemp(f->base) == NULL)
		return false;
	snprintf(f->data, sizeof(f->data), "%s/data", f->base);
	snprintf(f->secret, sizeof(f->secret), "%s/postgresql.auto.conf", f->data);
	snprintf(f->storage, sizeof(f->storage), "%s/vproxy_storage", f->data);
	snprintf(f->storage_url, sizeof(f->storage_url), "file://%s", f->storage);
	snprintf(f->work, sizeof(f->work), "%s/work", f->base);
	snprintf(f->socket_path, sizeof(f->socket_path), "%s/.s.PGSQL.5432", f->base);
	snprintf(path, sizeof(path), "%s/global", f->data);
	if (mkdir(f->data, 0700) != 0 || mkdir(path, 0700) != 0 || mkdir(f->storage, 0700) != 0 ||
		mkdir(f->work, 0700) != 0)
		return false;
	put_file(f->secret, "vproxy.s3_secret_access_key = 'not for uploads'\n");
	snprintf(path, sizeof(path), "%s/global/pg_control", f->data);
	put_file(path, "control");
	snprintf(path, sizeof(path), "%s/uploads", f->storage);
	if (mkdir(path, 0700) != 0)
		return false;
	snprintf(path, sizeof(path), "%s/uploads/clip.mp4", f->storage);
	put_file(path, "video");
	snprintf(path, sizeof(path), "%s/uploads/other.mp4", f->storage);
	put_file(path, "video");
	snprintf(address.sun_path, sizeof(address.sun_path), "%s", f->socket_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *) &address, sizeof(address)) != 0 || listen(fd, 8) != 0)
		return false;
	f->allowed_port = tcp_listener();
	f->other_port = tcp_listener();
	if (f->allowed_port == 0 || f->other_port == 0)
		return false;
	f->helper = fork();
	if (f->helper == 0)
	{
		pause();
		_exit(0);
	}
	return f->helper > 0;
}

int
main(void)
{
	Fixture		fixture;
	char		command_line[300];
	long		abi;

	/* libcurl's proxy variables lift the TCP port rule */
	unsetenv("http_proxy");
	unsetenv("https_proxy");
	unsetenv("HTTPS_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	if (!tap_ok(make_fixture(&fixture), "the fixture is made in %s", fixture.base))
		return tap_done();
	abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1);
	if (abi >= 6)
	{
		in_child(file_job, &fixture);
		in_child(s3_job, &fixture);
		in_child(command, &fixture);
	}
	else
		tap_ok(true, "# SKIP the kernel's Landlock ABI is %ld: what it confines needs 6", abi);
	in_child(late, &fixture);
	in_child(no_landlock, &fixture);
	kill(fixture.helper, SIGKILL);
	waitpid(fixture.helper, NULL, 0);
	snprintf(command_line, sizeof(command_line), "rm -rf '%s'", fixture.base);
	tap_ok(system(command_line) == 0, "the fixture is removed");
	return tap_done();
}
