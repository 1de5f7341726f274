/*
 * s3_upload.c
 *		PutObject from a local file: one PUT, its body streamed from the file
 *		and signed by its SHA-256, up to S3_SINGLE_PUT_MAX_BYTES; a multipart
 *		upload above that.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/s3_client.h"

/* Upload a file: one PUT, or a multipart upload above the threshold. */
int
s3_upload(S3Client *client, const char *object_key, const char *local_path,
		  const char *content_type, const StorageHooks *hooks, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	S3Request	put;
	S3Request  *requests[1] = {&put};
	struct stat st;
	int			fd;
	int			status;

	fd = open(local_path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
	{
		int			error = errno;

		return storage_fail(why, storage_errno_status(error), "cannot open %s: %s",
							storage_quote(local_path, quoted, sizeof(quoted)), strerror(error));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		return storage_fail(why, EX_NOINPUT, "%s is not a regular file",
							storage_quote(local_path, quoted, sizeof(quoted)));
	}
	if (st.st_size > S3_SINGLE_PUT_MAX_BYTES)
	{
		status = s3_multipart_upload(client, object_key, fd, st.st_size, content_type, hooks, why);
		close(fd);
		return status;
	}
	status = s3_request_init(client, &put, "PutObject", "PUT", object_key, NULL, why);
	if (status == 0)
	{
		put.content_type = content_type;
		put.body_fd = fd;
		put.body_offset = 0;
		put.body_length = st.st_size;
		status = s3_run(client, requests, 1, 1, hooks, st.st_size, why);
	}
	s3_request_free(&put);
	close(fd);
	return status;
}
