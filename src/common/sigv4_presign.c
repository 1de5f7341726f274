/*
 * sigv4_presign.c
 *		Query signing of AWS Signature Version 4 for S3 (the "presigned URL"):
 *		the canonical request (method, path encoded byte by byte with '/'
 *		kept, the X-Amz-* query parameters in their sorted order, the signed
 *		host header, UNSIGNED-PAYLOAD), its SHA-256 in the string to sign, the
 *		signing key derived from the secret by date, region, "s3" and
 *		"aws4_request", and the signature appended to the URL.
 *
 * Everything is written through one small writer that only counts when it
 * has no buffer, so the size the caller needs and the URL come from the same
 * code.
 */
#include "common/sigv4_presign.h"

#include <stdio.h>
#include <string.h>

#include "common/percent_encode.h"
#include "common/storage_key.h"

#define SECRET_MAX 256

/* A bounded buffer being written, or only counted when buffer is NULL. */
typedef struct Writer
{
	char	   *buffer;
	size_t		size;
	size_t		used;			/* bytes written or counted so far */
} Writer;

/* The dates of a signature: 20130524T000000Z and 20130524. */
typedef struct SigningTime
{
	char		amz_date[17];
	char		date[9];
} SigningTime;

/* Append length bytes of text. */
static void
put_bytes(Writer *writer, const char *text, size_t length)
{
	if (writer->buffer != NULL && writer->used + length < writer->size)
		memcpy(writer->buffer + writer->used, text, length);
	writer->used += length;
}

/* Append a string. */
static void
put(Writer *writer, const char *text)
{
	put_bytes(writer, text, strlen(text));
}

/* Append text percent-encoded. */
static void
put_encoded(Writer *writer, const char *text, bool keep_slash)
{
	size_t		length = percent_encoded_length(text, keep_slash);

	if (writer->buffer != NULL && writer->used + length < writer->size)
		percent_encode(writer->buffer + writer->used, text, keep_slash);
	writer->used += length;
}

/* Lowercase hex of a digest into hex (2 * SIGV4_DIGEST_LENGTH + 1 bytes). */
static void
to_hex(const unsigned char *digest, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 0; i < SIGV4_DIGEST_LENGTH; i++)
	{
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[2 * SIGV4_DIGEST_LENGTH] = '\0';
}

/* The request path: base path, then prefix and key encoded with '/' kept. */
static void
put_path(Writer *writer, const S3Location *location, const char *key)
{
	put(writer, location->base_path);
	put(writer, "/");
	put_encoded(writer, location->prefix, true);
	put_encoded(writer, key, true);
}

/* The credential scope: 20130524/us-east-1/s3/aws4_request. */
static void
put_scope(Writer *writer, const S3Location *location, const SigningTime *when)
{
	put(writer, when->date);
	put(writer, "/");
	put(writer, location->region);
	put(writer, "/s3/aws4_request");
}

/* The query parameters of the signature, in canonical (sorted) order. */
static void
put_query(Writer *writer, const S3Location *location, const SigV4Credentials *credentials,
		  const SigV4PresignRequest *request, const SigningTime *when)
{
	char		expires[16];
	char		scope[128];
	Writer		scope_writer = {scope, sizeof(scope), 0};

	put_scope(&scope_writer, location, when);
	scope[scope_writer.used < sizeof(scope) ? scope_writer.used : 0] = '\0';
	snprintf(expires, sizeof(expires), "%d", request->expires_seconds);
	put(writer, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
	put_encoded(writer, credentials->access_key_id, false);
	put(writer, "%2F");
	put_encoded(writer, scope, false);
	put(writer, "&X-Amz-Date=");
	put(writer, when->amz_date);
	put(writer, "&X-Amz-Expires=");
	put(writer, expires);
	if (credentials->session_token != NULL && credentials->session_token[0] != '\0')
	{
		put(writer, "&X-Amz-Security-Token=");
		put_encoded(writer, credentials->session_token, false);
	}
	put(writer, "&X-Amz-SignedHeaders=host");
}

/* The canonical request of a query-signed request. */
static void
put_canonical_request(Writer *writer, const S3Location *location,
					  const SigV4Credentials *credentials,
					  const SigV4PresignRequest *request, const SigningTime *when)
{
	put(writer, request->method);
	put(writer, "\n");
	put_path(writer, location, request->key);
	put(writer, "\n");
	put_query(writer, location, credentials, request, when);
	put(writer, "\nhost:");
	put(writer, location->host);
	put(writer, "\n\nhost\nUNSIGNED-PAYLOAD");
}

/* The presigned URL, given the signature. */
static void
put_url(Writer *writer, const S3Location *location, const SigV4Credentials *credentials,
		const SigV4PresignRequest *request, const SigningTime *when, const char *signature)
{
	put(writer, location->scheme);
	put(writer, "://");
	put(writer, location->host);
	put_path(writer, location, request->key);
	put(writer, "?");
	put_query(writer, location, credentials, request, when);
	put(writer, "&X-Amz-Signature=");
	put(writer, signature);
}

/* The signing time's two forms, in UTC. */
static void
signing_time(time_t now, SigningTime *when)
{
	struct tm	tm;

	gmtime_r(&now, &tm);
	strftime(when->amz_date, sizeof(when->amz_date), "%Y%m%dT%H%M%SZ", &tm);
	strftime(when->date, sizeof(when->date), "%Y%m%d", &tm);
}

/* The buffer size sigv4_presign_url() needs for this request. */
size_t
sigv4_presign_size(const S3Location *location, const SigV4Credentials *credentials,
				   const SigV4PresignRequest *request)
{
	SigningTime when;
	Writer		canonical = {NULL, 0, 0};
	Writer		url = {NULL, 0, 0};
	char		signature[2 * SIGV4_DIGEST_LENGTH + 1];

	signing_time(request->now, &when);
	memset(signature, '0', 2 * SIGV4_DIGEST_LENGTH);
	signature[2 * SIGV4_DIGEST_LENGTH] = '\0';
	put_canonical_request(&canonical, location, credentials, request, &when);
	put_url(&url, location, credentials, request, &when, signature);
	return (canonical.used > url.used ? canonical.used : url.used) + 1;
}

/* What is wrong with a request before signing it, or NULL. */
static const char *
check_request(const SigV4Credentials *credentials, const SigV4PresignRequest *request)
{
	if (credentials->access_key_id == NULL || credentials->access_key_id[0] == '\0' ||
		credentials->secret_access_key == NULL || credentials->secret_access_key[0] == '\0')
		return "presigning needs an access key id and a secret access key";
	if (strlen(credentials->secret_access_key) > SECRET_MAX - 5)
		return "the secret access key is too long";
	if (request->method == NULL || request->method[0] == '\0' ||
		strspn(request->method, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(request->method))
		return "presigning needs an HTTP method in capitals, as GET or PUT";
	if (request->key == NULL || storage_key_problem(request->key) != NULL)
		return "presigning needs a storage key that passes the key rule (src/common/storage_key.h)";
	if (request->expires_seconds < 1 || request->expires_seconds > SIGV4_PRESIGN_MAX_SECONDS)
		return "a presigned URL expires in 1 second to 7 days";
	return NULL;
}

/* The signature (lowercase hex) of string_to_sign with the derived signing key. */
static bool
sign(const SigV4Hashes *hashes, const S3Location *location, const char *secret,
	 const SigningTime *when, const char *string_to_sign, char *signature)
{
	char		secret_key[SECRET_MAX];
	unsigned char key[SIGV4_DIGEST_LENGTH];
	unsigned char next[SIGV4_DIGEST_LENGTH];
	bool		ok;

	snprintf(secret_key, sizeof(secret_key), "AWS4%s", secret);
	ok = hashes->hmac_sha256(secret_key, strlen(secret_key), when->date, strlen(when->date),
							 key, hashes->arg) &&
		hashes->hmac_sha256(key, sizeof(key), location->region, strlen(location->region),
							next, hashes->arg) &&
		hashes->hmac_sha256(next, sizeof(next), "s3", 2, key, hashes->arg) &&
		hashes->hmac_sha256(key, sizeof(key), "aws4_request", 12, next, hashes->arg) &&
		hashes->hmac_sha256(next, sizeof(next), string_to_sign, strlen(string_to_sign),
							key, hashes->arg);
	if (ok)
		to_hex(key, signature);
	explicit_bzero(secret_key, sizeof(secret_key));
	explicit_bzero(key, sizeof(key));
	explicit_bzero(next, sizeof(next));
	return ok;
}

/* Write the presigned URL into out (at least sigv4_presign_size() bytes). */
const char *
sigv4_presign_url(char *out, size_t size, const S3Location *location,
				  const SigV4Credentials *credentials, const SigV4Hashes *hashes,
				  const SigV4PresignRequest *request)
{
	SigningTime when;
	Writer		writer = {out, size, 0};
	Writer		to_sign;
	unsigned char digest[SIGV4_DIGEST_LENGTH];
	char		canonical_hash[2 * SIGV4_DIGEST_LENGTH + 1];
	char		string_to_sign[256];
	char		signature[2 * SIGV4_DIGEST_LENGTH + 1];
	const char *problem = check_request(credentials, request);

	if (problem != NULL)
		return problem;
	signing_time(request->now, &when);
	put_canonical_request(&writer, location, credentials, request, &when);
	if (writer.used >= size)
		return "the buffer for the presigned URL is too small";
	if (!hashes->sha256(out, writer.used, digest, hashes->arg))
		return "the SHA-256 of the canonical request failed";
	to_hex(digest, canonical_hash);

	to_sign = (Writer) {string_to_sign, sizeof(string_to_sign), 0};
	put(&to_sign, "AWS4-HMAC-SHA256\n");
	put(&to_sign, when.amz_date);
	put(&to_sign, "\n");
	put_scope(&to_sign, location, &when);
	put(&to_sign, "\n");
	put(&to_sign, canonical_hash);
	if (to_sign.used >= sizeof(string_to_sign))
		return "the string to sign is too long";
	string_to_sign[to_sign.used] = '\0';
	if (!sign(hashes, location, credentials->secret_access_key, &when, string_to_sign,
			  signature))
		return "the HMAC-SHA256 of the signature failed";

	writer.used = 0;
	put_url(&writer, location, credentials, request, &when, signature);
	if (writer.used >= size)
		return "the buffer for the presigned URL is too small";
	out[writer.used] = '\0';
	return NULL;
}
