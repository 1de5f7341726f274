/*
 * storage.h
 *		What the storage room offers: objects addressed by key in a local
 *		directory (file:///absolute/dir) or an S3 bucket (s3://bucket[/prefix]),
 *		behind one interface.  No PostgreSQL, no libav in here.
 *
 * Every entry point returns 0 on success or a <sysexits.h> status:
 *		EX_NOINPUT		the object (or bucket) does not exist
 *		EX_NOPERM		refused: credentials, signature, permissions, a key
 *						escaping the storage root
 *		EX_TEMPFAIL		transient and still failing after the bounded retries:
 *						unreachable, timeouts, 5xx, throttling, out of space,
 *						interrupted by a stop request
 *		EX_USAGE		a configuration that cannot work (bad URL, scheme)
 *		EX_SOFTWARE		anything else (other 4xx, with the S3 error code)
 * On failure `why` (STORAGE_WHY_MAX bytes) holds one line naming the cause:
 * bucket, key and S3 error code, never a secret.
 */
#ifndef VPROXY_STORAGE_H
#define VPROXY_STORAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sysexits.h>

#define STORAGE_WHY_MAX 512

/* Where objects live and how to reach them; strings may be NULL or "". */
typedef struct StorageConfig
{
	const char *url;			/* file:///absolute/dir or s3://bucket[/prefix] */
	const char *s3_endpoint;	/* "" = AWS virtual-hosted, else path-style */
	const char *s3_region;		/* "" = us-east-1 */
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;	/* temporary credentials: "" or NULL = none */
	const char *ca_file;		/* "" = the system's CA store */
} StorageConfig;

/* Callbacks a long transfer calls; any may be NULL. */
typedef struct StorageHooks
{
	bool		(*should_stop) (void *arg);	/* true: abandon now */
	void		(*progress) (int64_t done, int64_t total, void *arg);
	void	   *arg;
} StorageHooks;

/* What head reports of an object. */
typedef struct StorageObjectInfo
{
	int64_t		size_bytes;
	char		etag[128];
	char		content_type[128];
} StorageObjectInfo;

typedef struct Storage Storage;

/*
 * The gate every write to the storage passes before it starts: an upload,
 * each part of a multipart upload and its completion, a rename into the
 * store, a delete (the abort of an unfinished multipart upload is not a
 * write).  0 lets the write start; a status, with why, refuses it.  One per
 * process; none (the default) lets every write start.  vproxy-transcode job
 * sets its lease fence here.
 */
typedef int (*StorageWriteGate) (const char *operation, const char *key, char *why);

extern void storage_set_write_gate(StorageWriteGate gate);

/* Parse the configuration and prepare a handle (no network traffic yet). */
extern int	storage_open(const StorageConfig *config, Storage **storage, char *why);
extern void storage_close(Storage *storage);

/*
 * A descriptor open on the object's bytes, for reading them in place without
 * a copy (the file backend: checked against escapes and to be a regular
 * file), or -1 when the object must be fetched (S3).  The caller closes it.
 */
extern int	storage_local_open(Storage *storage, const char *key, int *fd, char *why);

/* Download an object into a local file, streamed. */
extern int	storage_get(Storage *storage, const char *key, const char *local_path,
						const StorageHooks *hooks, char *why);

/* Upload a local file as an object, atomically replacing any previous one. */
extern int	storage_put(Storage *storage, const char *key, const char *local_path,
						const char *content_type, const StorageHooks *hooks, char *why);

/* Size, ETag and content type of an object. */
extern int	storage_head(Storage *storage, const char *key, StorageObjectInfo *info,
						 char *why);

/* Remove an object; removing one that does not exist succeeds, as in S3. */
extern int	storage_delete(Storage *storage, const char *key, char *why);

/* A presigned GET URL valid for 1 s .. 7 days (S3); a file:// URL for files. */
extern int	storage_presign(Storage *storage, const char *key, int expires_seconds,
							char **url, char *why);

#endif							/* VPROXY_STORAGE_H */
