/*
 * s3_backend.c
 *		Objects in an S3 bucket (s3://bucket[/prefix]) over libcurl: the
 *		configuration (checked and addressed by src/common/s3_location.c), and
 *		the storage.h operations on top of the request engine.
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
	return storage_format("%s%s", client->location.prefix, key);
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
	return s3_presign_url(state, key, expires_seconds, url, why);
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
	free(client->access_key_id);
	free(client->secret_access_key);
	free(client->ca_file);
	free(client->sigv4);
	free(client->base_url);
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
	.reader_open = s3_reader_open,
	.reader_read = s3_reader_read,
	.reader_close = s3_reader_close,
	.delete_prefix = s3_delete_prefix,
	.close = s3_close,
};

/* Copy a setting, NULL for an empty one. */
static char *
setting(const char *value)
{
	return value && value[0] ? strdup(value) : NULL;
}

/* Parse the configuration of an s3:// URL; no network traffic yet. */
int
s3_backend_open(const StorageConfig *config, Storage *storage, char *why)
{
	S3Client   *client = calloc(1, sizeof(S3Client));
	const char *problem;
	int			status = 0;

	if (client == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	if (curl_users++ == 0)
		curl_global_init(CURL_GLOBAL_DEFAULT);
	client->access_key_id = setting(config->access_key_id);
	client->secret_access_key = setting(config->secret_access_key);
	client->session_token = setting(config->session_token);
	client->ca_file = setting(config->ca_file);
	problem = s3_location_parse(&client->location, config->url, config->s3_endpoint,
								config->s3_region);
	if (problem != NULL)
		status = storage_fail(why, EX_USAGE, "S3 storage %.200s (endpoint \"%.200s\", region \"%.80s\"): %s",
							  config->url, config->s3_endpoint ? config->s3_endpoint : "",
							  config->s3_region ? config->s3_region : "", problem);
	if (status == 0 && (client->access_key_id == NULL || client->secret_access_key == NULL))
		status = storage_fail(why, EX_USAGE, "S3 storage needs an access key id and a secret access key");
	if (status == 0)
	{
		client->base_url = storage_format("%s://%s%s", client->location.scheme,
										  client->location.host, client->location.base_path);
		client->sigv4 = storage_format("aws:amz:%s:s3", client->location.region);
		client->multi = curl_multi_init();
		if (client->base_url == NULL || client->sigv4 == NULL || client->multi == NULL)
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
