/*
 * s3_sigv4.c
 *		The parts of AWS Signature Version 4 that libcurl leaves to us.
 *		curl 7.88 signs the path and query exactly as given and hashes no
 *		body it streams, so paths are built here in canonical form (every byte
 *		but the unreserved ones percent-encoded, '/' kept in keys), payload
 *		hashes computed here, and presigned URLs (query signing, which curl
 *		does not do) signed here with OpenSSL's HMAC.
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

#include "storage/s3_client.h"

#define HASH_READ_BYTES (1024 * 1024)

/* Percent-encode for SigV4: all bytes but A-Z a-z 0-9 - . _ ~ (and '/' if kept). */
char *
s3_uri_encode(const char *text, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	char	   *out = malloc(3 * strlen(text) + 1);
	char	   *o = out;

	if (out == NULL)
		return NULL;
	for (const unsigned char *c = (const unsigned char *) text; *c; c++)
	{
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			*c == '-' || *c == '.' || *c == '_' || *c == '~' || (keep_slash && *c == '/'))
			*o++ = (char) *c;
		else
		{
			*o++ = '%';
			*o++ = hex[*c >> 4];
			*o++ = hex[*c & 15];
		}
	}
	*o = '\0';
	return out;
}

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

/* HMAC-SHA256 of a string with a key. */
static void
hmac_sha256(const unsigned char *key, size_t key_length, const char *message,
			unsigned char out[32])
{
	unsigned int out_length = 32;

	HMAC(EVP_sha256(), key, (int) key_length, (const unsigned char *) message,
		 strlen(message), out, &out_length);
}

/* A presigned GET URL of the object with full key `object_key`. */
int
s3_presign_url(S3Client *client, const char *object_key, int expires_seconds,
			   char **url, char *why)
{
	time_t		now = time(NULL);
	struct tm	tm;
	char		amz_date[17];
	char		date[9];
	char		scope[256];
	char		canonical_hash[65];
	char		signature[65];
	unsigned char key[32];
	unsigned char next[32];
	char	   *secret_key = NULL;
	char	   *credential = NULL;
	char	   *encoded_credential = NULL;
	char	   *encoded_key = NULL;
	char	   *query = NULL;
	char	   *canonical = NULL;
	char	   *to_sign = NULL;
	int			status = 0;

	*url = NULL;
	gmtime_r(&now, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	snprintf(scope, sizeof(scope), "%s/%s/s3/aws4_request", date, client->region);
	encoded_key = s3_uri_encode(object_key, true);
	credential = storage_format("%s/%s", client->access_key_id, scope);
	encoded_credential = credential ? s3_uri_encode(credential, false) : NULL;
	if (encoded_credential)
		query = storage_format("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=%s"
							   "&X-Amz-Date=%s&X-Amz-Expires=%d&X-Amz-SignedHeaders=host",
							   encoded_credential, amz_date, expires_seconds);
	if (query && encoded_key)
		canonical = storage_format("GET\n%s/%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD",
								   client->base_path, encoded_key, query, client->host);
	if (canonical == NULL)
	{
		status = storage_fail(why, EX_SOFTWARE, "out of memory");
		goto done;
	}
	s3_sha256_hex(canonical, strlen(canonical), canonical_hash);
	to_sign = storage_format("AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, canonical_hash);
	secret_key = storage_format("AWS4%s", client->secret_access_key);
	if (to_sign == NULL || secret_key == NULL)
	{
		status = storage_fail(why, EX_SOFTWARE, "out of memory");
		goto done;
	}
	hmac_sha256((unsigned char *) secret_key, strlen(secret_key), date, key);
	hmac_sha256(key, sizeof(key), client->region, next);
	hmac_sha256(next, sizeof(next), "s3", key);
	hmac_sha256(key, sizeof(key), "aws4_request", next);
	hmac_sha256(next, sizeof(next), to_sign, key);
	to_hex(key, sizeof(key), signature);
	*url = storage_format("%s/%s?%s&X-Amz-Signature=%s", client->base_url, encoded_key, query,
						  signature);
	if (*url == NULL)
		status = storage_fail(why, EX_SOFTWARE, "out of memory");
done:
	if (secret_key)
		explicit_bzero(secret_key, strlen(secret_key));
	explicit_bzero(key, sizeof(key));
	explicit_bzero(next, sizeof(next));
	free(secret_key);
	free(credential);
	free(encoded_credential);
	free(encoded_key);
	free(query);
	free(canonical);
	free(to_sign);
	return status;
}
