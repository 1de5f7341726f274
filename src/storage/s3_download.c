/*
 * s3_download.c
 *		GetObject into a local file: HEAD first (size and ETag), then the
 *		object in ranges fetched a few at a time and written in place, each
 *		with If-Match so that all of them come from the same version.  The
 *		file is written under a temporary name and renamed when complete.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/s3_client.h"

/*
 * Reserve the file's space at once, so that a full disk shows up first (its
 * size still grows only as bytes arrive, for the final check).
 */
static int
reserve_space(LocalOutput *output, int64_t size, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];

	if (size > 0 && fallocate(output->fd, FALLOC_FL_KEEP_SIZE, 0, size) != 0 &&
		errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL)
	{
		int			error = errno;

		return storage_fail(why, storage_errno_status(error) == EX_NOINPUT ? EX_SOFTWARE :
							storage_errno_status(error), "no room for %lld bytes in %s: %s",
							(long long) size,
							storage_quote(output->display_path, quoted, sizeof(quoted)),
							strerror(error));
	}
	return 0;
}

/* Fetch the object's bytes into the open output, in parallel ranges. */
static int
fetch_ranges(S3Client *client, const char *object_key, LocalOutput *output, int64_t size,
			 const char *etag, const StorageHooks *hooks, char *why)
{
	int			count = (int) ((size + S3_RANGE_BYTES - 1) / S3_RANGE_BYTES);
	S3Request  *requests = calloc(count, sizeof(S3Request));
	S3Request **pointers = calloc(count, sizeof(S3Request *));
	int			made = 0;
	int			status = 0;

	if (requests == NULL || pointers == NULL)
		status = storage_fail(why, EX_SOFTWARE, "out of memory");
	for (; status == 0 && made < count; made++)
	{
		S3Request  *request = &requests[made];

		status = s3_request_init(client, request, "GetObject", "GET", object_key, NULL, why);
		request->range_start = (int64_t) made * S3_RANGE_BYTES;
		request->range_length = size - request->range_start < S3_RANGE_BYTES ?
			size - request->range_start : S3_RANGE_BYTES;
		request->sink_fd = output->fd;
		request->if_match = etag[0] ? etag : NULL;
		pointers[made] = request;
	}
	if (status == 0)
		status = s3_run(client, pointers, count, S3_PARALLEL_TRANSFERS, hooks, size, why);
	for (int i = 0; i < made; i++)
		s3_request_free(&requests[i]);
	free(requests);
	free(pointers);
	return status;
}

/* Download an object into a local file. */
int
s3_download(S3Client *client, const char *object_key, const char *local_path,
			const StorageHooks *hooks, char *why)
{
	StorageObjectInfo info;
	LocalOutput output;
	struct stat st;
	char		quoted[STORAGE_WHY_MAX / 2];
	int			status;

	status = s3_head_object(client, object_key, hooks, &info, why);
	if (status != 0)
		return status;
	status = local_output_open(&output, local_path, why);
	if (status != 0)
		return status;
	status = reserve_space(&output, info.size_bytes, why);
	if (status == 0 && info.size_bytes > 0)
		status = fetch_ranges(client, object_key, &output, info.size_bytes, info.etag, hooks, why);
	if (status == 0 && (fstat(output.fd, &st) != 0 || st.st_size != info.size_bytes))
		status = storage_fail(why, EX_TEMPFAIL, "GetObject of key %s in bucket %s: got %lld of %lld bytes",
							  storage_quote(object_key, quoted, sizeof(quoted)), client->location.bucket,
							  (long long) st.st_size, (long long) info.size_bytes);
	if (status == 0)
		return local_output_commit(&output, false, why);
	local_output_discard(&output);
	return status;
}
