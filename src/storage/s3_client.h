/*
 * s3_client.h
 *		What the S3 files of the storage room share: the client (bucket,
 *		endpoint, credentials, connection pool), one request and its answer,
 *		and the engine that runs requests with retries.
 */
#ifndef VPROXY_STORAGE_S3_CLIENT_H
#define VPROXY_STORAGE_S3_CLIENT_H

#include <curl/curl.h>

#include "common/s3_location.h"

#include "storage/storage_internal.h"

/*
 * Retries of transient failures: attempts per request, and a time budget per
 * request from its first attempt.
 */
#define S3_MAX_ATTEMPTS 5
#define S3_RETRY_BASE_MS 200
#define S3_RETRY_CAP_MS 4000
#define S3_RETRY_BUDGET_SECONDS 120

/* Objects up to this size go up in one PUT, larger ones in parts. */
#define S3_SINGLE_PUT_MAX_BYTES (16 * 1024 * 1024)
#define S3_PART_MIN_BYTES (8 * 1024 * 1024)
#define S3_MAX_PARTS 10000

/* Downloads above this size are fetched as ranges of this size, in parallel. */
#define S3_RANGE_BYTES (16 * 1024 * 1024)

/* Requests in flight at once for the parts of one transfer. */
#define S3_PARALLEL_TRANSFERS 4

/* Response bodies kept for reading (errors, XML); object bodies go to files. */
#define S3_RESPONSE_KEEP_BYTES (256 * 1024)

typedef struct S3Client
{
	S3Location	location;		/* bucket, prefix, region, host, base path */
	char	   *access_key_id;
	char	   *secret_access_key;
	char	   *session_token;	/* NULL, or sent as x-amz-security-token (signed) */
	char	   *ca_file;		/* NULL: the system's CA store */
	char	   *sigv4;			/* "aws:amz:REGION:s3" for CURLOPT_AWS_SIGV4 */
	char	   *base_url;		/* scheme://host[:port][/path], up to the key */
	CURLM	   *multi;			/* keeps connections open between requests */
} S3Client;

/* One S3 request and what came back; the engine owns the fields below `sent`. */
typedef struct S3Request
{
	const char *operation;		/* for messages: "GetObject", "UploadPart", ... */
	const char *method;			/* GET, PUT, HEAD, DELETE, POST */
	char	   *url;			/* owned */
	const char *object_key;		/* the full key, for messages */
	int			part_number;	/* UploadPart: for messages; else 0 */
	const char *content_type;	/* sent as Content-Type, or NULL */
	const char *if_match;		/* GET: the ETag the object must still have */
	int64_t		range_start;	/* GET: first byte wanted, -1: no Range */
	int64_t		range_length;
	int			sink_fd;		/* GET: write the body at range_start, or -1 */
	char	   *sink_memory;	/* GET: or into this (range_length bytes), or NULL */
	int			body_fd;		/* PUT: send body_length bytes at body_offset */
	int64_t		body_offset;
	int64_t		body_length;
	const char *body_memory;	/* POST: send this instead (NUL-terminated) */
	char		payload_sha256[65]; /* hex; computed before the first attempt */

	/* the answer to the last attempt */
	long		http_status;
	char		etag[128];
	char		content_type_seen[128];
	int64_t		content_length; /* -1: not given */
	int64_t		content_range_start;	/* -1: no Content-Range */
	char	   *response;		/* kept body (NUL-terminated), or NULL */
	size_t		response_length;

	/* engine state */
	CURL	   *easy;
	struct curl_slist *headers;
	char		curl_error[CURL_ERROR_SIZE];
	int64_t		moved;			/* body bytes moved by the current attempt */
	int64_t		kept;			/* GET: bytes written by earlier attempts */
	int			local_errno;	/* a local read or write failed */
	const char *protocol_error; /* the server's answer made no sense */
	int			attempts;
	double		first_started;	/* monotonic seconds of the first attempt */
	double		not_before;		/* no attempt before this (backoff) */
	int			state;
} S3Request;

/* Fill in a request for `method` on the object with full key `object_key`. */
extern int	s3_request_init(S3Client *client, S3Request *request, const char *operation,
							const char *method, const char *object_key, const char *query,
							char *why);

/* Free what the request owns. */
extern void s3_request_free(S3Request *request);

/*
 * Run requests, at most `parallel` at a time, retrying transient failures;
 * progress counts the body bytes of all of them against progress_total.
 */
extern int	s3_run(S3Client *client, S3Request **requests, int count, int parallel,
				   const StorageHooks *hooks, int64_t progress_total, char *why);

/* Run one request. */
extern int	s3_run_one(S3Client *client, S3Request *request, const StorageHooks *hooks,
					   char *why);

/* What an attempt's outcome means: done, worth another attempt, or failed. */
typedef enum S3Outcome
{
	S3_DONE,
	S3_RETRY,
	S3_FAILED
} S3Outcome;

/* Classify a finished attempt; on RETRY or FAILED, why says what went wrong. */
extern S3Outcome s3_classify(S3Client *client, S3Request *request, CURLcode code,
							 int *status, char *why);

/*
 * A visitor of the leaf elements of an XML document: path from the root
 * ("Error/Code") and text, decoded; false stops the parse.
 */
typedef bool (*S3XmlVisitor) (const char *path, const char *text, void *arg);

/* Parse a document with libexpat, visiting every leaf; NULL or why it failed. */
extern const char *s3_xml_parse(const char *document, size_t length, S3XmlVisitor visit,
								void *arg);

/* The text of the first element at path ("Error/Code") of a document. */
extern bool s3_xml_text(const char *document, const char *path, char *out, size_t size);

/* Text escaped for XML content and attribute values (& < > " ' as entities); malloc'd. */
extern char *s3_xml_escape(const char *text);

/* Lowercase hex SHA-256 of a buffer, or of a byte range of a file. */
extern void s3_sha256_hex(const void *data, size_t length, char hex[65]);
extern int	s3_sha256_file_hex(int fd, int64_t offset, int64_t length, char hex[65]);

/* A presigned GET URL of a storage key (below the location's prefix). */
extern int	s3_presign_url(S3Client *client, const char *key, int expires_seconds,
						   char **url, char *why);

/* HeadObject of a full key; a refusal is explained with its S3 error code. */
extern int	s3_head_object(S3Client *client, const char *object_key, const StorageHooks *hooks,
						   StorageObjectInfo *info, char *why);

/* Upload a file: one PUT, or a multipart upload above the threshold. */
extern int	s3_upload(S3Client *client, const char *object_key, const char *local_path,
					  const char *content_type, const StorageHooks *hooks, char *why);

/* Multipart upload of an open file of `size` bytes (aborted on failure). */
extern int	s3_multipart_upload(S3Client *client, const char *object_key, int fd, int64_t size,
								const char *content_type, const StorageHooks *hooks,
								char *why);

/* Download an object into a local file, in parallel ranges. */
extern int	s3_download(S3Client *client, const char *object_key, const char *local_path,
						const StorageHooks *hooks, char *why);

/* Ranged reads (storage_reader_*): HeadObject, then one ranged GET per read. */
extern int	s3_reader_open(void *state, const char *key, const StorageHooks *hooks,
						   void **object, int64_t *size, char *why);
extern int	s3_reader_read(void *state, void *object, int64_t offset, size_t length,
						   void *buffer, char *why);
extern void s3_reader_close(void *state, void *object);

/* Remove every object below a prefix: ListObjectsV2 pages, DeleteObject each. */
extern int	s3_delete_prefix(void *state, const char *prefix, const StorageHooks *hooks,
							 int64_t *removed, char *why);

#endif							/* VPROXY_STORAGE_S3_CLIENT_H */
