/*
 * child_limits.c
 *		Parse and check the bounds of a vproxy-transcode run, and sizes.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/child_limits.h"

static const char nice_rule[] = "nice must be a whole number from 0 to 19";
static const char threads_rule[] =
"threads must be a whole number from 0 (as many as cores) to 256";
static const char memory_rule[] =
"the memory limit must be 0 (none) or a size from 64MB to 1PB, such as 4GB";
static const char postmaster_rule[] =
"the postmaster to yield to must be a process id (0: none)";
static const char db_cpu_rule[] =
"the database CPU use to yield at must be a whole number from 0 (never) to 10000 percent of one CPU";

/* No change of priority, threads for every core, the default memory bound. */
void
child_limits_defaults(ChildLimits *limits)
{
	limits->nice = 0;
	limits->threads = 0;
	limits->memory_limit_bytes = -1;
	limits->yield_to_postmaster = 0;
	limits->yield_db_cpu = 0;
}

/* Check every value; NULL if all are fine. */
const char *
child_limits_check(const ChildLimits *limits)
{
	if (limits->nice < 0 || limits->nice > CHILD_NICE_MAX)
		return nice_rule;
	if (limits->threads < 0 || limits->threads > CHILD_THREADS_MAX)
		return threads_rule;
	if (limits->memory_limit_bytes != -1 && limits->memory_limit_bytes != 0 &&
		(limits->memory_limit_bytes < CHILD_MEMORY_MIN ||
		 limits->memory_limit_bytes > CHILD_MEMORY_MAX))
		return memory_rule;
	if (limits->yield_to_postmaster < 0)
		return postmaster_rule;
	if (limits->yield_db_cpu < 0 || limits->yield_db_cpu > CHILD_YIELD_DB_CPU_MAX)
		return db_cpu_rule;
	return NULL;
}

/* Parse a whole decimal int; false if the text is not one. */
bool
child_limits_parse_int(const char *text, int *value)
{
	char	   *end;
	long		parsed;

	errno = 0;
	parsed = strtol(text, &end, 10);
	if (errno != 0 || end == text || *end != '\0' || parsed < INT_MIN || parsed > INT_MAX)
		return false;
	*value = (int) parsed;
	return true;
}

/* Set one limit from its text and check it. */
const char *
child_limits_set(ChildLimits *limits, ChildLimit which, const char *text)
{
	switch (which)
	{
		case CHILD_LIMIT_NICE:
			if (!child_limits_parse_int(text, &limits->nice))
				return nice_rule;
			break;
		case CHILD_LIMIT_THREADS:
			if (!child_limits_parse_int(text, &limits->threads))
				return threads_rule;
			break;
		case CHILD_LIMIT_MEMORY:
			if (!child_limits_parse_size(text, &limits->memory_limit_bytes))
				return memory_rule;
			break;
		case CHILD_LIMIT_YIELD_TO_POSTMASTER:
			if (!child_limits_parse_int(text, &limits->yield_to_postmaster))
				return postmaster_rule;
			break;
		case CHILD_LIMIT_YIELD_DB_CPU:
			if (!child_limits_parse_int(text, &limits->yield_db_cpu))
				return db_cpu_rule;
			break;
	}
	return child_limits_check(limits);
}

/* The factor of a size unit ("" = bytes); 0 if it is none. */
static int64_t
unit_factor(const char *unit)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	int64_t		factor = 1;

	if (unit[0] == '\0')
		return 1;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++, factor *= 1024)
		if (strcasecmp(unit, units[i]) == 0)
			return factor;
	return 0;
}

/*
 * Parse a size: digits, an optional fraction, optional spaces, an optional
 * unit.  Whole numbers are exact; a fraction ("1.5GB") is rounded down to a
 * whole byte.
 */
bool
child_limits_parse_size(const char *text, int64_t *bytes)
{
	const int64_t limit = (int64_t) 1 << 62;
	const char *c = text;
	int64_t		whole = 0;
	int64_t		factor;
	double		fraction = 0;
	double		place = 0.1;

	if (*c < '0' || *c > '9')
		return false;
	for (; *c >= '0' && *c <= '9'; c++)
	{
		whole = whole * 10 + (*c - '0');
		if (whole > limit)
			return false;
	}
	if (*c == '.')
	{
		if (c[1] < '0' || c[1] > '9')
			return false;
		for (c++; *c >= '0' && *c <= '9'; c++, place /= 10)
			fraction += (*c - '0') * place;
	}
	while (*c == ' ')
		c++;
	if ((factor = unit_factor(c)) == 0 || whole > limit / factor)
		return false;
	*bytes = whole * factor + (int64_t) (fraction * (double) factor);
	return *bytes <= limit;
}
