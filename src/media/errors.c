/*
 * errors.c
 *		Failure messages of the media room: one line in words in `why`.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <libavutil/error.h>

#include "media/media_internal.h"

/*
 * Write the cause into why (one line) and return the status.  Once the
 * process has come near its address-space limit, a failure that would call
 * the media bad (or an internal error) is for want of memory whatever the
 * failing step says (a decoder that could not allocate leaves "no picture
 * size"): worth a retry, and said so.
 */
int
media_fail(char *why, int status, const char *fmt,...)
{
	char		cause[MEDIA_WHY_MAX];
	va_list		args;

	va_start(args, fmt);
	vsnprintf(cause, sizeof(cause), fmt, args);
	va_end(args);
	if ((status == EX_DATAERR || status == EX_SOFTWARE) && media_memory_exhausted())
	{
		status = EX_TEMPFAIL;
		if (strstr(cause, "out of memory") == NULL)
		{
			char		original[MEDIA_WHY_MAX];

			memcpy(original, cause, sizeof(original));
			snprintf(cause, sizeof(cause), "out of memory (near the address-space limit): %.400s", original);
		}
	}
	if (why != NULL)
	{
		snprintf(why, MEDIA_WHY_MAX, "%s", cause);
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
 * Whether the process's address space has come above 3/4 of its own
 * RLIMIT_AS (its peak, VmPeak: a decoder may free what it had before it
 * reports the failure): then a refused allocation means we really ran out
 * of memory.  Read from /proc/self/status into a stack buffer (no
 * allocation); if even that fails for want of memory, the answer is yes.
 * Without a limit, no.
 */
bool
media_memory_exhausted(void)
{
	struct rlimit limit;
	char		buffer[4096];
	const char *peak;
	ssize_t		length;
	int			fd;

	if (getrlimit(RLIMIT_AS, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY)
		return false;
	fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOMEM || errno == EMFILE || errno == ENFILE;
	length = read(fd, buffer, sizeof(buffer) - 1);
	close(fd);
	if (length <= 0)
		return false;
	buffer[length] = '\0';
	peak = strstr(buffer, "VmPeak:");
	if (peak == NULL)
		return false;
	return strtoull(peak + strlen("VmPeak:"), NULL, 10) * 1024.0L > (long double) limit.rlim_cur * 3 / 4;
}

/*
 * The status for a failed system or library call that set `error` (an
 * errno value): missing space or quota, an I/O error or an interruption are
 * worth a retry; a refused permission is EX_NOPERM; anything else is
 * `otherwise`.  ENOMEM is worth a retry only when the process is near its
 * address-space limit (really out of memory); otherwise something asked for
 * an impossible size, which only the input's bytes can do: bad media.  The
 * one errno-to-status mapping of the media room.
 */
int
media_errno_status(int error, int otherwise)
{
	if (error == ENOMEM)
		return media_memory_exhausted() ? EX_TEMPFAIL : EX_DATAERR;
	if (error == ENOSPC || error == EDQUOT || error == EIO || error == EINTR)
		return EX_TEMPFAIL;
	if (error == EACCES || error == EPERM || error == EROFS)
		return EX_NOPERM;
	return otherwise;
}

/* Words for a libav error, ENOMEM told apart by media_memory_exhausted. */
static const char *
failure_words(int averror, char *buffer, size_t size)
{
	if (averror == AVERROR(ENOMEM))
	{
		snprintf(buffer, size, media_memory_exhausted() ? "out of memory" :
				 "the file asks for an impossible amount of memory (a corrupt size or count)");
		return buffer;
	}
	return av_error_words(averror, buffer, size);
}

/*
 * Map an error of libav's codecs and filters during `what` to a status: a
 * stop request is worth a retry, ENOMEM is mapped by media_errno_status
 * (out of memory, or an impossible size); anything else is libav judging
 * the data, whatever errno it borrows (a decoder refusing its extradata
 * answers EPERM): bad media (unless media_fail finds the process near its
 * memory limit).
 */
int
media_fail_av(char *why, int averror, const char *what)
{
	char		words[160];

	if (averror == AVERROR_EXIT)
		return media_fail(why, EX_TEMPFAIL, "%s: stopped on request", what);
	return media_fail(why, averror == AVERROR(ENOMEM) ? media_errno_status(ENOMEM, EX_DATAERR) : EX_DATAERR,
					  "%s: %s", what, failure_words(averror, words, sizeof(words)));
}

/*
 * Map an error writing an output file through libav: the errno it carries
 * is the system's (no space, no permission, an I/O error), mapped by
 * media_errno_status; anything else is the media's fault.
 */
int
media_fail_output(char *why, int averror, const char *what)
{
	char		words[160];

	if (averror == AVERROR_EXIT)
		return media_fail(why, EX_TEMPFAIL, "%s: stopped on request", what);
	return media_fail(why, media_errno_status(AVUNERROR(averror), EX_DATAERR), "%s: %s", what,
					  failure_words(averror, words, sizeof(words)));
}

/*
 * Whether a read of the input through `pb` failed in the system (the error
 * stays in the I/O context), as opposed to a demuxer's complaint about the
 * bytes: demuxers answer EIO too for data they cannot parse (Matroska's
 * EBML, for one).
 */
bool
media_input_read_failed(const AVIOContext *pb)
{
	return pb != NULL && pb->error < 0 && pb->error != AVERROR_EOF &&
		pb->error != AVERROR_EXIT;
}

/*
 * Map a libav error while opening or reading the input through `pb`: a read
 * the system refused (its error is left in the I/O context: a storage
 * outage) is mapped by media_errno_status, and so is ENOMEM (out of memory,
 * or an impossible size); any other error comes from a demuxer judging the
 * bytes, whatever errno it borrows (EIO for broken EBML, EPERM...): bad
 * media.
 */
int
media_fail_input(char *why, const AVIOContext *pb, int averror, const char *what)
{
	char		words[160];

	if (averror == AVERROR_EXIT)
		return media_fail(why, EX_TEMPFAIL, "%s: stopped on request", what);
	if (media_input_read_failed(pb))
		return media_fail(why, media_errno_status(AVUNERROR(pb->error), EX_TEMPFAIL),
						  "%s: read error: %s", what, av_error_words(pb->error, words, sizeof(words)));
	if (averror == AVERROR(ENOMEM))
		return media_fail_av(why, averror, what);
	if (averror == AVERROR(EIO))
		return media_fail(why, EX_DATAERR, "%s: the container's structure is broken", what);
	return media_fail(why, EX_DATAERR, "%s: %s", what, av_error_words(averror, words, sizeof(words)));
}
