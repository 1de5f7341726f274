/*
 * job.c
 *		`vproxy-transcode job`: run one queued job from its spec on stdin
 *		(job-protocol.md): fetch the original, check its size and SHA-256,
 *		validate and probe it, make what the job type asks for, store it under
 *		the output keys and print result_data.  No write to the storage starts
 *		after the lease fence (lease_fence.h), and the job stops there.  A
 *		failure names its error code on the progress channel before the exit.
 *		Whatever happens, the private temp directory is removed before exit.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "transcode/commands.h"
#include "transcode/file_digest.h"
#include "transcode/job_spec.h"
#include "transcode/job_workspace.h"
#include "transcode/lease_fence.h"
#include "transcode/media_json.h"
#include "transcode/process_limits.h"
#include "transcode/sandbox.h"
#include "transcode/split_job.h"

#define JOB_WHY_MAX 512

/*
 * Room for the outputs: a 2 Mbit/s ceiling for the proxy, but never more than
 * a multiple of the original (its header's duration is not to be trusted),
 * plus slack.
 */
#define OUTPUT_BYTES_PER_SECOND (2 * 1000 * 1000 / 8)
#define OUTPUT_PER_ORIGINAL_BYTE 8
#define OUTPUT_SLACK_BYTES (16 * 1024 * 1024)

_Static_assert(MEDIA_WHY_MAX <= JOB_WHY_MAX && STORAGE_WHY_MAX <= JOB_WHY_MAX &&
			   WORKSPACE_WHY_MAX <= JOB_WHY_MAX && JOB_SPEC_WHY_MAX <= JOB_WHY_MAX &&
			   SANDBOX_WHY_MAX <= JOB_WHY_MAX && SPLIT_JOB_WHY_MAX == JOB_WHY_MAX,
			   "why buffers fit");

/* Where in the job a failure happened: what its exit status means there. */
typedef enum JobPart
{
	PART_SETUP,					/* the spec, the temp directory, the storage handle */
	PART_ORIGINAL,				/* fetching and checking the original */
	PART_MEDIA,					/* probe, proxy, thumbnail */
	PART_STORE					/* storing the outputs, deleting a video's objects */
} JobPart;

/* One stage of the job and its share of the progress bar. */
typedef struct Stage
{
	const char *name;
	double		start;
	double		span;
} Stage;

typedef struct JobRun
{
	JobSpec		spec;
	Storage    *storage;
	Workspace	workspace;
	int			original_fd;	/* the original in place, or -1 */
	char		input[PATH_MAX];	/* the original, in place or downloaded */
	char		sha256[SHA256_HEX_LEN + 1];
	MediaInfo	original;
	MediaInfo	proxy;
	ThumbnailInfo thumbnail;
	char		proxy_file[PATH_MAX];	/* made here before it is stored */
	char		thumbnail_file[PATH_MAX];
	char		proxy_sha256[SHA256_HEX_LEN + 1];	/* of what was stored */
	char		thumbnail_sha256[SHA256_HEX_LEN + 1];
	json_t	   *deleted;		/* video_deletion: the keys removed */
	json_t	   *deleted_prefixes;	/* and the temporary prefixes emptied */
	json_t	   *result;			/* a split proxy's plan or unit: its result */
	Stage		stage;
	const char *error_code;		/* of the failure, once known */
	char		why[JOB_WHY_MAX];
} JobRun;

/* Enter a stage covering [start, start + span) of the whole job. */
static void
enter_stage(JobRun *run, const char *name, double start, double span)
{
	run->stage.name = name;
	run->stage.start = start;
	run->stage.span = span;
	transcode_progress_report(start, name);
}

/* Media progress hook: a fraction of the current stage. */
static void
media_progress(double fraction, void *arg)
{
	JobRun	   *run = arg;

	transcode_progress_report(run->stage.start + fraction * run->stage.span, run->stage.name);
}

/* Storage progress hook: bytes done of the current stage. */
static void
storage_progress(int64_t done, int64_t total, void *arg)
{
	if (total > 0)
		media_progress((double) done / (double) total, arg);
}

/* Stop hook shared by media and storage: a stop request, or the lease fence passed. */
static bool
job_should_stop(void *arg)
{
	(void) arg;
	return transcode_stop_requested(NULL) || lease_fence_passed();
}

/*
 * Whether the failure's message says that a disk ran out of room (the
 * workspace's own check, or ENOSPC or EDQUOT from a write).
 */
static bool
out_of_space(const JobRun *run)
{
	return strstr(run->why, "out of temp space") != NULL ||
		strstr(run->why, strerror(ENOSPC)) != NULL || strstr(run->why, strerror(EDQUOT)) != NULL;
}

/*
 * Note the error code of a failure with status rc in that part of the job
 * (job-protocol.md, "Error codes"), unless a step named it already; rc.
 */
static int
failed_in(JobRun *run, JobPart part, int rc)
{
	if (rc == 0 || run->error_code != NULL)
		return rc;
	switch (rc)
	{
		case EX_DATAERR:
			run->error_code = part == PART_MEDIA ? "bad_media" : "internal";
			break;
		case EX_NOINPUT:
			run->error_code = part == PART_STORE ? "storage_refused" : "missing_original";
			break;
		case EX_NOPERM:
			run->error_code = part == PART_ORIGINAL || part == PART_STORE ?
				"storage_refused" : "internal";
			break;
		case EX_TEMPFAIL:
			if (part != PART_STORE && out_of_space(run))
				run->error_code = "no_temp_space";
			else if (part == PART_MEDIA)
				run->error_code = strstr(run->why, "out of memory") ? "out_of_memory" : "internal";
			else
				run->error_code = part == PART_SETUP ? "internal" : "storage_unavailable";
			break;
		default:
			run->error_code = "internal";
			break;
	}
	return rc;
}

/*
 * Find the original: in place for the file backend (read through the
 * descriptor the storage checked, so that hash, probe and transcode all see
 * that one file whatever happens to its name meanwhile), else download it
 * (the download reserves its room first).
 */
static int
fetch_original(JobRun *run, const StorageHooks *hooks)
{
	char		name[32];
	int			rc;

	rc = storage_local_open(run->storage, run->spec.original_key, &run->original_fd, run->why);
	if (rc != 0)
		return rc;
	if (run->original_fd >= 0)
	{
		snprintf(run->input, sizeof(run->input), "/proc/self/fd/%d", run->original_fd);
		return 0;
	}
	workspace_original_name(run->spec.original_key, name, sizeof(name));
	if (!workspace_file(&run->workspace, name, run->input, sizeof(run->input)))
	{
		snprintf(run->why, JOB_WHY_MAX, "temp directory path is too long");
		return EX_SOFTWARE;
	}
	return storage_get(run->storage, run->spec.original_key, run->input, hooks, run->why);
}

/* Hash the original and compare size and SHA-256 with the expected ones. */
static int
verify_original(JobRun *run)
{
	int64_t		size;
	int			rc;

	rc = file_sha256(run->input, run->sha256, &size, job_should_stop, run->why, JOB_WHY_MAX);
	if (rc == EX_NOINPUT)
		snprintf(run->why, JOB_WHY_MAX, "original %s does not exist", run->spec.original_key);
	if (rc != 0)
		return rc;
	if (run->spec.original_size >= 0 && size != run->spec.original_size)
	{
		snprintf(run->why, JOB_WHY_MAX, "size mismatch: the original has %lld bytes, expected %lld",
				 (long long) size, (long long) run->spec.original_size);
		run->error_code = "checksum_mismatch";
		return EX_DATAERR;
	}
	if (run->spec.original_sha256 != NULL && strcasecmp(run->sha256, run->spec.original_sha256) != 0)
	{
		snprintf(run->why, JOB_WHY_MAX, "checksum mismatch: the original has SHA-256 %s, expected %s",
				 run->sha256, run->spec.original_sha256);
		run->error_code = "checksum_mismatch";
		return EX_DATAERR;
	}
	return 0;
}

/* Make the proxy in the workspace. */
static int
make_proxy(JobRun *run, const MediaHooks *media_hooks, double start, double span)
{
	enter_stage(run, "proxy", start, span);
	return media_make_proxy(run->input, run->proxy_file, &run->spec.proxy, media_hooks,
							&run->proxy, run->why);
}

/* Make the thumbnail in the workspace. */
static int
make_thumbnail(JobRun *run, const MediaHooks *media_hooks, double start, double span)
{
	enter_stage(run, "thumbnail", start, span);
	return media_make_thumbnail(run->input, run->thumbnail_file, &run->spec.thumbnail,
								media_hooks, &run->thumbnail, run->why);
}

/* The SHA-256 of an output (reported in result_data: what the storage holds). */
static int
output_sha256(JobRun *run, const char *path, char hex[SHA256_HEX_LEN + 1])
{
	int64_t		size;

	return file_sha256(path, hex, &size, job_should_stop, run->why, JOB_WHY_MAX);
}

/*
 * Store what the job made, once all of it is made: a job that fails while
 * making (a reprocess with parameters the video cannot take, say) leaves the
 * stored outputs of the previous run untouched.
 */
static int
store_outputs(JobRun *run, const StorageHooks *storage_hooks, double start, double span)
{
	int			rc;

	enter_stage(run, "store", start, span);
	if (job_makes_proxy(&run->spec) &&
		(rc = output_sha256(run, run->proxy_file, run->proxy_sha256)) != 0)
		return failed_in(run, PART_SETUP, rc);
	if (job_makes_thumbnail(&run->spec) &&
		(rc = output_sha256(run, run->thumbnail_file, run->thumbnail_sha256)) != 0)
		return failed_in(run, PART_SETUP, rc);
	if (job_makes_proxy(&run->spec) &&
		(rc = storage_put(run->storage, run->spec.proxy_key, run->proxy_file, "video/mp4",
						  storage_hooks, run->why)) != 0)
		return failed_in(run, PART_STORE, rc);
	if (job_makes_thumbnail(&run->spec) &&
		(rc = storage_put(run->storage, run->spec.thumbnail_key, run->thumbnail_file,
						  "image/jpeg", storage_hooks, run->why)) != 0)
		return failed_in(run, PART_STORE, rc);
	return 0;
}

/* What a split proxy's plan or unit borrows of the run. */
static SplitJob
split_job_of(JobRun *run, const MediaHooks *media_hooks, const StorageHooks *storage_hooks)
{
	return (SplitJob)
	{
		&run->spec, run->storage, &run->workspace, media_hooks, storage_hooks, NULL, run->why
	};
}

/*
 * A split proxy's plan or unit failed: the error code it named (the
 * storage's, a checksum mismatch), else the media's by the exit status.
 */
static int
split_failed(JobRun *run, const SplitJob *split, int rc)
{
	if (split->error_code != NULL)
		run->error_code = split->error_code;
	return failed_in(run, PART_MEDIA, rc);
}

/* A unit of a split proxy (split_job.c), in the workspace, with the storage open. */
static int
run_unit(JobRun *run)
{
	MediaHooks	media_hooks = {job_should_stop, media_progress, run};
	StorageHooks storage_hooks = {job_should_stop, storage_progress, run};
	SplitJob	split;
	int			rc;

	if ((rc = storage_open(&run->spec.storage, &run->storage, run->why)) != 0)
		return failed_in(run, PART_SETUP, rc);
	split = split_job_of(run, &media_hooks, &storage_hooks);
	enter_stage(run, json_string_value(json_object_get(run->spec.unit, "unit")), 0.0, 1.0);
	if ((rc = split_job_unit(&split, &run->result)) != 0)
		return split_failed(run, &split, rc);
	transcode_progress_report(1.0, "done");
	return 0;
}

/* The job's steps, in order; progress shares depend on what the job does. */
static int
run_steps(JobRun *run)
{
	MediaHooks	media_hooks = {job_should_stop, media_progress, run};
	StorageHooks storage_hooks = {job_should_stop, storage_progress, run};
	double		proxy_span = job_makes_proxy(&run->spec) ? 0.8 : 0.0;
	double		thumbnail_span = job_makes_thumbnail(&run->spec) ? 0.05 : 0.0;
	double		store_span = proxy_span > 0 ? 0.05 : thumbnail_span > 0 ? 0.01 : 0.0;
	double		fetch_span = 1.0 - proxy_span - thumbnail_span - store_span;
	int64_t		output_bytes;
	int			rc;

	if ((rc = storage_open(&run->spec.storage, &run->storage, run->why)) != 0)
		return failed_in(run, PART_SETUP, rc);
	if (!workspace_file(&run->workspace, "proxy.mp4", run->proxy_file, sizeof(run->proxy_file)) ||
		!workspace_file(&run->workspace, "thumbnail.jpg", run->thumbnail_file,
						sizeof(run->thumbnail_file)))
	{
		snprintf(run->why, JOB_WHY_MAX, "temp directory path is too long");
		return failed_in(run, PART_SETUP, EX_SOFTWARE);
	}
	/*
	 * A long video: a plan instead of a proxy, from its index alone
	 * (split_job.c).  An original the plan cannot read goes the single
	 * pass's way, which checks it first: a corrupt or replaced upload fails
	 * as a checksum mismatch, not as bad media.
	 */
	if (job_makes_proxy(&run->spec) && run->spec.split_min_duration_seconds > 0)
	{
		SplitJob	split = split_job_of(run, &media_hooks, &storage_hooks);

		enter_stage(run, "plan", 0.0, 0.0);
		rc = split_job_plan(&split, &run->result);
		if (rc != 0 && job_should_stop(run))
			return split_failed(run, &split, rc);
		if (rc == 0 && run->result != NULL)
			return 0;
		run->why[0] = '\0';
	}
	enter_stage(run, "fetch", 0.0, fetch_span * 0.8);
	if ((rc = fetch_original(run, &storage_hooks)) != 0)
		return failed_in(run, PART_ORIGINAL, rc);
	enter_stage(run, "verify", fetch_span * 0.8, fetch_span * 0.2);
	if ((rc = verify_original(run)) != 0)
		return failed_in(run, PART_ORIGINAL, rc);
	if ((rc = media_probe(run->input, &media_hooks, &run->original, run->why)) != 0)
		return failed_in(run, PART_MEDIA, rc);
	output_bytes = (int64_t) fmin(run->original.duration_seconds * OUTPUT_BYTES_PER_SECOND,
								  (double) run->original.file_size_bytes * OUTPUT_PER_ORIGINAL_BYTE) +
		OUTPUT_SLACK_BYTES;
	if (job_makes_proxy(&run->spec) &&
		(rc = workspace_require_space(&run->workspace, output_bytes, run->why)) != 0)
		return failed_in(run, PART_SETUP, rc);
	if (job_makes_proxy(&run->spec) &&
		(rc = make_proxy(run, &media_hooks, fetch_span, proxy_span)) != 0)
		return failed_in(run, PART_MEDIA, rc);
	if (job_makes_thumbnail(&run->spec) &&
		(rc = make_thumbnail(run, &media_hooks, fetch_span + proxy_span, thumbnail_span)) != 0)
		return failed_in(run, PART_MEDIA, rc);
	if ((rc = store_outputs(run, &storage_hooks, 1.0 - store_span, store_span)) != 0)
		return rc;
	transcode_progress_report(1.0, "done");
	return 0;
}

/* Remove one object of a deleted video (gone already is fine) and list its key. */
static int
delete_object(JobRun *run, const char *key, json_t *deleted)
{
	int			rc;

	/* a key the claim skipped (the rules refuse it) is not in the spec */
	if (key == NULL)
		return 0;
	rc = storage_delete(run->storage, key, run->why);
	if (rc == 0)
		json_array_append_new(deleted, json_string(key));
	return failed_in(run, PART_STORE, rc);
}

/*
 * video_deletion: remove the original, the proxy, the thumbnail and any
 * stale output, in that order.  Idempotent: an object already gone counts
 * as removed, so a retried attempt finishes what an earlier one began.
 */
static int
run_deletion(JobRun *run)
{
	json_t	   *key;
	size_t		i;
	size_t		total = 3 + json_array_size(run->spec.stale_keys);
	int			rc;

	run->deleted = json_array();
	run->deleted_prefixes = json_array();
	if (run->deleted == NULL || run->deleted_prefixes == NULL)
	{
		snprintf(run->why, JOB_WHY_MAX, "out of memory");
		return failed_in(run, PART_SETUP, EX_SOFTWARE);
	}
	if ((rc = storage_open(&run->spec.storage, &run->storage, run->why)) != 0)
		return failed_in(run, PART_SETUP, rc);
	transcode_progress_report(0.0, "delete");
	if ((rc = delete_object(run, run->spec.original_key, run->deleted)) != 0)
		return rc;
	transcode_progress_report(1.0 / total, "delete");
	if ((rc = delete_object(run, run->spec.proxy_key, run->deleted)) != 0)
		return rc;
	transcode_progress_report(2.0 / total, "delete");
	if ((rc = delete_object(run, run->spec.thumbnail_key, run->deleted)) != 0)
		return rc;
	json_array_foreach(run->spec.stale_keys, i, key)
	{
		transcode_progress_report((3.0 + i) / total, "delete");
		if ((rc = delete_object(run, json_string_value(key), run->deleted)) != 0)
			return rc;
	}
	/* what split proxies of the video left under their temporary prefixes */
	json_array_foreach(run->spec.stale_prefixes, i, key)
	{
		StorageHooks hooks = {job_should_stop, NULL, run};
		int64_t		removed;

		if ((rc = storage_delete_prefix(run->storage, json_string_value(key), &hooks, &removed,
										run->why)) != 0)
			return rc;
		json_array_append(run->deleted_prefixes, key);
	}
	transcode_progress_report(1.0, "done");
	return 0;
}

/* result_data (DESIGN.md at the top of the tree) for what the job made. */
static json_t *
build_result(const JobRun *run)
{
	json_t	   *result = json_object();
	json_t	   *metadata = json_object();

	if (result == NULL || metadata == NULL)
	{
		json_decref(result);
		json_decref(metadata);
		return NULL;
	}
	json_object_set_new(result, "status", json_string("success"));
	if (job_deletes_video(&run->spec))
	{
		json_decref(metadata);
		json_object_set(result, "deleted_keys", run->deleted);
		if (run->spec.stale_prefixes != NULL)
			json_object_set(result, "deleted_prefixes", run->deleted_prefixes);
		return result;
	}
	if (job_makes_proxy(&run->spec))
		json_object_set_new(result, "proxy_path", json_string(run->spec.proxy_key));
	if (job_makes_thumbnail(&run->spec))
		json_object_set_new(result, "thumbnail_path", json_string(run->spec.thumbnail_key));
	json_object_set_new(result, "original_sha256", json_string(run->sha256));
	json_object_set_new(metadata, "original", media_info_json(&run->original));
	if (job_makes_proxy(&run->spec))
	{
		json_t	   *proxy = media_info_json(&run->proxy);

		json_object_set_new(proxy, "sha256", json_string(run->proxy_sha256));
		json_object_set_new(metadata, "proxy", proxy);
	}
	if (job_makes_thumbnail(&run->spec))
	{
		json_t	   *thumbnail = thumbnail_info_json(&run->thumbnail);

		json_object_set_new(thumbnail, "sha256", json_string(run->thumbnail_sha256));
		json_object_set_new(metadata, "thumbnail", thumbnail);
	}
	json_object_set_new(result, "metadata", metadata);
	return result;
}

/* Take the one option of job: --progress-fd. */
static const char *
take_job_option(int code, const char *value, void *arg)
{
	(void) code;
	(void) arg;
	return transcode_progress_open(value) ? NULL : "not an open file descriptor";
}

/*
 * Run the job once its spec is read: bound the process, guard the storage's
 * writes with the fence, make the workspace, confine the process to it and
 * the storage, follow the lease lines, then do the work.
 */
static int
run_job(JobRun *run)
{
	const char *workspace[] = {run->workspace.path, NULL};
	SandboxRules rules = {NULL, NULL, NULL, &run->spec.storage};
	int			rc;

	/* before anything else runs: the database comes first */
	process_limits_apply(&run->spec.limits);
	lease_fence_set(run->spec.lease_until_ms);
	storage_set_write_gate(lease_fence_gate);
	/* outside the sandbox, which allows the workspace and nothing around it */
	if (!job_deletes_video(&run->spec))
	{
		if ((rc = workspace_create(run->spec.temp_directory, &run->workspace, run->why)) != 0)
			return failed_in(run, PART_SETUP, rc);
		rules.write = workspace;
	}
	/* before the first thread, before the upload is read */
	if ((rc = sandbox_apply(&rules, run->why)) != 0)
		return failed_in(run, PART_SETUP, rc);
	if (!lease_fence_follow(STDIN_FILENO))
	{
		snprintf(run->why, JOB_WHY_MAX, "cannot start the thread that reads the lease: %s",
				 strerror(errno));
		return failed_in(run, PART_SETUP, EX_SOFTWARE);
	}
	return job_deletes_video(&run->spec) ? run_deletion(run) :
		run->spec.type == JOB_PROXY_SEGMENT ? run_unit(run) : run_steps(run);
}

/*
 * The end of a failed run: a stop request or the lease fence take over the
 * message (a signal's stop names no code: the supervisor knows why it
 * stopped the job); the code goes to the progress channel.  The status.
 */
static int
end_failure(JobRun *run, int rc)
{
	char		cause[JOB_WHY_MAX];

	if (transcode_stop_requested(NULL))
	{
		snprintf(run->why, JOB_WHY_MAX, "stopped by signal %d", transcode_stop_signal());
		return transcode_fail(EX_TEMPFAIL, "%s", run->why);
	}
	if (lease_fence_passed())
	{
		/* the gate's refusal says it already; a stopped step says why it stopped */
		if (strstr(run->why, "lease fence") == NULL)
		{
			memcpy(cause, run->why, sizeof(cause));
			snprintf(run->why, JOB_WHY_MAX, "the lease fence passed %lld ms ago: stopped, nothing "
					 "more is written (%.400s)", (long long) lease_fence_passed_ms(), cause);
		}
		rc = EX_TEMPFAIL;
		run->error_code = "storage_unavailable";
	}
	else if ((rc == EX_DATAERR || rc == EX_SOFTWARE || rc == EX_TEMPFAIL) && media_memory_exhausted())
		run->error_code = "out_of_memory";	/* transcode_fail says so, with 75 */
	transcode_progress_error(run->error_code ? run->error_code : "internal");
	return transcode_fail(rc, "%s", run->why);
}

/* vproxy-transcode job [--progress-fd N]: spec on stdin, result_data on stdout. */
int
cmd_job(int argc, char **argv)
{
	static const struct option options[] = {
		{"progress-fd", required_argument, NULL, 1},
		{NULL, 0, NULL, 0}
	};
	JobRun	   *run;
	int			rc;
	int			first;

	if ((rc = transcode_parse_options(argc, argv, options, take_job_option, NULL, 0,
									  "usage: vproxy-transcode job [--progress-fd N] < spec.json",
									  &first)) != 0)
		return rc;
	run = calloc(1, sizeof(JobRun));
	if (run == NULL)
		return transcode_fail(EX_SOFTWARE, "out of memory");
	run->original_fd = -1;
	rc = failed_in(run, PART_SETUP, job_spec_read(STDIN_FILENO, &run->spec, run->why));
	if (rc == 0)
		rc = run_job(run);
	workspace_remove(&run->workspace);
	if (run->original_fd >= 0)
		close(run->original_fd);
	if (run->storage != NULL)
		storage_close(run->storage);
	if (rc == 0 && !transcode_stop_requested(NULL))
		rc = transcode_print_json(run->result != NULL ? json_incref(run->result) : build_result(run));
	else
		rc = end_failure(run, rc);
	json_decref(run->result);
	json_decref(run->deleted);
	json_decref(run->deleted_prefixes);
	job_spec_free(&run->spec);
	free(run);
	return rc;
}
