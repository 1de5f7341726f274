/*
 * sigv4_presign.h
 *		The one AWS Signature Version 4 presigner (query signing) of vproxy:
 *		presigned GET and PUT URLs of the objects of an S3 location, with the
 *		session token of temporary credentials signed in.  Plain C: the hash
 *		functions are the caller's (vproxy.so passes PostgreSQL's, the
 *		programs OpenSSL's), and so is the buffer.
 */
#ifndef VPROXY_COMMON_SIGV4_PRESIGN_H
#define VPROXY_COMMON_SIGV4_PRESIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/s3_location.h"

#define SIGV4_DIGEST_LENGTH 32

/* S3 accepts presigned URLs valid for 1 second to 7 days. */
#define SIGV4_PRESIGN_MAX_SECONDS (7 * 24 * 3600)

/* The caller's SHA-256 and HMAC-SHA256; each returns false on failure. */
typedef struct SigV4Hashes
{
	bool		(*sha256) (const void *data, size_t length,
						   unsigned char digest[SIGV4_DIGEST_LENGTH], void *arg);
	bool		(*hmac_sha256) (const void *key, size_t key_length, const void *data,
								size_t length, unsigned char mac[SIGV4_DIGEST_LENGTH],
								void *arg);
	void	   *arg;
} SigV4Hashes;

/* Who signs: the session token is NULL or "" for long-term credentials. */
typedef struct SigV4Credentials
{
	const char *access_key_id;
	const char *secret_access_key;
	const char *session_token;
} SigV4Credentials;

/*
 * What to presign: method (GET or PUT) on the storage key (below the prefix;
 * a key the rule of src/common/storage_key.h refuses is never signed).
 */
typedef struct SigV4PresignRequest
{
	const char *method;
	const char *key;
	time_t		now;			/* the signing time */
	int			expires_seconds;
} SigV4PresignRequest;

/* The buffer size sigv4_presign_url() needs for this request. */
extern size_t sigv4_presign_size(const S3Location *location,
								 const SigV4Credentials *credentials,
								 const SigV4PresignRequest *request);

/*
 * Write the presigned URL into out (at least sigv4_presign_size() bytes,
 * also used as scratch).  NULL on success, else a static sentence saying
 * what is wrong (missing credentials, expiry out of range, a hash function
 * that failed, a buffer too small).
 */
extern const char *sigv4_presign_url(char *out, size_t size, const S3Location *location,
									 const SigV4Credentials *credentials,
									 const SigV4Hashes *hashes,
									 const SigV4PresignRequest *request);

#endif							/* VPROXY_COMMON_SIGV4_PRESIGN_H */
