/*
 * jobs.c
 *		SPI glue between the worker and the SQL functions of the queue.
 *		Each call is one short transaction that first checks that the
 *		extension still exists (DROP EXTENSION must not make the worker fail)
 *		and which version of the calls it has: a database not yet updated to
 *		1.2.0 (no schema vproxy_internal) is served with its own calls, the
 *		settings its claim_job took as arguments read by the query itself
 *		(current_setting), until ALTER EXTENSION vproxy UPDATE.
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type_d.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"

#include "supervise/call_policy.h"
#include "supervise/supervise.h"
#include "jobs.h"

/* a call the database fails for now is tried again this often */
#define CALL_RETRY_MS 1000
/* a stopping worker offers a job back this many times */
#define RELEASE_TRIES 3

bool		jobs_extension_gone = false;

/* whether the call in progress meets a vproxy older than 1.2.0 */
static bool legacy_api = false;

/* the SQL of the calls that differ between 1.2.0 and the versions before */
#define LEGACY_LEASE_SECONDS "extract(epoch FROM current_setting('vproxy.lease_duration')::interval)::float8"

static const char *const claim_sql =
"SELECT job_id, video_id, job_type, attempt, lease_token, lease_seconds, timeout_seconds, spec::text "
"FROM vproxy.claim_job($1)";
static const char *const legacy_claim_sql =
"SELECT c.job_id, c.video_id, c.job_type, c.attempt, c.lease_token, s.lease, s.timeout, "
"(c.spec || jsonb_build_object('storage', jsonb_build_object("
"'url', current_setting('vproxy.storage_url'), 's3_endpoint', current_setting('vproxy.s3_endpoint'), "
"'s3_region', current_setting('vproxy.s3_region'))))::text "
"FROM (SELECT " LEGACY_LEASE_SECONDS " AS lease, "
"extract(epoch FROM current_setting('vproxy.job_timeout')::interval)::float8 AS timeout) s, "
"vproxy.claim_job($1, s.lease, current_setting('vproxy.proxy_key_template'), "
"current_setting('vproxy.thumbnail_key_template')) c";
static const char *const heartbeat_sql = "SELECT vproxy.heartbeat_job($1, $2, $3)";
static const char *const legacy_heartbeat_sql =
"SELECT CASE WHEN vproxy.heartbeat_job($1, $2, $3, s.lease) THEN s.lease END "
"FROM (SELECT " LEGACY_LEASE_SECONDS " AS lease) s";
static const char *const fail_sql = "SELECT vproxy.fail_job($1, $2, $3, $4, $5)";
static const char *const legacy_fail_sql =
"SELECT vproxy.fail_job($1, $2, $4, $5, "
"extract(epoch FROM current_setting('vproxy.retry_delay')::interval)::float8)";

/* where results are copied: the context current when the call began */
static MemoryContext caller_context = NULL;

/* Start a transaction with SPI; false (and no transaction) if the extension is gone. */
static bool
begin_call(void)
{
	caller_context = CurrentMemoryContext;
	/* a cancel sent before the call began was not meant for it */
	QueryCancelPending = false;
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	if (!OidIsValid(get_extension_oid("vproxy", true)))
	{
		CommitTransactionCommand();
		MemoryContextSwitchTo(caller_context);
		jobs_extension_gone = true;
		return false;
	}
	legacy_api = !OidIsValid(get_namespace_oid("vproxy_internal", true));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	return true;
}

/* Commit the call's transaction. */
static void
end_call(void)
{
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_stat(false);
	MemoryContextSwitchTo(caller_context);
}

/* Run a query that returns at most one row; the number of rows. */
static uint64
run(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls, false, 0);

	if (rc != SPI_OK_SELECT)
		elog(ERROR, "vproxy: query failed (%s): %s", SPI_result_code_string(rc), sql);
	return SPI_processed;
}

/* Column n of the first result row, and whether it is NULL. */
static Datum
column(int n, bool *isnull)
{
	return SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, n, isnull);
}

/* Copy the text of a uuid into dst. */
static void
copy_uuid(pg_uuid_t *dst, Datum value)
{
	memcpy(dst, DatumGetUUIDP(value), sizeof(pg_uuid_t));
}

/*
 * The body of a call: runs its queries inside the call's transaction, copies
 * what it needs into caller_context, and says whether the lease was held.
 */
typedef CallOutcome (*CallBody) (void *arg);

/* the worker's "please stop" flag; NULL: never asked */
static volatile sig_atomic_t *stop_flag = NULL;

/* Whether the worker was asked to stop. */
static bool
stop_requested(void)
{
	return stop_flag != NULL && *stop_flag;
}

/*
 * Connect a background worker to database, as the bootstrap superuser, with
 * search_path = pg_catalog, pg_temp whatever ALTER DATABASE or ALTER ROLE
 * set.  The calls' SQL names built-in functions, operators and types
 * without their schema, and the database's owner may create objects of
 * those names in schema public, or set the database's search_path to a
 * schema of its own: they would run as a superuser here.
 */
void
jobs_connect(const char *database)
{
	BackgroundWorkerInitializeConnection(database, NULL, 0);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
}

/* Tell the calls which flag says that the worker must stop. */
void
jobs_set_stop_flag(volatile sig_atomic_t *flag)
{
	stop_flag = flag;
}

/*
 * One try of a call in a transaction of its own.  An ERROR is caught and
 * the transaction rolled back: the outcome is CALL_FAILED (or CALL_BAD_DATA)
 * with the message in *error and what to do about it in *policy
 * (call_policy.h).  A call that finds the extension gone comes to
 * CALL_LEASE_LOST (jobs_extension_gone is set).
 */
static CallOutcome
try_call(CallBody body, void *arg, char **error, CallPolicy *policy)
{
	MemoryContext guard_caller = CurrentMemoryContext;
	volatile CallOutcome outcome = CALL_LEASE_LOST;

	*error = NULL;
	*policy = CALL_POLICY_RETRY;
	PG_TRY();
	{
		if (begin_call())
		{
			outcome = body(arg);
			end_call();
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(guard_caller);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(guard_caller);
		*policy = call_policy(unpack_sql_state(edata->sqlerrcode));
		outcome = *policy == CALL_POLICY_BAD_DATA ? CALL_BAD_DATA : CALL_FAILED;
		*error = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return outcome;
}

/* Body of a heartbeat: extend the lease of job (progress not lowered). */
typedef struct HeartbeatCall
{
	const ClaimedJob *job;
	double		progress;
	double		lease_seconds;	/* granted */
} HeartbeatCall;

static CallOutcome
heartbeat_body(void *arg)
{
	HeartbeatCall *call = arg;
	Oid			types[3] = {UUIDOID, UUIDOID, FLOAT4OID};
	Datum		values[3];
	Datum		granted;
	bool		isnull;

	values[0] = UUIDPGetDatum(&call->job->job_id);
	values[1] = UUIDPGetDatum(&call->job->lease_token);
	values[2] = Float4GetDatum((float4) call->progress);
	run(legacy_api ? legacy_heartbeat_sql : heartbeat_sql, 3, types, values, NULL);
	granted = column(1, &isnull);
	if (isnull)
		return CALL_LEASE_LOST;
	call->lease_seconds = DatumGetFloat8(granted);
	return CALL_DONE;
}

/*
 * Run a call until it is done or cannot be.  A failure worth trying again
 * (call_policy.h: a lock the application holds, a deadlock, a cancel...) is
 * tried again every second for as long as it lasts, the lease of job (if
 * any) kept alive by heartbeats in between; only a stop of the worker ends
 * the wait (CALL_FAILED: nothing written, the lease still held).  A failure
 * that trying again cannot help is logged and comes back as CALL_FAILED too.
 */
static CallOutcome
guarded_call(const char *what, const ClaimedJob *job, CallBody body, void *arg, char **error)
{
	char	   *last_logged = NULL;

	for (int try = 1;; try++)
	{
		CallPolicy policy;
		CallOutcome outcome = try_call(body, arg, error, &policy);
		char	   *heartbeat_error;
		HeartbeatCall heartbeat = {job, 0, 0};

		if (outcome != CALL_FAILED)
			return outcome;
		if (policy == CALL_POLICY_GIVE_UP)
		{
			ereport(WARNING,
					(errmsg("vproxy: %s%s%s failed, and trying again cannot help: %s",
							what, job ? " of job " : "", job ? job->job_id_text : "", *error)));
			return CALL_FAILED;
		}
		if (stop_requested())
			return CALL_FAILED;
		/* the first failure, a new reason, and one line a minute */
		if (last_logged == NULL || strcmp(last_logged, *error) != 0 || try % 60 == 0)
		{
			last_logged = *error;
			ereport(LOG,
					(errmsg("vproxy: %s%s%s failed (try %d), trying again every second: %s",
							what, job ? " of job " : "", job ? job->job_id_text : "", try, *error),
					 errdetail("The lease is kept meanwhile; nothing is lost.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 CALL_RETRY_MS, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		/* a cancel sent while waiting has nothing to cancel; barriers are absorbed */
		QueryCancelPending = false;
		CHECK_FOR_INTERRUPTS();
		if (stop_requested())
			return CALL_FAILED;
		if (job != NULL &&
			try_call(heartbeat_body, &heartbeat, &heartbeat_error, &policy) == CALL_LEASE_LOST)
			return CALL_LEASE_LOST;
	}
}

/* Body of the expiry of earlier lives' leases. */
typedef struct ExpireCall
{
	const char *server_prefix;
	const char *life_prefix;
	int			expired;
} ExpireCall;

static CallOutcome
expire_body(void *arg)
{
	ExpireCall *call = arg;
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(call->server_prefix),
	CStringGetTextDatum(call->life_prefix)};
	bool		isnull;

	run(legacy_api ? "SELECT vproxy.expire_leases_of_earlier_lives($1, $2)" :
		"SELECT vproxy_internal.expire_leases_of_earlier_lives($1, $2)", 2, types, values, NULL);
	call->expired = DatumGetInt32(column(1, &isnull));
	return CALL_DONE;
}

/* Expire the leases of workers of this server's earlier lives. */
int
jobs_expire_earlier_lives(const char *server_prefix, const char *life_prefix)
{
	ExpireCall	call = {server_prefix, life_prefix, 0};
	char	   *error;

	if (guarded_call("expiring the leases of earlier lives", NULL, expire_body, &call, &error) != CALL_DONE)
		return 0;
	return call.expired;
}

/* Body of a claim. */
typedef struct ClaimCall
{
	const char *holder;
	ClaimedJob *job;
	TimestampTz next_claim_at;
	bool		claimed;
} ClaimCall;

static CallOutcome
claim_body(void *arg)
{
	ClaimCall  *call = arg;
	ClaimedJob *job = call->job;
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;

	values[0] = CStringGetTextDatum(call->holder);
	call->claimed = run(legacy_api ? legacy_claim_sql : claim_sql, 1, types, values, NULL) == 1;
	if (call->claimed)
	{
		MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

		copy_uuid(&job->job_id, column(1, &isnull));
		copy_uuid(&job->video_id, column(2, &isnull));
		text_to_cstring_buffer(DatumGetTextPP(column(3, &isnull)), job->job_type, sizeof(job->job_type));
		job->attempt = DatumGetInt32(column(4, &isnull));
		copy_uuid(&job->lease_token, column(5, &isnull));
		job->lease_seconds = DatumGetFloat8(column(6, &isnull));
		job->timeout_seconds = DatumGetFloat8(column(7, &isnull));
		job->spec = TextDatumGetCString(column(8, &isnull));
		uuid_text(&job->job_id, job->job_id_text);
		uuid_text(&job->video_id, job->video_id_text);
		MemoryContextSwitchTo(spi_context);
	}
	else
	{
		Datum		next;

		run("SELECT vproxy.next_claim_at()", 0, NULL, NULL, NULL);
		next = column(1, &isnull);
		call->next_claim_at = isnull ? 0 : DatumGetTimestampTz(next);
	}
	return CALL_DONE;
}

/*
 * Claim the most urgent runnable job; if none, when to look again.  A claim
 * the database fails is not retried here: the worker looks again in a
 * second (any failure) and stays up.
 */
bool
jobs_claim(const char *holder, ClaimedJob *job, TimestampTz *next_claim_at)
{
	static int	failures_in_a_row = 0;
	ClaimCall	call = {holder, job, 0, false};
	CallPolicy	policy;
	char	   *error;

	*next_claim_at = 0;
	switch (try_call(claim_body, &call, &error, &policy))
	{
		case CALL_DONE:
			failures_in_a_row = 0;
			*next_claim_at = call.next_claim_at;
			return call.claimed;
		case CALL_LEASE_LOST:
			return false;		/* the extension is gone */
		default:
			failures_in_a_row++;
			if (failures_in_a_row == 1 || failures_in_a_row % 60 == 0)
				ereport(policy == CALL_POLICY_GIVE_UP ? WARNING : LOG,
						(errmsg("vproxy: a claim failed (%d in a row), looking again in a second: %s",
								failures_in_a_row, error)));
			*next_claim_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), CALL_RETRY_MS);
			return false;
	}
}

/* Extend the lease and store progress (one try); errors come back in *error. */
CallOutcome
jobs_heartbeat(const ClaimedJob *job, double progress, double *lease_seconds, char **error)
{
	HeartbeatCall call = {job, progress, 0};
	CallPolicy	policy;
	CallOutcome outcome = try_call(heartbeat_body, &call, error, &policy);

	*lease_seconds = call.lease_seconds;
	return outcome == CALL_BAD_DATA ? CALL_FAILED : outcome;
}

/* Body of a finish. */
typedef struct FinishCall
{
	const ClaimedJob *job;
	const char *result;
} FinishCall;

static CallOutcome
finish_body(void *arg)
{
	FinishCall *call = arg;
	Oid			types[3] = {UUIDOID, UUIDOID, TEXTOID};
	Datum		values[3];
	bool		isnull;

	values[0] = UUIDPGetDatum(&call->job->job_id);
	values[1] = UUIDPGetDatum(&call->job->lease_token);
	values[2] = CStringGetTextDatum(call->result);
	run("SELECT vproxy.finish_job($1, $2, $3::jsonb)", 3, types, values, NULL);
	return DatumGetBool(column(1, &isnull)) ? CALL_DONE : CALL_LEASE_LOST;
}

/* Record success, trying again while the database is in the way; errors come back in *error. */
CallOutcome
jobs_finish(const ClaimedJob *job, const char *result, char **error)
{
	FinishCall	call = {job, jobs_clean_text(result)};

	return guarded_call("recording the result", job, finish_body, &call, error);
}

/* Body of a failure. */
typedef struct FailCall
{
	const ClaimedJob *job;
	const char *error_code;
	const char *error;
	bool		retryable;
	char	   *status;
} FailCall;

static CallOutcome
fail_body(void *arg)
{
	FailCall   *call = arg;
	Oid			types[5] = {UUIDOID, UUIDOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[5];
	bool		isnull;
	Datum		status;

	values[0] = UUIDPGetDatum(&call->job->job_id);
	values[1] = UUIDPGetDatum(&call->job->lease_token);
	values[2] = CStringGetTextDatum(call->error_code);
	values[3] = CStringGetTextDatum(call->error);
	values[4] = BoolGetDatum(call->retryable);
	run(legacy_api ? legacy_fail_sql : fail_sql, 5, types, values, NULL);
	status = column(1, &isnull);
	if (isnull)
		return CALL_LEASE_LOST;
	call->status = MemoryContextStrdup(caller_context, TextDatumGetCString(status));
	return CALL_DONE;
}

/*
 * Record a failed attempt, trying again while the database is in the way.
 * CALL_DONE with the new status in *status ("pending", "failed").
 */
CallOutcome
jobs_fail(const ClaimedJob *job, const char *error_code, const char *error, bool retryable,
		  char **status, char **call_error)
{
	FailCall	call = {job, error_code, jobs_clean_text(error), retryable, NULL};
	CallOutcome outcome = guarded_call("recording the failure", job, fail_body, &call, call_error);

	/* an error message the database refuses: keep the fact, drop the words */
	if (outcome == CALL_BAD_DATA)
	{
		call.error = SUP_REFUSED_MESSAGE;
		outcome = guarded_call("recording the failure", job, fail_body, &call, call_error);
	}
	*status = call.status;
	return outcome == CALL_BAD_DATA ? CALL_FAILED : outcome;
}

/* Body of a hand-back. */
static CallOutcome
release_body(void *arg)
{
	const ClaimedJob *job = arg;
	Oid			types[2] = {UUIDOID, UUIDOID};
	Datum		values[2];
	bool		isnull;

	values[0] = UUIDPGetDatum(&job->job_id);
	values[1] = UUIDPGetDatum(&job->lease_token);
	run("SELECT vproxy.release_job($1, $2)", 2, types, values, NULL);
	return DatumGetBool(column(1, &isnull)) ? CALL_DONE : CALL_LEASE_LOST;
}

/*
 * Hand the job back without spending an attempt.  The worker is stopping:
 * a transient failure is tried again a few times only (the lease then
 * expires, and the attempt counts).
 */
bool
jobs_release(const ClaimedJob *job)
{
	for (int try = 1; try <= RELEASE_TRIES; try++)
	{
		CallPolicy	policy;
		char	   *error;
		CallOutcome outcome = try_call(release_body, (void *) job, &error, &policy);

		if (outcome != CALL_FAILED || policy != CALL_POLICY_RETRY)
		{
			if (outcome == CALL_FAILED || outcome == CALL_BAD_DATA)
				ereport(WARNING, (errmsg("vproxy: could not hand job %s back: %s",
										 job->job_id_text, error)));
			return outcome == CALL_DONE;
		}
		ereport(LOG, (errmsg("vproxy: could not hand job %s back (try %d of %d): %s",
							 job->job_id_text, try, RELEASE_TRIES, error)));
		if (try < RELEASE_TRIES)
			pg_usleep(CALL_RETRY_MS * 1000L);
	}
	return false;
}

/* Body of a batch of pruning. */
typedef struct PruneCall
{
	int			job_retention;
	int			failed_job_retention;
	int			batch;
	int64		removed;
} PruneCall;

static CallOutcome
prune_body(void *arg)
{
	PruneCall  *call = arg;
	Oid			types[3] = {INT4OID, INT4OID, INT4OID};
	Datum		values[3];
	bool		isnull;

	/* an extension still at 1.0.0 (not yet updated) has no retention */
	if (legacy_api)
	{
		run("SELECT to_regprocedure('vproxy.prune_batch(interval, interval, integer)') IS NOT NULL",
			0, NULL, NULL, NULL);
		if (!DatumGetBool(column(1, &isnull)))
		{
			call->removed = 0;
			return CALL_DONE;
		}
	}
	values[0] = Int32GetDatum(call->job_retention);
	values[1] = Int32GetDatum(call->failed_job_retention);
	values[2] = Int32GetDatum(call->batch);
	run(legacy_api ?
		"SELECT vproxy.prune_batch(CASE WHEN $1 > 0 THEN make_interval(secs => $1) END, "
		"CASE WHEN $2 > 0 THEN make_interval(secs => $2) END, $3)" :
		"SELECT vproxy_internal.prune_batch(CASE WHEN $1 > 0 THEN make_interval(secs => $1) END, "
		"CASE WHEN $2 > 0 THEN make_interval(secs => $2) END, $3)", 3, types, values, NULL);
	call->removed = DatumGetInt64(column(1, &isnull));
	return CALL_DONE;
}

/*
 * Remove ended jobs past their retention (seconds, 0: kept), batch by
 * batch, one short transaction each; the number removed, -1 if a batch
 * failed (logged).
 */
int64
jobs_prune(int job_retention, int failed_job_retention, int batch)
{
	PruneCall	call = {job_retention, failed_job_retention, batch, 0};
	int64		total = 0;

	if (job_retention == 0 && failed_job_retention == 0)
		return 0;
	do
	{
		CallPolicy	policy;
		char	   *error;

		if (try_call(prune_body, &call, &error, &policy) != CALL_DONE)
		{
			if (error != NULL)
				ereport(LOG, (errmsg("vproxy: pruning ended jobs failed, trying again later: %s", error)));
			return jobs_extension_gone ? total : -1;
		}
		total += call.removed;
		CHECK_FOR_INTERRUPTS();
	} while (call.removed >= batch && !stop_requested());
	return total;
}

/* Text made safe to store: valid in the database encoding, no control characters. */
char *
jobs_clean_text(const char *text)
{
	int			encoding = GetDatabaseEncoding();
	size_t		len = strlen(text);
	char	   *clean = palloc(len + 1);
	size_t		out = 0;

	for (size_t in = 0; in < len;)
	{
		int			charlen = pg_encoding_verifymbchar(encoding, text + in, len - in);

		if (charlen <= 0)
		{
			clean[out++] = '?';
			in++;
		}
		else if (charlen == 1 && (unsigned char) text[in] < 0x20 && text[in] != '\n')
		{
			clean[out++] = ' ';
			in++;
		}
		else
		{
			memcpy(clean + out, text + in, charlen);
			out += charlen;
			in += charlen;
		}
	}
	clean[out] = '\0';
	return clean;
}

/* The text form of a uuid, in buffer. */
char *
uuid_text(const pg_uuid_t *uuid, char buffer[UUID_TEXT_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	char	   *out = buffer;

	for (int i = 0; i < UUID_LEN; i++)
	{
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*out++ = '-';
		*out++ = hex[uuid->data[i] >> 4];
		*out++ = hex[uuid->data[i] & 0x0F];
	}
	*out = '\0';
	return buffer;
}
