/*
 * file_keys.h
 *		Keys of the file backend as files below the storage directory,
 *		refusing every way out of it and every symbolic link inside it.
 */
#ifndef VPROXY_STORAGE_FILE_KEYS_H
#define VPROXY_STORAGE_FILE_KEYS_H

#include "storage/storage_internal.h"

/* Refuse what the key rule refuses, and components longer than a file name. */
extern int	file_key_check(const char *key, char *why);

/* Whether name in dir_fd is a symbolic link (not followed). */
extern bool file_is_link(int dir_fd, const char *name);

/* The refusal (EX_NOPERM) of a key that meets a symbolic link. */
extern int	file_link_refused(const char *key, char *why);

/* Open the storage directory, creating it when asked. */
extern int	file_root_open(const char *root, bool create, int *root_fd, char *why);

/* Open the directory holding key's object; *name is the key's last component. */
extern int	file_key_parent(const char *root, const char *key, bool create,
							int *dir_fd, const char **name, char *why);

/* Open key's object for reading: a regular file, never through a link. */
extern int	file_key_open(const char *root, const char *key, int *fd, char *why);

/*
 * Remove every object below prefix (a key ending in '/') and the directories
 * that held them, never following a link (a link is removed as an object).
 */
extern int	file_prefix_remove(const char *root, const char *prefix,
							   const StorageHooks *hooks, int64_t *removed, char *why);

#endif							/* VPROXY_STORAGE_FILE_KEYS_H */
