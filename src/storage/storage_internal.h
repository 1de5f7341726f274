/*
 * storage_internal.h
 *		What the files of the storage room share: the backend table behind
 *		struct Storage, and helpers for failure messages and local files.
 */
#ifndef VPROXY_STORAGE_INTERNAL_H
#define VPROXY_STORAGE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/storage.h"

/* The operations of one backend; `state` is the backend's own handle. */
typedef struct StorageBackend
{
	int			(*local_open) (void *state, const char *key, int *fd, char *why);
	int			(*get) (void *state, const char *key, const char *local_path,
						const StorageHooks *hooks, char *why);
	int			(*put) (void *state, const char *key, const char *local_path,
						const char *content_type, const StorageHooks *hooks, char *why);
	int			(*head) (void *state, const char *key, StorageObjectInfo *info, char *why);
	int			(*delete) (void *state, const char *key, char *why);
	int			(*presign) (void *state, const char *key, int expires_seconds,
							char **url, char *why);
	/* ranged reads: open (size known), read exactly length bytes, close */
	int			(*reader_open) (void *state, const char *key, const StorageHooks *hooks,
								void **object, int64_t *size, char *why);
	int			(*reader_read) (void *state, void *object, int64_t offset, size_t length,
								void *buffer, char *why);
	void		(*reader_close) (void *state, void *object);
	int			(*delete_prefix) (void *state, const char *prefix, const StorageHooks *hooks,
								  int64_t *removed, char *why);
	void		(*close) (void *state);
} StorageBackend;

struct Storage
{
	const StorageBackend *backend;
	void	   *state;
};

/* Backends: fill in storage->backend and storage->state. */
extern int	file_backend_open(const char *root, Storage *storage, char *why);
extern int	s3_backend_open(const StorageConfig *config, Storage *storage, char *why);

/*
 * Refuse an empty key (EX_USAGE) and what the one key rule refuses
 * (src/common/storage_key.h; EX_NOPERM) before any backend sees the key.
 */
extern int	storage_check_key(const char *key, char *why);

/* Write a one-line cause into why (STORAGE_WHY_MAX bytes); return status. */
extern int	storage_fail(char *why, int status, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/*
 * Quote a key or path for a message: double quotes around it, control
 * characters and quotes escaped, cut with "..." when longer than the buffer.
 */
extern const char *storage_quote(const char *text, char *buffer, size_t size);

/* Text percent-encoded (src/common/percent_encode.h), malloc'd; NULL when out of memory. */
extern char *storage_percent_encode(const char *text, bool keep_slash);

/* A formatted, malloc'd string, or NULL when out of memory. */
extern char *storage_format(const char *fmt,...) __attribute__((format(printf, 1, 2)));

/* The status for a failed local file operation's errno (ENOSPC: transient). */
extern int	storage_errno_status(int error);

/* Whether the caller asked to stop; hooks may be NULL. */
extern bool storage_should_stop(const StorageHooks *hooks);

/* Report progress through the hooks, if any. */
extern void storage_progress(const StorageHooks *hooks, int64_t done, int64_t total);

/* Ask the write gate (storage_set_write_gate) whether a write may start: 0, or its status. */
extern int	storage_may_write(const char *operation, const char *key, char *why);

/*
 * A local file written under a temporary name in its final directory and
 * renamed into place only when complete, so that no partial file is ever
 * seen under the final name.
 */
typedef struct LocalOutput
{
	int			dir_fd;			/* the directory, owned */
	int			fd;				/* the temporary file, -1 when closed */
	char		temp_name[256];
	char	   *final_name;
	char	   *display_path;	/* for messages */
} LocalOutput;

/* Create the temporary file for `name` in the open directory dir_fd (taken over). */
extern int	local_output_open_at(LocalOutput *output, int dir_fd, const char *name,
								 const char *display_path, char *why);

/* Same for a path: its directory must exist. */
extern int	local_output_open(LocalOutput *output, const char *path, char *why);

/* Rename into place (after fsync of file and directory when durable). */
extern int	local_output_commit(LocalOutput *output, bool durable, char *why);

/* Remove the temporary file and release everything; safe after commit. */
extern void local_output_discard(LocalOutput *output);

/*
 * Copy `length` bytes from in_fd (at its offset 0) to out_fd, in the kernel
 * when possible, checking for stop requests and reporting progress.
 */
extern int	storage_copy_fd(int in_fd, int out_fd, int64_t length,
							const StorageHooks *hooks, const char *in_display,
							const char *out_display, char *why);

#endif							/* VPROXY_STORAGE_INTERNAL_H */
