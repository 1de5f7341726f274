/*
 * job_spec.c
 *		Read, parse and check what `vproxy-transcode job` reads on stdin: the
 *		job spec (line 1) and the worker's local part (line 2).
 *
 * Everything a supervisor can get wrong is refused here with EX_USAGE and a
 * reason naming the field, before any download or decode starts.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/storage_key.h"
#include "transcode/commands.h"
#include "transcode/job_spec.h"

/* the longest line of the input */
#define LINE_MAX_BYTES (1024 * 1024)

typedef struct JobTypeName
{
	const char *name;
	JobType		type;
} JobTypeName;

static const JobTypeName job_types[] = {
	{"proxy_generation", JOB_PROXY_GENERATION},
	{"metadata_extraction", JOB_METADATA_EXTRACTION},
	{"thumbnail_generation", JOB_THUMBNAIL_GENERATION},
	{"video_deletion", JOB_VIDEO_DELETION},
};

/* Format the reason into why and return EX_USAGE. */
static int
refuse(char *why, const char *fmt, const char *field)
{
	snprintf(why, JOB_SPEC_WHY_MAX, fmt, field);
	return EX_USAGE;
}

/* An optional string member: absent or null gives fallback. */
static int
get_string(json_t *object, const char *field, const char *fallback,
		   const char **value, char *why)
{
	json_t	   *member = json_object_get(object, field);

	if (member == NULL || json_is_null(member))
	{
		*value = fallback;
		return 0;
	}
	if (!json_is_string(member) || strlen(json_string_value(member)) != json_string_length(member))
		return refuse(why, "job spec: \"%s\" must be a string", field);
	*value = json_string_value(member);
	return 0;
}

/* A required non-empty string member. */
static int
get_required_string(json_t *object, const char *field, const char **value, char *why)
{
	int			rc = get_string(object, field, NULL, value, why);

	if (rc == 0 && (*value == NULL || **value == '\0'))
		return refuse(why, "job spec: \"%s\" is required", field);
	return rc;
}

/* An optional number member within [min, max]; absent or null keeps *value. */
static int
get_number(json_t *object, const char *field, double min, double max,
		   double *value, char *why)
{
	json_t	   *member = json_object_get(object, field);
	double		number;

	if (member == NULL || json_is_null(member))
		return 0;
	if (!json_is_number(member))
		return refuse(why, "job spec: \"%s\" must be a number", field);
	number = json_number_value(member);
	if (!isfinite(number) || number < min || number > max)
	{
		snprintf(why, JOB_SPEC_WHY_MAX, "job spec: \"%s\" must be between %g and %g",
				 field, min, max);
		return EX_USAGE;
	}
	*value = number;
	return 0;
}

/* An optional integer member; absent or null keeps *value. */
static int
get_integer(json_t *object, const char *field, int *value, char *why)
{
	double		number = *value;
	int			rc = get_number(object, field, INT_MIN, INT_MAX, &number, why);

	if (rc != 0)
		return rc;
	if (number != floor(number))
		return refuse(why, "job spec: \"%s\" must be an integer", field);
	*value = (int) number;
	return 0;
}

/* An object member; absent or null gives an empty object owned by the root. */
static int
get_object(json_t *root, const char *field, json_t **object, char *why)
{
	json_t	   *member = json_object_get(root, field);

	if (member == NULL || json_is_null(member))
	{
		member = json_object();
		if (member == NULL || json_object_set_new(root, field, member) != 0)
			return refuse(why, "job spec: out of memory at \"%s\"", field);
	}
	if (!json_is_object(member))
		return refuse(why, "job spec: \"%s\" must be an object", field);
	*object = member;
	return 0;
}

/* Whether text is 64 hexadecimal digits. */
static bool
is_sha256_hex(const char *text)
{
	size_t		i;

	for (i = 0; text[i] != '\0'; i++)
		if (!((text[i] >= '0' && text[i] <= '9') ||
			  (text[i] >= 'a' && text[i] <= 'f') ||
			  (text[i] >= 'A' && text[i] <= 'F')))
			return false;
	return i == 64;
}

/*
 * Refuse a storage key that could leave its tree on either backend, or is
 * not what its maker meant (src/common/storage_key.h); an output key (made
 * from a template) also holds no brace, the trace of an unfilled
 * placeholder.  Checked before anything is fetched, made or stored.
 */
static int
check_key(const char *field, const char *key, bool from_template, char *why)
{
	const char *problem = from_template ? storage_key_output_problem(key) : storage_key_problem(key);

	if (problem == NULL)
		return 0;
	snprintf(why, JOB_SPEC_WHY_MAX, "job spec: unsafe key \"%s\" \"%.200s\": it %s", field, key, problem);
	return EX_USAGE;
}

/* An optional key: absent, or a key the rule accepts. */
static int
get_optional_key(json_t *object, const char *field, const char **key, char *why)
{
	int			rc = get_string(object, field, NULL, key, why);

	if (rc == 0 && *key != NULL)
		rc = check_key(field, *key, false, why);
	return rc;
}

/*
 * What a video_deletion removes: the original, the output keys (as the
 * templates name them) and "stale_keys", outputs stored under other keys;
 * each may be absent (the claim skipped a key the rules refuse).  Nothing
 * to read for other job types.
 */
static int
parse_deletion(json_t *root, json_t *original, json_t *outputs, JobSpec *spec, char *why)
{
	json_t	   *stale = json_object_get(root, "stale_keys");
	size_t		i;
	json_t	   *key;
	int			rc;

	if (!job_deletes_video(spec))
		return 0;
	if ((rc = get_optional_key(original, "key", &spec->original_key, why)) != 0 ||
		(rc = get_optional_key(outputs, "proxy_key", &spec->proxy_key, why)) != 0 ||
		(rc = get_optional_key(outputs, "thumbnail_key", &spec->thumbnail_key, why)) != 0)
		return rc;
	if (stale == NULL || json_is_null(stale))
		return 0;
	if (!json_is_array(stale))
		return refuse(why, "job spec: \"%s\" must be an array of keys", "stale_keys");
	json_array_foreach(stale, i, key)
	{
		if (!json_is_string(key) || json_string_length(key) == 0 ||
			strlen(json_string_value(key)) != json_string_length(key))
			return refuse(why, "job spec: \"%s\" must be an array of keys", "stale_keys");
		if ((rc = check_key("stale_keys", json_string_value(key), false, why)) != 0)
			return rc;
	}
	spec->stale_keys = stale;
	return 0;
}

/* The job type and the output keys it needs. */
static int
parse_job_type(json_t *root, json_t *outputs, JobSpec *spec, char *why)
{
	const char *name;
	size_t		i;
	int			rc;

	if ((rc = get_required_string(root, "job_type", &name, why)) != 0)
		return rc;
	for (i = 0; i < sizeof(job_types) / sizeof(job_types[0]); i++)
		if (strcmp(name, job_types[i].name) == 0)
			break;
	if (i == sizeof(job_types) / sizeof(job_types[0]))
	{
		snprintf(why, JOB_SPEC_WHY_MAX, "job spec: unknown job_type \"%.64s\"", name);
		return EX_USAGE;
	}
	spec->type = job_types[i].type;
	if (job_makes_proxy(spec) &&
		((rc = get_required_string(outputs, "proxy_key", &spec->proxy_key, why)) != 0 ||
		 (rc = check_key("proxy_key", spec->proxy_key, true, why)) != 0))
		return rc;
	if (job_makes_thumbnail(spec) &&
		((rc = get_required_string(outputs, "thumbnail_key", &spec->thumbnail_key, why)) != 0 ||
		 (rc = check_key("thumbnail_key", spec->thumbnail_key, true, why)) != 0))
		return rc;
	return 0;
}

/*
 * Storage: where from the spec's "storage", the credentials and the CA
 * bundle from the local part; the storage room checks the URL itself.
 */
static int
parse_storage(json_t *storage, json_t *local, JobSpec *spec, char *why)
{
	StorageConfig *config = &spec->storage;
	json_t	   *credentials;
	int			rc;

	if ((rc = get_object(local, "credentials", &credentials, why)) != 0 ||
		(rc = get_required_string(storage, "url", &config->url, why)) != 0 ||
		(rc = get_string(storage, "s3_endpoint", "", &config->s3_endpoint, why)) != 0 ||
		(rc = get_string(storage, "s3_region", "", &config->s3_region, why)) != 0 ||
		(rc = get_string(credentials, "access_key_id", "", &config->access_key_id, why)) != 0 ||
		(rc = get_string(credentials, "secret_access_key", "", &config->secret_access_key, why)) != 0 ||
		(rc = get_string(credentials, "session_token", "", &config->session_token, why)) != 0 ||
		(rc = get_string(local, "ca_file", "", &config->ca_file, why)) != 0)
		return rc;
	return 0;
}

/* The original's key and, when known, its size and SHA-256 (a deletion reads none). */
static int
parse_original(json_t *original, JobSpec *spec, char *why)
{
	double		size = -1;
	int			rc;

	if (job_deletes_video(spec))
		return 0;
	if ((rc = get_required_string(original, "key", &spec->original_key, why)) != 0 ||
		(rc = check_key("original.key", spec->original_key, false, why)) != 0 ||
		(rc = get_number(original, "size_bytes", 0, 9007199254740992.0, &size, why)) != 0 ||
		(rc = get_string(original, "sha256", NULL, &spec->original_sha256, why)) != 0)
		return rc;
	if (size != floor(size))
		return refuse(why, "job spec: \"%s\" must be an integer", "size_bytes");
	spec->original_size = (int64_t) size;
	if (spec->original_sha256 != NULL && spec->original_sha256[0] == '\0')
		spec->original_sha256 = NULL;
	if (spec->original_sha256 != NULL && !is_sha256_hex(spec->original_sha256))
		return refuse(why, "job spec: \"%s\" must be 64 hexadecimal digits", "sha256");
	return 0;
}

/* Proxy and thumbnail parameters over the documented defaults, checked by the media room. */
static int
parse_params(json_t *params, JobSpec *spec, char *why)
{
	const char *preset;
	int			rc;

	media_proxy_defaults(&spec->proxy);
	media_thumbnail_defaults(&spec->thumbnail);
	if ((rc = get_number(params, "timestamp_seconds", 0, 1e9, &spec->thumbnail.at_seconds, why)) != 0 ||
		(rc = get_integer(params, "thumbnail_width", &spec->thumbnail.width, why)) != 0 ||
		(rc = get_integer(params, "height", &spec->proxy.height, why)) != 0 ||
		(rc = get_number(params, "fps", -INFINITY, INFINITY, &spec->proxy.fps, why)) != 0 ||
		(rc = get_integer(params, "crf", &spec->proxy.crf, why)) != 0 ||
		(rc = get_integer(params, "audio_bitrate", &spec->proxy.audio_bitrate, why)) != 0 ||
		(rc = get_string(params, "preset", NULL, &preset, why)) != 0)
		return rc;
	if (preset != NULL &&
		snprintf(spec->proxy.preset, sizeof(spec->proxy.preset), "%s", preset) >= (int) sizeof(spec->proxy.preset))
		return refuse(why, "job spec: \"%s\" is too long", "preset");
	if ((rc = media_check_proxy_options(&spec->proxy, why)) != 0 ||
		(rc = media_check_thumbnail_options(&spec->thumbnail, why)) != 0)
		return rc;
	return 0;
}

/*
 * The bounds the supervisor sets: {"nice", "threads", "memory_limit_bytes",
 * "yield_to_postmaster", "yield_db_cpu"}, each optional.
 */
static int
parse_limits(json_t *limits, ChildLimits *out, char *why)
{
	double		memory = -1;
	const char *wrong;
	int			rc;

	child_limits_defaults(out);
	if ((rc = get_integer(limits, "nice", &out->nice, why)) != 0 ||
		(rc = get_integer(limits, "threads", &out->threads, why)) != 0 ||
		(rc = get_integer(limits, "yield_to_postmaster", &out->yield_to_postmaster, why)) != 0 ||
		(rc = get_integer(limits, "yield_db_cpu", &out->yield_db_cpu, why)) != 0 ||
		(rc = get_number(limits, "memory_limit_bytes", 0, (double) CHILD_MEMORY_MAX, &memory, why)) != 0)
		return rc;
	if (memory != floor(memory))
		return refuse(why, "job spec: \"%s\" must be an integer", "memory_limit_bytes");
	out->memory_limit_bytes = (int64_t) memory;
	if ((wrong = child_limits_check(out)) != NULL)
		return refuse(why, "job spec: \"limits\": %s", wrong);
	return 0;
}

/* How a proxy job would be split: "split" {"min_duration_seconds", "segment_duration_seconds"}. */
static int
parse_split(json_t *root, JobSpec *spec, char *why)
{
	json_t	   *split;
	int			rc;

	spec->split_min_duration_seconds = 0;
	spec->segment_duration_seconds = 60;
	if ((rc = get_object(root, "split", &split, why)) != 0 ||
		(rc = get_number(split, "min_duration_seconds", 0, 1e9, &spec->split_min_duration_seconds, why)) != 0 ||
		(rc = get_number(split, "segment_duration_seconds", 10, 1e9, &spec->segment_duration_seconds, why)) != 0)
		return rc;
	return 0;
}

/* The end of the lease, a CLOCK_MONOTONIC instant in milliseconds; absent: none. */
static int
parse_lease(json_t *local, JobSpec *spec, char *why)
{
	double		until = 0;
	int			rc = get_number(local, "lease_until_ms", 0, 9007199254740992.0, &until, why);

	if (rc != 0)
		return rc;
	if (until != floor(until))
		return refuse(why, "job spec: \"%s\" must be an integer", "lease_until_ms");
	spec->lease_until_ms = (int64_t) until;
	return 0;
}

/* One line of JSON as an object; EX_USAGE naming it if it is not. */
static int
load_object(const char *text, const char *what, json_t **object, char *why)
{
	json_error_t error;

	*object = json_loads(text, JSON_REJECT_DUPLICATES, &error);
	if (*object == NULL)
	{
		snprintf(why, JOB_SPEC_WHY_MAX, "%s is not JSON: %s at column %d", what, error.text, error.column);
		return EX_USAGE;
	}
	if (!json_is_object(*object))
	{
		snprintf(why, JOB_SPEC_WHY_MAX, "%s must be a JSON object", what);
		return EX_USAGE;
	}
	return 0;
}

/* Parse and check the two lines; 0 or EX_USAGE with the reason in why. */
int
job_spec_parse(const char *spec_text, const char *local_text, JobSpec *spec, char *why)
{
	json_t	   *storage,
			   *original,
			   *outputs,
			   *params,
			   *limits;
	int			rc;

	memset(spec, 0, sizeof(*spec));
	if ((rc = load_object(spec_text, "the job spec (line 1)", &spec->root, why)) != 0 ||
		(rc = load_object(local_text, "the worker's local part (line 2)", &spec->local, why)) != 0)
		return rc;
	if ((rc = get_object(spec->root, "storage", &storage, why)) != 0 ||
		(rc = get_object(spec->root, "original", &original, why)) != 0 ||
		(rc = get_object(spec->root, "outputs", &outputs, why)) != 0 ||
		(rc = get_object(spec->root, "params", &params, why)) != 0 ||
		(rc = get_object(spec->local, "limits", &limits, why)) != 0 ||
		(rc = parse_limits(limits, &spec->limits, why)) != 0 ||
		(rc = parse_lease(spec->local, spec, why)) != 0 ||
		(rc = parse_job_type(spec->root, outputs, spec, why)) != 0 ||
		(rc = parse_deletion(spec->root, original, outputs, spec, why)) != 0 ||
		(rc = parse_storage(storage, spec->local, spec, why)) != 0 ||
		(rc = parse_original(original, spec, why)) != 0 ||
		(rc = parse_params(params, spec, why)) != 0 ||
		(rc = parse_split(spec->root, spec, why)) != 0 ||
		(rc = get_string(spec->local, "temp_directory", "", &spec->temp_directory, why)) != 0)
		return rc;
	return 0;
}

/*
 * Read one line from fd, byte by byte so that nothing after it is taken
 * from the pipe (later lines are the supervisor's lease lines, read by the
 * lease fence's thread with this function too); without its newline,
 * malloc'd.  0, or EX_USAGE / EX_SOFTWARE with the reason.
 */
int
job_spec_read_line(int fd, const char *what, char **line, char *why)
{
	size_t		used = 0;
	size_t		size = 4096;
	char	   *buffer = malloc(size);

	for (;;)
	{
		ssize_t		got;

		if (buffer == NULL)
		{
			snprintf(why, JOB_SPEC_WHY_MAX, "out of memory reading %s", what);
			return EX_SOFTWARE;
		}
		if (used + 1 == size)
		{
			char	   *bigger;

			if (size >= LINE_MAX_BYTES)
			{
				snprintf(why, JOB_SPEC_WHY_MAX, "%s is longer than %d bytes", what, LINE_MAX_BYTES);
				free(buffer);
				return EX_USAGE;
			}
			size *= 2;
			bigger = realloc(buffer, size);
			if (bigger == NULL)
				free(buffer);
			buffer = bigger;
			continue;
		}
		got = read(fd, buffer + used, 1);
		if (got < 0 && errno == EINTR && !transcode_stop_requested(NULL))
			continue;
		if (got < 0)
		{
			snprintf(why, JOB_SPEC_WHY_MAX, "cannot read %s: %s", what, strerror(errno));
			free(buffer);
			return EX_USAGE;
		}
		if (got == 0 || buffer[used] == '\n')
		{
			buffer[used] = '\0';
			if (got == 0)
			{
				snprintf(why, JOB_SPEC_WHY_MAX, "%s is missing or not ended by a newline", what);
				free(buffer);
				return EX_USAGE;
			}
			*line = buffer;
			return 0;
		}
		used++;
	}
}

/* Read, parse and check the two lines; 0 or EX_USAGE with the reason in why. */
int
job_spec_read(int fd, JobSpec *spec, char *why)
{
	char	   *spec_text = NULL;
	char	   *local_text = NULL;
	int			rc;

	memset(spec, 0, sizeof(*spec));
	if ((rc = job_spec_read_line(fd, "the job spec (line 1)", &spec_text, why)) == 0 &&
		(rc = job_spec_read_line(fd, "the worker's local part (line 2)", &local_text, why)) == 0)
		rc = job_spec_parse(spec_text, local_text, spec, why);
	free(spec_text);
	free(local_text);
	return rc;
}

/* Release what job_spec_parse allocated. */
void
job_spec_free(JobSpec *spec)
{
	json_decref(spec->root);
	json_decref(spec->local);
	spec->root = NULL;
	spec->local = NULL;
}

/* Whether the job type makes a proxy. */
bool
job_makes_proxy(const JobSpec *spec)
{
	return spec->type == JOB_PROXY_GENERATION;
}

/* Whether the job removes a video's objects instead of making any. */
bool
job_deletes_video(const JobSpec *spec)
{
	return spec->type == JOB_VIDEO_DELETION;
}

/* Whether the job type makes a thumbnail. */
bool
job_makes_thumbnail(const JobSpec *spec)
{
	return spec->type == JOB_PROXY_GENERATION || spec->type == JOB_THUMBNAIL_GENERATION;
}
