/*
 * logfmt.h
 *		The programs' log: one logfmt line per event on stderr, for a log
 *		collector, written the same way by vproxy-worker and vproxy-dashboard:
 *		time=2026-11-30T00:10:00.123Z level=info event=job_start job=… attempt=1
 *		Plain C, no dependency beyond text_clip.
 */
#ifndef VPROXY_LOGFMT_H
#define VPROXY_LOGFMT_H

#include <stddef.h>

/*
 * A logfmt value in buffer: bare when it can be, else double-quoted with
 * escapes; cut on a character boundary to fit, invalid UTF-8 made '?'.
 */
extern const char *logfmt_quote(const char *text, char *buffer, size_t size);

/* Write "time=… level=… event=…" and the caller's fields as one line, in one write. */
extern void logfmt_event(const char *level, const char *event, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

#endif							/* VPROXY_LOGFMT_H */
