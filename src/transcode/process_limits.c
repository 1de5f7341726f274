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
#include <limits.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "media/media.h"
#include "transcode/commands.h"
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

/* No change of priority, threads for every core, the default memory bound. */
void
process_limits_defaults(ProcessLimits *limits)
{
	limits->nice = 0;
	limits->threads = 0;
	limits->memory_limit_bytes = -1;
	limits->yield_to_postmaster = 0;
	limits->yield_db_cpu = 0;
}

/* Check the values; NULL if fine, else what is wrong. */
const char *
process_limits_check(const ProcessLimits *limits)
{
	if (limits->nice < 0 || limits->nice > PROCESS_NICE_MAX)
		return "nice must be between 0 and 19";
	if (limits->threads < 0 || limits->threads > PROCESS_THREADS_MAX)
		return "threads must be between 0 (as many as cores) and 256";
	if (limits->memory_limit_bytes != -1 &&
		limits->memory_limit_bytes != 0 &&
		(limits->memory_limit_bytes < PROCESS_MEMORY_MIN ||
		 limits->memory_limit_bytes > PROCESS_MEMORY_MAX))
		return "the memory limit must be 0 (none) or between 64 MiB and 1 PiB";
	if (limits->yield_to_postmaster < 0)
		return "the postmaster to yield to must be a process id";
	if (limits->yield_db_cpu < 0 || limits->yield_db_cpu > 10000)
		return "the database CPU use to yield at must be between 0 (never) and 10000 percent of one CPU";
	return NULL;
}

/* Parse a whole decimal number of bytes. */
static bool
parse_bytes(const char *text, int64_t *value)
{
	char	   *end;
	long long	parsed;

	errno = 0;
	parsed = strtoll(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || parsed < 0)
		return false;
	*value = parsed;
	return true;
}

/* Parse --nice, --threads or --memory-limit; false if `name` is none of them. */
bool
process_limits_option(const char *name, const char *value,
					  ProcessLimits *limits, bool *ok)
{
	if (strcmp(name, "--nice") == 0)
		*ok = transcode_parse_int(value, &limits->nice);
	else if (strcmp(name, "--threads") == 0)
		*ok = transcode_parse_int(value, &limits->threads);
	else if (strcmp(name, "--memory-limit") == 0)
		*ok = parse_bytes(value, &limits->memory_limit_bytes);
	else if (strcmp(name, "--yield-to-postmaster") == 0)
		*ok = transcode_parse_int(value, &limits->yield_to_postmaster);
	else if (strcmp(name, "--yield-db-cpu") == 0)
		*ok = transcode_parse_int(value, &limits->yield_db_cpu);
	else
		return false;
	*ok = *ok && process_limits_check(limits) == NULL;
	return true;
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
process_limits_apply(const ProcessLimits *limits)
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
