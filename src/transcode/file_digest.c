/*
 * file_digest.c
 *		SHA-256 of a local file, or of any stream of bytes, with OpenSSL's
 *		EVP interface.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "transcode/file_digest.h"

#define DIGEST_CHUNK (1024 * 1024)

/* Hash what `read` gives until it gives nothing; report the byte count. */
int
stream_sha256(int (*read) (void *arg, unsigned char *buffer, size_t size, size_t *got, char *why),
			  void *arg, char hex[SHA256_HEX_LEN + 1], int64_t *size,
			  bool (*should_stop) (void *arg), char *why, size_t why_size)
{
	static unsigned char buffer[DIGEST_CHUNK];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t		got;
	int			rc = 0;

	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
	{
		EVP_MD_CTX_free(ctx);
		snprintf(why, why_size, "cannot start a SHA-256 digest");
		return EX_SOFTWARE;
	}
	*size = 0;
	while ((rc = read(arg, buffer, sizeof(buffer), &got, why)) == 0 && got > 0)
	{
		if (should_stop && should_stop(NULL))
		{
			snprintf(why, why_size, "stopped while hashing");
			rc = EX_TEMPFAIL;
			break;
		}
		EVP_DigestUpdate(ctx, buffer, got);
		*size += got;
	}
	if (rc == 0)
	{
		EVP_DigestFinal_ex(ctx, digest, &digest_len);
		for (unsigned int i = 0; i < digest_len; i++)
			snprintf(hex + 2 * i, 3, "%02x", digest[i]);
	}
	EVP_MD_CTX_free(ctx);
	return rc;
}

/* A file being hashed. */
typedef struct FileRead
{
	int			fd;
	const char *path;
	size_t		why_size;
	bool		(*should_stop) (void *arg);
} FileRead;

/* stream_sha256's read of a file: interrupted reads are retried unless a stop was asked. */
static int
read_file(void *arg, unsigned char *buffer, size_t size, size_t *got, char *why)
{
	FileRead   *file = arg;
	ssize_t		n;

	do
		n = read(file->fd, buffer, size);
	while (n < 0 && errno == EINTR && !(file->should_stop && file->should_stop(NULL)));
	if (n < 0 && errno == EINTR)
	{
		snprintf(why, file->why_size, "stopped while hashing %s", file->path);
		return EX_TEMPFAIL;
	}
	if (n < 0)
	{
		snprintf(why, file->why_size, "cannot read %s: %s", file->path, strerror(errno));
		return EX_SOFTWARE;
	}
	*got = (size_t) n;
	return 0;
}

/* Hash the file and report its size. */
int
file_sha256(const char *path, char hex[SHA256_HEX_LEN + 1], int64_t *size,
			bool (*should_stop) (void *arg), char *why, size_t why_size)
{
	FileRead	file = {open(path, O_RDONLY | O_CLOEXEC), path, why_size, should_stop};
	int			rc;

	if (file.fd < 0)
	{
		int			error = errno;

		snprintf(why, why_size, "cannot open %s: %s", path, strerror(error));
		if (error == ENOENT || error == ENOTDIR)
			return EX_NOINPUT;
		return error == EACCES || error == EPERM ? EX_NOPERM : EX_SOFTWARE;
	}
	posix_fadvise(file.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	rc = stream_sha256(read_file, &file, hex, size, should_stop, why, why_size);
	if (rc == EX_TEMPFAIL)
		snprintf(why, why_size, "stopped while hashing %s", path);
	close(file.fd);
	return rc;
}
