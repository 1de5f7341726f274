/*
 * job_spec.h
 *		What a supervisor writes on the stdin of `vproxy-transcode job`
 *		(job-protocol.md): line 1 the job spec as claim_job made it, line 2
 *		the worker's local part (credentials, temp directory, limits); read,
 *		parsed and checked.
 */
#ifndef VPROXY_TRANSCODE_JOB_SPEC_H
#define VPROXY_TRANSCODE_JOB_SPEC_H

#include <jansson.h>

#include "media/media.h"
#include "storage/storage.h"
#include "common/child_limits.h"

#define JOB_SPEC_WHY_MAX 512

typedef enum JobType
{
	JOB_PROXY_GENERATION,
	JOB_METADATA_EXTRACTION,
	JOB_THUMBNAIL_GENERATION,
	JOB_VIDEO_DELETION
} JobType;

typedef struct JobSpec
{
	json_t	   *root;			/* line 1; owns its strings below */
	json_t	   *local;			/* line 2; owns the credentials and the temp directory */
	JobType		type;
	StorageConfig storage;
	const char *original_key;	/* NULL only for a deletion that skips it */
	int64_t		original_size;	/* -1 when unknown */
	const char *original_sha256;	/* NULL when unknown */
	const char *proxy_key;		/* NULL unless the job type makes (or deletes) a proxy */
	const char *thumbnail_key;	/* NULL unless it makes (or deletes) a thumbnail */
	json_t	   *stale_keys;		/* video_deletion: other keys to remove (array) */
	double		split_min_duration_seconds; /* "split" of a proxy job; 0: never split */
	double		segment_duration_seconds;
	ProxyOptions proxy;
	ThumbnailOptions thumbnail;
	const char *temp_directory; /* "" = $TMPDIR or /tmp */
	ChildLimits limits;		/* "limits"; absent: child_limits_defaults */
	int64_t		lease_until_ms; /* CLOCK_MONOTONIC end of the lease; 0: none given */
} JobSpec;

/*
 * Read the spec (line 1) and the local part (line 2) from fd, leaving what
 * follows unread, then parse and check them; 0, or EX_USAGE (EX_SOFTWARE
 * when out of memory) with the reason in why.
 */
extern int	job_spec_read(int fd, JobSpec *spec, char *why);

/* Parse and check the two lines; 0 or EX_USAGE with the reason in why. */
extern int	job_spec_parse(const char *spec_text, const char *local_text, JobSpec *spec, char *why);

/*
 * Read one line from fd, byte by byte so that nothing after it is taken
 * from the pipe; without its newline, malloc'd.  0, or EX_USAGE (the end of
 * the input, a line too long) or EX_SOFTWARE with the reason naming what.
 */
extern int	job_spec_read_line(int fd, const char *what, char **line, char *why);
extern void job_spec_free(JobSpec *spec);

extern bool job_makes_proxy(const JobSpec *spec);
extern bool job_makes_thumbnail(const JobSpec *spec);
extern bool job_deletes_video(const JobSpec *spec);

#endif							/* VPROXY_TRANSCODE_JOB_SPEC_H */
