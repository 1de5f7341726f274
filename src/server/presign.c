/*
 * presign.c
 *		Presigned URLs of stored objects, computed inside PostgreSQL by the
 *		one presigner (src/common/sigv4_presign.c) with PostgreSQL's own
 *		HMAC and SHA-256 (common/hmac.h, common/cryptohash.h), so that the
 *		caller of vproxy_url() gets a URL and never the secret.  Where the
 *		objects are and how they are addressed comes from
 *		src/common/s3_location.c, as for vproxy-transcode, and no key the
 *		one key rule refuses (src/common/storage_key.h) is signed.  With
 *		file:// storage the URL is the object's absolute file:// path.
 */
#include "postgres.h"

#include <time.h>

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/percent_encode.h"
#include "common/s3_location.h"
#include "common/sigv4_presign.h"
#include "common/storage_key.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "settings.h"

PG_FUNCTION_INFO_V1(vproxy_presign);

/* PostgreSQL's SHA-256, for the presigner. */
static bool
presign_sha256(const void *data, size_t length, unsigned char digest[SIGV4_DIGEST_LENGTH], void *arg)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	bool		ok;

	ok = ctx != NULL && pg_cryptohash_init(ctx) == 0 &&
		pg_cryptohash_update(ctx, data, length) == 0 &&
		pg_cryptohash_final(ctx, digest, SIGV4_DIGEST_LENGTH) == 0;
	pg_cryptohash_free(ctx);
	return ok;
}

/* PostgreSQL's HMAC-SHA256, for the presigner. */
static bool
presign_hmac_sha256(const void *key, size_t key_length, const void *data, size_t length,
			   unsigned char mac[SIGV4_DIGEST_LENGTH], void *arg)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	bool		ok;

	ok = ctx != NULL && pg_hmac_init(ctx, key, key_length) == 0 &&
		pg_hmac_update(ctx, data, length) == 0 &&
		pg_hmac_final(ctx, mac, SIGV4_DIGEST_LENGTH) == 0;
	pg_hmac_free(ctx);
	return ok;
}

/*
 * A presigned URL (query-signed, SigV4) for method on the object at key of
 * the configured S3 storage, valid for expires_seconds from now.
 */
static char *
s3_presigned_url(const char *method, const char *key, int expires_seconds)
{
	SigV4Hashes hashes = {presign_sha256, presign_hmac_sha256, NULL};
	SigV4Credentials credentials = {vproxy_s3_access_key_id, vproxy_s3_secret_access_key,
	vproxy_s3_session_token};
	SigV4PresignRequest request = {method, key, time(NULL), expires_seconds};
	S3Location	location;
	const char *problem;
	size_t		size;
	char	   *url;

	if (vproxy_s3_access_key_id[0] == '\0' || vproxy_s3_secret_access_key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot sign a URL without S3 credentials"),
				 errhint("Set vproxy.s3_access_key_id and vproxy.s3_secret_access_key.")));
	problem = s3_location_parse(&location, vproxy_storage_url, vproxy_s3_endpoint,
								vproxy_s3_region);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot sign a URL for the configured S3 storage"),
				 errdetail("%s", problem),
				 errhint("Check vproxy.storage_url, vproxy.s3_endpoint and vproxy.s3_region.")));
	size = sigv4_presign_size(&location, &credentials, &request);
	url = palloc(size);
	problem = sigv4_presign_url(url, size, &location, &credentials, &hashes, &request);
	if (problem != NULL)
		ereport(ERROR,
				(errmsg("could not sign a URL"),
				 errdetail("%s", problem)));
	return url;
}

/* Append text percent-encoded by the one encoder. */
static void
append_percent_encoded(StringInfo out, const char *text, bool keep_slash)
{
	size_t		length = percent_encoded_length(text, keep_slash);

	enlargeStringInfo(out, length);
	out->len += percent_encode(out->data + out->len, text, keep_slash);
}

/*
 * The file:// URL of an object of local-directory storage: its absolute
 * path, percent-encoded as vproxy-transcode's own file URLs are.
 */
static char *
file_url(const char *key)
{
	const char *dir = vproxy_storage_url + strlen("file://");
	size_t		length = strlen(dir);
	StringInfoData url;

	while (length > 1 && dir[length - 1] == '/')
		length--;
	initStringInfo(&url);
	appendStringInfoString(&url, "file://");
	append_percent_encoded(&url, pnstrdup(dir, length), true);
	appendStringInfoChar(&url, '/');
	append_percent_encoded(&url, key, true);
	return url.data;
}

/*
 * vproxy_internal.presign(method text, key text, expires_seconds int) RETURNS text:
 * a presigned GET or PUT URL of a storage key, or its file:// path.
 */
Datum
vproxy_presign(PG_FUNCTION_ARGS)
{
	char	   *method = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *key = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		expires_seconds = PG_GETARG_INT32(2);
	const char *problem;

	if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot presign method \"%s\"", method),
				 errhint("Methods: GET, PUT.")));
	if (expires_seconds < 1 || expires_seconds > SIGV4_PRESIGN_MAX_SECONDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a URL must expire in 1 second to 7 days, not %d seconds", expires_seconds)));
	problem = storage_key_problem(key);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot presign storage key \"%s\"", key),
				 errdetail("The key %s.", problem)));
	if (strncmp(vproxy_storage_url, "file://", 7) == 0)
		PG_RETURN_TEXT_P(cstring_to_text(file_url(key)));
	PG_RETURN_TEXT_P(cstring_to_text(s3_presigned_url(method, key, expires_seconds)));
}
