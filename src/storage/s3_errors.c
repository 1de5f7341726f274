/*
 * s3_errors.c
 *		What the outcome of an S3 request means.  Transient failures
 *		(connection refused or reset, timeouts, 5xx, 429, SlowDown,
 *		RequestTimeout, InternalError) are worth another attempt; the others
 *		end the operation with the status storage.h promises: 403 -> EX_NOPERM,
 *		404 -> EX_NOINPUT, other 4xx -> EX_SOFTWARE naming the S3 error code
 *		read from the <Error> document (s3_xml.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/s3_client.h"

/* 'GetObject of key "k" in bucket b' (with a part's number), for messages. */
static void
describe_request(S3Client *client, S3Request *request, char *out, size_t size)
{
	char		quoted[STORAGE_WHY_MAX / 3];
	char		part[32] = "";

	if (request->part_number > 0)
		snprintf(part, sizeof(part), " (part %d)", request->part_number);
	snprintf(out, size, "%s%s of key %s in bucket %s", request->operation, part,
			 storage_quote(request->object_key, quoted, sizeof(quoted)), client->location.bucket);
}

/* Whether a curl failure is the network's (worth another attempt). */
static bool
curl_transient(CURLcode code)
{
	switch (code)
	{
		case CURLE_COULDNT_RESOLVE_PROXY:
		case CURLE_COULDNT_RESOLVE_HOST:
		case CURLE_COULDNT_CONNECT:
		case CURLE_WEIRD_SERVER_REPLY:
		case CURLE_HTTP2:
		case CURLE_PARTIAL_FILE:
		case CURLE_OPERATION_TIMEDOUT:
		case CURLE_SSL_CONNECT_ERROR:
		case CURLE_GOT_NOTHING:
		case CURLE_SEND_ERROR:
		case CURLE_RECV_ERROR:
		case CURLE_SEND_FAIL_REWIND:
		case CURLE_AGAIN:
		case CURLE_HTTP2_STREAM:
		case CURLE_HTTP3:
		case CURLE_QUIC_CONNECT_ERROR:
			return true;
		default:
			return false;
	}
}

/* The status a curl failure that is not transient deserves. */
static int
curl_failure_status(CURLcode code)
{
	switch (code)
	{
		case CURLE_PEER_FAILED_VERIFICATION:
		case CURLE_SSL_CACERT_BADFILE:
		case CURLE_SSL_CERTPROBLEM:
		case CURLE_SSL_ISSUER_ERROR:
		case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
			return EX_NOPERM;
		case CURLE_UNSUPPORTED_PROTOCOL:
		case CURLE_URL_MALFORMAT:
			return EX_USAGE;
		default:
			return EX_SOFTWARE;
	}
}

/* Whether an S3 error (by HTTP status and code) is transient. */
static bool
s3_error_transient(long http_status, const char *code)
{
	return http_status >= 500 || http_status == 429 ||
		strcmp(code, "SlowDown") == 0 || strcmp(code, "RequestTimeout") == 0 ||
		strcmp(code, "InternalError") == 0 || strcmp(code, "ServiceUnavailable") == 0;
}

/* The S3 error code of an answer without a body, from its HTTP status. */
static const char *
code_from_status(long http_status)
{
	switch (http_status)
	{
		case 400:
			return "BadRequest";
		case 403:
			return "Forbidden";
		case 404:
			return "NotFound";
		case 412:
			return "PreconditionFailed";
		case 429:
			return "TooManyRequests";
		case 503:
			return "ServiceUnavailable";
		default:
			return http_status >= 500 ? "InternalError" : "UnknownError";
	}
}

/* Classify a finished attempt; on RETRY or FAILED, why says what went wrong. */
S3Outcome
s3_classify(S3Client *client, S3Request *request, CURLcode code, int *status, char *why)
{
	char		what[STORAGE_WHY_MAX / 2];
	char		s3_code[64];
	char		s3_message[200] = "";
	long		http = request->http_status;

	describe_request(client, request, what, sizeof(what));
	*status = 0;
	if (request->local_errno != 0)
	{
		*status = storage_errno_status(request->local_errno);
		if (*status == EX_NOINPUT)
			*status = EX_SOFTWARE;
		storage_fail(why, *status, "%s: local file: %s", what, strerror(request->local_errno));
		return S3_FAILED;
	}
	if (request->protocol_error != NULL)
	{
		*status = EX_SOFTWARE;
		storage_fail(why, *status, "%s: %s", what, request->protocol_error);
		return S3_FAILED;
	}
	if (code != CURLE_OK)
	{
		bool		transient = curl_transient(code);

		*status = transient ? EX_TEMPFAIL : curl_failure_status(code);
		storage_fail(why, *status, "%s: %s", what,
					 request->curl_error[0] ? request->curl_error : curl_easy_strerror(code));
		return transient ? S3_RETRY : S3_FAILED;
	}

	/* an HTTP answer; CompleteMultipartUpload may report an error with 200 */
	if (http >= 200 && http < 300 &&
		!(strcmp(request->method, "POST") == 0 &&
		  s3_xml_text(request->response, "Error/Code", s3_code, sizeof(s3_code))))
		return S3_DONE;
	if (!s3_xml_text(request->response, "Error/Code", s3_code, sizeof(s3_code)) ||
		s3_code[0] == '\0')
		snprintf(s3_code, sizeof(s3_code), "%s", code_from_status(http));
	s3_xml_text(request->response, "Error/Message", s3_message, sizeof(s3_message));
	if (s3_error_transient(http, s3_code))
		*status = EX_TEMPFAIL;
	else if (http == 403)
		*status = EX_NOPERM;
	else if (http == 404)
		*status = strcmp(s3_code, "NoSuchUpload") == 0 ? EX_TEMPFAIL : EX_NOINPUT;
	else if (http == 412)
		*status = EX_TEMPFAIL;	/* the object changed while we read it */
	else
		*status = EX_SOFTWARE;
	storage_fail(why, *status, "%s: %s (HTTP %ld)%s%s", what, s3_code, http,
				 s3_message[0] ? ": " : "", s3_message);
	return s3_error_transient(http, s3_code) ? S3_RETRY : S3_FAILED;
}
