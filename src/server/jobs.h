/*
 * jobs.h
 *		The worker's calls of the SQL functions claim_job, heartbeat_job,
 *		finish_job, fail_job and release_job, each in a short transaction of
 *		its own.  The logic lives in SQL (sql/vproxy--*.sql); this is the glue.
 *		A database whose vproxy is not yet updated to 1.2.0 is served with the
 *		calls of its own version until ALTER EXTENSION vproxy UPDATE.
 */
#ifndef VPROXY_JOBS_H
#define VPROXY_JOBS_H

#include <signal.h>

#include "utils/timestamp.h"
#include "utils/uuid.h"

typedef struct ClaimedJob
{
	pg_uuid_t	job_id;
	pg_uuid_t	video_id;
	pg_uuid_t	lease_token;
	char		job_type[32];
	int			attempt;
	double		lease_seconds;	/* the lease the claim granted */
	double		timeout_seconds;	/* vproxy.job_timeout at the claim */
	char	   *spec;			/* the job spec JSON of the claim, one line */
	char		job_id_text[37];
	char		video_id_text[37];
} ClaimedJob;

/*
 * What a call came to.  Every call but the claim and the heartbeat is
 * tried again, keeping the lease, while the database fails it for a reason
 * that passes (call_policy.h): CALL_FAILED then means that the worker is
 * stopping, or that trying again cannot help (logged).
 */
typedef enum CallOutcome
{
	CALL_DONE,					/* written */
	CALL_LEASE_LOST,			/* cancelled or taken over: nothing written */
	CALL_BAD_DATA,				/* the data does not fit (call_policy.h) */
	CALL_FAILED					/* not written (see above) */
} CallOutcome;

/* Set when a call found the extension gone: the worker must leave. */
extern bool jobs_extension_gone;

/* Connect a background worker to database for the calls, with a safe search_path. */
extern void jobs_connect(const char *database);

/* Tell the calls which flag says that the worker must stop waiting for the database. */
extern void jobs_set_stop_flag(volatile sig_atomic_t *flag);

/* Expire the leases of workers of this server's earlier lives. */
extern int	jobs_expire_earlier_lives(const char *server_prefix, const char *life_prefix);

/* Claim the most urgent runnable job; if none, when to look again (0: no idea). */
extern bool jobs_claim(const char *holder, ClaimedJob *job, TimestampTz *next_claim_at);

/*
 * Extend the lease and store progress, in one try; CALL_DONE with the lease
 * granted in *lease_seconds.  An error is not thrown: it comes back in
 * *error with CALL_FAILED.
 */
extern CallOutcome jobs_heartbeat(const ClaimedJob *job, double progress, double *lease_seconds,
								  char **error);

/*
 * Record success.  An error is not thrown: CALL_BAD_DATA (an unusable
 * result) or CALL_FAILED, with the message in *error.
 */
extern CallOutcome jobs_finish(const ClaimedJob *job, const char *result, char **error);

/*
 * Record a failed attempt with its error code (processing_jobs.error_code);
 * CALL_DONE with the new status ("pending", "failed") in *status.
 */
extern CallOutcome jobs_fail(const ClaimedJob *job, const char *error_code, const char *error,
							 bool retryable, char **status, char **call_error);

/* Hand the job back without spending an attempt. */
extern bool jobs_release(const ClaimedJob *job);

/* Remove ended jobs past their retention in batches; the number removed, -1 on failure. */
extern int64 jobs_prune(int job_retention, int failed_job_retention, int batch);

/* Text made safe to store: valid in the database encoding, no control characters. */
extern char *jobs_clean_text(const char *text);

#define UUID_TEXT_SIZE 37

/* The text form of a uuid, in buffer; returns buffer. */
extern char *uuid_text(const pg_uuid_t *uuid, char buffer[UUID_TEXT_SIZE]);

#endif							/* VPROXY_JOBS_H */
