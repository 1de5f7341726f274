/*
 * job_spec.h
 *		The job spec a supervisor writes on the stdin of `vproxy-transcode job`
 *		(job-protocol.md), parsed and checked.
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
	json_t	   *root;			/* owns every string below */
	JobType		type;
	StorageConfig storage;
	const char *original_key;
	int64_t		original_size;	/* -1 when unknown */
	const char *original_sha256;	/* NULL when unknown */
	const char *proxy_key;		/* NULL unless the job type makes a proxy */
	const char *thumbnail_key;	/* NULL unless it makes (or deletes) a thumbnail */
	json_t	   *stale_keys;		/* video_deletion: other keys to remove (array) */
	ProxyOptions proxy;
	ThumbnailOptions thumbnail;
	const char *temp_directory; /* "" = $TMPDIR or /tmp */
	ChildLimits limits;		/* "limits"; absent: child_limits_defaults */
} JobSpec;

/* Parse and check a spec; 0 or EX_USAGE with the reason in why. */
extern int	job_spec_parse(const char *text, JobSpec *spec, char *why);
extern void job_spec_free(JobSpec *spec);

extern bool job_makes_proxy(const JobSpec *spec);
extern bool job_makes_thumbnail(const JobSpec *spec);
extern bool job_deletes_video(const JobSpec *spec);

#endif							/* VPROXY_TRANSCODE_JOB_SPEC_H */
