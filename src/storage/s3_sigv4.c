/*
 * s3_sigv4.c
 *		The parts of AWS Signature Version 4 that libcurl leaves to us.
 *		curl 7.88 hashes no body it streams, so payload hashes are computed
 *		here with OpenSSL; presigned URLs (query signing, which curl does not
 *		do) come from the one presigner, src/common/sigv4_presign.c, with
 *		OpenSSL's hash functions (openssl_hashes.c).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/sigv4_presign.h"
#include "storage/openssl_hashes.h"
#include "storage/s3_client.h"

#define HASH_READ_BYTES (1024 * 1024)

/* Lowercase hex of a digest. */
static void
to_hex(const unsigned char *digest, size_t length, char *hex)
{
	for (size_t i = 0; i < length; i++)
		sprintf(hex + 2 * i, "%02x", digest[i]);
}

/* Lowercase hex SHA-256 of a buffer. */
void
s3_sha256_hex(const void *data, size_t length, char hex[65])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_length = 0;

	EVP_Digest(data, length, digest, &digest_length, EVP_sha256(), NULL);
	to_hex(digest, digest_length, hex);
}

/* Lowercase hex SHA-256 of a byte range of a file; an errno value on failure. */
int
s3_sha256_file_hex(int fd, int64_t offset, int64_t length, char hex[65])
{
	unsigned char digest[EVP_MAX_MD_SIZE];
	unsigned int digest_length = 0;
	EVP_MD_CTX *context = EVP_MD_CTX_new();
	char	   *buffer = malloc(HASH_READ_BYTES);
	int			error = 0;

	if (context == NULL || buffer == NULL || !EVP_DigestInit_ex(context, EVP_sha256(), NULL))
		error = ENOMEM;
	while (error == 0 && length > 0)
	{
		ssize_t		got = pread(fd, buffer, length < HASH_READ_BYTES ? length : HASH_READ_BYTES,
								offset);

		if (got < 0)
			error = errno;
		else if (got == 0)
			error = ENODATA;	/* the file shrank */
		else
		{
			EVP_DigestUpdate(context, buffer, got);
			offset += got;
			length -= got;
		}
	}
	if (error == 0)
	{
		EVP_DigestFinal_ex(context, digest, &digest_length);
		to_hex(digest, digest_length, hex);
	}
	free(buffer);
	EVP_MD_CTX_free(context);
	return error;
}

/* A presigned GET URL of a storage key (below the location's prefix). */
int
s3_presign_url(S3Client *client, const char *key, int expires_seconds, char **url, char *why)
{
	SigV4Credentials credentials = {client->access_key_id, client->secret_access_key,
	client->session_token};
	SigV4PresignRequest request = {"GET", key, time(NULL), expires_seconds};
	size_t		size = sigv4_presign_size(&client->location, &credentials, &request);
	const char *problem;

	*url = malloc(size);
	if (*url == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	problem = sigv4_presign_url(*url, size, &client->location, &credentials,
								&openssl_sigv4_hashes, &request);
	if (problem == NULL)
		return 0;
	free(*url);
	*url = NULL;
	return storage_fail(why, EX_SOFTWARE, "cannot presign a URL: %s", problem);
}
