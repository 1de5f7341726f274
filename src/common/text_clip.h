/*
 * text_clip.h
 *		UTF-8 text cut to a number of bytes on a character boundary, and made
 *		valid: messages that travel from a child's stderr to a log line or a
 *		database column (which refuses a broken character) pass through here.
 *		Plain C, no dependency.
 */
#ifndef VPROXY_TEXT_CLIP_H
#define VPROXY_TEXT_CLIP_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The length in bytes of the valid UTF-8 character at text[0..len), or 0 if
 * none starts there (a stray continuation byte, an overlong form, a
 * surrogate, past U+10FFFF, or cut short by len).
 */
extern size_t text_clip_char_length(const char *text, size_t len);

/*
 * Copy src into dst (size bytes, always NUL-terminated), cut to fit on a
 * character boundary.  A byte that starts no valid character becomes '?';
 * a character cut short at the very end of src (a message clipped by bytes
 * before it came here) is dropped.  The result is valid UTF-8.  True if
 * nothing was cut, replaced or dropped.
 */
extern bool text_clip_copy(char *dst, size_t size, const char *src);

/*
 * The first line of src (a libpq message) into dst, without trailing
 * blanks, clipped and made valid as by text_clip_copy; NULL gives "".
 */
extern void text_clip_first_line(char *dst, size_t size, const char *src);

#endif							/* VPROXY_TEXT_CLIP_H */
