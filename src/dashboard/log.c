/*
 * log.c
 *		vproxy-dashboard's log: one line per event on stderr in logfmt, as
 *		vproxy-worker writes it:
 *		time=2026-11-30T00:10:00.123Z level=info event=listening address=127.0.0.1:8787
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "dashboard/dashboard.h"

/* A logfmt value: bare when it can be, else double-quoted with escapes. */
const char *
dash_log_quote(const char *text, char *buffer, size_t size)
{
	bool		bare = text[0] != '\0';
	size_t		out = 0;

	for (const char *c = text; *c && bare; c++)
		if (*c <= ' ' || *c == '"' || *c == '=' || *c == '\\' || (unsigned char) *c == 0x7f)
			bare = false;
	if (bare)
	{
		snprintf(buffer, size, "%s", text);
		return buffer;
	}
	if (size < 3)
		return "\"\"";
	buffer[out++] = '"';
	for (const char *c = text; *c && out + 3 < size; c++)
	{
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
			buffer[out++] = *c;
	}
	buffer[out++] = '"';
	buffer[out] = '\0';
	return buffer;
}

/* Write "time=… level=… event=…" and the caller's fields, as one line. */
void
dash_log(const char *level, const char *event, const char *fmt,...)
{
	char		line[4096];
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
	/* one write per line: the threads' lines never interleave */
	fwrite(line, 1, len, stderr);
	fflush(stderr);
}

/* Wall-clock time in milliseconds since the epoch. */
int64_t
dash_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic time in milliseconds, for intervals. */
int64_t
dash_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
