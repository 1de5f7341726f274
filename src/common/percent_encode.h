/*
 * percent_encode.h
 *		Percent-encoding as SigV4 and S3 want it (every byte but the
 *		unreserved A-Z a-z 0-9 - . _ ~, and '/' when kept, as %XX with
 *		uppercase hex digits), for S3 request paths and queries, presigned
 *		URLs and file:// URLs; and its inverse for S3's url-encoded listings.
 *		Plain C, no allocation: the caller gives the buffer.
 */
#ifndef VPROXY_COMMON_PERCENT_ENCODE_H
#define VPROXY_COMMON_PERCENT_ENCODE_H

#include <stdbool.h>
#include <stddef.h>

/* The length of text once encoded (without the terminating NUL). */
extern size_t percent_encoded_length(const char *text, bool keep_slash);

/*
 * Encode text into out, which has room for percent_encoded_length() + 1
 * bytes; returns the encoded length.
 */
extern size_t percent_encode(char *out, const char *text, bool keep_slash);

/*
 * Decode text (%XX sequences, and '+' as a space when form is true) into out,
 * which has room for strlen(text) + 1 bytes; false for a malformed sequence
 * or an encoded NUL.
 */
extern bool percent_decode(char *out, const char *text, bool form);

#endif							/* VPROXY_COMMON_PERCENT_ENCODE_H */
