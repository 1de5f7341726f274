/*
 * job_workspace.c
 *		The private temp directory of one job.
 *
 * Its name carries the pid of the job that made it ("vproxy-job-<pid>-XXXXXX"),
 * and its maker holds an exclusive flock on it for its whole life (the
 * kernel drops it when the process dies, however it dies), so a later job
 * can tell a directory whose owner is gone and remove it: its pid is dead,
 * or, the pid being reused by another process since, nobody holds its lock
 * (and it is older than a minute: the maker locks it right after making it).
 *
 * The sandbox (sandbox.h) lets the job write in its workspace but not in the
 * directory around it, so it cannot remove the workspace itself: a remover
 * process, forked when the workspace is made and so outside the sandbox, does
 * that when the job closes its pipe (or dies).  It walks the tree by
 * descriptors and never through a symbolic link, so a job that took over a
 * decoder cannot make it remove anything but the workspace's own entries,
 * even by renaming them while it walks.
 */
#define _GNU_SOURCE				/* flock, pipe2, close_range */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "transcode/job_workspace.h"

/* the longest extension kept in the original's file name */
#define EXTENSION_MAX 8

#define WORKSPACE_PREFIX "vproxy-job-"
/* a directory younger than this may not be locked by its maker yet */
#define UNLOCKED_GRACE_SECONDS 60

/* deeper than this, a tree was not made by a job: it is left where it is */
#define REMOVE_DEPTH_MAX 32

/* Empty the directory open as fd (closed here), never through a symbolic link. */
static void
remove_below(int fd, int depth)
{
	DIR		   *dir = fdopendir(fd);
	struct dirent *entry;

	if (dir == NULL)
	{
		close(fd);
		return;
	}
	while ((entry = readdir(dir)) != NULL)
	{
		int			child;

		if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0 ||
			unlinkat(dirfd(dir), entry->d_name, 0) == 0 || errno != EISDIR ||
			depth >= REMOVE_DEPTH_MAX)
			continue;
		child = openat(dirfd(dir), entry->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (child >= 0)
			remove_below(child, depth + 1);
		unlinkat(dirfd(dir), entry->d_name, AT_REMOVEDIR);
	}
	closedir(dir);
}

/* Remove a directory tree without following symlinks. */
static void
remove_tree(const char *path)
{
	int			fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0)
		remove_below(fd, 0);
	rmdir(path);
}

/*
 * Whether a workspace (name, at path) was left by a job that is gone: the
 * pid in its name is dead, or nobody holds its lock (the pid was reused).
 */
static bool
is_abandoned(const char *name, const char *path, const struct stat *st)
{
	char	   *end;
	long		pid;
	int			fd;
	bool		unlocked;

	if (strncmp(name, WORKSPACE_PREFIX, strlen(WORKSPACE_PREFIX)) != 0)
		return false;
	pid = strtol(name + strlen(WORKSPACE_PREFIX), &end, 10);
	if (end == name + strlen(WORKSPACE_PREFIX) || *end != '-' || pid <= 0 || pid == getpid())
		return false;
	if (kill((pid_t) pid, 0) != 0 && errno == ESRCH)
		return true;
	if (time(NULL) - st->st_mtime < UNLOCKED_GRACE_SECONDS)
		return false;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	unlocked = flock(fd, LOCK_EX | LOCK_NB) == 0;
	close(fd);
	return unlocked;
}

/* Remove the workspaces of killed jobs of this user below parent. */
static void
sweep_abandoned(const char *parent)
{
	DIR		   *dir = opendir(parent);
	struct dirent *entry;
	char		path[PATH_MAX];
	struct stat st;

	if (dir == NULL)
		return;
	while ((entry = readdir(dir)) != NULL)
	{
		if (strncmp(entry->d_name, WORKSPACE_PREFIX, strlen(WORKSPACE_PREFIX)) != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", parent, entry->d_name) >= (int) sizeof(path))
			continue;
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == geteuid() &&
			is_abandoned(entry->d_name, path, &st))
			remove_tree(path);
	}
	closedir(dir);
}

/*
 * Fork the remover: it holds none of the job's descriptors but its pipe,
 * outlives a stop request, and removes the workspace at the pipe's first byte
 * or end.  Without one (fork failed) the job removes what it can itself.
 */
static void
start_remover(Workspace *workspace)
{
	int			ends[2];
	pid_t		pid;
	char		byte;

	if (pipe2(ends, O_CLOEXEC) != 0)
		return;
	pid = fork();
	if (pid == 0)
	{
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
		if (ends[0] > 0)
			close_range(0, ends[0] - 1, 0);
		close_range(ends[0] + 1, ~0U, 0);
		while (read(ends[0], &byte, 1) < 0 && errno == EINTR)
			;
		remove_tree(workspace->path);
		_exit(0);
	}
	close(ends[0]);
	if (pid < 0)
	{
		close(ends[1]);
		return;
	}
	workspace->remover_fd = ends[1];
	workspace->remover_pid = pid;
}

/* Make the workspace below parent ("" = $TMPDIR or /tmp). */
int
workspace_create(const char *parent, Workspace *workspace, char *why)
{
	workspace->path[0] = '\0';
	workspace->lock_fd = -1;
	workspace->remover_fd = -1;
	if (parent == NULL || parent[0] == '\0')
		parent = getenv("TMPDIR");
	if (parent == NULL || parent[0] == '\0')
		parent = "/tmp";
	sweep_abandoned(parent);
	if (snprintf(workspace->path, sizeof(workspace->path), "%s/" WORKSPACE_PREFIX "%d-XXXXXX",
				 parent, (int) getpid()) >= (int) sizeof(workspace->path))
	{
		workspace->path[0] = '\0';
		snprintf(why, WORKSPACE_WHY_MAX, "temp directory path is too long: %.300s", parent);
		return EX_USAGE;
	}
	if (mkdtemp(workspace->path) == NULL)
	{
		snprintf(why, WORKSPACE_WHY_MAX, "cannot make a temp directory in %.300s: %s",
				 parent, strerror(errno));
		workspace->path[0] = '\0';
		return EX_TEMPFAIL;
	}
	/* held until the process ends: a sweeper passes over a locked workspace */
	workspace->lock_fd = open(workspace->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (workspace->lock_fd < 0 || flock(workspace->lock_fd, LOCK_EX | LOCK_NB) != 0)
	{
		snprintf(why, WORKSPACE_WHY_MAX, "cannot lock the temp directory %.300s: %s",
				 workspace->path, strerror(errno));
		workspace_remove(workspace);
		return EX_TEMPFAIL;
	}
	start_remover(workspace);
	return 0;
}

/* EX_TEMPFAIL unless the workspace's file system has bytes free. */
int
workspace_require_space(const Workspace *workspace, int64_t bytes, char *why)
{
	struct statvfs fs;
	int64_t		available;

	if (statvfs(workspace->path, &fs) != 0)
	{
		snprintf(why, WORKSPACE_WHY_MAX, "cannot check the free space of %.300s: %s",
				 workspace->path, strerror(errno));
		return EX_TEMPFAIL;
	}
	available = (int64_t) fs.f_bavail * (int64_t) fs.f_frsize;
	if (available < bytes)
	{
		snprintf(why, WORKSPACE_WHY_MAX,
				 "out of temp space: the job needs %lld bytes, %.300s has %lld free",
				 (long long) bytes, workspace->path, (long long) available);
		return EX_TEMPFAIL;
	}
	return 0;
}

/* The path of a file in the workspace. */
bool
workspace_file(const Workspace *workspace, const char *name, char *path, size_t size)
{
	return snprintf(path, size, "%s/%s", workspace->path, name) < (int) size;
}

/* Remove the workspace and everything in it. */
void
workspace_remove(Workspace *workspace)
{
	if (workspace->path[0] == '\0')
		return;
	if (workspace->remover_fd >= 0)
	{
		close(workspace->remover_fd);
		workspace->remover_fd = -1;
		while (waitpid(workspace->remover_pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	else
		remove_tree(workspace->path);
	workspace->path[0] = '\0';
	if (workspace->lock_fd >= 0)
		close(workspace->lock_fd);
	workspace->lock_fd = -1;
}

/* "original" plus the key's extension when it is short and plain, for demuxer probing. */
void
workspace_original_name(const char *key, char *name, size_t size)
{
	const char *dot = strrchr(key, '.');
	size_t		len = dot ? strlen(dot + 1) : 0;
	bool		plain = len > 0 && len <= EXTENSION_MAX && strchr(dot, '/') == NULL;

	for (size_t i = 0; plain && i < len; i++)
		plain = (dot[1 + i] >= 'a' && dot[1 + i] <= 'z') ||
			(dot[1 + i] >= 'A' && dot[1 + i] <= 'Z') ||
			(dot[1 + i] >= '0' && dot[1 + i] <= '9');
	snprintf(name, size, plain ? "original.%s" : "original", plain ? dot + 1 : "");
}
