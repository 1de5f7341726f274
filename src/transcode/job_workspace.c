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
 */
#define _XOPEN_SOURCE 700
#define _DEFAULT_SOURCE			/* flock */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "transcode/job_workspace.h"

#define WORKSPACE_PREFIX "vproxy-job-"
/* a directory younger than this may not be locked by its maker yet */
#define UNLOCKED_GRACE_SECONDS 60

/* nftw callback: remove one entry, children first. */
static int
remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* Remove a directory tree without following symlinks. */
static void
remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
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

/* Make the workspace below parent ("" = $TMPDIR or /tmp). */
int
workspace_create(const char *parent, Workspace *workspace, char *why)
{
	workspace->path[0] = '\0';
	workspace->lock_fd = -1;
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
	remove_tree(workspace->path);
	workspace->path[0] = '\0';
	if (workspace->lock_fd >= 0)
		close(workspace->lock_fd);
	workspace->lock_fd = -1;
}
