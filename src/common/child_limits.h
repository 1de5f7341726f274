/*
 * child_limits.h
 *		The bounds a run of vproxy-transcode is given (CPU priority, threads,
 *		memory, yielding to a busy database), parsed and checked once for all
 *		who give them: vproxy-worker's options, vproxy-transcode's options and
 *		the "limits" of a job.  A value one of them refuses, the others refuse
 *		with the same words.  Also the one parser of sizes ("4GB") and of the
 *		whole numbers of options.  Plain C, no dependency.
 */
#ifndef VPROXY_CHILD_LIMITS_H
#define VPROXY_CHILD_LIMITS_H

#include <stdbool.h>
#include <stdint.h>

#define CHILD_NICE_MAX 19
#define CHILD_THREADS_MAX 256
/* below this not even the libraries and the first frame fit */
#define CHILD_MEMORY_MIN ((int64_t) 64 << 20)
#define CHILD_MEMORY_MAX ((int64_t) 1 << 50)
#define CHILD_YIELD_DB_CPU_MAX 10000

typedef struct ChildLimits
{
	int			nice;			/* 0..19; 0 leaves the priorities as they are */
	int			threads;		/* decoder + filters + x264; 0 = the cores */
	int64_t		memory_limit_bytes; /* address space; 0 = none; -1 = the
									 * media room's default (4 GiB) */
	int			yield_to_postmaster;	/* pause while this PostgreSQL server
										 * is busy; 0 = never */
	int			yield_db_cpu;	/* busy: its processes use more than this
								 * percent of one CPU */
} ChildLimits;

/* One of the limits, as an option names it. */
typedef enum ChildLimit
{
	CHILD_LIMIT_NICE,			/* --nice N */
	CHILD_LIMIT_THREADS,		/* --threads N */
	CHILD_LIMIT_MEMORY,			/* --memory-limit SIZE */
	CHILD_LIMIT_YIELD_TO_POSTMASTER,	/* --yield-to-postmaster PID */
	CHILD_LIMIT_YIELD_DB_CPU	/* --yield-db-cpu PERCENT */
} ChildLimit;

/* No change of priority, threads for every core, the default memory bound. */
extern void child_limits_defaults(ChildLimits *limits);

/* Check every value; NULL if all are fine, else what is wrong (a static string). */
extern const char *child_limits_check(const ChildLimits *limits);

/*
 * Set one limit from its text (an option's value) and check it: NULL, or
 * what is wrong (a static string, the same child_limits_check gives).
 */
extern const char *child_limits_set(ChildLimits *limits, ChildLimit which, const char *text);

/* Parse a whole decimal int (an option's value); false if the text is not one. */
extern bool child_limits_parse_int(const char *text, int *value);

/*
 * Parse a size: a whole number of bytes, or a number with a unit B, kB, MB,
 * GB, TB or PB (powers of 1024, any letter case), as in "512MB" or "1.5GB";
 * false if the text is not one or it passes 2^62 bytes.
 */
extern bool child_limits_parse_size(const char *text, int64_t *bytes);

#endif							/* VPROXY_CHILD_LIMITS_H */
