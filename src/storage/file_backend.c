/*
 * file_backend.c
 *		Objects as files below a local directory (file:///absolute/dir).
 *		Writes go to a temporary file in the target folder, are synced and
 *		renamed into place, then the folder is synced: an object is either the
 *		old one or the complete new one, also after a crash.  The content type
 *		is kept in an extended attribute where the file system has them.
 *		Keys are walked by file_keys.c (never through a symbolic link),
 *		prefixes removed by file_prefix.c.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "storage/file_keys.h"

#define CONTENT_TYPE_XATTR "user.vproxy.content_type"

typedef struct FileBackend
{
	char	   *root;			/* absolute, without trailing slash */
} FileBackend;

/* "root/key", quoted, for messages. */
static const char *
object_display(FileBackend *backend, const char *key, char *buffer, size_t size)
{
	char		path[STORAGE_WHY_MAX];

	snprintf(path, sizeof(path), "%s/%s", backend->root, key);
	return storage_quote(path, buffer, size);
}

/* The object in place: a regular file below the root, open for reading. */
static int
file_local_open(void *state, const char *key, int *fd, char *why)
{
	FileBackend *backend = state;

	return file_key_open(backend->root, key, fd, why);
}

/* Copy the object into a local file. */
static int
file_get(void *state, const char *key, const char *local_path,
		 const StorageHooks *hooks, char *why)
{
	FileBackend *backend = state;
	char		quoted[STORAGE_WHY_MAX / 2];
	char		display[STORAGE_WHY_MAX];
	LocalOutput output;
	struct stat st;
	int			fd;
	int			status;

	status = file_key_open(backend->root, key, &fd, why);
	if (status != 0)
		return status;
	snprintf(display, sizeof(display), "%s/%s", backend->root, key);
	if (fstat(fd, &st) != 0)
		status = storage_fail(why, EX_SOFTWARE, "cannot stat %s: %s",
							  object_display(backend, key, quoted, sizeof(quoted)), strerror(errno));
	if (status == 0)
		status = local_output_open(&output, local_path, why);
	if (status == 0)
	{
		status = storage_copy_fd(fd, output.fd, st.st_size, hooks, display, local_path, why);
		if (status == 0)
			status = local_output_commit(&output, false, why);
		else
			local_output_discard(&output);
	}
	close(fd);
	return status;
}

/* Store a local file as the object, atomically and durably. */
static int
file_put(void *state, const char *key, const char *local_path,
		 const char *content_type, const StorageHooks *hooks, char *why)
{
	FileBackend *backend = state;
	char		quoted[STORAGE_WHY_MAX / 2];
	char		display[STORAGE_WHY_MAX];
	LocalOutput output;
	struct stat st;
	const char *name;
	int			in_fd;
	int			dir_fd;
	int			status;

	in_fd = open(local_path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (in_fd < 0)
	{
		int			error = errno;

		return storage_fail(why, storage_errno_status(error), "cannot open %s: %s",
							storage_quote(local_path, quoted, sizeof(quoted)), strerror(error));
	}
	if (fstat(in_fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(in_fd);
		return storage_fail(why, EX_NOINPUT, "%s is not a regular file",
							storage_quote(local_path, quoted, sizeof(quoted)));
	}
	status = file_key_parent(backend->root, key, true, &dir_fd, &name, why);
	if (status == 0 && file_is_link(dir_fd, name))
	{
		close(dir_fd);
		status = file_link_refused(key, why);
	}
	if (status == 0)
	{
		snprintf(display, sizeof(display), "%s/%s", backend->root, key);
		status = local_output_open_at(&output, dir_fd, name, display, why);
	}
	if (status == 0)
	{
		status = storage_copy_fd(in_fd, output.fd, st.st_size, hooks, local_path, display, why);
		if (status == 0 &&
			fsetxattr(output.fd, CONTENT_TYPE_XATTR, content_type, strlen(content_type), 0) != 0 &&
			errno != ENOTSUP)
		{
			int			error = errno;

			status = storage_fail(why, storage_errno_status(error),
								  "cannot record the content type of %s: %s",
								  object_display(backend, key, quoted, sizeof(quoted)),
								  strerror(error));
		}
		if (status == 0)
			status = storage_may_write("rename into the store", key, why);
		if (status == 0)
			status = local_output_commit(&output, true, why);
		else
			local_output_discard(&output);
	}
	close(in_fd);
	return status;
}

/* Size, an ETag made of modification time and size, and the content type. */
static int
file_head(void *state, const char *key, StorageObjectInfo *info, char *why)
{
	FileBackend *backend = state;
	char		quoted[STORAGE_WHY_MAX / 2];
	struct stat st;
	ssize_t		len;
	int			fd;
	int			status;

	status = file_key_open(backend->root, key, &fd, why);
	if (status != 0)
		return status;
	if (fstat(fd, &st) != 0)
	{
		close(fd);
		return storage_fail(why, EX_SOFTWARE, "cannot stat %s: %s",
							object_display(backend, key, quoted, sizeof(quoted)), strerror(errno));
	}
	info->size_bytes = st.st_size;
	snprintf(info->etag, sizeof(info->etag), "\"%llx.%09ld-%llx\"",
			 (unsigned long long) st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
			 (unsigned long long) st.st_size);
	len = fgetxattr(fd, CONTENT_TYPE_XATTR, info->content_type, sizeof(info->content_type) - 1);
	if (len <= 0)
		snprintf(info->content_type, sizeof(info->content_type), "application/octet-stream");
	else
		info->content_type[len] = '\0';
	close(fd);
	return 0;
}

/* Remove the object's file; a missing object is already deleted. */
static int
file_delete(void *state, const char *key, char *why)
{
	FileBackend *backend = state;
	char		quoted[STORAGE_WHY_MAX / 2];
	const char *name;
	int			dir_fd;
	int			status;

	status = file_key_parent(backend->root, key, false, &dir_fd, &name, why);
	if (status == EX_NOINPUT)
		return 0;
	if (status != 0)
		return status;
	if (unlinkat(dir_fd, name, 0) != 0 && errno != ENOENT)
	{
		int			error = errno;

		close(dir_fd);
		return storage_fail(why, error == EISDIR ? EX_SOFTWARE : storage_errno_status(error),
							"cannot delete %s: %s",
							object_display(backend, key, quoted, sizeof(quoted)), strerror(error));
	}
	close(dir_fd);
	return 0;
}

/* A file:// URL of the object's absolute path, percent-encoded. */
static int
file_presign(void *state, const char *key, int expires_seconds, char **url, char *why)
{
	FileBackend *backend = state;
	char	   *path;
	char	   *encoded;
	int			fd;
	int			status;

	(void) expires_seconds;		/* a local file does not expire */
	status = file_key_open(backend->root, key, &fd, why);
	if (status != 0)
		return status;
	close(fd);
	path = storage_format("%s/%s", backend->root, key);
	encoded = path ? storage_percent_encode(path, true) : NULL;
	*url = encoded ? storage_format("file://%s", encoded) : NULL;
	free(encoded);
	free(path);
	if (*url == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	return 0;
}

/* Open the object for ranged reads: its descriptor is the reader's state. */
static int
file_reader_open(void *state, const char *key, const StorageHooks *hooks, void **object,
				 int64_t *size, char *why)
{
	FileBackend *backend = state;
	char		quoted[STORAGE_WHY_MAX / 2];
	struct stat st;
	int		   *fd = malloc(sizeof(int));
	int			status;

	(void) hooks;				/* a local read does not wait */
	if (fd == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	status = file_key_open(backend->root, key, fd, why);
	if (status == 0 && fstat(*fd, &st) != 0)
	{
		status = storage_fail(why, EX_SOFTWARE, "cannot stat %s: %s",
							  object_display(backend, key, quoted, sizeof(quoted)), strerror(errno));
		close(*fd);
	}
	if (status != 0)
	{
		free(fd);
		return status;
	}
	*size = st.st_size;
	*object = fd;
	return 0;
}

/* Read exactly length bytes at offset (within the object's size). */
static int
file_reader_read(void *state, void *object, int64_t offset, size_t length, void *buffer,
				 char *why)
{
	int			fd = *(int *) object;

	(void) state;
	for (size_t done = 0; done < length;)
	{
		ssize_t		got = pread(fd, (char *) buffer + done, length - done, offset + done);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return storage_fail(why, storage_errno_status(errno) == EX_NOINPUT ? EX_SOFTWARE :
								storage_errno_status(errno), "cannot read an object: %s",
								strerror(errno));
		if (got == 0)
			return storage_fail(why, EX_TEMPFAIL, "an object shrank while being read");
		done += got;
	}
	return 0;
}

/* Close the reader's descriptor. */
static void
file_reader_close(void *state, void *object)
{
	(void) state;
	close(*(int *) object);
	free(object);
}

/* Remove every object below a prefix: the directory walk of file_prefix.c. */
static int
file_delete_prefix(void *state, const char *prefix, const StorageHooks *hooks,
				   int64_t *removed, char *why)
{
	FileBackend *backend = state;

	return file_prefix_remove(backend->root, prefix, hooks, removed, why);
}

/* Release the backend. */
static void
file_close(void *state)
{
	FileBackend *backend = state;

	free(backend->root);
	free(backend);
}

static const StorageBackend file_backend = {
	.local_open = file_local_open,
	.get = file_get,
	.put = file_put,
	.head = file_head,
	.delete = file_delete,
	.presign = file_presign,
	.reader_open = file_reader_open,
	.reader_read = file_reader_read,
	.reader_close = file_reader_close,
	.delete_prefix = file_delete_prefix,
	.close = file_close,
};

/* Check the directory part of a file:// URL; the directory may not exist yet. */
int
file_backend_open(const char *root, Storage *storage, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	FileBackend *backend;
	size_t		len = strlen(root);

	if (root[0] != '/')
		return storage_fail(why, EX_USAGE,
							"file storage URL needs an absolute directory (file:///dir), not %s",
							storage_quote(root, quoted, sizeof(quoted)));
	while (len > 1 && root[len - 1] == '/')
		len--;
	backend = calloc(1, sizeof(FileBackend));
	if (backend == NULL || (backend->root = strndup(root, len)) == NULL)
	{
		free(backend);
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	}
	storage->backend = &file_backend;
	storage->state = backend;
	return 0;
}
