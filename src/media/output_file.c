/*
 * output_file.c
 *		Outputs are written under a temporary name beside the final one and
 *		renamed into place on success, so a failed or stopped run never leaves
 *		a partial file where a reader would take it for a result.
 */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "media/media_internal.h"

/* Create an empty, unique temporary file beside `output`; its name in temp_path. */
int
media_temp_path(const char *output, char *temp_path, size_t size, char *why)
{
	char	   *dir_copy = strdup(output);
	char	   *base_copy = strdup(output);
	int			fd;
	int			n;

	if (dir_copy == NULL || base_copy == NULL)
	{
		free(dir_copy);
		free(base_copy);
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	}
	n = snprintf(temp_path, size, "%s/.%s.XXXXXX.part", dirname(dir_copy), basename(base_copy));
	free(dir_copy);
	free(base_copy);
	if (n < 0 || (size_t) n >= size)
		return media_fail(why, EX_USAGE, "output path too long: %s", output);
	fd = mkstemps(temp_path, (int) strlen(".part"));
	if (fd < 0)
	{
		int			error = errno;

		return media_fail(why, media_errno_status(error, EX_SOFTWARE), "cannot create a file beside %s: %s",
						  output, strerror(error));
	}
	fchmod(fd, 0644);
	close(fd);
	return 0;
}

/* Give the finished temporary file its final name; remove it on failure. */
int
media_commit_output(const char *temp_path, const char *output,
					int64_t *file_size, char *why)
{
	struct stat st;

	if (rename(temp_path, output) != 0)
	{
		int			error = errno;

		unlink(temp_path);
		return media_fail(why, media_errno_status(error, EX_SOFTWARE), "cannot write %s: %s",
						  output, strerror(error));
	}
	if (stat(output, &st) != 0)
		return media_fail(why, EX_SOFTWARE, "cannot read back %s: %s", output, strerror(errno));
	if (file_size != NULL)
		*file_size = st.st_size;
	return 0;
}
