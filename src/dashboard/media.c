/*
 * media.c
 *		The proxy and the thumbnail on a job's page.  With file:// storage
 *		the dashboard serves the object itself, at /media?key=…&expires=…&
 *		signature=…: the link is signed with a key this process draws at
 *		start (HMAC-SHA256 of key and expiry), so the page can only show the
 *		objects the database named, and only for an hour.  The file is
 *		opened below the storage directory with openat2(RESOLVE_BENEATH |
 *		RESOLVE_NO_SYMLINKS): no "..", no absolute path, no symbolic link
 *		leads out of it.  Range requests are answered (a <video> seeks with
 *		them).  S3 storage gets no link: presigning needs the shared
 *		presigner (issue 22's src/common).
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

#include "dashboard/dashboard.h"

/* how long a media link works */
#define LINK_SECONDS 3600

static unsigned char link_key[32];

/* the storage directory the links of the latest job view point into */
static pthread_mutex_t root_lock = PTHREAD_MUTEX_INITIALIZER;
static char storage_root[4096];

/* Draw the key that signs this process's media links. */
void
media_init(void)
{
	if (getrandom(link_key, sizeof(link_key), 0) != (ssize_t) sizeof(link_key))
	{
		dash_log("error", "no_randomness", "error=\"getrandom failed\"");
		exit(1);
	}
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

/* Append text percent-encoded for a query string (RFC 3986 unreserved kept). */
static void
put_encoded(FILE *out, const char *text)
{
	for (const unsigned char *c = (const unsigned char *) text; *c; c++)
	{
		if ((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
			*c == '-' || *c == '_' || *c == '.' || *c == '~' || *c == '/')
			fputc(*c, out);
		else
			fprintf(out, "%%%02X", *c);
	}
}

/* A signed /media link of a key, as a JSON string value (escaped by jansson). */
static json_t *
media_link(const char *key)
{
	char		expires[32];
	char		signature[65];
	char	   *url = NULL;
	size_t		len;
	FILE	   *out;
	json_t	   *value;

	snprintf(expires, sizeof(expires), "%lld", (long long) (time(NULL) + LINK_SECONDS));
	sign(key, expires, signature);
	out = open_memstream(&url, &len);
	if (out == NULL)
		return json_null();
	fputs("/media?key=", out);
	put_encoded(out, key);
	fprintf(out, "&expires=%s&signature=%s", expires, signature);
	fclose(out);
	value = json_string(url);
	free(url);
	return value ? value : json_null();
}

/*
 * The job view's document with "media": {"proxy", "thumbnail", "note"} put
 * first: signed links when the storage is a directory this process can
 * serve, else null with a note saying why.  job_json is the object the job
 * query made; the keys and storage URL come beside it.  malloc'd.
 */
char *
media_splice_urls(const char *job_json, const char *storage_url, const char *proxy_key,
				  const char *thumbnail_key)
{
	json_t	   *media = json_object();
	char	   *media_text;
	char	   *text = NULL;

	if (storage_url != NULL && strncmp(storage_url, "file:///", 8) == 0)
	{
		pthread_mutex_lock(&root_lock);
		snprintf(storage_root, sizeof(storage_root), "%s", storage_url + strlen("file://"));
		pthread_mutex_unlock(&root_lock);
		json_object_set_new(media, "proxy", proxy_key ? media_link(proxy_key) : json_null());
		json_object_set_new(media, "thumbnail", thumbnail_key ? media_link(thumbnail_key) : json_null());
		json_object_set_new(media, "note", json_null());
	}
	else
	{
		json_object_set_new(media, "proxy", json_null());
		json_object_set_new(media, "thumbnail", json_null());
		json_object_set_new(media, "note",
							json_string("this dashboard shows media of file:// storage only"));
	}
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

	if (key == NULL || expires == NULL || signature == NULL || strlen(signature) != 64)
		return http_send(connection, MHD_HTTP_FORBIDDEN, "text/plain; charset=utf-8", "bad media link\n");
	sign(key, expires, expected);
	if (CRYPTO_memcmp(expected, signature, 64) != 0)
		return http_send(connection, MHD_HTTP_FORBIDDEN, "text/plain; charset=utf-8", "bad media link\n");
	if (atoll(expires) < (long long) time(NULL))
		return http_send(connection, MHD_HTTP_FORBIDDEN, "text/plain; charset=utf-8",
						 "media link expired: reload the job's page\n");
	pthread_mutex_lock(&root_lock);
	memcpy(root, storage_root, sizeof(root));
	pthread_mutex_unlock(&root_lock);
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
