/*
 * split_job.h
 *		The split proxy's side of `vproxy-transcode job` (split_job.c): the
 *		plan a long video's proxy job returns instead of a proxy, and the
 *		units of a split proxy (job type proxy_segment).
 */
#ifndef VPROXY_TRANSCODE_SPLIT_JOB_H
#define VPROXY_TRANSCODE_SPLIT_JOB_H

#include <jansson.h>

#include "transcode/job_spec.h"
#include "transcode/job_workspace.h"

#define SPLIT_JOB_WHY_MAX 512

/* What job.c lends a split job. */
typedef struct SplitJob
{
	const JobSpec *spec;
	Storage    *storage;
	Workspace  *workspace;
	const MediaHooks *media_hooks;	/* stop and progress of the stage */
	const StorageHooks *storage_hooks;
	const char *error_code;		/* of a failure, when it names one (job-protocol.md) */
	char	   *why;			/* SPLIT_JOB_WHY_MAX bytes */
} SplitJob;

/*
 * A proxy job: when the video lasts longer than split.min_duration_seconds,
 * probe and plan it through ranged reads and set *result to the plan
 * ("status": "split"); else leave it NULL (the single pass follows).
 */
extern int	split_job_plan(SplitJob *job, json_t **result);

/* A unit of a split proxy: run it and set *result. */
extern int	split_job_unit(SplitJob *job, json_t **result);

#endif							/* VPROXY_TRANSCODE_SPLIT_JOB_H */
