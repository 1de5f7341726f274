/*
 * child_limits_test.c
 *		Unit tests of src/common/child_limits: the size parser and the
 *		checks both vproxy-worker and vproxy-transcode use, with their words.
 */
#include <stdint.h>

#include "common/child_limits.h"
#include "unit_tap.h"

/* Parse a size; -1 if refused. */
static int64_t
size_of(const char *text)
{
	int64_t		bytes;

	return child_limits_parse_size(text, &bytes) ? bytes : -1;
}

/* Set one limit on defaults; the refusal's words or "". */
static const char *
set(ChildLimit which, const char *text)
{
	ChildLimits limits;
	const char *wrong;

	child_limits_defaults(&limits);
	wrong = child_limits_set(&limits, which, text);
	return wrong ? wrong : "";
}

int
main(void)
{
	ChildLimits limits;

	tap_ok(size_of("0") == 0, "0 bytes");
	tap_ok(size_of("4294967296") == 4294967296LL, "a number of bytes");
	tap_ok(size_of("512B") == 512, "B");
	tap_ok(size_of("1kB") == 1024, "kB is 1024");
	tap_ok(size_of("10MB") == 10LL << 20, "MB");
	tap_ok(size_of("4GB") == 4LL << 30, "GB");
	tap_ok(size_of("4gb") == 4LL << 30, "any letter case");
	tap_ok(size_of("4 GB") == 4LL << 30, "a space before the unit");
	tap_ok(size_of("1.5GB") == 3LL << 29, "a fraction");
	tap_ok(size_of("2TB") == 2LL << 40, "TB");
	tap_ok(size_of("1PB") == 1LL << 50, "PB");
	tap_ok(size_of("") == -1, "empty refused");
	tap_ok(size_of("-5") == -1, "negative refused");
	tap_ok(size_of("4GiB") == -1, "an unknown unit refused");
	tap_ok(size_of("0x10") == -1, "hexadecimal refused");
	tap_ok(size_of("1.") == -1, "a dot without digits refused");
	tap_ok(size_of("inf") == -1, "inf refused");
	tap_ok(size_of("9999999PB") == -1, "past 2^62 bytes refused");
	tap_ok(size_of("99999999999999999999") == -1, "no overflow");

	tap_is(set(CHILD_LIMIT_NICE, "19"), "", "nice 19");
	tap_is(set(CHILD_LIMIT_NICE, "-5"), "nice must be a whole number from 0 to 19", "nice -5");
	tap_is(set(CHILD_LIMIT_NICE, "x"), "nice must be a whole number from 0 to 19", "nice x");
	tap_is(set(CHILD_LIMIT_THREADS, "1000"),
		   "threads must be a whole number from 0 (as many as cores) to 256", "threads 1000");
	tap_is(set(CHILD_LIMIT_THREADS, "256"), "", "threads 256");
	tap_is(set(CHILD_LIMIT_MEMORY, "10MB"),
		   "the memory limit must be 0 (none) or a size from 64MB to 1PB, such as 4GB", "memory 10MB");
	tap_is(set(CHILD_LIMIT_MEMORY, "64MB"), "", "memory 64MB");
	tap_is(set(CHILD_LIMIT_MEMORY, "0"), "", "memory 0: none");
	tap_is(set(CHILD_LIMIT_YIELD_DB_CPU, "10001"),
		   "the database CPU use to yield at must be a whole number from 0 (never) to 10000 percent of one CPU",
		   "yield-db-cpu 10001");
	tap_is(set(CHILD_LIMIT_YIELD_TO_POSTMASTER, "-1"),
		   "the postmaster to yield to must be a process id (0: none)", "yield-to-postmaster -1");

	child_limits_defaults(&limits);
	tap_ok(child_limits_check(&limits) == NULL, "the defaults pass the check");
	limits.memory_limit_bytes = 1000;
	tap_ok(child_limits_check(&limits) != NULL, "a limit set in a struct is checked too");
	return tap_done();
}
