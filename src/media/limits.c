/*
 * limits.c
 *		Bounds on what one file can cost: memory and threads.
 *
 * Memory: the address-space limit makes an allocation fail (the decoder
 * reports ENOMEM, we exit 75) instead of letting the machine swap or the OOM
 * killer choose a victim.  The program sets it from --memory-limit or the
 * job spec's limits (media_set_memory_limit); without that, the first media
 * call applies MEDIA_DEFAULT_ADDRESS_SPACE.  It is left out of
 * AddressSanitizer builds, whose shadow memory needs terabytes of address
 * space.  A failure once the process has come near the limit is for lack of
 * memory, whatever the library that felt it said (media_memory_exhausted).
 *
 * Threads: one budget for the decoder, the filter graph and x264 together
 * (media_set_thread_budget; 0 = as many as the cores this process may use):
 * the decoder's frame threads take it (more where it is all the cores:
 * three beside x264, one alone), x264 a quarter beside them, and the filter
 * graphs start no threads.  See media_decoder_threads() and
 * media_encoder_threads().
 *
 * Time: deliberately no CPU-time limit (RLIMIT_CPU).  CPU time is summed over
 * all threads, so a legitimate long 4K HEVC upload on a many-core machine
 * spends CPU-hours in far fewer hours of wall time; any fixed cap would
 * refuse real uploads as "hostile" (65, failed for good), and one scaled by
 * threads or cores would still cut short a run the DBA allowed with a longer
 * vproxy.job_timeout.  The bound on time is wall-clock and belongs to the
 * supervisor: at vproxy.job_timeout the worker sends SIGTERM (the run stops
 * and removes its partial output), then SIGKILL, and records the timeout
 * (test/t/330_faults.pl); the child dies with its worker
 * (PR_SET_PDEATHSIG), so no run outlives its supervision.
 * test/t/040_media_hostile.pl checks that SIGTERM ends a run cleanly.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <libavutil/cpu.h>
#include <libavutil/log.h>

#include "media/media_internal.h"

#define MEDIA_DEFAULT_ADDRESS_SPACE ((uint64_t) 4 << 30)

/* x264 gains nothing from more frame threads at 480p */
#define MEDIA_MAX_ENCODER_THREADS 8
/* libavcodec's own ceiling for automatic frame threads */
#define MEDIA_MAX_DECODER_THREADS 16

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

static bool memory_limit_set;
static int	thread_budget;

/* Lower the address-space limit to `wanted` (never raise it). */
static void
lower_address_space(uint64_t wanted)
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

/* Cap the address space at `bytes` now (0: no cap of ours), instead of the default. */
void
media_set_memory_limit(uint64_t bytes)
{
	memory_limit_set = true;
	if (MEDIA_LIMIT_ADDRESS_SPACE && bytes > 0)
		lower_address_space(bytes);
}

/* Set the thread budget of decoder, filters and encoder together; 0 = the cores. */
void
media_set_thread_budget(int threads)
{
	thread_budget = threads > 0 ? threads : 0;
}

/* The cores this process may run on. */
static int
cores(void)
{
	int			count = av_cpu_count();

	return count > 0 ? count : 1;
}

/* The thread budget: the setting, or the cores. */
static int
budget(void)
{
	return thread_budget > 0 ? thread_budget : cores();
}

/*
 * Threads of a video decoder, alone (thumbnail) or beside x264 (proxy): the
 * whole budget as frame threads either way, and more where the budget is all
 * the cores.  Decoding 1080p at camera and phone bit rates costs up to 2.5
 * times what x264 spends on its 480p10 proxy, so there the decoder is what
 * the run waits for: with half the budget (one thread on 2 cores) it took
 * longer than the CLI's whole run (test/bench/proxy-vs-cli).  Frame threads
 * wait on the rows of the frames they refer to, so with only as many as the
 * cores a core idles whenever one waits.  Alone, the decoder takes one more
 * (libavcodec's own default, cores + 1).  Beside x264, which runs whenever it
 * has a frame and so takes a core from the frame threads while it does, three
 * more: on 2 cores, 30-second cuts of the bench's sources, medians of 3
 * alternating runs, wall time against cores + 1: natural -6 %, phone -3 to
 * -10 %, HEVC -3 %, the encoder-bound synthetic unchanged, at the same CPU
 * (cores + 1 itself had cut 6 to 8 % against cores).  Each frame thread
 * holds its frames: the proxy's peak RSS went from 140 to 157 MiB on the
 * phone source.  A smaller budget gets no extra thread: it bounds the cores.
 */
int
media_decoder_threads(bool beside_encoder)
{
	int			threads = budget();

	if (threads >= cores())
		threads += beside_encoder ? 3 : 1;
	return threads > MEDIA_MAX_DECODER_THREADS ? MEDIA_MAX_DECODER_THREADS : threads;
}

/*
 * Threads of x264: one per four of the budget, at least one.  It works in
 * the proxy's encoding thread beside the decoder's frame threads, which
 * yield to it (proxy.c).  With a budget under 4 that is one thread more than
 * the budget: where the budget is all the cores, the decoder gives way to
 * it; with cores to spare, one more core is busy while x264 works (about a
 * third of the run's CPU).  A second x264 thread on 2 cores cost 10 to 14 %
 * more CPU and no wall time.
 */
int
media_encoder_threads(void)
{
	int			threads = budget() / 4;

	if (threads < 1)
		threads = 1;
	return threads > MEDIA_MAX_ENCODER_THREADS ? MEDIA_MAX_ENCODER_THREADS : threads;
}

/*
 * Lower the calling thread's CPU priority by `steps` nice levels, at most to
 * 19.  On Linux a nice value belongs to a thread, and the threads it starts
 * inherit it.
 */
void
media_lower_thread_priority(int steps)
{
	pid_t		thread = (pid_t) syscall(SYS_gettid);
	int			current;

	errno = 0;
	current = getpriority(PRIO_PROCESS, thread);
	if (current == -1 && errno != 0)
		return;
	(void) setpriority(PRIO_PROCESS, thread, current + steps > 19 ? 19 : current + steps);
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
	if (!memory_limit_set)
		media_set_memory_limit(MEDIA_DEFAULT_ADDRESS_SPACE);
}
