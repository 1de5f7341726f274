/*
 * storage_why.c
 *		Text in the storage room: failure messages (one line, keys quoted so
 *		that a key holding a line break or a quote cannot break the line), the
 *		status that a local file error deserves, formatted and
 *		percent-encoded strings.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/percent_encode.h"
#include "storage/storage_internal.h"

/* Write a one-line cause into why (STORAGE_WHY_MAX bytes); return status. */
int
storage_fail(char *why, int status, const char *fmt,...)
{
	va_list		args;

	if (why == NULL)
		return status;
	va_start(args, fmt);
	vsnprintf(why, STORAGE_WHY_MAX, fmt, args);
	va_end(args);
	for (char *c = why; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	return status;
}

/* Quote text for a message, escaping quotes, backslashes and control bytes. */
const char *
storage_quote(const char *text, char *buffer, size_t size)
{
	size_t		used = 0;

	if (size < 8)
	{
		if (size > 0)
			buffer[0] = '\0';
		return buffer;
	}
	buffer[used++] = '"';
	for (const unsigned char *c = (const unsigned char *) text; *c; c++)
	{
		char		piece[8];
		int			len;

		if (*c == '"' || *c == '\\')
			len = snprintf(piece, sizeof(piece), "\\%c", *c);
		else if (*c < 0x20 || *c == 0x7f)
			len = snprintf(piece, sizeof(piece), "\\x%02x", *c);
		else
		{
			piece[0] = (char) *c;
			len = 1;
		}
		/* keep room for the closing quote, an ellipsis and the NUL */
		if (used + len + 5 > size)
		{
			memcpy(buffer + used, "...", 3);
			used += 3;
			break;
		}
		memcpy(buffer + used, piece, len);
		used += len;
	}
	buffer[used++] = '"';
	buffer[used] = '\0';
	return buffer;
}

/* The status for a failed local file operation's errno. */
int
storage_errno_status(int error)
{
	switch (error)
	{
		case ENOSPC:
		case EDQUOT:
		case EFBIG:
		case EINTR:
			return EX_TEMPFAIL;
		case EACCES:
		case EPERM:
		case EROFS:
			return EX_NOPERM;
		case ENOENT:
		case ENOTDIR:
			return EX_NOINPUT;
		default:
			return EX_SOFTWARE;
	}
}

/* Text percent-encoded (src/common/percent_encode.h), malloc'd; NULL when out of memory. */
char *
storage_percent_encode(const char *text, bool keep_slash)
{
	char	   *out = malloc(percent_encoded_length(text, keep_slash) + 1);

	if (out != NULL)
		percent_encode(out, text, keep_slash);
	return out;
}

/* A formatted, malloc'd string, or NULL when out of memory. */
char *
storage_format(const char *fmt,...)
{
	va_list		args;
	char	   *result;
	int			length;

	va_start(args, fmt);
	length = vasprintf(&result, fmt, args);
	va_end(args);
	return length < 0 ? NULL : result;
}
