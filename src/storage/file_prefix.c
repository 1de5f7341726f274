/*
 * file_prefix.c
 *		Removal of every object below a prefix of the file backend: the
 *		prefix's directory is reached by the key walk of file_keys.c (never
 *		through a symbolic link), then emptied depth first with openat and
 *		O_NOFOLLOW, and removed.  A symbolic link met on the way is removed
 *		itself, as an object; its target is never touched.  As S3 has no
 *		directories, the prefix's ancestors that this leaves empty go too,
 *		but never a top-level one (shared by every writer of that area): a
 *		split proxy's cleanup of "vproxy-split/JOB/1/" leaves no "JOB".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/file_keys.h"

/* The status and message of a failed removal below the prefix. */
static int
removal_failed(const char *prefix, int error, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];

	return storage_fail(why, storage_errno_status(error) == EX_NOINPUT ? EX_SOFTWARE :
						storage_errno_status(error), "cannot remove the objects below %s: %s",
						storage_quote(prefix, quoted, sizeof(quoted)), strerror(error));
}

/* Empty the open directory dir_fd (taken over), counting the objects removed. */
static int
empty_directory(int dir_fd, const char *prefix, const StorageHooks *hooks, int64_t *removed,
				char *why)
{
	DIR		   *dir = fdopendir(dir_fd);
	struct dirent *entry;
	int			status = 0;

	if (dir == NULL)
	{
		int			error = errno;

		close(dir_fd);
		return removal_failed(prefix, error, why);
	}
	while (status == 0 && (errno = 0, entry = readdir(dir)) != NULL)
	{
		const char *name = entry->d_name;
		struct stat st;
		int			child;

		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (storage_should_stop(hooks))
		{
			status = storage_fail(why, EX_TEMPFAIL, "removal interrupted by a stop request");
			break;
		}
		if (fstatat(dirfd(dir), name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		{
			if (errno != ENOENT)
				status = removal_failed(prefix, errno, why);
			continue;
		}
		child = S_ISDIR(st.st_mode) ?
			openat(dirfd(dir), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
		if (child >= 0)
		{
			status = empty_directory(child, prefix, hooks, removed, why);
			if (status == 0 && unlinkat(dirfd(dir), name, AT_REMOVEDIR) != 0 && errno != ENOENT)
				status = removal_failed(prefix, errno, why);
		}
		else if ((status = storage_may_write("delete", prefix, why)) != 0)
			break;
		else if (unlinkat(dirfd(dir), name, 0) == 0)
			(*removed)++;
		else if (errno != ENOENT)
			status = removal_failed(prefix, errno, why);
	}
	if (status == 0 && errno != 0)
		status = removal_failed(prefix, errno, why);
	closedir(dir);
	return status;
}

/*
 * Remove key's ancestor directories that are empty, deepest first, down to
 * (not including) the top-level one; stop at the first that is not empty.
 */
static void
remove_empty_ancestors(const char *root, char *key)
{
	char	   *slash;
	char		why[STORAGE_WHY_MAX];

	while ((slash = strrchr(key, '/')) != NULL && strchr(key, '/') != slash)
	{
		const char *name;
		int			parent_fd;

		*slash = '\0';
		if (file_key_parent(root, key, false, &parent_fd, &name, why) != 0)
			return;
		if (unlinkat(parent_fd, name, AT_REMOVEDIR) != 0)
		{
			close(parent_fd);
			return;
		}
		close(parent_fd);
	}
}

/* Remove every object below prefix (a key ending in '/'), never following a link. */
int
file_prefix_remove(const char *root, const char *prefix, const StorageHooks *hooks,
				   int64_t *removed, char *why)
{
	char	   *key = strndup(prefix, strlen(prefix) - 1);	/* without its '/' */
	const char *name;
	int			parent_fd;
	int			dir_fd;
	int			status;

	*removed = 0;
	if (key == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	status = file_key_parent(root, key, false, &parent_fd, &name, why);
	if (status == EX_NOINPUT)
		status = 0;				/* no directory on the way: nothing below the prefix */
	else if (status == 0)
	{
		dir_fd = openat(parent_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (dir_fd < 0 && file_is_link(parent_fd, name))
			status = file_link_refused(prefix, why);
		else if (dir_fd < 0 && errno != ENOENT && errno != ENOTDIR)
			status = removal_failed(prefix, errno, why);
		else if (dir_fd >= 0)
		{
			status = empty_directory(dir_fd, prefix, hooks, removed, why);
			if (status == 0 && unlinkat(parent_fd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
				status = removal_failed(prefix, errno, why);
		}
		close(parent_fd);
		if (status == 0)
			remove_empty_ancestors(root, key);
	}
	free(key);
	return status;
}
