/*
 * lease_fence.c
 *		The fence, shared by the job (which asks whether it has passed) and
 *		the thread that reads the lease lines (which moves it).  The thread
 *		blocks every signal, so that the job's stop requests reach the job's
 *		own threads.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

#include <jansson.h>

#include "common/lease_clock.h"
#include "storage/storage.h"
#include "transcode/job_spec.h"
#include "transcode/lease_fence.h"

/* no fence: never passes */
#define NO_FENCE INT64_MAX
/* the reader waits in read() and parses a short line now and then */
#define FOLLOW_STACK_BYTES (256 * 1024)

static _Atomic int64_t fence_ms = NO_FENCE;

/* Set the fence (0: none). */
void
lease_fence_set(int64_t until_ms)
{
	atomic_store(&fence_ms, until_ms > 0 ? until_ms : NO_FENCE);
}

/* A line {"lease_until_ms": N}: the new fence; anything else leaves it. */
static void
take_line(const char *line)
{
	json_error_t error;
	json_t	   *root = json_loads(line, JSON_REJECT_DUPLICATES, &error);
	json_t	   *until = json_object_get(root, "lease_until_ms");

	if (json_is_integer(until) && json_integer_value(until) >= 0)
		atomic_store(&fence_ms, (int64_t) json_integer_value(until));
	json_decref(root);
}

/* The reader thread: every line to the fence, until the end of the input. */
static void *
follow(void *arg)
{
	int			fd = (int) (intptr_t) arg;
	char	   *line;
	char		why[JOB_SPEC_WHY_MAX];

	while (job_spec_read_line(fd, "a lease line", &line, why) == 0)
	{
		take_line(line);
		free(line);
	}
	return NULL;
}

/* Read the lease lines of fd in a thread of its own. */
bool
lease_fence_follow(int fd)
{
	pthread_attr_t attr;
	pthread_t	thread;
	sigset_t	all,
				previous;
	int			rc;

	if ((rc = pthread_attr_init(&attr)) != 0)
	{
		errno = rc;
		return false;
	}
	(void) pthread_attr_setstacksize(&attr, FOLLOW_STACK_BYTES);
	(void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* the thread inherits the mask: every signal blocked there */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &previous);
	rc = pthread_create(&thread, &attr, follow, (void *) (intptr_t) fd);
	pthread_sigmask(SIG_SETMASK, &previous, NULL);
	pthread_attr_destroy(&attr);
	if (rc != 0)
		errno = rc;
	return rc == 0;
}

/* Whether a fence was given and has passed. */
bool
lease_fence_passed(void)
{
	return lease_clock_ms() >= atomic_load(&fence_ms);
}

/* How many milliseconds ago the fence passed; 0 if it has not. */
int64_t
lease_fence_passed_ms(void)
{
	int64_t		fence = atomic_load(&fence_ms);
	int64_t		now = lease_clock_ms();

	return now >= fence ? now - fence : 0;
}

/* The storage's write gate: nothing starts once the fence has passed. */
int
lease_fence_gate(const char *operation, const char *key, char *why)
{
	if (!lease_fence_passed())
		return 0;
	snprintf(why, STORAGE_WHY_MAX,
			 "the lease fence passed %lld ms ago: not starting the %s of \"%.300s\" "
			 "(the job may be another worker's by now)",
			 (long long) lease_fence_passed_ms(), operation, key);
	return EX_TEMPFAIL;
}
