/*
 * presign.c
 *		Presigned URLs of stored objects, computed inside PostgreSQL: S3
 *		Signature Version 4 query signing with PostgreSQL's own HMAC and
 *		SHA-256 (common/hmac.h, common/cryptohash.h), so that the caller of
 *		vproxy_url() gets a URL and never the secret.  With file:// storage
 *		the URL is the object's absolute file:// path.
 *
 * Addressing follows the storage room (src/storage/s3_backend.c): an empty
 * vproxy.s3_endpoint means AWS, virtual-hosted (path-style for bucket names
 * with dots); a set endpoint means path-style below it.
 */
#include "postgres.h"

#include <time.h>

#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"

#include "common/storage_key.h"
#include "settings.h"

/* S3 accepts presigned URLs valid for at most 7 days */
#define PRESIGN_MAX_SECONDS (7 * 24 * 3600)

PG_FUNCTION_INFO_V1(vproxy_presign);

/* Where S3 requests of the configured storage go. */
typedef struct S3Location
{
	const char *scheme;			/* http or https */
	char	   *host;			/* host[:port] as in the Host header */
	char	   *base_path;		/* "" or "/segment.../bucket", unencoded */
	char	   *prefix;			/* "" or "dir/" before every key */
} S3Location;

/* Append text percent-encoded as SigV4 asks: all but A-Z a-z 0-9 - . _ ~ (and '/' if kept). */
static void
append_uri_encoded(StringInfo out, const char *text, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (const unsigned char *c = (const unsigned char *) text; *c; c++)
	{
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			*c == '-' || *c == '.' || *c == '_' || *c == '~' || (keep_slash && *c == '/'))
			appendStringInfoChar(out, (char) *c);
		else
		{
			appendStringInfoChar(out, '%');
			appendStringInfoChar(out, hex[*c >> 4]);
			appendStringInfoChar(out, hex[*c & 15]);
		}
	}
}

/* Lowercase hex of a digest into hex (2 * length + 1 bytes). */
static void
to_hex(const uint8 *digest, size_t length, char *hex)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < length; i++)
	{
		hex[2 * i] = digits[digest[i] >> 4];
		hex[2 * i + 1] = digits[digest[i] & 15];
	}
	hex[2 * length] = '\0';
}

/* Lowercase hex SHA-256 of a string. */
static void
sha256_hex(const char *text, char hex[PG_SHA256_DIGEST_LENGTH * 2 + 1])
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	uint8		digest[PG_SHA256_DIGEST_LENGTH];

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, (const uint8 *) text, strlen(text)) < 0 ||
		pg_cryptohash_final(ctx, digest, sizeof(digest)) < 0)
		ereport(ERROR,
				(errmsg("could not compute a SHA-256 digest: %s",
						ctx ? pg_cryptohash_error(ctx) : "out of memory")));
	pg_cryptohash_free(ctx);
	to_hex(digest, sizeof(digest), hex);
}

/* HMAC-SHA256 of a string under a key, into out. */
static void
hmac_sha256(const uint8 *key, size_t key_length, const char *message,
			uint8 out[PG_SHA256_DIGEST_LENGTH])
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL || pg_hmac_init(ctx, key, key_length) < 0 ||
		pg_hmac_update(ctx, (const uint8 *) message, strlen(message)) < 0 ||
		pg_hmac_final(ctx, out, PG_SHA256_DIGEST_LENGTH) < 0)
		ereport(ERROR,
				(errmsg("could not compute an HMAC-SHA256: %s",
						ctx ? pg_hmac_error(ctx) : "out of memory")));
	pg_hmac_free(ctx);
}

/* Split s3://bucket[/prefix] into the bucket and a prefix ending in '/' (or ""). */
static char *
parse_s3_url(const char *url, char **prefix)
{
	const char *location = url + strlen("s3://");
	const char *slash = strchr(location, '/');
	char	   *bucket = slash ? pnstrdup(location, slash - location) : pstrdup(location);
	const char *rest = slash ? slash + 1 : "";
	size_t		length;

	while (*rest == '/')
		rest++;
	length = strlen(rest);
	while (length > 0 && rest[length - 1] == '/')
		length--;
	*prefix = length > 0 ? psprintf("%.*s/", (int) length, rest) : pstrdup("");
	return bucket;
}

/* The endpoint's scheme, Host header and path (path-style addressing below it). */
static void
parse_endpoint(const char *endpoint, const char *bucket, S3Location *location)
{
	const char *authority;
	const char *path;
	const char *port;
	size_t		authority_length;
	size_t		path_length;
	bool		default_port;

	if (strncmp(endpoint, "http://", 7) == 0)
		location->scheme = "http";
	else if (strncmp(endpoint, "https://", 8) == 0)
		location->scheme = "https";
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("vproxy.s3_endpoint must be an http or https URL")));
	authority = endpoint + strlen(location->scheme) + 3;
	if (strpbrk(authority, "?#@") != NULL || *authority == '\0' || *authority == '/')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("vproxy.s3_endpoint must have a host and no user, query or fragment")));
	path = strchr(authority, '/');
	authority_length = path ? (size_t) (path - authority) : strlen(authority);
	path = path ? path : "";
	path_length = strlen(path);
	while (path_length > 0 && path[path_length - 1] == '/')
		path_length--;

	/* the port after the host ("]" ends an IPv6 literal), left out when it is the default */
	port = NULL;
	for (const char *c = authority + authority_length; c > authority; c--)
	{
		if (c[-1] == ':')
		{
			port = c;
			break;
		}
		if (c[-1] == ']')
			break;
	}
	default_port = port != NULL &&
		((strcmp(location->scheme, "http") == 0 && authority + authority_length - port == 2 &&
		  strncmp(port, "80", 2) == 0) ||
		 (strcmp(location->scheme, "https") == 0 && authority + authority_length - port == 3 &&
		  strncmp(port, "443", 3) == 0));
	if (default_port)
		authority_length = port - 1 - authority;
	location->host = pnstrdup(authority, authority_length);
	location->base_path = psprintf("%.*s/%s", (int) path_length, path, bucket);
}

/* Where the configured S3 storage is, from the settings. */
static void
s3_location(S3Location *location)
{
	char	   *bucket = parse_s3_url(vproxy_storage_url, &location->prefix);
	const char *region = vproxy_s3_region[0] ? vproxy_s3_region : "us-east-1";
	const char *domain = strncmp(region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";

	if (vproxy_s3_endpoint[0] != '\0')
		parse_endpoint(vproxy_s3_endpoint, bucket, location);
	else
	{
		location->scheme = "https";
		if (strchr(bucket, '.') != NULL)
		{
			location->host = psprintf("s3.%s.%s", region, domain);
			location->base_path = psprintf("/%s", bucket);
		}
		else
		{
			location->host = psprintf("%s.s3.%s.%s", bucket, region, domain);
			location->base_path = pstrdup("");
		}
	}
}

/*
 * A presigned URL (query-signed, SigV4) for method on the object at key of
 * the configured S3 storage, valid for expires_seconds from now.
 */
static char *
s3_presigned_url(const char *method, const char *key, int expires_seconds)
{
	S3Location location;
	const char *region = vproxy_s3_region[0] ? vproxy_s3_region : "us-east-1";
	time_t		now = time(NULL);
	struct tm	tm;
	char		amz_date[17];
	char		date[9];
	char	   *scope;
	char	   *credential;
	StringInfoData path;
	StringInfoData query;
	StringInfoData canonical;
	char		canonical_hash[PG_SHA256_DIGEST_LENGTH * 2 + 1];
	char	   *to_sign;
	char	   *secret_key;
	uint8		signing[PG_SHA256_DIGEST_LENGTH];
	uint8		next[PG_SHA256_DIGEST_LENGTH];
	char		signature[PG_SHA256_DIGEST_LENGTH * 2 + 1];

	if (vproxy_s3_access_key_id[0] == '\0' || vproxy_s3_secret_access_key[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot sign a URL without S3 credentials"),
				 errhint("Set vproxy.s3_access_key_id and vproxy.s3_secret_access_key.")));
	s3_location(&location);
	gmtime_r(&now, &tm);
	strftime(amz_date, sizeof(amz_date), "%Y%m%dT%H%M%SZ", &tm);
	strftime(date, sizeof(date), "%Y%m%d", &tm);
	scope = psprintf("%s/%s/s3/aws4_request", date, region);
	credential = psprintf("%s/%s", vproxy_s3_access_key_id, scope);

	/* the path as sent and as signed: keys encoded canonically, '/' kept */
	initStringInfo(&path);
	appendStringInfo(&path, "%s/", location.base_path);
	append_uri_encoded(&path, location.prefix, true);
	append_uri_encoded(&path, key, true);

	/* the query parameters in their canonical (sorted) order */
	initStringInfo(&query);
	appendStringInfoString(&query, "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=");
	append_uri_encoded(&query, credential, false);
	appendStringInfo(&query, "&X-Amz-Date=%s&X-Amz-Expires=%d", amz_date, expires_seconds);
	if (vproxy_s3_session_token[0] != '\0')
	{
		appendStringInfoString(&query, "&X-Amz-Security-Token=");
		append_uri_encoded(&query, vproxy_s3_session_token, false);
	}
	appendStringInfoString(&query, "&X-Amz-SignedHeaders=host");

	initStringInfo(&canonical);
	appendStringInfo(&canonical, "%s\n%s\n%s\nhost:%s\n\nhost\nUNSIGNED-PAYLOAD",
					 method, path.data, query.data, location.host);
	sha256_hex(canonical.data, canonical_hash);
	to_sign = psprintf("AWS4-HMAC-SHA256\n%s\n%s\n%s", amz_date, scope, canonical_hash);

	secret_key = psprintf("AWS4%s", vproxy_s3_secret_access_key);
	hmac_sha256((uint8 *) secret_key, strlen(secret_key), date, signing);
	explicit_bzero(secret_key, strlen(secret_key));
	pfree(secret_key);
	hmac_sha256(signing, sizeof(signing), region, next);
	hmac_sha256(next, sizeof(next), "s3", signing);
	hmac_sha256(signing, sizeof(signing), "aws4_request", next);
	hmac_sha256(next, sizeof(next), to_sign, signing);
	to_hex(signing, sizeof(signing), signature);
	explicit_bzero(signing, sizeof(signing));
	explicit_bzero(next, sizeof(next));

	return psprintf("%s://%s%s?%s&X-Amz-Signature=%s", location.scheme, location.host,
					path.data, query.data, signature);
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
	if (key[0] == '/' || strcmp(key, "..") == 0 || strncmp(key, "../", 3) == 0 ||
		strstr(key, "/../") != NULL ||
		(strlen(key) >= 3 && strcmp(key + strlen(key) - 3, "/..") == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("storage key \"%s\" leaves the storage directory", key)));
	initStringInfo(&url);
	appendStringInfoString(&url, "file://");
	append_uri_encoded(&url, pnstrdup(dir, length), true);
	appendStringInfoChar(&url, '/');
	append_uri_encoded(&url, key, true);
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

	if (strcmp(method, "GET") != 0 && strcmp(method, "PUT") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot presign method \"%s\"", method),
				 errhint("Methods: GET, PUT.")));
	if (expires_seconds < 1 || expires_seconds > PRESIGN_MAX_SECONDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a URL must expire in 1 second to 7 days, not %d seconds", expires_seconds)));
	/* the one key rule: a key the child would refuse is never signed */
	if (storage_key_problem(key) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("storage key \"%s\" %s", key, storage_key_problem(key))));
	if (strncmp(vproxy_storage_url, "file://", 7) == 0)
		PG_RETURN_TEXT_P(cstring_to_text(file_url(key)));
	PG_RETURN_TEXT_P(cstring_to_text(s3_presigned_url(method, key, expires_seconds)));
}
