/*
 * local_output.c
 *		A local file written under a temporary name in its final directory and
 *		renamed into place when complete: readers never see a partial file,
 *		and a failure leaves nothing behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "storage/storage_internal.h"

/* Pick a fresh random temporary name and create it exclusively. */
static int
create_temp_file(LocalOutput *output, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];

	for (int tries = 0; tries < 100; tries++)
	{
		unsigned char random_bytes[8];

		if (getrandom(random_bytes, sizeof(random_bytes), 0) != sizeof(random_bytes))
			return storage_fail(why, EX_SOFTWARE, "cannot get random bytes: %s",
								strerror(errno));
		snprintf(output->temp_name, sizeof(output->temp_name),
				 ".vproxy-%02x%02x%02x%02x%02x%02x%02x%02x.tmp",
				 random_bytes[0], random_bytes[1], random_bytes[2], random_bytes[3],
				 random_bytes[4], random_bytes[5], random_bytes[6], random_bytes[7]);
		output->fd = openat(output->dir_fd, output->temp_name,
							O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
		if (output->fd >= 0)
			return 0;
		if (errno != EEXIST)
		{
			int			error = errno;

			output->temp_name[0] = '\0';
			return storage_fail(why, storage_errno_status(error),
								"cannot create a file next to %s: %s",
								storage_quote(output->display_path, quoted, sizeof(quoted)),
								strerror(error));
		}
	}
	output->temp_name[0] = '\0';
	return storage_fail(why, EX_SOFTWARE, "cannot find a free temporary file name next to %s",
						storage_quote(output->display_path, quoted, sizeof(quoted)));
}

/* Create the temporary file for `name` in the open directory dir_fd (taken over). */
int
local_output_open_at(LocalOutput *output, int dir_fd, const char *name,
					 const char *display_path, char *why)
{
	int			status;

	memset(output, 0, sizeof(*output));
	output->dir_fd = dir_fd;
	output->fd = -1;
	output->final_name = strdup(name);
	output->display_path = strdup(display_path);
	if (output->final_name == NULL || output->display_path == NULL)
	{
		local_output_discard(output);
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	}
	status = create_temp_file(output, why);
	if (status != 0)
		local_output_discard(output);
	return status;
}

/* Create the temporary file for a path whose directory must exist. */
int
local_output_open(LocalOutput *output, const char *path, char *why)
{
	const char *slash = strrchr(path, '/');
	const char *name = slash ? slash + 1 : path;
	char	   *dir;
	int			dir_fd;
	char		quoted[STORAGE_WHY_MAX / 2];

	memset(output, 0, sizeof(*output));
	output->dir_fd = -1;
	output->fd = -1;
	if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
		return storage_fail(why, EX_USAGE, "not a file name: %s",
							storage_quote(path, quoted, sizeof(quoted)));
	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, slash - path);
	if (dir == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
	{
		int			error = errno;

		free(dir);
		return storage_fail(why, storage_errno_status(error) == EX_NOINPUT ? EX_USAGE :
							storage_errno_status(error),
							"cannot open the directory of %s: %s",
							storage_quote(path, quoted, sizeof(quoted)), strerror(error));
	}
	free(dir);
	return local_output_open_at(output, dir_fd, name, path, why);
}

/* Rename into place (after fsync of file and directory when durable). */
int
local_output_commit(LocalOutput *output, bool durable, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	int			fd = output->fd;
	int			error = 0;

	output->fd = -1;
	if (durable && fsync(fd) != 0)
		error = errno;
	if (close(fd) != 0 && error == 0)
		error = errno;
	if (error != 0)
	{
		local_output_discard(output);
		return storage_fail(why, storage_errno_status(error), "cannot write %s: %s",
							storage_quote(output->display_path, quoted, sizeof(quoted)),
							strerror(error));
	}
	if (renameat(output->dir_fd, output->temp_name, output->dir_fd, output->final_name) != 0)
	{
		int			error = errno;

		local_output_discard(output);
		return storage_fail(why, storage_errno_status(error), "cannot rename into %s: %s",
							storage_quote(output->display_path, quoted, sizeof(quoted)),
							strerror(error));
	}
	output->temp_name[0] = '\0';
	if (durable && fsync(output->dir_fd) != 0)
	{
		int			error = errno;

		local_output_discard(output);
		return storage_fail(why, storage_errno_status(error),
							"cannot sync the directory of %s: %s",
							storage_quote(output->display_path, quoted, sizeof(quoted)),
							strerror(error));
	}
	local_output_discard(output);
	return 0;
}

/* Remove the temporary file and release everything; safe after commit. */
void
local_output_discard(LocalOutput *output)
{
	if (output->fd >= 0)
		close(output->fd);
	output->fd = -1;
	if (output->temp_name[0] != '\0' && output->dir_fd >= 0)
		unlinkat(output->dir_fd, output->temp_name, 0);
	output->temp_name[0] = '\0';
	if (output->dir_fd >= 0)
		close(output->dir_fd);
	output->dir_fd = -1;
	free(output->final_name);
	output->final_name = NULL;
	free(output->display_path);
	output->display_path = NULL;
}
