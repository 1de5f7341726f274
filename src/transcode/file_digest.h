/*
 * file_digest.h
 *		SHA-256 of a local file, or of any stream of bytes, as lower-case hex.
 */
#ifndef VPROXY_TRANSCODE_FILE_DIGEST_H
#define VPROXY_TRANSCODE_FILE_DIGEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SHA256_HEX_LEN 64

/*
 * Hash the file and report its size: 0; EX_NOINPUT when it is missing,
 * EX_NOPERM when it may not be read, EX_TEMPFAIL when stopped, EX_SOFTWARE
 * on read errors.
 */
extern int	file_sha256(const char *path, char hex[SHA256_HEX_LEN + 1], int64_t *size,
						bool (*should_stop) (void *arg), char *why, size_t why_size);

/*
 * Hash what `read` gives (0 and the bytes read in *got, 0 bytes at the end;
 * or a status with the cause in why) and report the byte count: 0, the
 * reader's status, EX_TEMPFAIL when stopped, EX_SOFTWARE.
 */
extern int	stream_sha256(int (*read) (void *arg, unsigned char *buffer, size_t size, size_t *got,
									   char *why),
						  void *arg, char hex[SHA256_HEX_LEN + 1], int64_t *size,
						  bool (*should_stop) (void *arg), char *why, size_t why_size);

#endif							/* VPROXY_TRANSCODE_FILE_DIGEST_H */
