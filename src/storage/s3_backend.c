/*
 * s3_backend.c
 *		Objects in an S3 bucket (s3://bucket[/prefix]) over libcurl: the
 *		configuration (endpoint empty: AWS virtual-hosted URLs; set: path-style
 *		URLs below it, as MinIO and other S3-compatible stores want), and the
 *		storage.h operations on top of the request engine.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/s3_client.h"

static int	curl_users;

/* The full key: the URL's prefix, then the key. */
static char *
full_key(S3Client *client, const char *key)
{
	return storage_format("%s%s", client->prefix, key);
}

/* Nothing in place: S3 objects are fetched. */
static int
s3_local_open(void *state, const char *key, int *fd, char *why)
{
	(void) state;
	(void) key;
	(void) why;
	*fd = -1;
	return 0;
}

/* Download the object into a local file. */
static int
s3_get(void *state, const char *key, const char *local_path, const StorageHooks *hooks,
	   char *why)
{
	S3Client   *client = state;
	char	   *object_key = full_key(client, key);
	int			status;

	if (object_key == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	status = s3_download(client, object_key, local_path, hooks, why);
	free(object_key);
	return status;
}

/* Upload a local file as the object. */
static int
s3_put(void *state, const char *key, const char *local_path, const char *content_type,
	   const StorageHooks *hooks, char *why)
{
	S3Client   *client = state;
	char	   *object_key = full_key(client, key);
	int			status;

	if (object_key == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	status = s3_upload(client, object_key, local_path, content_type, hooks, why);
	free(object_key);
	return status;
}

/* HeadObject: size, ETag and content type. */
static int
s3_head(void *state, const char *key, StorageObjectInfo *info, char *why)
{
	S3Client   *client = state;
	char	   *object_key = full_key(client, key);
	int			status;

	if (object_key == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	status = s3_head_object(client, object_key, NULL, info, why);
	free(object_key);
	return status;
}

/* DeleteObject (S3 answers success for a missing key too). */
static int
s3_delete(void *state, const char *key, char *why)
{
	S3Client   *client = state;
	char	   *object_key = full_key(client, key);
	S3Request	request;
	int			status;

	if (object_key == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	status = s3_request_init(client, &request, "DeleteObject", "DELETE", object_key, NULL, why);
	if (status == 0)
		status = s3_run_one(client, &request, NULL, why);
	s3_request_free(&request);
	free(object_key);
	return status;
}

/* A presigned GET URL. */
static int
s3_presign(void *state, const char *key, int expires_seconds, char **url, char *why)
{
	S3Client   *client = state;
	char	   *object_key = full_key(client, key);
	int			status;

	if (object_key == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	status = s3_presign_url(client, object_key, expires_seconds, url, why);
	free(object_key);
	return status;
}

/* Release the client, wiping the secret. */
static void
s3_close(void *state)
{
	S3Client   *client = state;

	if (client->multi)
		curl_multi_cleanup(client->multi);
	if (client->secret_access_key)
		explicit_bzero(client->secret_access_key, strlen(client->secret_access_key));
	if (client->session_token)
		explicit_bzero(client->session_token, strlen(client->session_token));
	free(client->session_token);
	free(client->bucket);
	free(client->prefix);
	free(client->region);
	free(client->access_key_id);
	free(client->secret_access_key);
	free(client->ca_file);
	free(client->sigv4);
	free(client->base_url);
	free(client->base_path);
	free(client->host);
	free(client);
	if (--curl_users == 0)
		curl_global_cleanup();
}

static const StorageBackend s3_backend = {
	.local_open = s3_local_open,
	.get = s3_get,
	.put = s3_put,
	.head = s3_head,
	.delete = s3_delete,
	.presign = s3_presign,
	.close = s3_close,
};

/* Whether a bucket name is one S3 accepts: 3-63 of a-z 0-9 . -, alphanumeric ends. */
static bool
valid_bucket(const char *bucket)
{
	size_t		length = strlen(bucket);

	if (length < 3 || length > 63 || strspn(bucket, "abcdefghijklmnopqrstuvwxyz0123456789.-") != length)
		return false;
	return bucket[0] != '.' && bucket[0] != '-' && bucket[length - 1] != '.' &&
		bucket[length - 1] != '-';
}

/* Split "bucket[/prefix]" into the bucket and a prefix ending in '/' (or ""). */
static int
parse_location(S3Client *client, const char *location, char *why)
{
	const char *slash = strchr(location, '/');
	const char *prefix = slash ? slash + 1 : "";
	size_t		prefix_length;

	client->bucket = slash ? strndup(location, slash - location) : strdup(location);
	if (client->bucket == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	if (!valid_bucket(client->bucket))
		return storage_fail(why, EX_USAGE,
							"\"%.80s\" is not an S3 bucket name (3 to 63 of a-z, 0-9, '.', '-')",
							client->bucket);
	while (*prefix == '/')
		prefix++;
	prefix_length = strlen(prefix);
	while (prefix_length > 0 && prefix[prefix_length - 1] == '/')
		prefix_length--;
	client->prefix = storage_format("%.*s%s", (int) prefix_length, prefix,
									prefix_length > 0 ? "/" : "");
	if (client->prefix == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	return 0;
}

/* Path-style addressing below an endpoint URL (http or https only). */
static int
parse_endpoint(S3Client *client, const char *endpoint, char *why)
{
	CURLU	   *url = curl_url();
	char	   *scheme = NULL;
	char	   *host = NULL;
	char	   *port = NULL;
	char	   *path = NULL;
	char	   *extra = NULL;
	int			status = 0;
	size_t		path_length;

	if (url == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	if (curl_url_set(url, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
		curl_url_get(url, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
		curl_url_get(url, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
		curl_url_get(url, CURLUPART_PATH, &path, 0) != CURLUE_OK)
		status = storage_fail(why, EX_USAGE, "the S3 endpoint \"%.200s\" is not a URL", endpoint);
	else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0)
		status = storage_fail(why, EX_USAGE, "the S3 endpoint must be an http or https URL, not %s",
							  scheme);
	else if (curl_url_get(url, CURLUPART_QUERY, &extra, 0) == CURLUE_OK ||
			 curl_url_get(url, CURLUPART_FRAGMENT, &extra, 0) == CURLUE_OK ||
			 curl_url_get(url, CURLUPART_USER, &extra, 0) == CURLUE_OK)
		status = storage_fail(why, EX_USAGE,
							  "the S3 endpoint must have no user, query or fragment");
	if (status == 0)
	{
		curl_url_get(url, CURLUPART_PORT, &port, CURLU_NO_DEFAULT_PORT);
		path_length = strlen(path);
		while (path_length > 0 && path[path_length - 1] == '/')
			path_length--;
		client->host = storage_format("%s%s%s", host, port ? ":" : "", port ? port : "");
		client->base_path = storage_format("%.*s/%s", (int) path_length, path, client->bucket);
		if (client->host && client->base_path)
			client->base_url = storage_format("%s://%s%s", scheme, client->host, client->base_path);
		if (client->base_url == NULL)
			status = storage_fail(why, EX_SOFTWARE, "out of memory");
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_free(extra);
	curl_url_cleanup(url);
	return status;
}

/* AWS itself: virtual-hosted URLs, path-style for bucket names with dots (TLS). */
static int
aws_endpoint(S3Client *client, char *why)
{
	const char *domain = strncmp(client->region, "cn-", 3) == 0 ? "amazonaws.com.cn" : "amazonaws.com";

	if (strchr(client->bucket, '.') != NULL)
	{
		client->host = storage_format("s3.%s.%s", client->region, domain);
		client->base_path = storage_format("/%s", client->bucket);
	}
	else
	{
		client->host = storage_format("%s.s3.%s.%s", client->bucket, client->region, domain);
		client->base_path = strdup("");
	}
	if (client->host && client->base_path)
		client->base_url = storage_format("https://%s%s", client->host, client->base_path);
	if (client->base_url == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	return 0;
}

/* Copy a setting, NULL for an empty one. */
static char *
setting(const char *value)
{
	return value && value[0] ? strdup(value) : NULL;
}

/* Parse the configuration of s3://location; no network traffic yet. */
int
s3_backend_open(const StorageConfig *config, const char *location, Storage *storage, char *why)
{
	S3Client   *client = calloc(1, sizeof(S3Client));
	const char *region = config->s3_region && config->s3_region[0] ? config->s3_region : "us-east-1";
	int			status;

	if (client == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	if (curl_users++ == 0)
		curl_global_init(CURL_GLOBAL_DEFAULT);
	client->region = strdup(region);
	client->access_key_id = setting(config->access_key_id);
	client->secret_access_key = setting(config->secret_access_key);
	client->session_token = setting(config->session_token);
	client->ca_file = setting(config->ca_file);
	status = client->region ? parse_location(client, location, why) :
		storage_fail(why, EX_SOFTWARE, "out of memory");
	if (status == 0 &&
		(strlen(region) > 64 || strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region)))
		status = storage_fail(why, EX_USAGE, "\"%.80s\" is not an S3 region name", region);
	if (status == 0 && (client->access_key_id == NULL || client->secret_access_key == NULL))
		status = storage_fail(why, EX_USAGE, "S3 storage needs an access key id and a secret access key");
	if (status == 0)
		status = config->s3_endpoint && config->s3_endpoint[0] ?
			parse_endpoint(client, config->s3_endpoint, why) : aws_endpoint(client, why);
	if (status == 0)
	{
		client->sigv4 = storage_format("aws:amz:%s:s3", client->region);
		client->multi = curl_multi_init();
		if (client->sigv4 == NULL || client->multi == NULL)
			status = storage_fail(why, EX_SOFTWARE, "out of memory");
	}
	if (status != 0)
	{
		s3_close(client);
		return status;
	}
	storage->backend = &s3_backend;
	storage->state = client;
	return 0;
}
