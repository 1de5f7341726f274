/*
 * file_digest.c
 *		SHA-256 of a local file with OpenSSL's EVP interface.
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

/* Hash the file and report its size. */
int
file_sha256(const char *path, char hex[SHA256_HEX_LEN + 1], int64_t *size,
			bool (*should_stop) (void *arg), char *why, size_t why_size)
{
	static unsigned char buffer[DIGEST_CHUNK];
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_len = 0;
	EVP_MD_CTX *ctx;
	ssize_t		got;
	int			fd;
	int			rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		int			error = errno;

		snprintf(why, why_size, "cannot open %s: %s", path, strerror(error));
		if (error == ENOENT || error == ENOTDIR)
			return EX_NOINPUT;
		return error == EACCES || error == EPERM ? EX_NOPERM : EX_SOFTWARE;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
	{
		snprintf(why, why_size, "cannot start a SHA-256 digest");
		rc = EX_SOFTWARE;
		goto done;
	}
	*size = 0;
	while ((got = read(fd, buffer, sizeof(buffer))) != 0)
	{
		if (got < 0 && errno == EINTR && !(should_stop && should_stop(NULL)))
			continue;
		if (should_stop && should_stop(NULL))
		{
			snprintf(why, why_size, "stopped while hashing %s", path);
			rc = EX_TEMPFAIL;
			goto done;
		}
		if (got < 0)
		{
			snprintf(why, why_size, "cannot read %s: %s", path, strerror(errno));
			rc = EX_SOFTWARE;
			goto done;
		}
		EVP_DigestUpdate(ctx, buffer, (size_t) got);
		*size += got;
	}
	EVP_DigestFinal_ex(ctx, digest, &digest_len);
	for (unsigned int i = 0; i < digest_len; i++)
		snprintf(hex + 2 * i, 3, "%02x", digest[i]);
done:
	EVP_MD_CTX_free(ctx);
	close(fd);
	return rc;
}
