/*
 * process_limits.h
 *		A run of vproxy-transcode bounds itself, as its first act, with the
 *		limits of src/common/child_limits.h (from its options or the job's
 *		"limits"): CPU and IO priority, threads, memory, and its place in the
 *		OOM killer's order.
 */
#ifndef VPROXY_TRANSCODE_PROCESS_LIMITS_H
#define VPROXY_TRANSCODE_PROCESS_LIMITS_H

#include <getopt.h>
#include <stdbool.h>

#include "common/child_limits.h"

/* getopt_long codes of the limit options: this plus their ChildLimit */
#define LIMIT_OPTION_BASE 1000

/* The options --nice, --threads, --memory-limit, --yield-to-postmaster, --yield-db-cpu. */
#define LIMIT_OPTIONS \
	{"nice", required_argument, NULL, LIMIT_OPTION_BASE + CHILD_LIMIT_NICE}, \
	{"threads", required_argument, NULL, LIMIT_OPTION_BASE + CHILD_LIMIT_THREADS}, \
	{"memory-limit", required_argument, NULL, LIMIT_OPTION_BASE + CHILD_LIMIT_MEMORY}, \
	{"yield-to-postmaster", required_argument, NULL, LIMIT_OPTION_BASE + CHILD_LIMIT_YIELD_TO_POSTMASTER}, \
	{"yield-db-cpu", required_argument, NULL, LIMIT_OPTION_BASE + CHILD_LIMIT_YIELD_DB_CPU}

/*
 * Take a limit option (code from LIMIT_OPTIONS): NULL, or what is wrong
 * with its value; false in *taken if code is not a limit option.
 */
extern const char *process_limits_option(ChildLimits *limits, int code, const char *value,
										 bool *taken);

/*
 * Apply the limits to this process (before it starts any thread): nice and
 * best-effort IO priority 7 when nice > 0, the address-space limit, the thread
 * budget, oom_score_adj 1000 so that the OOM killer takes this process
 * before any other (a PostgreSQL backend above all), and the watcher that
 * pauses it while the database is busy (cpu_yield.c).
 */
extern void process_limits_apply(const ChildLimits *limits);

/* cpu_yield.c: pause this process while that server uses over percent of a CPU. */
extern void cpu_yield_start(int postmaster, int percent);

#endif							/* VPROXY_TRANSCODE_PROCESS_LIMITS_H */
