/*
 * sigv4_presign_test.c
 *		Unit tests of src/common/sigv4_presign.c with OpenSSL's hashes as
 *		vproxy-transcode passes them (src/storage/openssl_hashes.c), printing TAP; run by
 *		test/t/125_common_units.pl.  The reference is the example of AWS's
 *		"Authenticating Requests: Using Query Parameters" page; botocore checks
 *		the presigner's URLs end to end in test/t/110 and test/t/370.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/sigv4_presign.h"
#include "storage/openssl_hashes.h"
#include "unit_tap.h"

/* A hash function that fails. */
static bool
failing_sha256(const void *data, size_t length, unsigned char digest[SIGV4_DIGEST_LENGTH],
			   void *arg)
{
	(void) data;
	(void) length;
	(void) digest;
	(void) arg;
	return false;
}

/* Presign into a buffer of exactly the announced size; NULL on a problem. */
static char *
presign(const S3Location *location, const SigV4Credentials *credentials,
		const SigV4Hashes *hashes, const SigV4PresignRequest *request, const char **problem)
{
	size_t		size = sigv4_presign_size(location, credentials, request);
	char	   *url = malloc(size);

	*problem = sigv4_presign_url(url, size, location, credentials, hashes, request);
	if (*problem == NULL && strlen(url) + 1 > size)
		*problem = "the URL overran its announced size";
	if (*problem != NULL)
	{
		free(url);
		return NULL;
	}
	return url;
}

/* Run the tests. */
int
main(void)
{
	SigV4Hashes hashes = openssl_sigv4_hashes;
	SigV4Credentials credentials = {"AKIAIOSFODNN7EXAMPLE",
	"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL};
	SigV4PresignRequest request = {"GET", "test.txt", 1369353600, 86400};	/* 2013-05-24 */
	S3Location	location;
	const char *problem;
	char	   *url;
	char		small[64];

	/* AWS's example: examplebucket.s3.amazonaws.com, written in by hand */
	memset(&location, 0, sizeof(location));
	strcpy(location.bucket, "examplebucket");
	strcpy(location.region, "us-east-1");
	strcpy(location.scheme, "https");
	strcpy(location.host, "examplebucket.s3.amazonaws.com");
	url = presign(&location, &credentials, &hashes, &request, &problem);
	tap_is(url, "https://examplebucket.s3.amazonaws.com/test.txt"
		   "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
		   "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
		   "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
		   "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
		   "AWS's documented example gives AWS's documented signature");
	free(url);

	/* a session token is signed in, in its sorted place, encoded */
	credentials.session_token = "FQoG/token+with=chars";
	url = presign(&location, &credentials, &hashes, &request, &problem);
	tap_ok(url != NULL && strstr(url, "&X-Amz-Expires=86400&X-Amz-Security-Token="
								 "FQoG%2Ftoken%2Bwith%3Dchars&X-Amz-SignedHeaders=host&") != NULL,
		   "the session token goes between X-Amz-Expires and X-Amz-SignedHeaders");
	tap_ok(url != NULL && strstr(url, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404") == NULL,
		   "and changes the signature");
	free(url);
	credentials.session_token = "";
	url = presign(&location, &credentials, &hashes, &request, &problem);
	tap_ok(url != NULL && strstr(url, "Security-Token") == NULL, "an empty token is no token");
	free(url);

	/* path-style below an endpoint, a prefix, a key that needs encoding */
	tap_ok(s3_location_parse(&location, "s3://media/tenant one", "http://127.0.0.1:9000",
							 "") == NULL, "a parsed location");
	request.method = "PUT";
	request.key = "uploads/m1/clip 1+\xc3\xa9.mov";
	url = presign(&location, &credentials, &hashes, &request, &problem);
	tap_ok(url != NULL && strncmp(url, "http://127.0.0.1:9000/media/tenant%20one/uploads/m1/"
								  "clip%201%2B%C3%A9.mov?X-Amz-Algorithm=", 77) == 0,
		   "path-style, prefix and key encoded with '/' kept");
	free(url);

	/* problems */
	request.expires_seconds = 0;
	tap_ok(presign(&location, &credentials, &hashes, &request, &problem) == NULL &&
		   strstr(problem, "7 days") != NULL, "expiry 0 refused");
	request.expires_seconds = SIGV4_PRESIGN_MAX_SECONDS + 1;
	tap_ok(presign(&location, &credentials, &hashes, &request, &problem) == NULL,
		   "expiry beyond 7 days refused");
	request.expires_seconds = SIGV4_PRESIGN_MAX_SECONDS;
	url = presign(&location, &credentials, &hashes, &request, &problem);
	tap_ok(url != NULL, "7 days is fine");
	free(url);
	request.method = "get";
	tap_ok(presign(&location, &credentials, &hashes, &request, &problem) == NULL,
		   "a method not in capitals refused");
	request.method = "GET";
	credentials.secret_access_key = "";
	tap_ok(presign(&location, &credentials, &hashes, &request, &problem) == NULL &&
		   strstr(problem, "secret") != NULL, "no secret refused");
	credentials.secret_access_key = "secret";
	request.key = "";
	tap_ok(presign(&location, &credentials, &hashes, &request, &problem) == NULL,
		   "an empty key refused");
	request.key = "uploads/../../etc/passwd";
	tap_ok(presign(&location, &credentials, &hashes, &request, &problem) == NULL &&
		   strstr(problem, "key rule") != NULL, "a key the key rule refuses is never signed");
	request.key = "/absolute";
	tap_ok(presign(&location, &credentials, &hashes, &request, &problem) == NULL,
		   "nor an absolute key");
	request.key = "k";
	hashes.sha256 = failing_sha256;
	tap_ok(presign(&location, &credentials, &hashes, &request, &problem) == NULL &&
		   strstr(problem, "SHA-256") != NULL, "a failing hash function is reported");
	hashes.sha256 = openssl_sigv4_hashes.sha256;
	tap_ok(sigv4_presign_url(small, sizeof(small), &location, &credentials, &hashes,
							 &request) != NULL, "a buffer too small is reported");
	return tap_done();
}
