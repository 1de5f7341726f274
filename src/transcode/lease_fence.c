/*
 * lease_fence.c
 *		The fence, shared by the job (which asks whether it has passed) and
 *		the thread that reads the lease lines (which moves it).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <sysexits.h>
#include <time.h>

#include <jansson.h>

#include "storage/storage.h"
#include "transcode/lease_fence.h"

/* no fence: never passes */
#define NO_FENCE INT64_MAX

static _Atomic int64_t fence_ms = NO_FENCE;

/* Milliseconds of the monotonic clock (the supervisor's clock too). */
static int64_t
now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Take a line of the job's stdin: a new fence when it holds "lease_until_ms". */
bool
lease_fence_take_line(const char *line)
{
	json_error_t error;
	json_t	   *root = json_loads(line, JSON_REJECT_DUPLICATES, &error);
	json_t	   *until = json_object_get(root, "lease_until_ms");
	bool		taken = json_is_integer(until) && json_integer_value(until) >= 0;

	if (taken)
		atomic_store(&fence_ms, (int64_t) json_integer_value(until));
	json_decref(root);
	return taken;
}

/* Whether a fence was given and has passed. */
bool
lease_fence_passed(void)
{
	return now_ms() >= atomic_load(&fence_ms);
}

/* How many milliseconds ago the fence passed; 0 if it has not. */
int64_t
lease_fence_passed_ms(void)
{
	int64_t		fence = atomic_load(&fence_ms);
	int64_t		now = now_ms();

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
