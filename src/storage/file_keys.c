/*
 * file_keys.c
 *		Turn a key into a file below the storage directory without ever
 *		leaving it: the key's shape is checked first (relative, no empty, "."
 *		or ".." components), then the key is walked one component at a time
 *		with openat and O_NOFOLLOW from the storage directory, so that no
 *		symbolic link inside the store is ever followed, whether it leads out
 *		or not (the storage directory itself may be reached through links).
 *		A link in a key's way is refused; deleting a key that is itself a link
 *		removes the link, never its target.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/storage_key.h"
#include "storage/file_keys.h"

/*
 * Refuse what the key rule refuses (src/common/storage_key.h: absolute
 * keys, empty, "." or ".." components...), and components longer than a
 * file name may be.
 */
int
file_key_check(const char *key, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	const char *problem = storage_key_problem(key);
	const char *component = key;

	if (problem != NULL)
		return storage_fail(why, EX_NOPERM, "key %s refused: it %s",
							storage_quote(key, quoted, sizeof(quoted)), problem);
	while (component != NULL)
	{
		const char *slash = strchr(component, '/');
		size_t		len = slash ? (size_t) (slash - component) : strlen(component);

		if (len > NAME_MAX)
			return storage_fail(why, EX_USAGE, "key %s has a component longer than %d bytes",
								storage_quote(key, quoted, sizeof(quoted)), NAME_MAX);
		component = slash ? slash + 1 : NULL;
	}
	return 0;
}

/* Whether name in dir_fd is a symbolic link (not followed). */
bool
file_is_link(int dir_fd, const char *name)
{
	struct stat st;

	return fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

/* The refusal of a key that meets a symbolic link. */
int
file_link_refused(const char *key, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];

	return storage_fail(why, EX_NOPERM,
						"key %s refused: symbolic links inside the storage directory are not followed",
						storage_quote(key, quoted, sizeof(quoted)));
}

/* Open the storage directory, creating it when asked. */
int
file_root_open(const char *root, bool create, int *root_fd, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];

	if (create && mkdir(root, 0777) != 0 && errno != EEXIST)
	{
		int			error = errno;

		*root_fd = -1;
		return storage_fail(why, storage_errno_status(error) == EX_NOINPUT ? EX_SOFTWARE :
							storage_errno_status(error),
							"cannot create the storage directory %s: %s",
							storage_quote(root, quoted, sizeof(quoted)), strerror(error));
	}
	*root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*root_fd < 0)
	{
		int			error = errno;

		return storage_fail(why, storage_errno_status(error),
							"cannot open the storage directory %s: %s",
							storage_quote(root, quoted, sizeof(quoted)), strerror(error));
	}
	return 0;
}

/*
 * Open the directory that holds key's object, creating the missing ones when
 * asked, never through a symbolic link; *name points at the key's last
 * component.
 */
int
file_key_parent(const char *root, const char *key, bool create, int *dir_fd,
				const char **name, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	int			current;
	int			status;
	const char *component = key;

	*dir_fd = -1;
	*name = NULL;
	status = file_key_check(key, why);
	if (status == 0)
		status = file_root_open(root, create, &current, why);
	if (status != 0)
		return status;
	for (const char *slash; (slash = strchr(component, '/')) != NULL; component = slash + 1)
	{
		char		part[NAME_MAX + 1];
		int			next;

		memcpy(part, component, slash - component);
		part[slash - component] = '\0';
		if (create && (mkdirat(current, part, 0777) == 0 ? fsync(current) : errno != EEXIST))
		{
			/* a new directory must survive a crash as the object put in it */
			int			error = errno;

			status = storage_fail(why, storage_errno_status(error) == EX_NOINPUT ? EX_SOFTWARE :
								  storage_errno_status(error),
								  "cannot create a directory for key %s: %s",
								  storage_quote(key, quoted, sizeof(quoted)), strerror(error));
			break;
		}
		next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0)
		{
			int			error = errno;
			int			error_status = storage_errno_status(error);

			if (file_is_link(current, part))
			{
				status = file_link_refused(key, why);
				break;
			}
			if (create && error_status == EX_NOINPUT)
				error_status = EX_SOFTWARE;
			status = storage_fail(why, error_status, "%s %s in %s: %s",
								  create ? "cannot make a directory for key" : "no object",
								  storage_quote(key, quoted, sizeof(quoted)), root, strerror(error));
			break;
		}
		close(current);
		current = next;
	}
	if (status != 0)
	{
		close(current);
		return status;
	}
	*dir_fd = current;
	*name = component;
	return 0;
}

/* Open key's object for reading: a regular file, never through a link. */
int
file_key_open(const char *root, const char *key, int *fd, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	const char *name;
	int			dir_fd;
	int			status;
	struct stat st;

	*fd = -1;
	status = file_key_parent(root, key, false, &dir_fd, &name, why);
	if (status != 0)
		return status;
	*fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (*fd < 0)
	{
		int			error = errno;

		status = file_is_link(dir_fd, name) ? file_link_refused(key, why) :
			storage_fail(why, storage_errno_status(error), "no object %s in %s: %s",
						 storage_quote(key, quoted, sizeof(quoted)), root, strerror(error));
	}
	else if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode))
		status = storage_fail(why, EX_NOINPUT, "key %s in %s is not a regular file",
							  storage_quote(key, quoted, sizeof(quoted)), root);
	else if (fcntl(*fd, F_SETFL, 0) != 0)
		status = storage_fail(why, EX_SOFTWARE, "cannot use %s: %s",
							  storage_quote(key, quoted, sizeof(quoted)), strerror(errno));
	close(dir_fd);
	if (status != 0 && *fd >= 0)
	{
		close(*fd);
		*fd = -1;
	}
	return status;
}
