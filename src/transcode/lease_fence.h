/*
 * lease_fence.h
 *		The lease fence of `vproxy-transcode job`: the CLOCK_MONOTONIC
 *		instant (milliseconds) its supervisor gave it, past which its lease
 *		may be another worker's.  From then on the job starts no write to the
 *		storage (the storage's write gate refuses it) and stops what it is
 *		doing; the supervisor moves the fence with each renewed lease, on
 *		lines {"lease_until_ms": N} of the job's stdin (job-protocol.md).
 *		No fence given, no fence kept (a job run by hand).
 */
#ifndef VPROXY_TRANSCODE_LEASE_FENCE_H
#define VPROXY_TRANSCODE_LEASE_FENCE_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Take a line of the job's stdin: when it is a JSON object with an integer
 * "lease_until_ms", that is the fence from now on.  True if it was.
 */
extern bool lease_fence_take_line(const char *line);

/* Whether a fence was given and has passed. */
extern bool lease_fence_passed(void);

/* How many milliseconds ago the fence passed (for messages); 0 if it has not. */
extern int64_t lease_fence_passed_ms(void);

/*
 * The storage's write gate (storage_set_write_gate): 0 before the fence,
 * EX_TEMPFAIL with why after it.
 */
extern int	lease_fence_gate(const char *operation, const char *key, char *why);

#endif							/* VPROXY_TRANSCODE_LEASE_FENCE_H */
