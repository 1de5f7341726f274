/*
 * logfmt.c
 *		One logfmt line per event on stderr (logfmt.h).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/logfmt.h"
#include "common/text_clip.h"

/*
 * A logfmt value: bare when it can be, else double-quoted with escapes;
 * cut on a character boundary to fit, invalid UTF-8 made '?'.
 */
const char *
logfmt_quote(const char *text, char *buffer, size_t size)
{
	char		valid[8192];
	bool		bare;
	size_t		out = 0;

	text_clip_copy(valid, sizeof(valid), text);
	bare = valid[0] != '\0';
	for (const char *c = valid; *c && bare; c++)
		bare = (unsigned char) *c > ' ' && (unsigned char) *c < 0x7f &&
			*c != '"' && *c != '=' && *c != '\\';
	if (bare)
	{
		text_clip_copy(buffer, size, valid);
		return buffer;
	}
	if (size < 3)
		return "\"\"";
	buffer[out++] = '"';
	for (const char *c = valid; *c;)
	{
		size_t		n = text_clip_char_length(c, strlen(c));

		if (out + n + 2 > size - 1)
			break;
		if (*c == '"' || *c == '\\')
		{
			buffer[out++] = '\\';
			buffer[out++] = *c;
		}
		else if (*c == '\n')
		{
			buffer[out++] = '\\';
			buffer[out++] = 'n';
		}
		else if ((unsigned char) *c < ' ')
			buffer[out++] = ' ';
		else
		{
			memcpy(buffer + out, c, n);
			out += n;
		}
		c += n;
	}
	buffer[out++] = '"';
	buffer[out] = '\0';
	return buffer;
}

/* Write "time=… level=… event=…" and the caller's fields, as one line. */
void
logfmt_event(const char *level, const char *event, const char *fmt,...)
{
	char		line[8192];
	char		stamp[32];
	struct timeval now;
	struct tm	tm;
	va_list		args;
	size_t		len;

	gettimeofday(&now, NULL);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	len = (size_t) snprintf(line, sizeof(line), "time=%s.%03dZ level=%s event=%s",
							stamp, (int) (now.tv_usec / 1000), level, event);
	if (fmt != NULL && fmt[0] != '\0' && len < sizeof(line) - 2)
	{
		line[len++] = ' ';
		va_start(args, fmt);
		vsnprintf(line + len, sizeof(line) - len, fmt, args);
		va_end(args);
	}
	len = strlen(line);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	/* one write per line: the lines of threads never interleave */
	fwrite(line, 1, len, stderr);
	fflush(stderr);
}
