/*
 * s3_head.c
 *		HeadObject.  An answer to HEAD has no body, so a refusal carries no S3
 *		error code: after a failed HEAD the same object is asked for with a
 *		one-byte GET, whose error document names the cause (NoSuchKey or
 *		NoSuchBucket, AccessDenied or SignatureDoesNotMatch, ...).
 */
#include <stdio.h>
#include <string.h>

#include "storage/s3_client.h"

/* Replace why with the error a one-byte GET of the object gets, if it fails. */
static void
explain_failure(S3Client *client, const char *object_key, const StorageHooks *hooks,
				char *why)
{
	S3Request	probe;
	char		probe_why[STORAGE_WHY_MAX];

	if (s3_request_init(client, &probe, "GetObject", "GET", object_key, NULL, probe_why) != 0)
		return;
	probe.range_start = 0;
	probe.range_length = 1;
	if (s3_run_one(client, &probe, hooks, probe_why) != 0 && probe.http_status >= 400)
		memcpy(why, probe_why, STORAGE_WHY_MAX);
	s3_request_free(&probe);
}

/* HeadObject of a full key: size, ETag and content type. */
int
s3_head_object(S3Client *client, const char *object_key, const StorageHooks *hooks,
			   StorageObjectInfo *info, char *why)
{
	S3Request	head;
	char		quoted[STORAGE_WHY_MAX / 2];
	int			status;

	memset(info, 0, sizeof(*info));
	status = s3_request_init(client, &head, "HeadObject", "HEAD", object_key, NULL, why);
	if (status == 0)
		status = s3_run_one(client, &head, hooks, why);
	if (status == 0 && head.content_length < 0)
		status = storage_fail(why, EX_SOFTWARE, "HeadObject of key %s in bucket %s gave no size",
							  storage_quote(object_key, quoted, sizeof(quoted)), client->location.bucket);
	if (status == 0)
	{
		info->size_bytes = head.content_length;
		snprintf(info->etag, sizeof(info->etag), "%s", head.etag);
		snprintf(info->content_type, sizeof(info->content_type), "%s",
				 head.content_type_seen[0] ? head.content_type_seen : "application/octet-stream");
	}
	else if (head.http_status >= 400 && head.http_status < 500)
		explain_failure(client, object_key, hooks, why);
	s3_request_free(&head);
	return status;
}
