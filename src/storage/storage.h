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
#include <stddef.h>
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

/*
 * Remove every object whose key starts with prefix, which ends in '/' (so
 * "tmp/job-1/" never touches "tmp/job-10/...").  S3: ListObjectsV2 pages and
 * a DeleteObject per object, a few in flight; files: the prefix's directory
 * emptied depth first and removed, never following a symbolic link (a link is
 * removed as an object).  *removed counts the objects removed; nothing below
 * the prefix is success.
 */
extern int	storage_delete_prefix(Storage *storage, const char *prefix,
								  const StorageHooks *hooks, int64_t *removed, char *why);

/*
 * Ranged reads of one object, for readers that need only part of it (a
 * segment of a long original).  The object's size is known once it is open
 * (HeadObject or fstat), and every read sees that same version (S3: each
 * range is asked for with If-Match on the ETag; a changed object fails the
 * read with EX_TEMPFAIL).  On S3 each read is one GET with a Range header on
 * the storage handle's connections, which stay open from one read to the
 * next; a read shorter than readahead_bytes fetches readahead_bytes (up to the
 * object's end) and serves the reads that follow from them.  On files, reads
 * are pread() on the checked descriptor.
 */
typedef struct StorageReader StorageReader;

/* Open an object for ranged reads; readahead_bytes 0: fetch exactly what is read. */
extern int	storage_reader_open(Storage *storage, const char *key, int64_t readahead_bytes,
								const StorageHooks *hooks, StorageReader **reader, char *why);

/* The object's size in bytes. */
extern int64_t storage_reader_size(const StorageReader *reader);

/*
 * Read up to length bytes at offset into buffer; *got is less than length
 * only at the object's end (0 at or past it).
 */
extern int	storage_reader_read(StorageReader *reader, int64_t offset, void *buffer,
								size_t length, size_t *got, char *why);

/* What the reader fetched from storage: bytes (read-ahead included) and reads. */
typedef struct StorageReadCounts
{
	int64_t		bytes;
	int64_t		requests;
} StorageReadCounts;

extern StorageReadCounts storage_reader_counts(const StorageReader *reader);

/* Close a reader; NULL is fine. */
extern void storage_reader_close(StorageReader *reader);

#endif							/* VPROXY_STORAGE_H */
