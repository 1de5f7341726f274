/*
 * lease_clock.c
 *		The clock of the lease fence.
 */
#include <time.h>

#include "common/lease_clock.h"

/* Milliseconds of the monotonic clock. */
int64_t
lease_clock_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t) now.tv_sec * 1000 + now.tv_nsec / 1000000;
}
