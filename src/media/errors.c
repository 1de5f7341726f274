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
 * The status for a failed system or library call that set `error` (an
 * errno value): missing space, quota or memory, an I/O error or an
 * interruption are worth a retry; a refused permission is EX_NOPERM;
 * anything else is `otherwise`.  The one errno-to-status mapping of the
 * media room.
 */
int
media_errno_status(int error, int otherwise)
{
	if (error == ENOSPC || error == EDQUOT || error == EIO ||
		error == ENOMEM || error == EINTR)
		return EX_TEMPFAIL;
	if (error == EACCES || error == EPERM || error == EROFS)
		return EX_NOPERM;
	return otherwise;
}

/*
 * Map a libav error during `what` to a status: a stop request is worth a
 * retry, an errno is mapped by media_errno_status, anything else is the
 * media's fault.
 */
int
media_fail_av(char *why, int averror, const char *what)
{
	char		words[128];

	if (averror == AVERROR_EXIT)
		return media_fail(why, EX_TEMPFAIL, "%s: stopped on request", what);
	return media_fail(why, media_errno_status(AVUNERROR(averror), EX_DATAERR), "%s: %s", what,
					  av_error_words(averror, words, sizeof(words)));
}
