/*
 * storage.c
 *		The public entry points of storage.h: choose a backend by the URL's
 *		scheme, check the arguments every backend shares, then dispatch
 *		(ranged reads: storage_reader.c).
 */
#include <stdlib.h>
#include <string.h>

#include "common/sigv4_presign.h"
#include "common/storage_key.h"
#include "storage/storage_internal.h"

/* Parse the configuration and prepare a handle (no network traffic yet). */
int
storage_open(const StorageConfig *config, Storage **storage, char *why)
{
	Storage    *handle;
	const char *url = config ? config->url : NULL;
	int			status;

	*storage = NULL;
	if (url == NULL || url[0] == '\0')
		return storage_fail(why, EX_USAGE, "no storage URL configured");
	handle = calloc(1, sizeof(Storage));
	if (handle == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	if (strncmp(url, "file://", 7) == 0)
		status = file_backend_open(url + 7, handle, why);
	else if (strncmp(url, "s3://", 5) == 0)
		status = s3_backend_open(config, handle, why);
	else
		status = storage_fail(why, EX_USAGE,
							  "storage URL must start with file:/// or s3://");
	if (status != 0)
	{
		free(handle);
		return status;
	}
	*storage = handle;
	return 0;
}

/* Release a handle; NULL is fine. */
void
storage_close(Storage *storage)
{
	if (storage == NULL)
		return;
	storage->backend->close(storage->state);
	free(storage);
}

/*
 * Refuse a missing or empty key (a usage error), then what the one key rule
 * refuses (src/common/storage_key.h), before any backend sees the key.
 */
int
storage_check_key(const char *key, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	const char *problem;

	if (key == NULL || key[0] == '\0')
		return storage_fail(why, EX_USAGE, "empty storage key");
	problem = storage_key_problem(key);
	if (problem != NULL)
		return storage_fail(why, EX_NOPERM, "key %s refused: it %s",
							storage_quote(key, quoted, sizeof(quoted)), problem);
	return 0;
}

/* A descriptor on the object in place, or -1 when it must be fetched. */
int
storage_local_open(Storage *storage, const char *key, int *fd, char *why)
{
	int			status;

	*fd = -1;
	status = storage_check_key(key, why);
	if (status != 0)
		return status;
	return storage->backend->local_open(storage->state, key, fd, why);
}

/* Download an object into a local file, streamed. */
int
storage_get(Storage *storage, const char *key, const char *local_path,
			const StorageHooks *hooks, char *why)
{
	int			status;

	status = storage_check_key(key, why);
	if (status != 0)
		return status;
	if (local_path == NULL || local_path[0] == '\0')
		return storage_fail(why, EX_USAGE, "no local file to download into");
	return storage->backend->get(storage->state, key, local_path, hooks, why);
}

/* Upload a local file as an object, atomically replacing any previous one. */
int
storage_put(Storage *storage, const char *key, const char *local_path,
			const char *content_type, const StorageHooks *hooks, char *why)
{
	int			status;

	status = storage_check_key(key, why);
	if (status != 0)
		return status;
	if (local_path == NULL || local_path[0] == '\0')
		return storage_fail(why, EX_USAGE, "no local file to upload");
	if (content_type == NULL || content_type[0] == '\0')
		content_type = "application/octet-stream";
	if (strpbrk(content_type, "\r\n") != NULL)
		return storage_fail(why, EX_USAGE, "content type holds a line break");
	if ((status = storage_may_write("upload", key, why)) != 0)
		return status;
	return storage->backend->put(storage->state, key, local_path, content_type,
								 hooks, why);
}

/* Size, ETag and content type of an object. */
int
storage_head(Storage *storage, const char *key, StorageObjectInfo *info, char *why)
{
	int			status;

	memset(info, 0, sizeof(*info));
	status = storage_check_key(key, why);
	if (status != 0)
		return status;
	return storage->backend->head(storage->state, key, info, why);
}

/* Remove an object; removing one that does not exist succeeds. */
int
storage_delete(Storage *storage, const char *key, char *why)
{
	int			status;

	status = storage_check_key(key, why);
	if (status != 0)
		return status;
	if ((status = storage_may_write("delete", key, why)) != 0)
		return status;
	return storage->backend->delete(storage->state, key, why);
}

/* A URL to read the object: presigned for S3, file:// for files. */
int
storage_presign(Storage *storage, const char *key, int expires_seconds,
				char **url, char *why)
{
	int			status;

	*url = NULL;
	status = storage_check_key(key, why);
	if (status != 0)
		return status;
	if (expires_seconds < 1 || expires_seconds > SIGV4_PRESIGN_MAX_SECONDS)
		return storage_fail(why, EX_USAGE,
							"presign expiry must be from 1 to %d seconds, not %d",
							SIGV4_PRESIGN_MAX_SECONDS, expires_seconds);
	return storage->backend->presign(storage->state, key, expires_seconds, url, why);
}

/* A prefix to remove below: a key by the one key rule, then a '/'. */
static int
check_prefix(const char *prefix, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	char		key[STORAGE_KEY_MAX + 1];
	size_t		length = prefix ? strlen(prefix) : 0;
	const char *problem = "does not end in '/'";

	if (length >= 2 && length <= sizeof(key) && prefix[length - 1] == '/')
	{
		memcpy(key, prefix, length - 1);
		key[length - 1] = '\0';
		problem = storage_key_problem(key);
	}
	if (problem != NULL)
		return storage_fail(why, EX_USAGE, "prefix %s refused: it %s",
							storage_quote(prefix ? prefix : "", quoted, sizeof(quoted)), problem);
	return 0;
}

/* Remove every object whose key starts with prefix (ending in '/'). */
int
storage_delete_prefix(Storage *storage, const char *prefix, const StorageHooks *hooks,
					  int64_t *removed, char *why)
{
	int			status;

	*removed = 0;
	if (check_prefix(prefix, why) != 0)
		return EX_USAGE;
	if ((status = storage_may_write("removal", prefix, why)) != 0)
		return status;
	return storage->backend->delete_prefix(storage->state, prefix, hooks, removed, why);
}
