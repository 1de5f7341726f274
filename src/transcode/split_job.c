/*
 * split_job.c
 *		The split proxy's side of `vproxy-transcode job`.
 *
 * A proxy job whose spec allows splitting ("split".min_duration_seconds >
 * 0) first probes the original through ranged reads (its index, no
 * download): a video that lasts longer, and makes more than one segment,
 * gets a plan (media_plan_split) as its result, "status": "split", and
 * the database queues its units (proxy_segment jobs, "unit" in the spec):
 *
 *	video	the segment's frames, reading only what they need of the
 *			original (its index and the bytes from its keyframe on), to
 *			outputs.chunk_key;
 *	audio	the whole video's audio from ranged reads of the original's
 *			audio alone, to outputs.audio_key, and its thumbnail to
 *			outputs.thumbnail_key;
 *	verify	the original's size and SHA-256 checked as a single pass checks
 *			them, streamed from the storage (no copy on disk);
 *	stitch	the chunks and the audio fetched and stitched into the proxy,
 *			stored with the thumbnail under the parent's keys; its result is
 *			the parent's result_data;
 *	cleanup	every object under the run's temporary prefix removed.
 *
 * Every key comes from the spec and is checked by the key rule first.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/storage_key.h"
#include "transcode/file_digest.h"
#include "transcode/media_json.h"
#include "transcode/split_job.h"


/* The original read through ranged reads, standing in for a local path. */
typedef struct RangedOriginal
{
	StorageReader *reader;
	MediaSource source;
	int			failed;			/* the status of a read that failed, 0 */
	char		path[PATH_MAX];
	char		why[STORAGE_WHY_MAX];
} RangedOriginal;

/* The failure of a job, its cause formatted into job->why. */
static int
split_fail(SplitJob *job, int status, const char *fmt,...) __attribute__((format(printf, 3, 4)));

static int
split_fail(SplitJob *job, int status, const char *fmt,...)
{
	va_list		args;

	va_start(args, fmt);
	vsnprintf(job->why, SPLIT_JOB_WHY_MAX, fmt, args);
	va_end(args);
	return status;
}

/* The error code of a storage call that failed with rc (job-protocol.md). */
static const char *
storage_error_code(int rc)
{
	return rc == EX_NOINPUT ? "missing_original" : rc == EX_NOPERM ? "storage_refused" :
		rc == EX_TEMPFAIL ? "storage_unavailable" : "internal";
}

/* A storage call of the job failed with rc: note its error code; rc. */
static int
storage_failed(SplitJob *job, int rc)
{
	if (rc != 0 && job->error_code == NULL)
		job->error_code = storage_error_code(rc);
	return rc;
}

/* MediaSource's read: a ranged read of the original; the count or a negated status. */
static int
read_ranged(void *arg, int64_t offset, uint8_t *buffer, int size)
{
	RangedOriginal *original = arg;
	size_t		got = 0;
	int			rc = storage_reader_read(original->reader, offset, buffer, (size_t) size, &got,
										 original->why);

	if (rc != 0)
	{
		fprintf(stderr, "vproxy-transcode: reading the original: %s\n", original->why);
		original->failed = rc;
		return -rc;
	}
	return (int) got;
}

/* Open the original for ranged reads under a local name media opens through it. */
static int
open_ranged(SplitJob *job, RangedOriginal *original)
{
	const JobSpec *spec = job->spec;
	char		name[32];
	int			rc;

	memset(original, 0, sizeof(*original));
	workspace_original_name(spec->original_key, name, sizeof(name));
	if (!workspace_file(job->workspace, name, original->path, sizeof(original->path)))
		return split_fail(job, EX_SOFTWARE, "temp directory path is too long");
	/* exact reads: media's source fetches blocks that grow as it reads on */
	rc = storage_reader_open(job->storage, spec->original_key, 0, job->storage_hooks,
							 &original->reader, job->why);
	if (rc != 0)
		return storage_failed(job, rc);
	original->source.size = storage_reader_size(original->reader);
	if (spec->original_size >= 0 && original->source.size != spec->original_size)
	{
		job->error_code = "checksum_mismatch";
		return split_fail(job, EX_DATAERR, "size mismatch: the original has %lld bytes, expected %lld",
						  (long long) original->source.size, (long long) spec->original_size);
	}
	original->source.read_at = read_ranged;
	original->source.arg = original;
	media_set_source(original->path, &original->source);
	return 0;
}

/*
 * Stop reading the original; a failure of media after a failed read is the
 * storage's, rc.
 */
static int
close_ranged(SplitJob *job, RangedOriginal *original, int rc)
{
	if (rc != 0 && original->failed != 0)
		storage_failed(job, original->failed);
	media_set_source(NULL, NULL);
	storage_reader_close(original->reader);
	original->reader = NULL;
	return rc;
}

/* A key of the unit's spec: a string the key rule accepts. */
static int
unit_key(SplitJob *job, json_t *object, const char *field, const char **key)
{
	const char *problem;

	*key = json_string_value(json_object_get(object, field));
	if (*key == NULL)
		return split_fail(job, EX_USAGE, "job spec: the unit has no \"%s\"", field);
	problem = storage_key_output_problem(*key);
	if (problem != NULL)
		return split_fail(job, EX_USAGE, "job spec: unsafe key \"%s\" \"%.200s\": it %s", field, *key, problem);
	return 0;
}

/* A whole number of the unit's spec. */
static int
unit_integer(SplitJob *job, json_t *object, const char *field, int64_t *value)
{
	json_t	   *member = json_object_get(object, field);

	if (!json_is_integer(member))
		return split_fail(job, EX_USAGE, "job spec: the unit's \"%s\" must be an integer", field);
	*value = json_integer_value(member);
	return 0;
}

/* A local path in the workspace named like `format`. */
static int
workspace_path(SplitJob *job, char *path, const char *format, int64_t number)
{
	char		name[64];

	snprintf(name, sizeof(name), format, (long long) number);
	if (!workspace_file(job->workspace, name, path, PATH_MAX))
		return split_fail(job, EX_SOFTWARE, "temp directory path is too long");
	return 0;
}

/* Probe the original through ranged reads; plan it when it is long enough. */
int
split_job_plan(SplitJob *job, json_t **result)
{
	const JobSpec *spec = job->spec;
	RangedOriginal original;
	MediaInfo	info;
	SplitPlan	plan;
	int			rc;

	*result = NULL;
	rc = open_ranged(job, &original);
	if (rc == 0)
		rc = media_probe(original.path, job->media_hooks, &info, job->why);
	if (rc == 0 && info.duration_seconds > spec->split_min_duration_seconds)
		rc = media_plan_split(original.path, &spec->proxy, spec->segment_duration_seconds,
							  job->media_hooks, &plan, job->why);
	else
		plan.segments = 0;
	rc = close_ranged(job, &original, rc);
	if (rc != 0 || plan.segments < 2)
		return rc;
	*result = json_pack("{s:s, s:o, s:{s:o}}", "status", "split", "plan", split_plan_json(&plan),
						"metadata", "original", media_info_json(&info));
	return *result != NULL ? 0 : split_fail(job, EX_SOFTWARE, "out of memory");
}

/* video: the segment's frames into a chunk, stored under chunk_key. */
static int
run_video(SplitJob *job, json_t *unit, json_t **result)
{
	const JobSpec *spec = job->spec;
	RangedOriginal original;
	SegmentSpec segment = {0};
	SegmentInfo info;
	StorageReadCounts counts = {0};
	const char *chunk_key;
	char		chunk[PATH_MAX];
	int			rc;

	if ((rc = unit_key(job, json_object_get(spec->root, "outputs"), "chunk_key", &chunk_key)) != 0 ||
		(rc = unit_integer(job, unit, "first_slot", &segment.first_slot)) != 0 ||
		(rc = unit_integer(job, unit, "next_slot", &segment.next_slot)) != 0 ||
		(rc = workspace_path(job, chunk, "segment.chunk", 0)) != 0)
		return rc;
	segment.interlaced = json_is_true(json_object_get(unit, "interlaced"));
	rc = open_ranged(job, &original);
	if (rc == 0)
		rc = media_make_segment(original.path, chunk, &spec->proxy, &segment, job->media_hooks,
								&info, job->why);
	if (original.reader != NULL)
		counts = storage_reader_counts(original.reader);
	rc = close_ranged(job, &original, rc);
	if (rc == 0)
		rc = storage_failed(job, storage_put(job->storage, chunk_key, chunk, "application/octet-stream",
											 job->storage_hooks, job->why));
	if (rc != 0)
		return rc;
	*result = json_pack("{s:s, s:I, s:b, s:f, s:i, s:I, s:I}", "status", "success",
						"frames", (json_int_t) info.frames, "reached_end", info.reached_end,
						"preroll_seconds", info.preroll_seconds, "seeks", info.seeks,
						"bytes_read", (json_int_t) counts.bytes,
						"read_requests", (json_int_t) counts.requests);
	return 0;
}

/* audio: the whole video's audio and the thumbnail, stored under the unit's keys. */
static int
run_audio(SplitJob *job, json_t **result)
{
	const JobSpec *spec = job->spec;
	json_t	   *outputs = json_object_get(spec->root, "outputs");
	RangedOriginal original;
	const char *audio_key;
	const char *thumbnail_key;
	char		audio[PATH_MAX];
	char		thumbnail[PATH_MAX];
	bool		has_audio;
	ThumbnailInfo info;
	int			rc;

	if ((rc = unit_key(job, outputs, "audio_key", &audio_key)) != 0 ||
		(rc = unit_key(job, outputs, "thumbnail_key", &thumbnail_key)) != 0 ||
		(rc = workspace_path(job, audio, "audio.chunk", 0)) != 0 ||
		(rc = workspace_path(job, thumbnail, "thumbnail.jpg", 0)) != 0)
		return rc;
	rc = open_ranged(job, &original);
	if (rc == 0)
		rc = media_make_audio(original.path, audio, &spec->proxy, job->media_hooks, &has_audio, job->why);
	if (rc == 0)
		rc = media_make_thumbnail(original.path, thumbnail, &spec->thumbnail, job->media_hooks, &info,
								  job->why);
	rc = close_ranged(job, &original, rc);
	if (rc != 0)
		return rc;
	if (has_audio &&
		(rc = storage_put(job->storage, audio_key, audio, "application/octet-stream",
						  job->storage_hooks, job->why)) != 0)
		return storage_failed(job, rc);
	rc = storage_put(job->storage, thumbnail_key, thumbnail, "image/jpeg", job->storage_hooks, job->why);
	if (rc != 0)
		return storage_failed(job, rc);
	*result = json_pack("{s:s, s:b, s:o}", "status", "success", "has_audio", has_audio,
						"thumbnail", thumbnail_info_json(&info));
	return 0;
}

/* the verify unit's reads from the storage: few, large ones */
#define VERIFY_READ_BYTES (16 * 1024 * 1024)

/* The original read from start to end, for its digest. */
typedef struct StreamedOriginal
{
	StorageReader *reader;
	int64_t		offset;
} StreamedOriginal;

/* stream_sha256's read of the original: its next bytes. */
static int
read_next(void *arg, unsigned char *buffer, size_t size, size_t *got, char *why)
{
	StreamedOriginal *original = arg;
	int			rc = storage_reader_read(original->reader, original->offset, buffer, size, got, why);

	original->offset += (int64_t) *got;
	return rc;
}

/* verify: the original's size and SHA-256, streamed from the storage. */
static int
run_verify(SplitJob *job, json_t **result)
{
	const JobSpec *spec = job->spec;
	StreamedOriginal original = {NULL, 0};
	char		sha256[SHA256_HEX_LEN + 1];
	int64_t		size = 0;
	int			rc;

	rc = storage_reader_open(job->storage, spec->original_key, VERIFY_READ_BYTES, job->storage_hooks,
							 &original.reader, job->why);
	if (rc == 0)
		rc = stream_sha256(read_next, &original, sha256, &size, job->media_hooks->should_stop,
						   job->why, SPLIT_JOB_WHY_MAX);
	storage_reader_close(original.reader);
	if (rc != 0)
		return storage_failed(job, rc);
	job->error_code = "checksum_mismatch";
	if (spec->original_size >= 0 && size != spec->original_size)
		return split_fail(job, EX_DATAERR, "size mismatch: the original has %lld bytes, expected %lld",
						  (long long) size, (long long) spec->original_size);
	if (spec->original_sha256 != NULL && strcasecmp(sha256, spec->original_sha256) != 0)
		return split_fail(job, EX_DATAERR, "checksum mismatch: the original has SHA-256 %s, expected %s",
						  sha256, spec->original_sha256);
	job->error_code = NULL;
	*result = json_pack("{s:s, s:s}", "status", "success", "original_sha256", sha256);
	return 0;
}

/* Fetch each segment's chunk, in order, into paths[i]. */
static int
fetch_segments(SplitJob *job, json_t *segments, char **paths)
{
	size_t		i;
	json_t	   *segment;
	int			rc;

	json_array_foreach(segments, i, segment)
	{
		const char *key;

		if ((rc = unit_key(job, segment, "chunk_key", &key)) != 0 ||
			(rc = workspace_path(job, paths[i], "segment-%05lld.chunk", (int64_t) i)) != 0)
			return rc;
		/* a chunk gone is no missing original: an internal fault, worth a retry */
		if ((rc = storage_get(job->storage, key, paths[i], job->storage_hooks, job->why)) != 0)
			return storage_failed(job, rc == EX_NOINPUT ? EX_SOFTWARE : rc);
	}
	return 0;
}

/* Store a made file under key and add its SHA-256 to its description. */
static int
store_output(SplitJob *job, const char *path, const char *key, const char *type, json_t *description)
{
	char		sha256[SHA256_HEX_LEN + 1];
	int64_t		size;
	int			rc = file_sha256(path, sha256, &size, job->media_hooks->should_stop, job->why,
								 SPLIT_JOB_WHY_MAX);

	if (rc == 0)
		rc = storage_failed(job, storage_put(job->storage, key, path, type, job->storage_hooks, job->why));
	if (rc == 0)
		json_object_set_new(description, "sha256", json_string(sha256));
	return rc;
}

/* Stitch the fetched chunks and the audio into the proxy; store it and the thumbnail. */
static int
stitch_and_store(SplitJob *job, json_t *unit, char **paths, json_t **result)
{
	json_t	   *outputs = json_object_get(job->spec->root, "outputs");
	json_t	   *audio = json_object_get(unit, "audio");
	json_t	   *original = json_object_get(unit, "original");
	json_t	   *thumbnail_info = json_deep_copy(json_object_get(audio, "thumbnail"));
	const char *sha256 = json_string_value(json_object_get(json_object_get(unit, "verify"),
														   "original_sha256"));
	const char *proxy_key;
	const char *thumbnail_key;
	const char *key;
	char		audio_chunk[PATH_MAX];
	char		proxy[PATH_MAX];
	char		thumbnail[PATH_MAX];
	json_t	   *proxy_info = NULL;
	MediaInfo	info;
	int			rc;

	if (!json_is_object(thumbnail_info) || !json_is_object(original) || sha256 == NULL)
		rc = split_fail(job, EX_USAGE, "job spec: the stitch has no audio or verify unit's result, or no metadata");
	else if ((rc = unit_key(job, outputs, "proxy_key", &proxy_key)) == 0 &&
			 (rc = unit_key(job, outputs, "thumbnail_key", &thumbnail_key)) == 0 &&
			 (rc = workspace_path(job, audio_chunk, "audio.chunk", 0)) == 0 &&
			 (rc = workspace_path(job, proxy, "proxy.mp4", 0)) == 0 &&
			 (rc = workspace_path(job, thumbnail, "thumbnail.jpg", 0)) == 0 &&
			 (rc = unit_key(job, audio, "thumbnail_key", &key)) == 0)
		rc = storage_get(job->storage, key, thumbnail, job->storage_hooks, job->why);
	if (rc == 0 && json_is_true(json_object_get(audio, "has_audio")) &&
		(rc = unit_key(job, audio, "audio_key", &key)) == 0)
		rc = storage_get(job->storage, key, audio_chunk, job->storage_hooks, job->why);
	if (rc != 0)
		rc = storage_failed(job, rc == EX_NOINPUT ? EX_SOFTWARE : rc);
	if (rc == 0)
		rc = media_stitch((const char *const *) paths, (int) json_array_size(json_object_get(unit, "segments")),
						  json_is_true(json_object_get(audio, "has_audio")) ? audio_chunk : NULL,
						  proxy, job->media_hooks, &info, job->why);
	if (rc == 0 && (proxy_info = media_info_json(&info)) == NULL)
		rc = split_fail(job, EX_SOFTWARE, "out of memory");
	if (rc == 0)
		rc = store_output(job, proxy, proxy_key, "video/mp4", proxy_info);
	if (rc == 0)
		rc = store_output(job, thumbnail, thumbnail_key, "image/jpeg", thumbnail_info);
	if (rc == 0)
		*result = json_pack("{s:s, s:s, s:s, s:s, s:{s:O, s:O, s:O}}", "status", "success",
							"proxy_path", proxy_key, "thumbnail_path", thumbnail_key,
							"original_sha256", sha256, "metadata", "original", original,
							"proxy", proxy_info, "thumbnail", thumbnail_info);
	json_decref(proxy_info);
	json_decref(thumbnail_info);
	return rc;
}

/* stitch: the segments' chunks and the audio into the proxy, under the parent's keys. */
static int
run_stitch(SplitJob *job, json_t *unit, json_t **result)
{
	json_t	   *segments = json_object_get(unit, "segments");
	int64_t		count = 0;
	char	   *names = NULL;
	char	  **paths = NULL;
	int			rc;

	if ((rc = unit_integer(job, unit, "count", &count)) != 0)
		return rc;
	if (!json_is_array(segments) || count < 1 || json_array_size(segments) != (size_t) count)
		return split_fail(job, EX_USAGE, "job spec: the stitch lists %zu segments of %lld",
						  json_array_size(segments), (long long) count);
	names = calloc(count, PATH_MAX);
	paths = calloc(count, sizeof(char *));
	if (names == NULL || paths == NULL)
		rc = split_fail(job, EX_SOFTWARE, "out of memory");
	for (int64_t i = 0; rc == 0 && i < count; i++)
		paths[i] = names + i * PATH_MAX;
	if (rc == 0)
		rc = fetch_segments(job, segments, paths);
	if (rc == 0)
		rc = stitch_and_store(job, unit, paths, result);
	free(paths);
	free(names);
	return rc;
}

/* cleanup: remove the run's temporary objects. */
static int
run_cleanup(SplitJob *job, json_t **result)
{
	const char *prefix = json_string_value(json_object_get(json_object_get(job->spec->root, "outputs"), "prefix"));
	size_t		length = prefix != NULL ? strlen(prefix) : 0;
	int64_t		removed = 0;
	int			rc;

	if (length < 2 || prefix[length - 1] != '/')
		return split_fail(job, EX_USAGE, "job spec: the cleanup needs a prefix ending in '/'");
	rc = storage_failed(job, storage_delete_prefix(job->storage, prefix, job->storage_hooks, &removed,
												   job->why));
	if (rc == 0)
		*result = json_pack("{s:s, s:I}", "status", "success", "removed", (json_int_t) removed);
	return rc;
}

/* Run a unit of a split proxy. */
int
split_job_unit(SplitJob *job, json_t **result)
{
	json_t	   *unit = job->spec->unit;
	const char *kind = json_string_value(json_object_get(unit, "unit"));
	int			rc;

	*result = NULL;
	if (kind == NULL)
		return split_fail(job, EX_USAGE, "job spec: the unit has no kind");
	if (strcmp(kind, "video") == 0)
		rc = run_video(job, unit, result);
	else if (strcmp(kind, "audio") == 0)
		rc = run_audio(job, result);
	else if (strcmp(kind, "verify") == 0)
		rc = run_verify(job, result);
	else if (strcmp(kind, "stitch") == 0)
		rc = run_stitch(job, unit, result);
	else if (strcmp(kind, "cleanup") == 0)
		rc = run_cleanup(job, result);
	else
		return split_fail(job, EX_USAGE, "job spec: unknown unit \"%.32s\"", kind);
	if (rc == 0 && *result == NULL)
		rc = split_fail(job, EX_SOFTWARE, "out of memory");
	return rc;
}
