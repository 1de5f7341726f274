/*
 * unit_tap.h
 *		A few TAP helpers for the unit tests of src/common (test/unit), one
 *		header so that every test program prints the same way.
 */
#ifndef VPROXY_TEST_UNIT_TAP_H
#define VPROXY_TEST_UNIT_TAP_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int	tap_count;
static int	tap_failed;

/* One test: "ok N - name" or "not ok N - name". */
static bool __attribute__((format(printf, 2, 3), unused))
tap_ok(bool good, const char *fmt,...)
{
	va_list		args;

	printf("%sok %d - ", good ? "" : "not ", ++tap_count);
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
	printf("\n");
	tap_failed += !good;
	return good;
}

/* One comparison of strings, showing both when they differ. */
static bool __attribute__((format(printf, 3, 4), unused))
tap_is(const char *got, const char *expected, const char *fmt,...)
{
	va_list		args;
	bool		good = got != NULL && strcmp(got, expected) == 0;

	printf("%sok %d - ", good ? "" : "not ", ++tap_count);
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
	printf("\n");
	if (!good)
		printf("#          got: \"%s\"\n#     expected: \"%s\"\n", got ? got : "(null)", expected);
	tap_failed += !good;
	return good;
}

/* The plan at the end; the exit status says whether all passed. */
static int __attribute__((unused))
tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed == 0 ? 0 : 1;
}

#endif							/* VPROXY_TEST_UNIT_TAP_H */
