/*
 * s3_location.c
 *		S3 storage locations: the storage URL, bucket names (S3's rules for
 *		general purpose buckets), regions (AWS's, S3-compatible services' own
 *		names, "auto" for services that take any), endpoints, and how a request
 *		is addressed: AWS virtual-hosted (path-style for bucket names with dots,
 *		which the wildcard certificate does not cover; amazonaws.com.cn for the
 *		cn- regions), or path-style below a set endpoint.
 */
#include "common/s3_location.h"

#include "common/storage_key.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"
#define DNS_NAME_MAX 253

/* Whether c is an ASCII lowercase letter or digit. */
static bool
lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* Whether text starts with prefix. */
static bool
starts_with(const char *text, const char *prefix)
{
	return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* Whether text ends with suffix. */
static bool
ends_with(const char *text, const char *suffix)
{
	size_t		length = strlen(text);
	size_t		suffix_length = strlen(suffix);

	return length >= suffix_length && strcmp(text + length - suffix_length, suffix) == 0;
}

/* Whether a name is four dot-separated groups of digits, as an IPv4 address. */
static bool
looks_like_ipv4(const char *name)
{
	int			groups = 0;
	int			digits = 0;

	for (const char *c = name;; c++)
	{
		if (*c >= '0' && *c <= '9')
			digits++;
		else if ((*c == '.' || *c == '\0') && digits > 0)
		{
			groups++;
			digits = 0;
			if (*c == '\0')
				return groups == 4;
		}
		else
			return false;
	}
}

/* Check a bucket name against S3's naming rules. */
const char *
s3_location_check_bucket(const char *bucket)
{
	static const char *const reserved_prefixes[] = {"xn--", "sthree-", "amzn-s3-demo-"};
	static const char *const reserved_suffixes[] = {"-s3alias", "--ol-s3", ".mrap", "--x-s3",
	"--table-s3"};
	size_t		length = strlen(bucket);

	if (length < 3 || length > S3_LOCATION_BUCKET_MAX)
		return "a bucket name has 3 to 63 characters";
	if (strspn(bucket, LOWER_DIGITS ".-") != length)
		return "a bucket name has only lowercase letters, digits, dots and hyphens";
	if (!lower_alnum(bucket[0]) || !lower_alnum(bucket[length - 1]))
		return "a bucket name begins and ends with a letter or a digit";
	if (strstr(bucket, "..") != NULL)
		return "a bucket name has no two dots in a row";
	if (looks_like_ipv4(bucket))
		return "a bucket name is not formatted as an IP address";
	for (size_t i = 0; i < sizeof(reserved_prefixes) / sizeof(reserved_prefixes[0]); i++)
		if (starts_with(bucket, reserved_prefixes[i]))
			return "a bucket name does not start with a prefix S3 reserves (xn--, sthree-, amzn-s3-demo-)";
	for (size_t i = 0; i < sizeof(reserved_suffixes) / sizeof(reserved_suffixes[0]); i++)
		if (ends_with(bucket, reserved_suffixes[i]))
			return "a bucket name does not end with a suffix S3 reserves (-s3alias, --ol-s3, .mrap, --x-s3, --table-s3)";
	return NULL;
}

/* Check a region name ("" means the default; "auto" is one). */
const char *
s3_location_check_region(const char *region)
{
	size_t		length = strlen(region);

	if (length == 0)
		return NULL;
	if (length > S3_LOCATION_REGION_MAX)
		return "a region name has at most 63 characters";
	if (strspn(region, LOWER_DIGITS "-") != length || !lower_alnum(region[0]) ||
		!lower_alnum(region[length - 1]))
		return "a region name has only lowercase letters, digits and inner hyphens, as us-east-1, cn-north-1 or auto";
	return NULL;
}

/*
 * The prefix of a storage URL (leading and trailing slashes dropped) into
 * out as "" or "dir/"; a problem unless it passes the one key rule.
 */
static const char *
parse_prefix(const char *text, char *out, size_t size)
{
	char		prefix[S3_LOCATION_PREFIX_MAX + 1];
	size_t		length;

	while (*text == '/')
		text++;
	length = strlen(text);
	while (length > 0 && text[length - 1] == '/')
		length--;
	if (length > S3_LOCATION_PREFIX_MAX)
		return "the prefix of an S3 storage URL has at most 512 bytes";
	memcpy(prefix, text, length);
	prefix[length] = '\0';
	if (length > 0 && storage_key_problem(prefix) != NULL)
		return "the prefix of an S3 storage URL follows the rule of storage keys: valid UTF-8, no control character, no empty, \".\" or \"..\" component";
	if (out != NULL)
		snprintf(out, size, "%s%s", prefix, length > 0 ? "/" : "");
	return NULL;
}

/* Parse s3://bucket[/prefix] into bucket and prefix (both may be NULL). */
static const char *
parse_url(const char *url, char *bucket, char *prefix, size_t prefix_size)
{
	const char *location;
	const char *slash;
	size_t		bucket_length;
	char		name[S3_LOCATION_BUCKET_MAX + 2];
	const char *problem;

	if (!starts_with(url, "s3://"))
		return "an S3 storage URL looks like s3://bucket or s3://bucket/prefix";
	location = url + strlen("s3://");
	slash = strchr(location, '/');
	bucket_length = slash ? (size_t) (slash - location) : strlen(location);
	if (bucket_length == 0)
		return "an S3 storage URL names a bucket: s3://bucket or s3://bucket/prefix";
	if (bucket_length > S3_LOCATION_BUCKET_MAX)
		return s3_location_check_bucket(location);
	memcpy(name, location, bucket_length);
	name[bucket_length] = '\0';
	problem = s3_location_check_bucket(name);
	if (problem == NULL)
		problem = parse_prefix(slash ? slash + 1 : "", prefix, prefix_size);
	if (problem == NULL && bucket != NULL)
		memcpy(bucket, name, bucket_length + 1);
	return problem;
}

/* Check a storage URL of the form s3://bucket[/prefix]. */
const char *
s3_location_check_url(const char *url)
{
	return parse_url(url, NULL, NULL, 0);
}

/*
 * Parse the authority of an endpoint (host, [IPv6] or host:port) into
 * location->host, lowercase, without the scheme's default port.
 */
static const char *
parse_authority(const char *authority, size_t length, S3Location *location)
{
	const char *port = NULL;
	size_t		host_length;
	long		port_number = 0;

	if (length > 0 && authority[0] == '[')
	{
		const char *close = memchr(authority, ']', length);

		if (close == NULL || close == authority + 1 ||
			strspn(authority + 1, "0123456789abcdefABCDEF:.") != (size_t) (close - authority - 1))
			return "an endpoint's IPv6 address is written in brackets, as http://[::1]:9000";
		host_length = close + 1 - authority;
		if (host_length < length && authority[host_length] != ':')
			return "an endpoint's IPv6 address is followed by nothing or a port";
	}
	else
	{
		host_length = strcspn(authority, ":/");
		if (host_length > length)
			host_length = length;
		if (host_length == 0 || host_length > DNS_NAME_MAX ||
			strspn(authority, LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-") < host_length ||
			authority[0] == '.' || authority[0] == '-')
			return "an endpoint names a host: letters, digits, dots and hyphens";
	}
	if (host_length < length)
	{
		port = authority + host_length + 1;
		if (port == authority + length || (size_t) (authority + length - port) > 5 ||
			strspn(port, "0123456789") != (size_t) (authority + length - port))
			return "an endpoint's port is a number from 1 to 65535";
		for (const char *c = port; c < authority + length; c++)
			port_number = port_number * 10 + (*c - '0');
		if (port_number < 1 || port_number > 65535)
			return "an endpoint's port is a number from 1 to 65535";
	}
	if ((port_number == 80 && strcmp(location->scheme, "http") == 0) ||
		(port_number == 443 && strcmp(location->scheme, "https") == 0))
		length = host_length;	/* clients leave the default port out of Host */
	if (length > S3_LOCATION_HOST_MAX)
		return "an endpoint's host and port have at most 300 characters";
	for (size_t i = 0; i < length; i++)
		location->host[i] = (authority[i] >= 'A' && authority[i] <= 'Z') ?
			(char) (authority[i] - 'A' + 'a') : authority[i];
	location->host[length] = '\0';
	return NULL;
}

/* Whether the first length bytes of path hold "//". */
static bool
has_double_slash(const char *path, size_t length)
{
	for (size_t i = 1; i < length; i++)
		if (path[i] == '/' && path[i - 1] == '/')
			return true;
	return false;
}

/* Parse an endpoint URL into scheme, host and path-style base path. */
static const char *
parse_endpoint(const char *endpoint, S3Location *location)
{
	const char *authority;
	const char *path;
	size_t		path_length;
	const char *problem;

	if (strncasecmp(endpoint, "http://", 7) == 0)
		strcpy(location->scheme, "http");
	else if (strncasecmp(endpoint, "https://", 8) == 0)
		strcpy(location->scheme, "https");
	else
		return "an endpoint is an http or https URL, as https://s3.example.com or http://127.0.0.1:9000";
	if (strpbrk(endpoint, "?#@") != NULL)
		return "an endpoint has no user, query or fragment";
	authority = endpoint + strlen(location->scheme) + 3;
	path = strchr(authority, '/');
	if (path == NULL)
		path = authority + strlen(authority);
	problem = parse_authority(authority, path - authority, location);
	if (problem != NULL)
		return problem;
	path_length = strlen(path);
	while (path_length > 0 && path[path_length - 1] == '/')
		path_length--;
	if (path_length > S3_LOCATION_PATH_MAX)
		return "an endpoint's path has at most 512 characters";
	if (strspn(path, LOWER_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZ-._~/") < path_length ||
		has_double_slash(path, path_length))
		return "an endpoint's path has only letters, digits, \"-._~\" and single slashes";
	snprintf(location->base_path, sizeof(location->base_path), "%.*s/%s",
			 (int) path_length, path, location->bucket);
	location->path_style = true;
	return NULL;
}

/* Check an endpoint: "" (AWS) or http[s]://host[:port][/path]. */
const char *
s3_location_check_endpoint(const char *endpoint)
{
	S3Location	scratch;

	memset(&scratch, 0, sizeof(scratch));
	return endpoint[0] == '\0' ? NULL : parse_endpoint(endpoint, &scratch);
}

/* AWS itself: virtual-hosted, or path-style for bucket names with dots. */
static const char *
aws_endpoint(S3Location *location)
{
	const char *domain = starts_with(location->region, "cn-") ? "amazonaws.com.cn" :
		"amazonaws.com";

	if (strcmp(location->region, "auto") == 0)
		return "the region \"auto\" is for S3-compatible services: with AWS itself (no endpoint) name the bucket's region";
	strcpy(location->scheme, "https");
	if (strchr(location->bucket, '.') != NULL)
	{
		snprintf(location->host, sizeof(location->host), "s3.%s.%s", location->region, domain);
		snprintf(location->base_path, sizeof(location->base_path), "/%s", location->bucket);
		location->path_style = true;
	}
	else
	{
		snprintf(location->host, sizeof(location->host), "%s.s3.%s.%s", location->bucket,
				 location->region, domain);
		location->base_path[0] = '\0';
		location->path_style = false;
	}
	return NULL;
}

/* Parse and check the three settings together into *location. */
const char *
s3_location_parse(S3Location *location, const char *url, const char *endpoint,
				  const char *region)
{
	const char *problem;

	memset(location, 0, sizeof(*location));
	if (endpoint == NULL)
		endpoint = "";
	if (region == NULL || region[0] == '\0')
		region = S3_LOCATION_DEFAULT_REGION;
	problem = parse_url(url, location->bucket, location->prefix, sizeof(location->prefix));
	if (problem == NULL)
		problem = s3_location_check_region(region);
	if (problem != NULL)
		return problem;
	strcpy(location->region, region);
	return endpoint[0] != '\0' ? parse_endpoint(endpoint, location) : aws_endpoint(location);
}
