/*
 * limits.c
 *		Bounds on what one hostile file can cost: address space and CPU time.
 *
 * The address-space limit makes an allocation fail (the decoder reports
 * ENOMEM, we exit 75) instead of letting the machine swap.  It is left out of
 * AddressSanitizer builds, whose shadow memory needs terabytes of address
 * space.  The CPU limit is a backstop behind the supervisor's job timeout: at
 * the soft limit SIGXCPU asks the running operation to stop and clean up, the
 * hard limit a little later ends the process.
 */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>

#include <libavutil/log.h>

#include "media/media_internal.h"

#define MEDIA_ADDRESS_SPACE_BYTES ((rlim_t) 6 << 30)
#define MEDIA_CPU_SECONDS ((rlim_t) 4 * 3600)
#define MEDIA_CPU_GRACE_SECONDS 60

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

static volatile sig_atomic_t cpu_exhausted;

/* SIGXCPU: the CPU budget is spent; the running operation stops. */
static void
handle_cpu_exhausted(int signo)
{
	(void) signo;
	cpu_exhausted = 1;
}

/* Lower one limit to `wanted` (never raise it); hard is soft + grace. */
static void
lower_limit(int resource, rlim_t wanted, rlim_t grace)
{
	struct rlimit current;
	struct rlimit lowered;

	if (getrlimit(resource, &current) != 0)
		return;
	lowered = current;
	if (current.rlim_cur == RLIM_INFINITY || current.rlim_cur > wanted)
		lowered.rlim_cur = wanted;
	if (current.rlim_max == RLIM_INFINITY || current.rlim_max > lowered.rlim_cur + grace)
		lowered.rlim_max = lowered.rlim_cur + grace;
	setrlimit(resource, &lowered);
}

/* Apply the limits once per process. */
void
media_limit_resources(void)
{
	static bool applied;
	struct sigaction action;

	if (applied)
		return;
	applied = true;
	/* our own messages name the cause; libav's would bury them */
	av_log_set_level(AV_LOG_FATAL);
	if (MEDIA_LIMIT_ADDRESS_SPACE)
		lower_limit(RLIMIT_AS, MEDIA_ADDRESS_SPACE_BYTES, 0);
	memset(&action, 0, sizeof(action));
	action.sa_handler = handle_cpu_exhausted;
	sigemptyset(&action.sa_mask);
	sigaction(SIGXCPU, &action, NULL);
	lower_limit(RLIMIT_CPU, MEDIA_CPU_SECONDS, MEDIA_CPU_GRACE_SECONDS);
}

/* Whether the CPU budget is spent. */
bool
media_cpu_exhausted(void)
{
	return cpu_exhausted != 0;
}

/* The failure for an operation that stopped: asked to, or out of CPU time. */
int
media_fail_stopped(char *why)
{
	if (media_cpu_exhausted())
		return media_fail(why, EX_DATAERR,
						  "the file needs more than %d CPU seconds: refused as hostile",
						  (int) MEDIA_CPU_SECONDS);
	return media_fail(why, EX_TEMPFAIL, "stopped on request");
}
