/*
 * lease_fence.h
 *		The lease fence of `vproxy-transcode job`: the CLOCK_MONOTONIC
 *		instant (milliseconds) its supervisor gave it, past which its lease
 *		may be another worker's.  From then on the job starts no write to the
 *		storage (the storage's write gate refuses it) and stops what it is
 *		doing.  The first fence comes in the local part (line 2 of stdin);
 *		the supervisor moves it with each renewed lease, on the lines
 *		{"lease_until_ms": N} that follow, read by a thread of their own so
 *		that the media work never waits for them (job-protocol.md).  No
 *		fence given, no fence kept (a job run by hand).
 */
#ifndef VPROXY_TRANSCODE_LEASE_FENCE_H
#define VPROXY_TRANSCODE_LEASE_FENCE_H

#include <stdbool.h>
#include <stdint.h>

/* Set the fence (0: none). */
extern void lease_fence_set(int64_t until_ms);

/*
 * Read the lease lines of fd in a thread of its own until the end of the
 * input: each moves the fence (a line that is no lease line leaves it).
 * False, with errno, if the thread could not start.
 */
extern bool lease_fence_follow(int fd);

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
