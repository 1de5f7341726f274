/*
 * percent_encode_test.c
 *		Unit tests of src/common/percent_encode.c, printing TAP; run by
 *		test/t/125_common_units.pl.
 */
#include <stdio.h>
#include <string.h>

#include "common/percent_encode.h"
#include "unit_tap.h"

/* Encode text and compare with the expected form and length. */
static void
encoded(const char *text, bool keep_slash, const char *expected)
{
	char		out[256];
	size_t		length = percent_encode(out, text, keep_slash);

	tap_is(out, expected, "encode \"%s\"%s", expected, keep_slash ? " keeping '/'" : "");
	tap_ok(length == strlen(expected) && percent_encoded_length(text, keep_slash) == length,
		   "length of \"%s\"", expected);
}

/* Run the tests. */
int
main(void)
{
	char		out[256];

	encoded("", true, "");
	encoded("AZaz09-._~", false, "AZaz09-._~");
	encoded("a/b c", true, "a/b%20c");
	encoded("a/b c", false, "a%2Fb%20c");
	encoded("+=&?#%", false, "%2B%3D%26%3F%23%25");
	encoded("vid\xc3\xa9o \xf0\x9f\x8e\xac", true, "vid%C3%A9o%20%F0%9F%8E%AC");
	encoded("\x01\x7f\xff", true, "%01%7F%FF");

	tap_ok(percent_decode(out, "a%2Fb%20c%c3%A9", false) && strcmp(out, "a/b c\xc3\xa9") == 0,
		   "decode upper- and lowercase hex");
	tap_ok(percent_decode(out, "a+b", false) && strcmp(out, "a+b") == 0, "'+' kept in a path");
	tap_ok(percent_decode(out, "a+b", true) && strcmp(out, "a b") == 0, "'+' a space in a form");
	tap_ok(!percent_decode(out, "a%2", false), "a cut sequence is refused");
	tap_ok(!percent_decode(out, "a%zz", false), "a sequence that is not hex is refused");
	tap_ok(!percent_decode(out, "a%00b", false), "an encoded NUL is refused");
	percent_encode(out, "odd key/100% done?#~", true);
	tap_ok(percent_decode(out, out, false) && strcmp(out, "odd key/100% done?#~") == 0,
		   "decoding in place gives back what was encoded");
	return tap_done();
}
