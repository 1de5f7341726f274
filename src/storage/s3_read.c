/*
 * s3_read.c
 *		Ranged reads of an S3 object (storage_reader_* of storage.h): a
 *		HeadObject for its size and ETag, then one GET with Range and
 *		If-Match per read, its bytes written straight into the caller's
 *		memory, on the client's connections (kept open between requests).
 *		A range whose connection broke resumes where it stopped, as downloads
 *		do.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/s3_client.h"

/* An object open for ranged reads. */
typedef struct S3Object
{
	char	   *object_key;		/* the full key */
	char		etag[128];		/* "" if the store gave none */
	StorageHooks hooks;
	bool		has_hooks;
} S3Object;

/* HeadObject: the object's size, and the ETag every read must match. */
int
s3_reader_open(void *state, const char *key, const StorageHooks *hooks, void **object,
			   int64_t *size, char *why)
{
	S3Client   *client = state;
	S3Object   *opened = calloc(1, sizeof(S3Object));
	StorageObjectInfo info;
	int			status;

	if (opened == NULL ||
		(opened->object_key = storage_format("%s%s", client->location.prefix, key)) == NULL)
	{
		free(opened);
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	}
	status = s3_head_object(client, opened->object_key, hooks, &info, why);
	if (status != 0)
	{
		free(opened->object_key);
		free(opened);
		return status;
	}
	snprintf(opened->etag, sizeof(opened->etag), "%s", info.etag);
	if (hooks != NULL)
	{
		opened->hooks = *hooks;
		opened->has_hooks = true;
	}
	*size = info.size_bytes;
	*object = opened;
	return 0;
}

/* One GET of exactly length bytes at offset, into buffer. */
int
s3_reader_read(void *state, void *object, int64_t offset, size_t length, void *buffer,
			   char *why)
{
	S3Client   *client = state;
	S3Object   *opened = object;
	S3Request	request;
	char		quoted[STORAGE_WHY_MAX / 2];
	int			status;

	status = s3_request_init(client, &request, "GetObject", "GET", opened->object_key, NULL, why);
	if (status == 0)
	{
		request.range_start = offset;
		request.range_length = (int64_t) length;
		request.sink_memory = buffer;
		request.if_match = opened->etag[0] ? opened->etag : NULL;
		status = s3_run_one(client, &request, opened->has_hooks ? &opened->hooks : NULL, why);
	}
	if (status == 0 && request.kept != (int64_t) length)
		status = storage_fail(why, EX_TEMPFAIL,
							  "GetObject of key %s in bucket %s: got %lld of %zu bytes at %lld",
							  storage_quote(opened->object_key, quoted, sizeof(quoted)),
							  client->location.bucket, (long long) request.kept, length,
							  (long long) offset);
	s3_request_free(&request);
	return status;
}

/* Forget an open object. */
void
s3_reader_close(void *state, void *object)
{
	S3Object   *opened = object;

	(void) state;
	free(opened->object_key);
	free(opened);
}
