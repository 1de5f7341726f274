/*
 * job_workspace.h
 *		The private temp directory of one job: made 0700, checked for room,
 *		removed whatever happens.  Directories left by jobs that were killed
 *		(SIGKILL leaves no chance to clean up) are swept by the next job,
 *		even when their pid has been reused since (a lock tells).  Made
 *		before the sandbox (sandbox.h), which allows it and nothing else of
 *		the directory around it; removed by a process outside the sandbox.
 */
#ifndef VPROXY_TRANSCODE_JOB_WORKSPACE_H
#define VPROXY_TRANSCODE_JOB_WORKSPACE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#define WORKSPACE_WHY_MAX 512

typedef struct Workspace
{
	char		path[PATH_MAX];	/* "" until created */
	int			lock_fd;		/* holds an exclusive flock on it; -1: none */
	int			remover_fd;		/* the remover's pipe (job_workspace.c); -1: none */
	pid_t		remover_pid;
} Workspace;

/* Make the workspace below parent ("" = $TMPDIR or /tmp); EX_TEMPFAIL if impossible. */
extern int	workspace_create(const char *parent, Workspace *workspace, char *why);

/* EX_TEMPFAIL unless the workspace's file system has bytes free. */
extern int	workspace_require_space(const Workspace *workspace, int64_t bytes, char *why);

/* The path of a file in the workspace; false if it does not fit. */
extern bool workspace_file(const Workspace *workspace, const char *name,
						   char *path, size_t size);

/* "original" plus the key's extension when it is short and plain, for demuxer probing. */
extern void workspace_original_name(const char *key, char *name, size_t size);

/* Remove the workspace and everything in it. */
extern void workspace_remove(Workspace *workspace);

#endif							/* VPROXY_TRANSCODE_JOB_WORKSPACE_H */
