/*
 * file_keys.h
 *		Keys of the file backend as files below the storage directory,
 *		refusing every way out of it.
 */
#ifndef VPROXY_STORAGE_FILE_KEYS_H
#define VPROXY_STORAGE_FILE_KEYS_H

#include "storage/storage_internal.h"

/* Refuse what the key rule refuses, and components longer than a file name. */
extern int	file_key_check(const char *key, char *why);

/* Open the storage directory (creating it when asked) and find its real path. */
extern int	file_root_open(const char *root, bool create, int *root_fd,
						   char **root_real, char *why);

/* Open the directory holding key's object; *name is the key's last component. */
extern int	file_key_parent(const char *root, const char *key, bool create,
							int *dir_fd, const char **name, char *why);

/* Open key's object for reading; *real_path (may be NULL) gets its real path. */
extern int	file_key_open(const char *root, const char *key, int *fd,
						  char **real_path, char *why);

#endif							/* VPROXY_STORAGE_FILE_KEYS_H */
