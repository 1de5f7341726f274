/*
 * process_limits.c
 *		Apply a run's bounds to the process itself: CPU priority (nice),
 *		IO priority (best-effort, lowest level), the thread budget, the
 *		address-space limit and oom_score_adj.
 *
 * Each is set by the process on itself before any thread exists, so every
 * thread libav and x264 start later inherits the priorities.  None needs a
 * privilege: a process may always lower its own priorities and raise its
 * own OOM score.  A process that is already nicer than asked stays so.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "media/media.h"
#include "transcode/process_limits.h"

/* linux/ioprio.h is not in every libc's headers: the ABI values */
#define IOPRIO_CLASS_SHIFT 13
#define IOPRIO_CLASS_BE 2
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_LOWEST_BE_LEVEL 7

#define OOM_SCORE_ADJ_MAX "1000"

/*
 * glibc gives each thread its own malloc arena, each reserving 64 MiB of
 * address space however little it holds: with a decoder's and x264's threads
 * that reservation, not the frames, decided when RLIMIT_AS was reached.  Two
 * arenas keep the address space close to the memory really used.
 */
#define MALLOC_ARENAS 2

/* Take a limit option: NULL, or what is wrong with its value. */
const char *
process_limits_option(ChildLimits *limits, int code, const char *value, bool *taken)
{
	*taken = code >= LIMIT_OPTION_BASE + CHILD_LIMIT_NICE &&
		code <= LIMIT_OPTION_BASE + CHILD_LIMIT_YIELD_DB_CPU;
	if (!*taken)
		return NULL;
	return child_limits_set(limits, (ChildLimit) (code - LIMIT_OPTION_BASE), value);
}

/* Lower the CPU priority to `nice` (never raise it) and the IO priority with it. */
static void
lower_priorities(int nice)
{
	int			current;

	errno = 0;
	current = getpriority(PRIO_PROCESS, 0);
	if (errno == 0 && current < nice)
		(void) setpriority(PRIO_PROCESS, 0, nice);
	(void) syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
				   (IOPRIO_CLASS_BE << IOPRIO_CLASS_SHIFT) | IOPRIO_LOWEST_BE_LEVEL);
}

/* Make this process the OOM killer's first choice. */
static void
first_for_oom_killer(void)
{
	int			fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
	ssize_t		written;

	if (fd < 0)
		return;
	written = write(fd, OOM_SCORE_ADJ_MAX, strlen(OOM_SCORE_ADJ_MAX));
	(void) written;				/* the other bounds hold without it */
	close(fd);
}

/* Apply the limits to this process. */
void
process_limits_apply(const ChildLimits *limits)
{
	if (limits->nice > 0)
		lower_priorities(limits->nice);
	first_for_oom_killer();
	mallopt(M_ARENA_MAX, MALLOC_ARENAS);
	media_set_thread_budget(limits->threads);
	if (limits->memory_limit_bytes >= 0)
		media_set_memory_limit((uint64_t) limits->memory_limit_bytes);
	/* last: the watcher is forked with the priorities already lowered */
	cpu_yield_start(limits->yield_to_postmaster, limits->yield_db_cpu);
}
