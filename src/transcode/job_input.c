/*
 * job_input.c
 *		Lines of the job's stdin, from one buffer: the job takes the first
 *		ones itself, then hands the rest (and the bytes already read) to the
 *		thread that follows the lease lines.  The thread blocks every signal,
 *		so that the job's stop requests reach the job's own threads.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "transcode/job_input.h"
#include "transcode/lease_fence.h"

/* the reader thread waits in read() and parses a short line now and then */
#define FOLLOW_STACK_BYTES (256 * 1024)

static char *pending;			/* bytes read and not yet taken */
static size_t pending_used;
static size_t pending_size;
static bool at_end;

/* Take the first line of the pending bytes (len bytes, then a newline or the end). */
static int
take_line(size_t len, size_t skip, char **line, char *why, size_t why_size)
{
	*line = malloc(len + 1);
	if (*line == NULL)
	{
		snprintf(why, why_size, "out of memory reading the job's input");
		return EX_SOFTWARE;
	}
	memcpy(*line, pending, len);
	(*line)[len] = '\0';
	pending_used -= len + skip;
	memmove(pending, pending + len + skip, pending_used);
	return 0;
}

/* The next line of stdin, or NULL at the end of the input. */
int
job_input_line(char **line, char *why, size_t why_size)
{
	*line = NULL;
	for (;;)
	{
		char	   *newline = pending_used ? memchr(pending, '\n', pending_used) : NULL;
		ssize_t		got;

		if (newline != NULL)
			return take_line((size_t) (newline - pending), 1, line, why, why_size);
		if (at_end)
			return pending_used ? take_line(pending_used, 0, line, why, why_size) : 0;
		if (pending_used >= JOB_INPUT_LINE_MAX)
		{
			snprintf(why, why_size, "a line of the job's input is longer than %d bytes",
					 JOB_INPUT_LINE_MAX);
			return EX_USAGE;
		}
		if (pending_used == pending_size)
		{
			size_t		size = pending_size ? pending_size * 2 : 4096;
			char	   *bigger = realloc(pending, size);

			if (bigger == NULL)
			{
				snprintf(why, why_size, "out of memory reading the job's input");
				return EX_SOFTWARE;
			}
			pending = bigger;
			pending_size = size;
		}
		got = read(STDIN_FILENO, pending + pending_used, pending_size - pending_used);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
		{
			snprintf(why, why_size, "cannot read the job's input: %s", strerror(errno));
			return EX_USAGE;
		}
		if (got == 0)
			at_end = true;
		pending_used += (size_t) got;
	}
}

/* The reader thread: offer every further line to the fence until the end of the input. */
static void *
follow(void *unused)
{
	char	   *line;
	char		why[256];

	(void) unused;
	while (job_input_line(&line, why, sizeof(why)) == 0 && line != NULL)
	{
		(void) lease_fence_take_line(line);
		free(line);
	}
	return NULL;
}

/* Read the rest of stdin in a thread of its own. */
bool
job_input_follow(void)
{
	pthread_attr_t attr;
	pthread_t	thread;
	sigset_t	all,
				previous;
	int			rc;

	if (pthread_attr_init(&attr) != 0)
		return false;
	(void) pthread_attr_setstacksize(&attr, FOLLOW_STACK_BYTES);
	(void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* the thread inherits the mask: every signal blocked there */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &previous);
	rc = pthread_create(&thread, &attr, follow, NULL);
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		errno = rc;
	return rc == 0;
}
