/*
 * s3_transfer.c
 *		The engine under every S3 operation: requests run through one curl
 *		multi handle (connections stay open between requests), a few at a
 *		time, signed by curl (CURLOPT_AWS_SIGV4) with the payload hash we
 *		give it.  A transient failure puts the request back in line after a
 *		jittered exponential backoff, a bounded number of times and within a
 *		time budget; a download that broke off resumes where it stopped.  A
 *		stop request ends everything within a tenth of a second.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "storage/s3_client.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define CONNECT_TIMEOUT_MS 10000L
#define STALL_SECONDS 30L
#define POLL_MS 100
#define TRANSFER_BUFFER_BYTES (512L * 1024)

enum
{
	REQUEST_WAITING,
	REQUEST_RUNNING,
	REQUEST_DONE
};

/* Seconds on the monotonic clock. */
static double
monotonic_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec + now.tv_nsec / 1e9;
}

/* Whether a request's body goes somewhere: a GET of object bytes. */
static bool
has_sink(const S3Request *request)
{
	return request->sink_fd >= 0 || request->sink_memory != NULL;
}

/* Fill in a request for `method` on the object with full key `object_key`. */
int
s3_request_init(S3Client *client, S3Request *request, const char *operation,
				const char *method, const char *object_key, const char *query, char *why)
{
	char	   *encoded = storage_percent_encode(object_key, true);

	memset(request, 0, sizeof(*request));
	request->operation = operation;
	request->method = method;
	request->object_key = object_key;
	request->range_start = -1;
	request->sink_fd = -1;
	request->body_fd = -1;
	request->content_length = -1;
	request->content_range_start = -1;
	if (encoded)
		request->url = storage_format("%s/%s%s%s", client->base_url, encoded,
									  query ? "?" : "", query ? query : "");
	free(encoded);
	if (request->url == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	return 0;
}

/* Free what the request owns. */
void
s3_request_free(S3Request *request)
{
	free(request->url);
	request->url = NULL;
	free(request->response);
	request->response = NULL;
	curl_slist_free_all(request->headers);
	request->headers = NULL;
	if (request->easy)
		curl_easy_cleanup(request->easy);
	request->easy = NULL;
}

/* Copy a header's value (after "name:") without surrounding blanks. */
static void
header_value(const char *line, size_t name_length, char *out, size_t size)
{
	const char *value = line + name_length;
	size_t		length;

	while (*value == ' ' || *value == '\t')
		value++;
	length = strcspn(value, "\r\n");
	while (length > 0 && (value[length - 1] == ' ' || value[length - 1] == '\t'))
		length--;
	if (length >= size)
		length = size - 1;
	memcpy(out, value, length);
	out[length] = '\0';
}

/* Header callback: remember ETag, Content-Type, Content-Length, Content-Range. */
static size_t
on_header(char *buffer, size_t size, size_t count, void *arg)
{
	S3Request  *request = arg;
	size_t		length = size * count;
	char		line[1024];
	char		value[256];

	if (length >= sizeof(line))
		return length;
	memcpy(line, buffer, length);
	line[length] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0)
	{
		/* a new answer (after 100 Continue, say): forget the last one's */
		request->etag[0] = '\0';
		request->content_type_seen[0] = '\0';
		request->content_length = -1;
		request->content_range_start = -1;
	}
	else if (strncasecmp(line, "ETag:", 5) == 0)
		header_value(line, 5, request->etag, sizeof(request->etag));
	else if (strncasecmp(line, "Content-Type:", 13) == 0)
		header_value(line, 13, request->content_type_seen, sizeof(request->content_type_seen));
	else if (strncasecmp(line, "Content-Length:", 15) == 0)
	{
		header_value(line, 15, value, sizeof(value));
		request->content_length = strtoll(value, NULL, 10);
	}
	else if (strncasecmp(line, "Content-Range:", 14) == 0)
	{
		header_value(line, 14, value, sizeof(value));
		if (strncmp(value, "bytes ", 6) == 0)
			request->content_range_start = strtoll(value + 6, NULL, 10);
	}
	return length;
}

/* Keep (the start of) a body that is not an object's bytes: errors, XML. */
static void
keep_response(S3Request *request, const char *data, size_t length)
{
	size_t		room = S3_RESPONSE_KEEP_BYTES - request->response_length;
	char	   *grown;

	if (length > room)
		length = room;
	if (length == 0)
		return;
	grown = realloc(request->response, request->response_length + length + 1);
	if (grown == NULL)
		return;
	memcpy(grown + request->response_length, data, length);
	request->response = grown;
	request->response_length += length;
	request->response[request->response_length] = '\0';
}

/* Put body bytes into the sink at their place in the object; false on failure. */
static bool
write_sink(S3Request *request, const char *data, size_t length, int64_t position)
{
	int64_t		start = request->range_start > 0 ? request->range_start : 0;

	if (request->sink_memory != NULL)
	{
		/* bytes past the range asked for (a server ignoring its end) are dropped */
		int64_t		room = request->range_length - (position - start);

		if (room > 0)
			memcpy(request->sink_memory + (position - start), data,
				   (int64_t) length < room ? length : (size_t) room);
		return true;
	}
	for (size_t written = 0; written < length;)
	{
		ssize_t		n = pwrite(request->sink_fd, data + written, length - written,
							   position + written);

		if (n < 0)
		{
			request->local_errno = errno;
			return false;
		}
		written += n;
	}
	return true;
}

/* Write callback: object bytes into the sink at their place, the rest kept. */
static size_t
on_body(char *data, size_t size, size_t count, void *arg)
{
	S3Request  *request = arg;
	size_t		length = size * count;
	long		http = 0;
	int64_t		position;

	curl_easy_getinfo(request->easy, CURLINFO_RESPONSE_CODE, &http);
	if (http < 200 || http >= 300 || !has_sink(request))
	{
		keep_response(request, data, length);
		return length;
	}
	position = (request->range_start > 0 ? request->range_start : 0) + request->kept;
	if (request->moved == 0)
	{
		if (http == 206 && request->content_range_start != position)
		{
			request->protocol_error = "the server answered another byte range than asked";
			return 0;
		}
		if (http == 200 && position != 0)
		{
			request->protocol_error = "the server ignored the Range header";
			return 0;
		}
	}
	if (!write_sink(request, data, length, position + request->moved))
		return 0;
	request->moved += length;
	if (request->sink_memory != NULL && request->kept + request->moved > request->range_length)
		request->moved = request->range_length - request->kept;
	return length;
}

/* Read callback: the body's bytes from the file. */
static size_t
on_read(char *buffer, size_t size, size_t count, void *arg)
{
	S3Request  *request = arg;
	int64_t		left = request->body_length - request->moved;
	size_t		want = size * count;
	ssize_t		got;

	if (left <= 0)
		return 0;
	if ((int64_t) want > left)
		want = left;
	got = pread(request->body_fd, buffer, want, request->body_offset + request->moved);
	if (got <= 0)
	{
		request->local_errno = got < 0 ? errno : ENODATA;	/* ENODATA: it shrank */
		return CURL_READFUNC_ABORT;
	}
	request->moved += got;
	return got;
}

/* Seek callback: curl rewinds the body to send it again on a new connection. */
static int
on_seek(void *arg, curl_off_t offset, int origin)
{
	S3Request  *request = arg;

	if (origin != SEEK_SET || offset < 0 || offset > request->body_length)
		return CURL_SEEKFUNC_CANTSEEK;
	request->moved = offset;
	return CURL_SEEKFUNC_OK;
}

/* Add a formatted header line to the request's list. */
static bool
add_header(S3Request *request, const char *fmt, const char *value)
{
	char		line[512];
	struct curl_slist *list;

	snprintf(line, sizeof(line), fmt, value);
	list = curl_slist_append(request->headers, line);
	if (list == NULL)
		return false;
	request->headers = list;
	return true;
}

/* The payload hash that x-amz-content-sha256 will carry. */
static int
compute_payload_hash(S3Client *client, S3Request *request, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	int			error;

	if (request->payload_sha256[0] != '\0')
		return 0;
	if (request->body_fd >= 0)
	{
		error = s3_sha256_file_hex(request->body_fd, request->body_offset, request->body_length,
								   request->payload_sha256);
		if (error != 0)
			return storage_fail(why, error == ENODATA ? EX_TEMPFAIL : EX_SOFTWARE,
								"cannot read the file to upload as %s in bucket %s: %s",
								storage_quote(request->object_key, quoted, sizeof(quoted)),
								client->location.bucket,
								error == ENODATA ? "it shrank" : strerror(error));
	}
	else if (request->body_memory != NULL)
		s3_sha256_hex(request->body_memory, strlen(request->body_memory), request->payload_sha256);
	else
		memcpy(request->payload_sha256, EMPTY_SHA256, sizeof(EMPTY_SHA256));
	return 0;
}

/* The headers of one attempt, all signed by curl. */
static bool
build_headers(const S3Client *client, S3Request *request)
{
	char		range[96];

	curl_slist_free_all(request->headers);
	request->headers = NULL;
	if (!add_header(request, "x-amz-content-sha256: %s", request->payload_sha256))
		return false;
	/* curl signs every header it is given: the token is part of the signature */
	if (client->session_token && !add_header(request, "x-amz-security-token: %s", client->session_token))
		return false;
	if (request->content_type && !add_header(request, "Content-Type: %s", request->content_type))
		return false;
	if (request->if_match && !add_header(request, "If-Match: %s", request->if_match))
		return false;
	if (request->range_start >= 0)
	{
		snprintf(range, sizeof(range), "bytes=%lld-%lld",
				 (long long) (request->range_start + request->kept),
				 (long long) (request->range_start + request->range_length - 1));
		if (!add_header(request, "Range: %s", range))
			return false;
	}
	return true;
}

/* Set up one attempt of a request and hand it to the multi handle. */
static int
start_attempt(S3Client *client, S3Request *request, char *why)
{
	CURL	   *easy;

	/* every attempt of a write asks the gate: a retry is a write started anew */
	if (strcmp(request->method, "GET") != 0 && strcmp(request->method, "HEAD") != 0 &&
		strcmp(request->operation, "AbortMultipartUpload") != 0)
	{
		int			status = storage_may_write(request->operation, request->object_key, why);

		if (status != 0)
			return status;
	}
	if (request->attempts++ == 0)
		request->first_started = monotonic_seconds();
	request->moved = 0;
	request->http_status = 0;
	request->local_errno = 0;
	request->protocol_error = NULL;
	request->curl_error[0] = '\0';
	free(request->response);
	request->response = NULL;
	request->response_length = 0;
	if (compute_payload_hash(client, request, why) != 0)
		return EX_TEMPFAIL;
	if (!build_headers(client, request) || (easy = curl_easy_init()) == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	request->easy = easy;
	curl_easy_setopt(easy, CURLOPT_URL, request->url);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, request);
	curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_AWS_SIGV4, client->sigv4);
	curl_easy_setopt(easy, CURLOPT_USERNAME, client->access_key_id);
	curl_easy_setopt(easy, CURLOPT_PASSWORD, client->secret_access_key);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, request->headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, "vproxy-transcode");
	curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, request->curl_error);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
	curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, TRANSFER_BUFFER_BYTES);
	curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(easy, CURLOPT_HEADERDATA, request);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, request);
	if (client->ca_file)
		curl_easy_setopt(easy, CURLOPT_CAINFO, client->ca_file);
	if (strcmp(request->method, "HEAD") == 0)
		curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
	else if (strcmp(request->method, "DELETE") == 0)
		curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "DELETE");
	else if (strcmp(request->method, "PUT") == 0)
	{
		curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, TRANSFER_BUFFER_BYTES);
		curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(easy, CURLOPT_READDATA, request);
		curl_easy_setopt(easy, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(easy, CURLOPT_SEEKDATA, request);
		curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t) request->body_length);
	}
	else if (strcmp(request->method, "POST") == 0)
	{
		const char *body = request->body_memory ? request->body_memory : "";

		curl_easy_setopt(easy, CURLOPT_POST, 1L);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) strlen(body));
	}
	if (curl_multi_add_handle(client->multi, easy) != CURLM_OK)
		return storage_fail(why, EX_SOFTWARE, "cannot start a transfer");
	request->state = REQUEST_RUNNING;
	return 0;
}

/* Take a finished (or abandoned) attempt off the multi handle. */
static void
end_attempt(S3Client *client, S3Request *request)
{
	if (request->easy == NULL)
		return;
	curl_easy_getinfo(request->easy, CURLINFO_RESPONSE_CODE, &request->http_status);
	curl_multi_remove_handle(client->multi, request->easy);
	curl_easy_cleanup(request->easy);
	request->easy = NULL;
	if (has_sink(request) && request->http_status >= 200 && request->http_status < 300)
		request->kept += request->moved;	/* those bytes are in place: resume after them */
	request->moved = 0;
}

/* Milliseconds to wait before the attempt after `attempts` failed ones. */
static long
backoff_ms(int attempts)
{
	long		ceiling = S3_RETRY_BASE_MS;

	for (int i = 1; i < attempts && ceiling < S3_RETRY_CAP_MS; i++)
		ceiling *= 2;
	if (ceiling > S3_RETRY_CAP_MS)
		ceiling = S3_RETRY_CAP_MS;
	return ceiling / 2 + (long) arc4random_uniform((uint32_t) (ceiling / 2 + 1));
}

/* Body bytes moved so far by all requests. */
static int64_t
bytes_moved(S3Request **requests, int count)
{
	int64_t		total = 0;

	for (int i = 0; i < count; i++)
	{
		S3Request  *r = requests[i];

		if (r->state == REQUEST_DONE)
			total += has_sink(r) ? r->range_length : r->body_length;
		else
			total += r->kept + r->moved;
	}
	return total;
}

/* Look at finished attempts: done, back in line, or the end of everything. */
static int
collect_finished(S3Client *client, int *running, char *why)
{
	CURLMsg    *message;
	int			left;

	while ((message = curl_multi_info_read(client->multi, &left)) != NULL)
	{
		S3Request  *request;
		S3Outcome	outcome;
		CURLcode	result;
		int			status;
		double		now = monotonic_seconds();
		long		delay;

		if (message->msg != CURLMSG_DONE)
			continue;
		result = message->data.result;	/* the message dies with its handle */
		curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, (char **) &request);
		end_attempt(client, request);
		(*running)--;
		outcome = s3_classify(client, request, result, &status, why);
		if (outcome == S3_RETRY && has_sink(request) &&
			request->kept >= request->range_length)
			outcome = S3_DONE;	/* every byte arrived before the connection broke */
		if (outcome == S3_DONE)
		{
			request->state = REQUEST_DONE;
			continue;
		}
		if (outcome == S3_FAILED)
			return status;
		delay = backoff_ms(request->attempts);
		if (request->attempts >= S3_MAX_ATTEMPTS ||
			now + delay / 1000.0 - request->first_started > S3_RETRY_BUDGET_SECONDS)
		{
			size_t		used = strlen(why);

			snprintf(why + used, STORAGE_WHY_MAX - used, " (gave up after %d attempts)",
					 request->attempts);
			return status;
		}
		request->state = REQUEST_WAITING;
		request->not_before = now + delay / 1000.0;
	}
	return 0;
}

/* Run requests, at most `parallel` at a time, retrying transient failures. */
int
s3_run(S3Client *client, S3Request **requests, int count, int parallel,
	   const StorageHooks *hooks, int64_t progress_total, char *why)
{
	double		started = monotonic_seconds();
	int			running = 0;
	int			status = 0;

	for (int i = 0; i < count; i++)
	{
		requests[i]->state = REQUEST_WAITING;
		requests[i]->not_before = started;
	}
	for (;;)
	{
		double		now = monotonic_seconds();
		double		next_start = -1;
		int			done = 0;
		int			still_running;
		long		wait_ms = POLL_MS;

		if (storage_should_stop(hooks))
		{
			status = storage_fail(why, EX_TEMPFAIL, "%s of s3://%s interrupted by a stop request",
								  requests[0]->operation, client->location.bucket);
			break;
		}
		for (int i = 0; i < count && status == 0; i++)
		{
			S3Request  *request = requests[i];

			if (request->state == REQUEST_DONE)
				done++;
			else if (request->state == REQUEST_WAITING && request->not_before <= now &&
					 running < parallel)
			{
				status = start_attempt(client, request, why);
				running += status == 0;
			}
			else if (request->state == REQUEST_WAITING &&
					 (next_start < 0 || request->not_before < next_start))
				next_start = request->not_before;
		}
		if (status != 0 || done == count)
			break;
		curl_multi_perform(client->multi, &still_running);
		status = collect_finished(client, &running, why);
		if (status != 0)
			break;
		if (progress_total > 0)
			storage_progress(hooks, bytes_moved(requests, count), progress_total);
		if (running == 0 && next_start > now)
			wait_ms = (long) ((next_start - now) * 1000) + 1;
		if (wait_ms > POLL_MS)
			wait_ms = POLL_MS;
		curl_multi_poll(client->multi, NULL, 0, (int) wait_ms, NULL);
	}
	for (int i = 0; i < count; i++)
		end_attempt(client, requests[i]);
	return status;
}

/* Run one request. */
int
s3_run_one(S3Client *client, S3Request *request, const StorageHooks *hooks, char *why)
{
	S3Request  *requests[1] = {request};

	return s3_run(client, requests, 1, 1, hooks, 0, why);
}
