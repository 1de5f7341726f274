/*
 * text_clip_test.c
 *		Unit tests of src/common/text_clip: cut on character boundaries,
 *		invalid UTF-8 made '?', a character cut short at the end dropped.
 */
#include "common/text_clip.h"
#include "unit_tap.h"

/* Copy through a buffer of size bytes; the result. */
static const char *
clip(const char *text, size_t size)
{
	static char buffer[256];

	text_clip_copy(buffer, size, text);
	return buffer;
}

/* text_clip_first_line into a buffer of size bytes (of a static one). */
static const char *
first_line(const char *src, size_t size)
{
	static char buffer[128];

	text_clip_first_line(buffer, size, src);
	return buffer;
}

int
main(void)
{
	/* "é" is C3 A9, "€" E2 82 AC, "😀" F0 9F 98 80 */
	tap_is(clip("abc", 10), "abc", "ASCII copied whole");
	tap_ok(text_clip_copy((char[10]) {0}, 10, "abc"), "and said intact");
	tap_is(clip("abcdef", 4), "abc", "cut to the buffer");
	tap_ok(!text_clip_copy((char[4]) {0}, 4, "abcdef"), "and said cut");
	tap_is(clip("a\xc3\xa9", 3), "a", "a two-byte character that does not fit is left out whole");
	tap_is(clip("a\xc3\xa9", 4), "a\xc3\xa9", "and kept when it fits");
	tap_is(clip("\xe2\x82\xac\xe2\x82\xac", 6), "\xe2\x82\xac", "a three-byte character is never halved");
	tap_is(clip("\xf0\x9f\x98\x80!", 4), "", "nor a four-byte one");
	tap_is(clip("ab\xc3", 10), "ab", "a character cut short at the end (clipped upstream) is dropped");
	tap_is(clip("ab\xe2\x82", 10), "ab", "also when two of its three bytes came");
	tap_is(clip("ab\xf0\x9f\x98", 10), "ab", "or three of four");
	tap_is(clip("a\xc3z", 10), "a?z", "a broken character inside is '?'");
	tap_is(clip("a\x80z", 10), "a?z", "a stray continuation byte is '?'");
	tap_is(clip("\xc0\xaf", 10), "??", "an overlong form is refused");
	tap_is(clip("\xe0\x80\xaf", 10), "???", "a three-byte overlong form too");
	tap_is(clip("\xed\xa0\x80", 10), "???", "a surrogate is refused");
	tap_is(clip("\xf4\x90\x80\x80", 10), "????", "so is a code point past U+10FFFF");
	tap_is(clip("\xff", 10), "?", "and a byte that starts nothing");
	tap_ok(text_clip_char_length("\xe2\x82\xac", 3) == 3, "a character's length");
	tap_ok(text_clip_char_length("\xe2\x82\xac", 2) == 0, "not when cut by the length given");
	tap_is(clip("", 1), "", "an empty text");
	tap_is(first_line("FATAL:  role \"x\" does not exist  \nDETAIL: more\n", 64),
		   "FATAL:  role \"x\" does not exist", "a libpq message's first line, without trailing blanks");
	tap_is(first_line("no newline", 64), "no newline", "a message of one line");
	tap_is(first_line("caf\xc3\xa9 \xff\nx", 64), "caf\xc3\xa9 ?", "made valid UTF-8 like a clip");
	tap_is(first_line("abcdef\n", 4), "abc", "cut to the buffer");
	tap_is(first_line(NULL, 8), "", "no message: empty");
	return tap_done();
}
