/*
 * clock.c
 *		The dashboard's two clocks: wall-clock time for what a page shows,
 *		monotonic time for intervals.
 */
#include <stdint.h>
#include <time.h>

#include "dashboard/dashboard.h"

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
