/*
 * s3_location.h
 *		Where the objects of an S3 storage are and how requests reach them:
 *		the storage URL s3://bucket[/prefix], the endpoint (empty: AWS itself;
 *		set: an S3-compatible service, addressed path-style below it) and the
 *		signing region.  Checked and parsed once here for vproxy.so's setting
 *		hooks, the presigner and the S3 backend of vproxy-transcode.
 *
 * Plain C, no allocation: every check returns NULL when the value is fine,
 * else a static sentence saying what is wrong (for errdetail or a one-line
 * message; the caller names the setting and the value).
 */
#ifndef VPROXY_COMMON_S3_LOCATION_H
#define VPROXY_COMMON_S3_LOCATION_H

#include <stdbool.h>

#define S3_LOCATION_BUCKET_MAX 63
#define S3_LOCATION_REGION_MAX 63
#define S3_LOCATION_PREFIX_MAX 512
#define S3_LOCATION_HOST_MAX 300
#define S3_LOCATION_PATH_MAX 512

/* The region used when none is set. */
#define S3_LOCATION_DEFAULT_REGION "us-east-1"

/* A parsed, checked S3 location. */
typedef struct S3Location
{
	char		bucket[S3_LOCATION_BUCKET_MAX + 1];
	char		prefix[S3_LOCATION_PREFIX_MAX + 2];	/* "" or "some/dir/" */
	char		region[S3_LOCATION_REGION_MAX + 1];	/* the signing region */
	char		scheme[6];		/* "http" or "https" */
	char		host[S3_LOCATION_HOST_MAX + 1]; /* host[:port] as in the Host header */
	/* the path before every key: "" (virtual-hosted) or "[/endpoint/path]/bucket" */
	char		base_path[S3_LOCATION_PATH_MAX + S3_LOCATION_BUCKET_MAX + 2];
	bool		path_style;
} S3Location;

/* Check a storage URL of the form s3://bucket[/prefix]. */
extern const char *s3_location_check_url(const char *url);

/* Check a bucket name against S3's naming rules. */
extern const char *s3_location_check_bucket(const char *bucket);

/* Check a region name ("" means the default; "auto" is one). */
extern const char *s3_location_check_region(const char *region);

/* Check an endpoint: "" (AWS) or http[s]://host[:port][/path]. */
extern const char *s3_location_check_endpoint(const char *endpoint);

/*
 * Parse and check the three settings together into *location (endpoint and
 * region may be NULL or "").  Also refuses what only the combination makes
 * wrong: AWS itself (no endpoint) with the region "auto".
 */
extern const char *s3_location_parse(S3Location *location, const char *url,
									 const char *endpoint, const char *region);

#endif							/* VPROXY_COMMON_S3_LOCATION_H */
