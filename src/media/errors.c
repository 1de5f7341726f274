/*
 * errors.c
 *		Failure messages of the media room: one line in words in `why`.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <libavutil/error.h>

#include "media/media_internal.h"

/* Write the cause into why (one line) and return the status. */
int
media_fail(char *why, int status, const char *fmt,...)
{
	va_list		args;

	if (why != NULL)
	{
		va_start(args, fmt);
		vsnprintf(why, MEDIA_WHY_MAX, fmt, args);
		va_end(args);
		for (char *c = why; *c != '\0'; c++)
			if (*c == '\n' || *c == '\r')
				*c = ' ';
	}
	return status;
}

/* Describe a libav error code in words. */
static const char *
av_error_words(int averror, char *buffer, size_t size)
{
	if (averror == AVERROR_INVALIDDATA)
		snprintf(buffer, size, "invalid or corrupt data");
	else if (averror == AVERROR_EOF)
		snprintf(buffer, size, "unexpected end of file");
	else if (averror == AVERROR_DECODER_NOT_FOUND)
		snprintf(buffer, size, "no decoder for this codec");
	else if (averror == AVERROR_DEMUXER_NOT_FOUND)
		snprintf(buffer, size, "not a known container format");
	else if (averror == AVERROR_PATCHWELCOME)
		snprintf(buffer, size, "a feature libav does not support");
	else if (av_strerror(averror, buffer, size) < 0)
		snprintf(buffer, size, "libav error %d", averror);
	return buffer;
}

/*
 * Map a libav error during `what` to a status: missing space or memory, an
 * I/O error or a stop request are worth a retry; a refused permission is
 * EX_NOPERM; anything else is the media's fault.
 */
int
media_fail_av(char *why, int averror, const char *what)
{
	char		words[128];
	int			status = EX_DATAERR;

	if (averror == AVERROR_EXIT)
		return media_fail(why, EX_TEMPFAIL, "%s: stopped on request", what);
	if (averror == AVERROR(ENOSPC) || averror == AVERROR(ENOMEM) ||
		averror == AVERROR(EDQUOT) || averror == AVERROR(EIO) ||
		averror == AVERROR(EINTR))
		status = EX_TEMPFAIL;
	else if (averror == AVERROR(EACCES) || averror == AVERROR(EPERM) ||
			 averror == AVERROR(EROFS))
		status = EX_NOPERM;
	return media_fail(why, status, "%s: %s", what,
					  av_error_words(averror, words, sizeof(words)));
}
