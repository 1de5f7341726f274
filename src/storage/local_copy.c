/*
 * local_copy.c
 *		Copy a local file into another, in the kernel (copy_file_range) when
 *		the file systems allow it, in bounded chunks so that a stop request
 *		is noticed and progress reported.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "storage/storage_internal.h"

#define COPY_CHUNK_BYTES (8 * 1024 * 1024)
#define COPY_BUFFER_BYTES (1024 * 1024)

/* Copy one chunk with read and write, for file systems copy_file_range refuses. */
static ssize_t
copy_chunk_by_hand(int in_fd, int out_fd, off_t offset, size_t length, char *buffer)
{
	ssize_t		got = pread(in_fd, buffer, length < COPY_BUFFER_BYTES ? length : COPY_BUFFER_BYTES,
							offset);

	if (got <= 0)
		return got;
	for (ssize_t written = 0; written < got;)
	{
		ssize_t		n = pwrite(out_fd, buffer + written, got - written, offset + written);

		if (n < 0)
			return -1;
		written += n;
	}
	return got;
}

/* Copy `length` bytes from the start of in_fd into out_fd. */
int
storage_copy_fd(int in_fd, int out_fd, int64_t length, const StorageHooks *hooks,
				const char *in_display, const char *out_display, char *why)
{
	char		quoted_in[STORAGE_WHY_MAX / 3];
	char		quoted_out[STORAGE_WHY_MAX / 3];
	char	   *buffer = NULL;
	int64_t		done = 0;

	storage_progress(hooks, 0, length);
	while (done < length)
	{
		size_t		want = length - done < COPY_CHUNK_BYTES ? length - done : COPY_CHUNK_BYTES;
		ssize_t		n = -1;

		if (storage_should_stop(hooks))
		{
			free(buffer);
			return storage_fail(why, EX_TEMPFAIL, "copy of %s interrupted by a stop request",
								storage_quote(in_display, quoted_in, sizeof(quoted_in)));
		}
		if (buffer == NULL)
		{
			loff_t		off_in = done;
			loff_t		off_out = done;

			n = copy_file_range(in_fd, &off_in, out_fd, &off_out, want, 0);
			if (n < 0 && (errno == EXDEV || errno == EINVAL || errno == ENOSYS ||
						  errno == EOPNOTSUPP))
			{
				buffer = malloc(COPY_BUFFER_BYTES);
				if (buffer == NULL)
					return storage_fail(why, EX_SOFTWARE, "out of memory");
			}
		}
		if (buffer != NULL)
			n = copy_chunk_by_hand(in_fd, out_fd, done, want, buffer);
		if (n < 0)
		{
			int			error = errno;

			free(buffer);
			return storage_fail(why, storage_errno_status(error) == EX_NOINPUT ? EX_SOFTWARE :
								storage_errno_status(error),
								"cannot copy %s to %s: %s",
								storage_quote(in_display, quoted_in, sizeof(quoted_in)),
								storage_quote(out_display, quoted_out, sizeof(quoted_out)),
								strerror(error));
		}
		if (n == 0)
		{
			free(buffer);
			return storage_fail(why, EX_TEMPFAIL, "%s shrank while being copied",
								storage_quote(in_display, quoted_in, sizeof(quoted_in)));
		}
		done += n;
		storage_progress(hooks, done, length);
	}
	free(buffer);
	return 0;
}
