/*
 * limits.c
 *		Bounds on what one hostile file can cost.
 *
 * Memory: the address-space limit makes an allocation fail (the decoder
 * reports ENOMEM, we exit 75) instead of letting the machine swap.  It is
 * left out of AddressSanitizer builds, whose shadow memory needs terabytes of
 * address space.
 *
 * Time: deliberately no CPU-time limit (RLIMIT_CPU).  CPU time is summed over
 * all threads (x264's up to 8, the decoder's up to 16), so a legitimate long
 * 4K HEVC upload on a many-core machine spends CPU-hours in far fewer hours
 * of wall time; any fixed cap would refuse real uploads as "hostile" (65,
 * failed for good), and one scaled by threads or cores would still cut short
 * a run the DBA allowed with a longer vproxy.job_timeout.  The bound on time
 * is wall-clock and belongs to the supervisor: at vproxy.job_timeout the
 * worker sends SIGTERM (the run stops and removes its partial output), then
 * SIGKILL, and records the timeout (test/t/330_faults.pl); the child dies
 * with its worker (PR_SET_PDEATHSIG), so no run outlives its supervision.
 * test/t/040_media_hostile.pl checks that SIGTERM ends a run cleanly.
 */
#include <sys/resource.h>

#include <libavutil/log.h>

#include "media/media_internal.h"

#define MEDIA_ADDRESS_SPACE_BYTES ((rlim_t) 6 << 30)

#if defined(__SANITIZE_ADDRESS__)
#define MEDIA_LIMIT_ADDRESS_SPACE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEDIA_LIMIT_ADDRESS_SPACE 0
#endif
#endif
#ifndef MEDIA_LIMIT_ADDRESS_SPACE
#define MEDIA_LIMIT_ADDRESS_SPACE 1
#endif

/* Lower the address-space limit to `wanted` (never raise it). */
static void
lower_address_space(rlim_t wanted)
{
	struct rlimit current;
	struct rlimit lowered;

	if (getrlimit(RLIMIT_AS, &current) != 0)
		return;
	lowered = current;
	if (current.rlim_cur == RLIM_INFINITY || current.rlim_cur > wanted)
		lowered.rlim_cur = wanted;
	if (current.rlim_max == RLIM_INFINITY || current.rlim_max > lowered.rlim_cur)
		lowered.rlim_max = lowered.rlim_cur;
	setrlimit(RLIMIT_AS, &lowered);
}

/* Apply the limits once per process. */
void
media_limit_resources(void)
{
	static bool applied;

	if (applied)
		return;
	applied = true;
	/* our own messages name the cause; libav's would bury them */
	av_log_set_level(AV_LOG_FATAL);
	if (MEDIA_LIMIT_ADDRESS_SPACE)
		lower_address_space(MEDIA_ADDRESS_SPACE_BYTES);
}
