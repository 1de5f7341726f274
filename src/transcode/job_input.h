/*
 * job_input.h
 *		The stdin of `vproxy-transcode job` (job-protocol.md): its first
 *		lines, read in order by the job, then the lease lines that follow
 *		while it runs, read by a thread of their own so that the media work
 *		never waits for them (and the supervisor's pipe never fills).
 */
#ifndef VPROXY_TRANSCODE_JOB_INPUT_H
#define VPROXY_TRANSCODE_JOB_INPUT_H

#include <stdbool.h>
#include <stddef.h>

/* the longest line taken (the job spec is one line) */
#define JOB_INPUT_LINE_MAX (1024 * 1024)

/*
 * The next line of stdin without its newline (malloc'd; the caller frees
 * it), or NULL at the end of the input.  0, or EX_USAGE (unreadable, a line
 * too long) or EX_SOFTWARE (out of memory) with why.
 */
extern int	job_input_line(char **line, char *why, size_t why_size);

/*
 * Read the rest of stdin in a thread: every line is offered to the lease
 * fence (lease_fence_take_line).  False, with errno, if the thread could
 * not start.
 */
extern bool job_input_follow(void);

#endif							/* VPROXY_TRANSCODE_JOB_INPUT_H */
