/*
 * jobs.h
 *		The worker's calls of the SQL functions claim_job, heartbeat_job,
 *		finish_job, fail_job and release_job, each in a short transaction of
 *		its own.  The logic lives in SQL (sql/vproxy--*.sql); this is the glue.
 */
#ifndef VPROXY_JOBS_H
#define VPROXY_JOBS_H

#include "utils/timestamp.h"
#include "utils/uuid.h"

typedef struct ClaimedJob
{
	pg_uuid_t	job_id;
	pg_uuid_t	video_id;
	pg_uuid_t	lease_token;
	char		job_type[32];
	int			attempt;
	char	   *spec;			/* job spec JSON without the storage part */
	char		job_id_text[37];
	char		video_id_text[37];
} ClaimedJob;

/* What a heartbeat or a finish came to. */
typedef enum CallOutcome
{
	CALL_DONE,					/* written */
	CALL_LEASE_LOST,			/* cancelled or taken over: nothing written */
	CALL_BAD_DATA,				/* the data does not fit (SQLSTATE class 22 or 23) */
	CALL_FAILED					/* the database failed for now (a lock, a
								 * deadlock, a cancel...): worth trying again */
} CallOutcome;

/* Set when a call found the extension gone: the worker must leave. */
extern bool jobs_extension_gone;

/* Expire the leases of workers of this server's earlier lives. */
extern int	jobs_expire_earlier_lives(const char *server_prefix, const char *life_prefix);

/* Claim the most urgent runnable job; if none, when to look again (0: no idea). */
extern bool jobs_claim(const char *holder, ClaimedJob *job, TimestampTz *next_claim_at);

/*
 * Extend the lease and store progress.  An error is not thrown: it comes
 * back in *error with CALL_BAD_DATA or CALL_FAILED.
 */
extern CallOutcome jobs_heartbeat(const ClaimedJob *job, double progress, char **error);

/*
 * Record success.  An error is not thrown: CALL_BAD_DATA (an unusable
 * result) or CALL_FAILED (try again), with the message in *error.
 */
extern CallOutcome jobs_finish(const ClaimedJob *job, const char *result, char **error);

/* Record a failed attempt; returns the new status ("pending", "failed"), NULL if the lease is lost. */
extern char *jobs_fail(const ClaimedJob *job, const char *error, bool retryable);

/* Hand the job back without spending an attempt. */
extern bool jobs_release(const ClaimedJob *job);

/* Text made safe to store: valid in the database encoding, no control characters. */
extern char *jobs_clean_text(const char *text);

#define UUID_TEXT_SIZE 37

/* The text form of a uuid, in buffer; returns buffer. */
extern char *uuid_text(const pg_uuid_t *uuid, char buffer[UUID_TEXT_SIZE]);

#endif							/* VPROXY_JOBS_H */
