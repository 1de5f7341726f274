/*
 * media.c
 *		The proxy and the thumbnail on a job's page, under links valid for an
 *		hour, made when the job's view is refreshed.
 *
 *		S3 storage: URLs presigned by the one SigV4 presigner of src/common
 *		(OpenSSL's hashes: src/storage/openssl_hashes.c) with the dashboard's
 *		own credentials (AWS_ACCESS_KEY_ID,
 *		AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN of its environment, as
 *		vproxy-worker takes them; read-only ones will do), never the
 *		database's.  The page's Content-Security-Policy lets images and
 *		media come from that S3 origin too.
 *
 *		file:// storage: the dashboard serves the object itself, at
 *		/media?key=…&expires=…&signature=…: the link is signed with a key this
 *		process draws at start (HMAC-SHA256 of key and expiry), so the page
 *		can only show the objects the database named.  The key must pass the
 *		one key rule of src/common/storage_key.h, and the file is opened below
 *		the storage directory with openat2(RESOLVE_BENEATH |
 *		RESOLVE_NO_SYMLINKS): no "..", no absolute path, no symbolic link
 *		leads out of it.  Range requests are answered (a <video> seeks with
 *		them).
 *
 *		The storage settings (vproxy.storage_url, s3_endpoint, s3_region) are
 *		the database's, read at start and with every job's view.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "common/percent_encode.h"
#include "common/s3_location.h"
#include "common/sigv4_presign.h"
#include "common/storage_key.h"
#include "dashboard/dashboard.h"
#include "storage/openssl_hashes.h"

/* how long a media link works */
#define LINK_SECONDS 3600

static unsigned char link_key[32];
static SigV4Credentials credentials;	/* from the environment; NULL members when unset */

/* the storage the links point into, as last read from the database */
static pthread_mutex_t storage_lock = PTHREAD_MUTEX_INITIALIZER;
static char storage_root[4096];	/* file://: the directory; else "" */
static S3Location s3;			/* s3://: where the objects are ... */
static const char *s3_problem;	/* ... or why not (NULL when s3 is valid) */
static char s3_origin[S3_ORIGIN_MAX];	/* "scheme://host", or "" */

/* An environment variable, or NULL when unset or empty. */
static const char *
env_value(const char *name)
{
	const char *value = getenv(name);

	return value != NULL && value[0] != '\0' ? value : NULL;
}

/* Draw the key that signs the file links; take the S3 credentials of the environment. */
void
media_init(void)
{
	if (getrandom(link_key, sizeof(link_key), 0) != (ssize_t) sizeof(link_key))
	{
		logfmt_event("error", "no_randomness", "error=\"getrandom failed\"");
		exit(1);
	}
	credentials.access_key_id = env_value("AWS_ACCESS_KEY_ID");
	credentials.secret_access_key = env_value("AWS_SECRET_ACCESS_KEY");
	credentials.session_token = env_value("AWS_SESSION_TOKEN");
}

/* Take the database's storage settings (NULL: unknown). */
void
media_storage(const char *url, const char *endpoint, const char *region)
{
	pthread_mutex_lock(&storage_lock);
	storage_root[0] = '\0';
	s3_origin[0] = '\0';
	s3_problem = "the storage is not S3";
	if (url != NULL && strncmp(url, "file:///", 8) == 0)
		snprintf(storage_root, sizeof(storage_root), "%s", url + strlen("file://"));
	else if (url != NULL && strncmp(url, "s3://", 5) == 0 &&
			 (s3_problem = s3_location_parse(&s3, url, endpoint, region)) == NULL)
		snprintf(s3_origin, sizeof(s3_origin), "%s://%s", s3.scheme, s3.host);
	pthread_mutex_unlock(&storage_lock);
}

/* The S3 origin the page's media may come from, or "" (into buffer). */
const char *
media_origin(char *buffer, size_t size)
{
	pthread_mutex_lock(&storage_lock);
	snprintf(buffer, size, "%s", s3_origin);
	pthread_mutex_unlock(&storage_lock);
	return buffer;
}

/* The hex HMAC-SHA256 of "key\nexpires" under the link key. */
static void
sign(const char *key, const char *expires, char hex[65])
{
	unsigned char mac[32];
	unsigned int mac_len = sizeof(mac);
	char	   *message;
	int			len = asprintf(&message, "%s\n%s", key, expires);

	hex[0] = '\0';
	if (len < 0)
		return;
	HMAC(EVP_sha256(), link_key, sizeof(link_key), (unsigned char *) message, (size_t) len, mac, &mac_len);
	free(message);
	for (unsigned int i = 0; i < mac_len; i++)
		sprintf(hex + 2 * i, "%02x", mac[i]);
}

/* A signed /media link of a file:// key, or NULL. */
static json_t *
file_link(const char *key)
{
	char		expires[32];
	char		signature[65];
	char	   *encoded = malloc(percent_encoded_length(key, true) + 1);
	char	   *url = NULL;
	json_t	   *value = NULL;

	if (encoded == NULL)
		return NULL;
	percent_encode(encoded, key, true);
	snprintf(expires, sizeof(expires), "%lld", (long long) (time(NULL) + LINK_SECONDS));
	sign(key, expires, signature);
	if (asprintf(&url, "/media?key=%s&expires=%s&signature=%s", encoded, expires, signature) >= 0)
		value = json_string(url);
	free(url);
	free(encoded);
	return value;
}

/* A presigned GET URL of an S3 key (under the storage's prefix), or NULL. */
static json_t *
s3_link(const S3Location *location, const char *key)
{
	SigV4PresignRequest request = {"GET", key, time(NULL), LINK_SECONDS};
	size_t		size = sigv4_presign_size(location, &credentials, &request);
	char	   *url = malloc(size);
	json_t	   *value = NULL;
	const char *problem;

	if (url == NULL)
		return NULL;
	problem = sigv4_presign_url(url, size, location, &credentials, &openssl_sigv4_hashes, &request);
	if (problem == NULL)
		value = json_string(url);
	else
		logfmt_event("warning", "presign_failed", "error=\"%s\"", problem);
	free(url);
	return value;
}

/*
 * The job view's document with "media": {"proxy", "thumbnail", "note"} put
 * first: links to the keys the database gave (NULL: none yet), or null with
 * a note saying why there are none.  job_json is the object the job query
 * made.  malloc'd.
 */
char *
media_splice_urls(const char *job_json, const char *proxy_key, const char *thumbnail_key)
{
	const char *keys[2] = {proxy_key, thumbnail_key};
	const char *names[2] = {"proxy", "thumbnail"};
	json_t	   *media = json_object();
	const char *note = NULL;
	char	   *media_text;
	char	   *text = NULL;
	S3Location	location;
	bool		file;

	pthread_mutex_lock(&storage_lock);
	file = storage_root[0] != '\0';
	location = s3;
	if (!file && s3_problem != NULL)
		note = "this dashboard cannot show media of this storage: its URL is neither file:// nor a valid s3:// location";
	else if (!file && (credentials.access_key_id == NULL || credentials.secret_access_key == NULL))
		note = "the dashboard signs S3 media with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY of its environment: none are set";
	pthread_mutex_unlock(&storage_lock);
	for (int i = 0; i < 2; i++)
	{
		json_t	   *link = NULL;

		if (note == NULL && keys[i] != NULL && storage_key_problem(keys[i]) == NULL)
			link = file ? file_link(keys[i]) : s3_link(&location, keys[i]);
		json_object_set_new(media, names[i], link ? link : json_null());
	}
	json_object_set_new(media, "note", note ? json_string(note) : json_null());
	media_text = json_dumps(media, JSON_COMPACT);
	json_decref(media);
	/* job_json is an object: {"media":…, then its own members */
	if (media_text == NULL || job_json[0] != '{' ||
		asprintf(&text, "{\"media\":%s,%s", media_text, job_json + 1) < 0)
		text = strdup(job_json);
	free(media_text);
	return text;
}

/* The Content-Type of an object from its key's extension. */
static const char *
media_type(const char *key)
{
	const char *dot = strrchr(key, '.');

	if (dot == NULL)
		return "application/octet-stream";
	if (strcasecmp(dot, ".mp4") == 0)
		return "video/mp4";
	if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0)
		return "image/jpeg";
	return "application/octet-stream";
}

/*
 * Parse a single "bytes=" range against the size: true with [*first, *last]
 * when it is one satisfiable range; *ignore when the header is absent or
 * not one we answer (several ranges: the whole object is sent).
 */
static bool
parse_range(const char *header, uint64_t size, uint64_t *first, uint64_t *last, bool *ignore)
{
	const char *spec;
	char	   *end;
	unsigned long long a;
	unsigned long long b;

	*ignore = header == NULL || strncmp(header, "bytes=", 6) != 0 || strchr(header, ',') != NULL;
	if (*ignore)
		return false;
	spec = header + 6;
	if (*spec == '-')
	{
		/* the last N bytes */
		b = strtoull(spec + 1, &end, 10);
		if (end == spec + 1 || *end != '\0' || b == 0 || size == 0)
			return false;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return true;
	}
	a = strtoull(spec, &end, 10);
	if (end == spec || *end != '-')
		return false;
	spec = end + 1;
	if (*spec == '\0')
		b = size - 1;
	else
	{
		b = strtoull(spec, &end, 10);
		if (*end != '\0' || b < a)
			return false;
		if (b >= size)
			b = size - 1;
	}
	if (a >= size)
		return false;
	*first = a;
	*last = b;
	return true;
}

/* Open key's object below root, never leaving it; -1 with errno set. */
static int
open_beneath(const char *root, const char *key)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	int			dir = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int			fd;
	int			error;

	if (dir < 0)
		return -1;
	fd = (int) syscall(SYS_openat2, dir, key, &how, sizeof(how));
	error = errno;
	close(dir);
	errno = error;
	return fd;
}

/* Answer /media?key=…&expires=…&signature=…: the object, or a part of it. */
enum MHD_Result
media_serve(struct MHD_Connection *connection)
{
	const char *key = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "key");
	const char *expires = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "expires");
	const char *signature = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "signature");
	const char *range = MHD_lookup_connection_value(connection, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
	char		expected[65];
	char		root[sizeof(storage_root)];
	struct stat st;
	struct MHD_Response *response;
	uint64_t	first = 0;
	uint64_t	last = 0;
	bool		ignore;
	bool		partial;
	enum MHD_Result ret;
	int			fd;

	if (key == NULL || expires == NULL || signature == NULL || strlen(signature) != 64 ||
		storage_key_problem(key) != NULL)
		return http_send(connection, MHD_HTTP_FORBIDDEN, "text/plain; charset=utf-8", "bad media link\n");
	sign(key, expires, expected);
	if (CRYPTO_memcmp(expected, signature, 64) != 0)
		return http_send(connection, MHD_HTTP_FORBIDDEN, "text/plain; charset=utf-8", "bad media link\n");
	if (atoll(expires) < (long long) time(NULL))
		return http_send(connection, MHD_HTTP_FORBIDDEN, "text/plain; charset=utf-8",
						 "media link expired: reload the job's page\n");
	pthread_mutex_lock(&storage_lock);
	memcpy(root, storage_root, sizeof(root));
	pthread_mutex_unlock(&storage_lock);
	fd = root[0] ? open_beneath(root, key) : -1;
	if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		if (fd >= 0)
			close(fd);
		return http_send(connection, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
						 "no such object in the storage directory\n");
	}
	partial = parse_range(range, (uint64_t) st.st_size, &first, &last, &ignore);
	if (!partial && !ignore)
	{
		char		unsatisfied[64];

		close(fd);
		response = http_text_response("text/plain; charset=utf-8", "range not satisfiable\n");
		snprintf(unsatisfied, sizeof(unsatisfied), "bytes */%lld", (long long) st.st_size);
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_RANGE, unsatisfied);
		ret = MHD_queue_response(connection, MHD_HTTP_RANGE_NOT_SATISFIABLE, response);
		MHD_destroy_response(response);
		return ret;
	}
	if (!partial)
	{
		first = 0;
		last = st.st_size > 0 ? (uint64_t) st.st_size - 1 : 0;
	}
	/* the response owns fd from here and closes it */
	response = MHD_create_response_from_fd_at_offset64(st.st_size > 0 ? last - first + 1 : 0,
													   fd, first);
	if (response == NULL)
	{
		close(fd);
		return MHD_NO;
	}
	http_add_headers(response, media_type(key));
	MHD_add_response_header(response, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "private, max-age=3600");
	if (partial)
	{
		char		content_range[96];

		snprintf(content_range, sizeof(content_range), "bytes %llu-%llu/%lld",
				 (unsigned long long) first, (unsigned long long) last, (long long) st.st_size);
		MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_RANGE, content_range);
	}
	ret = MHD_queue_response(connection, partial ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, response);
	MHD_destroy_response(response);
	return ret;
}
