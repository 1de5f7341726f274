/*
 * cpu_yield.c
 *		Step aside while the database is busy: a small watcher process stops
 *		this process (SIGSTOP) while the processes of a PostgreSQL server
 *		(the children of its postmaster: backends, autovacuum, checkpointer;
 *		not this process, which is a grandchild) use more than a given share
 *		of one CPU, and continues it (SIGCONT) once they are quiet again.
 *
 * Why not nice values alone: measured before (test/bench/oltp-impact), a
 * child at nice 10 or 19, or SCHED_IDLE, still cost the backends a third of
 * their throughput and 5 to 9 times their p99 latency at a steady load: they
 * share caches, memory bandwidth and wake-up latency with it.  Stopped, the
 * child costs nothing.  Why the database's own CPU time and not the kernel's
 * CPU pressure: the pressure counts every waiting task, so two children of
 * two workers would pause each other, and any other load on the machine
 * would stop the transcodes.
 *
 * It never starves: a pause lasts at most YIELD_MAX_PAUSE_MS, then the child
 * runs at least one sample (YIELD_SAMPLE_MS) whatever the load, so under a
 * database that is busy all the time it still gets about 1% of the wall
 * time (and vproxy.job_timeout still bounds the attempt).  Why so little:
 * each such run is a burst of transcoding that the application's
 * transactions meet, and p99 latency counts 1% of them; with runs of 200 ms
 * every 5 s (4% of the time), a steady TPC-B-like load once had its p99 at
 * 4 to 8 times idle where a child stopped throughout left it at idle's.
 *
 * The watcher is forked before any thread exists, keeps none of this
 * process's file descriptors, and dies with this process (PR_SET_PDEATHSIG).  A stop request must end a paused child promptly: the
 * supervisor's SIGTERM to the process group reaches the watcher, which
 * continues the child and leaves; a stop request pending on the child alone
 * is seen in /proc and does the same.
 */
#define _GNU_SOURCE				/* close_range */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "transcode/commands.h"
#include "transcode/process_limits.h"

#define YIELD_SAMPLE_MS 100
#define YIELD_MAX_PAUSE_MS 10000

/* Milliseconds of a monotonic clock. */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* CPU time (user + system, clock ticks) of one process; 0 if it is gone. */
static unsigned long long
process_ticks(long pid)
{
	char		path[64];
	char		line[1024];
	FILE	   *file;
	char	   *after_name;
	unsigned long long utime = 0,
				stime = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((file = fopen(path, "r")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), file) != NULL &&
		(after_name = strrchr(line, ')')) != NULL &&
		sscanf(after_name + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			   &utime, &stime) != 2)
		utime = stime = 0;
	fclose(file);
	return utime + stime;
}

/* One process of the database and the CPU ticks it had used. */
typedef struct ProcessTicks
{
	long		pid;
	unsigned long long ticks;
} ProcessTicks;

typedef struct DatabaseSample
{
	ProcessTicks *processes;
	size_t		count;
	size_t		capacity;
} DatabaseSample;

/* qsort order of ProcessTicks by pid. */
static int
by_pid(const void *a, const void *b)
{
	long		x = ((const ProcessTicks *) a)->pid;
	long		y = ((const ProcessTicks *) b)->pid;

	return (x > y) - (x < y);
}

/*
 * Sample the CPU ticks of the database's processes (the children of
 * `postmaster`, but not `supervisor`), sorted by pid; false when the
 * postmaster is gone.
 */
static bool
sample_database(pid_t postmaster, pid_t supervisor, DatabaseSample *sample)
{
	char		path[64];
	FILE	   *file;
	long		pid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int) postmaster, (int) postmaster);
	if ((file = fopen(path, "r")) == NULL)
		return false;
	sample->count = 0;
	while (fscanf(file, "%ld", &pid) == 1)
	{
		if (pid == supervisor)
			continue;
		if (sample->count == sample->capacity)
		{
			size_t		capacity = sample->capacity ? sample->capacity * 2 : 256;
			ProcessTicks *grown = realloc(sample->processes, capacity * sizeof(ProcessTicks));

			if (grown == NULL)
				break;
			sample->processes = grown;
			sample->capacity = capacity;
		}
		sample->processes[sample->count].pid = pid;
		sample->processes[sample->count].ticks = process_ticks(pid);
		sample->count++;
	}
	fclose(file);
	qsort(sample->processes, sample->count, sizeof(ProcessTicks), by_pid);
	return true;
}

/*
 * The CPU ticks the database's processes used between two samples, counting
 * only processes present in both: a connection that lives for a few
 * milliseconds (a monitoring poll) is not the application's load.
 */
static unsigned long long
ticks_between(const DatabaseSample *before, const DatabaseSample *after)
{
	unsigned long long used = 0;
	size_t		i = 0,
				j = 0;

	while (i < before->count && j < after->count)
	{
		if (before->processes[i].pid < after->processes[j].pid)
			i++;
		else if (before->processes[i].pid > after->processes[j].pid)
			j++;
		else
		{
			if (after->processes[j].ticks > before->processes[i].ticks)
				used += after->processes[j].ticks - before->processes[i].ticks;
			i++;
			j++;
		}
	}
	return used;
}

/* Whether the child has a stop request (SIGTERM, SIGINT, SIGHUP) pending. */
static bool
stop_pending(pid_t child)
{
	char		path[64];
	char		line[256];
	FILE	   *file;
	bool		pending = false;
	unsigned long long wanted = (1ULL << (SIGTERM - 1)) | (1ULL << (SIGINT - 1)) | (1ULL << (SIGHUP - 1));

	snprintf(path, sizeof(path), "/proc/%d/status", (int) child);
	if ((file = fopen(path, "r")) == NULL)
		return false;
	while (fgets(line, sizeof(line), file) != NULL)
	{
		unsigned long long mask;

		if ((sscanf(line, "ShdPnd: %llx", &mask) == 1 || sscanf(line, "SigPnd: %llx", &mask) == 1) &&
			(mask & wanted) != 0)
			pending = true;
	}
	fclose(file);
	return pending;
}

/* The watcher's loop: pause and continue the child by the database's CPU use. */
static void
watch(pid_t child, pid_t supervisor, pid_t postmaster, double busy_share)
{
	long		ticks_per_second = sysconf(_SC_CLK_TCK);
	DatabaseSample samples[2] = {{NULL, 0, 0}, {NULL, 0, 0}};
	int			last = 0;
	double		last_at = now_ms();
	double		paused_at = 0;
	bool		paused = false;
	int			quiet_samples = 0;

	if (ticks_per_second <= 0 || !sample_database(postmaster, supervisor, &samples[last]))
		_exit(0);
	while (!transcode_stop_requested(NULL) && getppid() == child)
	{
		struct timespec pause = {0, YIELD_SAMPLE_MS * 1000000L};
		int			next = 1 - last;
		double		at;
		double		share;

		nanosleep(&pause, NULL);
		if (transcode_stop_requested(NULL) || stop_pending(child) ||
			!sample_database(postmaster, supervisor, &samples[next]))
			break;
		at = now_ms();
		/* CPUs' worth the database used over the sample */
		share = at > last_at ?
			(double) ticks_between(&samples[last], &samples[next]) * 1000.0 / ticks_per_second / (at - last_at) : 0.0;
		last = next;
		last_at = at;
		if (!paused)
		{
			if (share > busy_share && kill(child, SIGSTOP) == 0)
			{
				paused = true;
				paused_at = at;
				quiet_samples = 0;
			}
			continue;
		}
		quiet_samples = share <= busy_share / 2 ? quiet_samples + 1 : 0;
		if (quiet_samples >= 2 || at - paused_at >= YIELD_MAX_PAUSE_MS)
		{
			(void) kill(child, SIGCONT);
			paused = false;
		}
	}
	(void) kill(child, SIGCONT);
	_exit(0);
}

/*
 * Start the watcher: pause this process while the processes of the
 * PostgreSQL server whose postmaster is `postmaster` use more than `percent`
 * of one CPU.  Nothing is started for percent 0 or an unknown postmaster.
 */
void
cpu_yield_start(int postmaster, int percent)
{
	char		path[64];
	pid_t		child = getpid();
	pid_t		supervisor = getppid();
	pid_t		pid;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", postmaster, postmaster);
	if (percent <= 0 || postmaster <= 0 || access(path, R_OK) != 0)
		return;
	pid = fork();
	if (pid != 0)
		return;					/* the child itself, or no watcher (fork failed) */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != child)
		_exit(0);
	/* hold none of the child's pipes: its supervisor waits for their end */
	(void) close_range(0, ~0U, 0);
	/* a stop request to the process group: continue the child and leave */
	transcode_install_stop_handlers();
	watch(child, supervisor, (pid_t) postmaster, percent / 100.0);
}
