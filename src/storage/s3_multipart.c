/*
 * s3_multipart.c
 *		A multipart upload: CreateMultipartUpload, the parts (at least 8 MiB,
 *		at most 10000 of them) a few at a time, each streamed from the file
 *		and retried on its own, then CompleteMultipartUpload, whose answer is
 *		read even on HTTP 200 because S3 may report an error in it.  On any
 *		failure after the upload was created it is aborted, so that no
 *		invisible, billed parts stay behind.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/s3_client.h"

/* Bytes no XML 1.0 document can hold, even escaped (tab aside). */
#define CONTROL_CHARACTERS "\x01\x02\x03\x04\x05\x06\x07\x08\x0a\x0b\x0c\x0d\x0e\x0f" \
	"\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"

/* Part size: at least S3_PART_MIN_BYTES, large enough for S3_MAX_PARTS parts. */
static int64_t
choose_part_size(int64_t size)
{
	int64_t		mib = 1024 * 1024;
	int64_t		part = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;

	part = (part + mib - 1) / mib * mib;
	return part < S3_PART_MIN_BYTES ? S3_PART_MIN_BYTES : part;
}

/* CreateMultipartUpload: the new upload's id (malloc'd) in *upload_id. */
static int
create_upload(S3Client *client, const char *object_key, const char *content_type,
			  const StorageHooks *hooks, char **upload_id, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	char		id[1024];
	S3Request	create;
	int			status;

	*upload_id = NULL;
	status = s3_request_init(client, &create, "CreateMultipartUpload", "POST", object_key,
							 "uploads=", why);
	if (status == 0)
	{
		create.content_type = content_type;
		status = s3_run_one(client, &create, hooks, why);
	}
	if (status == 0 && (!s3_xml_text(create.response, "InitiateMultipartUploadResult/UploadId", id, sizeof(id)) || id[0] == '\0'))
		status = storage_fail(why, EX_SOFTWARE,
							  "CreateMultipartUpload of key %s in bucket %s: no UploadId in the answer",
							  storage_quote(object_key, quoted, sizeof(quoted)), client->location.bucket);
	if (status == 0 && (*upload_id = strdup(id)) == NULL)
		status = storage_fail(why, EX_SOFTWARE, "out of memory");
	s3_request_free(&create);
	return status;
}

/* Append text to a growing string; false when out of memory. */
static bool
append(char **buffer, size_t *length, const char *text)
{
	size_t		add = strlen(text);
	char	   *grown = realloc(*buffer, *length + add + 1);

	if (grown == NULL)
		return false;
	memcpy(grown + *length, text, add + 1);
	*buffer = grown;
	*length += add;
	return true;
}

/* The CompleteMultipartUpload document listing every part's ETag, escaped. */
static char *
completion_document(S3Request *parts, int count)
{
	char	   *xml = NULL;
	size_t		length = 0;
	bool		ok = append(&xml, &length,
							"<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");

	for (int i = 0; ok && i < count; i++)
	{
		char		number[64];
		char	   *etag = s3_xml_escape(parts[i].etag);

		snprintf(number, sizeof(number), "<Part><PartNumber>%d</PartNumber><ETag>",
				 parts[i].part_number);
		ok = etag != NULL && append(&xml, &length, number) && append(&xml, &length, etag) &&
			append(&xml, &length, "</ETag></Part>");
		free(etag);
	}
	if (ok && append(&xml, &length, "</CompleteMultipartUpload>"))
		return xml;
	free(xml);
	return NULL;
}

/* Upload the parts, then complete the upload. */
static int
upload_parts(S3Client *client, const char *object_key, const char *upload_id, int fd,
			 int64_t size, const StorageHooks *hooks, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	int64_t		part_size = choose_part_size(size);
	int			count = (int) ((size + part_size - 1) / part_size);
	S3Request  *parts = calloc(count, sizeof(S3Request));
	S3Request **pointers = calloc(count, sizeof(S3Request *));
	char	   *encoded_id = storage_percent_encode(upload_id, false);
	char	   *document = NULL;
	int			made = 0;
	int			status = 0;

	if (parts == NULL || pointers == NULL || encoded_id == NULL)
		status = storage_fail(why, EX_SOFTWARE, "out of memory");
	for (; status == 0 && made < count; made++)
	{
		char		query[1200];
		S3Request  *part = &parts[made];

		snprintf(query, sizeof(query), "partNumber=%d&uploadId=%s", made + 1, encoded_id);
		status = s3_request_init(client, part, "UploadPart", "PUT", object_key, query, why);
		part->part_number = made + 1;
		part->body_fd = fd;
		part->body_offset = (int64_t) made * part_size;
		part->body_length = size - part->body_offset < part_size ? size - part->body_offset : part_size;
		pointers[made] = part;
	}
	if (status == 0)
		status = s3_run(client, pointers, count, S3_PARALLEL_TRANSFERS, hooks, size, why);
	for (int i = 0; status == 0 && i < count; i++)
		if (parts[i].etag[0] == '\0' || strcspn(parts[i].etag, CONTROL_CHARACTERS) != strlen(parts[i].etag))
			status = storage_fail(why, EX_SOFTWARE,
								  "UploadPart (part %d) of key %s in bucket %s: no usable ETag in the answer",
								  i + 1, storage_quote(object_key, quoted, sizeof(quoted)),
								  client->location.bucket);
	if (status == 0 && (document = completion_document(parts, count)) == NULL)
		status = storage_fail(why, EX_SOFTWARE, "out of memory");
	if (status == 0)
	{
		S3Request	complete;
		char		query[1200];

		snprintf(query, sizeof(query), "uploadId=%s", encoded_id);
		status = s3_request_init(client, &complete, "CompleteMultipartUpload", "POST",
								 object_key, query, why);
		if (status == 0)
		{
			complete.body_memory = document;
			complete.content_type = "application/xml";
			status = s3_run_one(client, &complete, hooks, why);
		}
		if (status == 0 && !s3_xml_text(complete.response, "CompleteMultipartUploadResult/ETag", quoted,
										  sizeof(quoted)))
			status = storage_fail(why, EX_SOFTWARE,
								  "CompleteMultipartUpload of key %s in bucket %s: unexpected answer",
								  storage_quote(object_key, quoted, sizeof(quoted)), client->location.bucket);
		s3_request_free(&complete);
	}
	for (int i = 0; i < made; i++)
		s3_request_free(&parts[i]);
	free(parts);
	free(pointers);
	free(encoded_id);
	free(document);
	return status;
}

/* AbortMultipartUpload, even when a stop was requested; failures noted in why. */
static void
abort_upload(S3Client *client, const char *object_key, const char *upload_id, char *why)
{
	char		abort_why[STORAGE_WHY_MAX];
	char		query[1200];
	char	   *encoded_id = storage_percent_encode(upload_id, false);
	S3Request	abort_request;
	bool		gone;
	int			status;

	if (encoded_id == NULL)
		return;
	snprintf(query, sizeof(query), "uploadId=%s", encoded_id);
	free(encoded_id);
	status = s3_request_init(client, &abort_request, "AbortMultipartUpload", "DELETE",
							 object_key, query, abort_why);
	if (status == 0)
		status = s3_run_one(client, &abort_request, NULL, abort_why);
	gone = abort_request.http_status == 404;	/* NoSuchUpload: nothing left */
	s3_request_free(&abort_request);
	if (status != 0 && !gone)
	{
		size_t		used = strlen(why);

		snprintf(why + used, STORAGE_WHY_MAX - used, "; the upload could not be aborted either");
	}
}

/* Multipart upload of an open file of `size` bytes (aborted on failure). */
int
s3_multipart_upload(S3Client *client, const char *object_key, int fd, int64_t size,
					const char *content_type, const StorageHooks *hooks, char *why)
{
	char	   *upload_id;
	int			status;

	status = create_upload(client, object_key, content_type, hooks, &upload_id, why);
	if (status != 0)
		return status;
	status = upload_parts(client, object_key, upload_id, fd, size, hooks, why);
	if (status != 0)
		abort_upload(client, object_key, upload_id, why);
	free(upload_id);
	return status;
}
