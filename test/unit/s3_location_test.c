/*
 * s3_location_test.c
 *		Unit tests of src/common/s3_location.c, printing TAP; run by
 *		test/t/125_common_units.pl.
 */
#include <stdio.h>
#include <string.h>

#include "common/s3_location.h"
#include "unit_tap.h"

/* Check that a bucket name is accepted or refused. */
static void
bucket(const char *name, bool good)
{
	tap_ok((s3_location_check_bucket(name) == NULL) == good, "bucket \"%s\" %s", name,
		   good ? "accepted" : "refused");
}

/* Check that a region name is accepted or refused. */
static void
region(const char *name, bool good)
{
	tap_ok((s3_location_check_region(name) == NULL) == good, "region \"%s\" %s", name,
		   good ? "accepted" : "refused");
}

/* Check that an endpoint is accepted or refused. */
static void
endpoint(const char *url, bool good)
{
	tap_ok((s3_location_check_endpoint(url) == NULL) == good, "endpoint \"%s\" %s", url,
		   good ? "accepted" : "refused");
}

/* Check that a storage URL is accepted or refused. */
static void
url(const char *text, bool good)
{
	tap_ok((s3_location_check_url(text) == NULL) == good, "storage URL \"%s\" %s", text,
		   good ? "accepted" : "refused");
}

/* Parse the three settings and compare host, base path and prefix. */
static void
parsed(const char *storage_url, const char *endpoint_url, const char *region_name,
	   const char *scheme, const char *host, const char *base_path, const char *prefix)
{
	S3Location	location;
	const char *problem = s3_location_parse(&location, storage_url, endpoint_url, region_name);

	if (problem != NULL)
	{
		tap_ok(false, "%s with \"%s\" in %s: %s", storage_url, endpoint_url, region_name, problem);
		return;
	}
	tap_is(location.scheme, scheme, "%s with \"%s\": scheme", storage_url, endpoint_url);
	tap_is(location.host, host, "%s with \"%s\" in %s: host", storage_url, endpoint_url,
		   region_name);
	tap_is(location.base_path, base_path, "%s with \"%s\": base path", storage_url, endpoint_url);
	tap_is(location.prefix, prefix, "%s: prefix", storage_url);
}

/* Run the tests. */
int
main(void)
{
	S3Location	location;

	bucket("media", true);
	bucket("my-bucket.with.dots", true);
	bucket("a1b", true);
	bucket("abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghija12", true);
	bucket("abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghija123", false);
	bucket("ab", false);
	bucket("Media", false);
	bucket("my_bucket", false);
	bucket("-media", false);
	bucket("media.", false);
	bucket("me..dia", false);
	bucket("192.168.5.4", false);
	bucket("192.168.5", true);
	bucket("xn--media", false);
	bucket("sthree-media", false);
	bucket("amzn-s3-demo-bucket", false);
	bucket("media-s3alias", false);
	bucket("media--ol-s3", false);
	bucket("media.mrap", false);
	bucket("media--x-s3", false);
	bucket("media--table-s3", false);

	region("", true);
	region("us-east-1", true);
	region("cn-north-1", true);
	region("us-gov-west-1", true);
	region("auto", true);
	region("garage", true);
	region("us-west-004", true);
	region("US-EAST-1", false);
	region("us_east_1", false);
	region("us-east-1-", false);
	region("us/east", false);
	region("eu:west", false);

	endpoint("", true);
	endpoint("http://127.0.0.1:9000", true);
	endpoint("https://s3.example.com/", true);
	endpoint("https://abc123.r2.cloudflarestorage.com", true);
	endpoint("http://[::1]:9000/storage", true);
	endpoint("ftp://example.com", false);
	endpoint("127.0.0.1:9000", false);
	endpoint("http://", false);
	endpoint("http:///path", false);
	endpoint("http://user@host", false);
	endpoint("http://host/?x=1", false);
	endpoint("http://host/#f", false);
	endpoint("http://host:0", false);
	endpoint("http://host:65536", false);
	endpoint("http://host:", false);
	endpoint("http://host:9x", false);
	endpoint("http://[::1", false);
	endpoint("http://[::1]x", false);
	endpoint("http://ho st", false);
	endpoint("http://host/a//b", false);
	endpoint("http://host/a b", false);

	url("s3://media", true);
	url("s3://media/", true);
	url("s3://media/some/prefix/", true);
	url("s3://", false);
	url("s3:///prefix", false);
	url("s3://Media/x", false);
	url("file:///tmp", false);
	url("s3://media/a//b", false);
	url("s3://media/a/../b", false);
	url("s3://media/./b", false);
	tap_ok(s3_location_check_url("s3://media/a\nb") != NULL, "a line break in a prefix refused");
	tap_ok(s3_location_check_url("s3://media/caf\xc3") != NULL, "a prefix of invalid UTF-8 refused");
	url("s3://media/caf\xc3\xa9/", true);

	parsed("s3://media", "", "", "https", "media.s3.us-east-1.amazonaws.com", "", "");
	parsed("s3://media/videos//", "", "eu-west-3", "https", "media.s3.eu-west-3.amazonaws.com",
		   "", "videos/");
	parsed("s3://media.dotted/a/b", "", "eu-west-3", "https", "s3.eu-west-3.amazonaws.com",
		   "/media.dotted", "a/b/");
	parsed("s3://media", "", "cn-north-1", "https", "media.s3.cn-north-1.amazonaws.com.cn", "",
		   "");
	parsed("s3://media/p", "http://127.0.0.1:9000", "us-east-1", "http", "127.0.0.1:9000",
		   "/media", "p/");
	parsed("s3://media", "HTTPS://S3.Example.COM:443/base/", "auto", "https", "s3.example.com",
		   "/base/media", "");
	parsed("s3://media", "http://s3.example.com:80", "auto", "http", "s3.example.com",
		   "/media", "");
	parsed("s3://media", "https://s3.example.com:80", "auto", "https", "s3.example.com:80",
		   "/media", "");
	parsed("s3://media", "http://[::1]:9000", "", "http", "[::1]:9000", "/media", "");
	tap_ok(s3_location_parse(&location, "s3://media", "", "auto") != NULL,
		   "AWS itself with the region auto is refused");
	tap_ok(s3_location_parse(&location, "s3://media", "http://h", "Bad") != NULL,
		   "a bad region is refused with an endpoint too");
	return tap_done();
}
