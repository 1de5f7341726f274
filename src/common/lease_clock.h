/*
 * lease_clock.h
 *		The clock of the lease fence: CLOCK_MONOTONIC in milliseconds, the
 *		one clock a worker and its child share on one machine, so that a
 *		fence ("lease_until_ms") the supervisor computes means the same
 *		instant to the child.  Plain C, no dependency.
 */
#ifndef VPROXY_LEASE_CLOCK_H
#define VPROXY_LEASE_CLOCK_H

#include <stdint.h>

/* Milliseconds of the monotonic clock. */
extern int64_t lease_clock_ms(void);

#endif							/* VPROXY_LEASE_CLOCK_H */
