/*
 * process_limits.h
 *		What a supervisor (or the command line) bounds a run of
 *		vproxy-transcode with, applied by the process to itself as its first
 *		act: CPU and IO priority, threads, memory, and its place in the OOM
 *		killer's order.
 */
#ifndef VPROXY_TRANSCODE_PROCESS_LIMITS_H
#define VPROXY_TRANSCODE_PROCESS_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#define PROCESS_NICE_MAX 19
#define PROCESS_THREADS_MAX 256
/* below this not even the libraries and the first frame fit */
#define PROCESS_MEMORY_MIN ((int64_t) 64 << 20)
#define PROCESS_MEMORY_MAX ((int64_t) 1 << 50)

typedef struct ProcessLimits
{
	int			nice;			/* 0..19; 0 leaves the priorities as they are */
	int			threads;		/* decoder + filters + x264; 0 = the cores */
	int64_t		memory_limit_bytes; /* address space; 0 = none; -1 = the
									 * media room's default (4 GiB) */
	int			yield_to_postmaster;	/* pause while this PostgreSQL server
										 * is busy; 0 = never */
	int			yield_db_cpu;	/* busy: its processes use more than this
								 * percent of one CPU */
} ProcessLimits;

/* No change of priority, threads for every core, the default memory bound. */
extern void process_limits_defaults(ProcessLimits *limits);

/* Check the values; NULL if fine, else what is wrong (a static string). */
extern const char *process_limits_check(const ProcessLimits *limits);

/*
 * Parse a command-line option --nice, --threads, --memory-limit,
 * --yield-to-postmaster or --yield-db-cpu into
 * limits; false if `name` is none of them.  *ok says whether the value was
 * valid.
 */
extern bool process_limits_option(const char *name, const char *value,
								  ProcessLimits *limits, bool *ok);

/*
 * Apply the limits to this process (before it starts any thread): nice and
 * best-effort IO priority 7 when nice > 0, the address-space limit, the thread
 * budget, oom_score_adj 1000 so that the OOM killer takes this process
 * before any other (a PostgreSQL backend above all), and the watcher that
 * pauses it while the database is busy (cpu_yield.c).
 */
extern void process_limits_apply(const ProcessLimits *limits);

/* cpu_yield.c: pause this process while that server uses over percent of a CPU. */
extern void cpu_yield_start(int postmaster, int percent);

#endif							/* VPROXY_TRANSCODE_PROCESS_LIMITS_H */
