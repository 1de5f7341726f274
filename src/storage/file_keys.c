/*
 * file_keys.c
 *		Turn a key into a file below the storage directory without ever
 *		leaving it: the key's shape is checked first (relative, no empty, "."
 *		or ".." components), then every directory on the way is opened with
 *		openat and its real location, as the kernel resolved it, is checked to
 *		lie below the real storage directory.  A symlink that stays inside is
 *		followed; one that leads outside is refused before anything is created
 *		or read there.
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

/* The real path of an open file, as the kernel knows it. */
static bool
fd_real_path(int fd, char *path, size_t size)
{
	char		link[64];
	ssize_t		len;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, path, size - 1);
	if (len < 0 || (size_t) len >= size - 1)
		return false;
	path[len] = '\0';
	return true;
}

/* Whether an open file or directory lies strictly below root_real. */
static bool
fd_beneath(int fd, const char *root_real)
{
	char		path[PATH_MAX + 1];
	size_t		root_len = strlen(root_real);

	if (!fd_real_path(fd, path, sizeof(path)))
		return false;
	if (strcmp(root_real, "/") == 0)
		return strcmp(path, "/") != 0;
	return strncmp(path, root_real, root_len) == 0 && path[root_len] == '/';
}

/*
 * Whether the last component, if it is a symbolic link, leads to something
 * below root_real (a dangling link does not).
 */
static bool
final_link_beneath(int dir_fd, const char *name, const char *root_real)
{
	struct stat st;
	int			fd;
	bool		beneath;

	if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISLNK(st.st_mode))
		return true;
	fd = openat(dir_fd, name, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return false;
	beneath = fd_beneath(fd, root_real);
	close(fd);
	return beneath;
}

/* Open the storage directory (creating it when asked) and find its real path. */
int
file_root_open(const char *root, bool create, int *root_fd, char **root_real, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	char		path[PATH_MAX + 1];

	*root_fd = -1;
	*root_real = NULL;
	if (create && mkdir(root, 0777) != 0 && errno != EEXIST)
	{
		int			error = errno;

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
	if (!fd_real_path(*root_fd, path, sizeof(path)) || (*root_real = strdup(path)) == NULL)
	{
		close(*root_fd);
		*root_fd = -1;
		return storage_fail(why, EX_SOFTWARE, "cannot find the real path of %s",
							storage_quote(root, quoted, sizeof(quoted)));
	}
	return 0;
}

/*
 * Open the directory that holds key's object, creating the missing ones when
 * asked; *name points at the key's last component.
 */
int
file_key_parent(const char *root, const char *key, bool create, int *dir_fd,
				const char **name, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	char	   *root_real;
	int			current;
	int			status;
	const char *component = key;

	*dir_fd = -1;
	*name = NULL;
	status = file_key_check(key, why);
	if (status == 0)
		status = file_root_open(root, create, &current, &root_real, why);
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
		next = openat(current, part, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (next < 0)
		{
			int			error = errno;
			int			error_status = storage_errno_status(error);

			if (create && error_status == EX_NOINPUT)
				error_status = EX_SOFTWARE;
			status = storage_fail(why, error_status, "%s %s in %s: %s",
								  create ? "cannot make a directory for key" : "no object",
								  storage_quote(key, quoted, sizeof(quoted)), root, strerror(error));
			break;
		}
		close(current);
		current = next;
		if (!fd_beneath(current, root_real))
		{
			status = storage_fail(why, EX_NOPERM,
								  "key %s refused: a symbolic link leads outside the storage directory",
								  storage_quote(key, quoted, sizeof(quoted)));
			break;
		}
	}
	if (status == 0 && !final_link_beneath(current, component, root_real))
		status = storage_fail(why, EX_NOPERM,
							  "key %s refused: it is a symbolic link leading outside the storage directory",
							  storage_quote(key, quoted, sizeof(quoted)));
	free(root_real);
	if (status != 0)
	{
		close(current);
		return status;
	}
	*dir_fd = current;
	*name = component;
	return 0;
}

/* Open key's object for reading, checked to be a regular file below the root. */
int
file_key_open(const char *root, const char *key, int *fd, char **real_path, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	char	   *root_real;
	const char *name;
	int			dir_fd;
	int			root_fd;
	int			status;
	struct stat st;
	char		path[PATH_MAX + 1];

	*fd = -1;
	if (real_path)
		*real_path = NULL;
	status = file_key_parent(root, key, false, &dir_fd, &name, why);
	if (status != 0)
		return status;
	*fd = openat(dir_fd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	close(dir_fd);
	if (*fd < 0)
	{
		int			error = errno;

		return storage_fail(why, storage_errno_status(error), "no object %s in %s: %s",
							storage_quote(key, quoted, sizeof(quoted)), root, strerror(error));
	}
	status = file_root_open(root, false, &root_fd, &root_real, why);
	if (status == 0)
	{
		close(root_fd);
		if (!fd_beneath(*fd, root_real))
			status = storage_fail(why, EX_NOPERM,
								  "key %s refused: a symbolic link leads outside the storage directory",
								  storage_quote(key, quoted, sizeof(quoted)));
		else if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode))
			status = storage_fail(why, EX_NOINPUT, "key %s in %s is not a regular file",
								  storage_quote(key, quoted, sizeof(quoted)), root);
		else if (fcntl(*fd, F_SETFL, 0) != 0)
			status = storage_fail(why, EX_SOFTWARE, "cannot use %s: %s",
								  storage_quote(key, quoted, sizeof(quoted)), strerror(errno));
		else if (real_path && (!fd_real_path(*fd, path, sizeof(path)) ||
							   (*real_path = strdup(path)) == NULL))
			status = storage_fail(why, EX_SOFTWARE, "cannot find the real path of key %s",
								  storage_quote(key, quoted, sizeof(quoted)));
		free(root_real);
	}
	if (status != 0)
	{
		close(*fd);
		*fd = -1;
	}
	return status;
}
