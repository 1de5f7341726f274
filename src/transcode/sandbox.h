/*
 * sandbox.h
 *		A run of vproxy-transcode confines itself before it reads an upload:
 *		Landlock keeps its files to what it needs (the system's libraries and
 *		data, the few files of /etc that TLS and name resolution read, its temp
 *		directory, the storage directory) and its TCP connections to the
 *		storage's port; a seccomp filter refuses the system calls a decoder
 *		never makes (Unix sockets, ptrace, exec, new processes, signals to
 *		other processes, namespaces, mounts, modules, keyrings, bpf, ...).  An
 *		upload that takes over a decoder keeps the process's user, but not
 *		the rest of that user's files: not the PostgreSQL data directory, its
 *		configuration or its socket.  What is allowed, exactly, and what is
 *		not covered: job-protocol.md, "The sandbox".
 */
#ifndef VPROXY_TRANSCODE_SANDBOX_H
#define VPROXY_TRANSCODE_SANDBOX_H

#include "storage/storage.h"

#define SANDBOX_WHY_MAX 512

/*
 * What one run may reach besides the system's own files.  Each list ends
 * with NULL and may itself be NULL; a path that does not exist is left out
 * (what needs it then fails as it would have).
 */
typedef struct SandboxRules
{
	const char *const *read;	/* files or directories to read */
	const char *const *write;	/* directories to read, write, create and remove in */
	const char *const *outputs; /* files to make: their directories are writable */
	const StorageConfig *storage;	/* its directory (file://), or its port and CA file (S3) */
} SandboxRules;

/*
 * Confine this process and every thread and process it starts from now on
 * (no_new_privs, Landlock, seccomp).  It must be called before any thread
 * exists: Landlock confines the calling thread only.  A kernel without
 * Landlock, or with an older ABI than the newest rights used here, leaves
 * out what it lacks and says so in one line on stderr.  0, or EX_SOFTWARE
 * with the reason in why (SANDBOX_WHY_MAX bytes).
 */
extern int	sandbox_apply(const SandboxRules *rules, char *why);

#endif							/* VPROXY_TRANSCODE_SANDBOX_H */
