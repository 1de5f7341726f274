/*
 * jobs.c
 *		SPI glue between the worker and the SQL functions of the queue.
 *		Each call is one short transaction that first checks that the
 *		extension still exists (DROP EXTENSION must not make the worker fail).
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/builtins.h"
#include "utils/snapmgr.h"

#include "jobs.h"
#include "settings.h"

bool		jobs_extension_gone = false;

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

/* Expire the leases of workers of this server's earlier lives. */
int
jobs_expire_earlier_lives(const char *server_prefix, const char *life_prefix)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(server_prefix), CStringGetTextDatum(life_prefix)};
	bool		isnull;
	int			expired;

	if (!begin_call())
		return 0;
	run("SELECT vproxy.expire_leases_of_earlier_lives($1, $2)", 2, types, values, NULL);
	expired = DatumGetInt32(column(1, &isnull));
	end_call();
	return expired;
}

/* Copy the text of a uuid into dst. */
static void
copy_uuid(pg_uuid_t *dst, Datum value)
{
	memcpy(dst, DatumGetUUIDP(value), sizeof(pg_uuid_t));
}

/* Claim the most urgent runnable job; if none, when to look again. */
bool
jobs_claim(const char *holder, ClaimedJob *job, TimestampTz *next_claim_at)
{
	Oid			types[4] = {TEXTOID, FLOAT8OID, TEXTOID, TEXTOID};
	Datum		values[4];
	bool		isnull;
	bool		claimed;

	values[0] = CStringGetTextDatum(holder);
	values[1] = Float8GetDatum((double) vproxy_lease_duration);
	values[2] = CStringGetTextDatum(vproxy_proxy_key_template);
	values[3] = CStringGetTextDatum(vproxy_thumbnail_key_template);
	*next_claim_at = 0;
	if (!begin_call())
		return false;
	claimed = run("SELECT job_id, video_id, job_type, attempt, lease_token, spec::text "
				  "FROM vproxy.claim_job($1, $2, $3, $4)", 4, types, values, NULL) == 1;
	if (claimed)
	{
		MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

		copy_uuid(&job->job_id, column(1, &isnull));
		copy_uuid(&job->video_id, column(2, &isnull));
		text_to_cstring_buffer(DatumGetTextPP(column(3, &isnull)), job->job_type, sizeof(job->job_type));
		job->attempt = DatumGetInt32(column(4, &isnull));
		copy_uuid(&job->lease_token, column(5, &isnull));
		job->spec = TextDatumGetCString(column(6, &isnull));
		uuid_text(&job->job_id, job->job_id_text);
		uuid_text(&job->video_id, job->video_id_text);
		MemoryContextSwitchTo(spi_context);
	}
	else
	{
		Datum		next;

		run("SELECT vproxy.next_claim_at()", 0, NULL, NULL, NULL);
		next = column(1, &isnull);
		*next_claim_at = isnull ? 0 : DatumGetTimestampTz(next);
	}
	end_call();
	return claimed;
}

/*
 * Run a query that returns one boolean (whether the lease was held) in a
 * call of its own.  An ERROR is caught and the transaction rolled back: a
 * data error (SQLSTATE class 22 or 23) means the input cannot be stored,
 * anything else (a lock or statement timeout, a deadlock, a cancel, a full
 * NOTIFY queue at commit...) may pass.  The message comes back in *error.
 */
static CallOutcome
run_guarded_call(const char *sql, int nargs, Oid *types, Datum *values, char **error)
{
	MemoryContext guard_caller = CurrentMemoryContext;
	volatile CallOutcome outcome = CALL_LEASE_LOST;

	*error = NULL;
	PG_TRY();
	{
		if (begin_call())
		{
			bool		isnull;

			run(sql, nargs, types, values, NULL);
			outcome = DatumGetBool(column(1, &isnull)) ? CALL_DONE : CALL_LEASE_LOST;
			end_call();
		}
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		int			category;

		MemoryContextSwitchTo(guard_caller);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(guard_caller);
		category = ERRCODE_TO_CATEGORY(edata->sqlerrcode);
		outcome = (category == ERRCODE_DATA_EXCEPTION ||
				   category == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION) ? CALL_BAD_DATA : CALL_FAILED;
		*error = pstrdup(edata->message);
		FreeErrorData(edata);
	}
	PG_END_TRY();
	return outcome;
}

/* Extend the lease and store progress; errors come back in *error. */
CallOutcome
jobs_heartbeat(const ClaimedJob *job, double progress, char **error)
{
	Oid			types[4] = {UUIDOID, UUIDOID, FLOAT4OID, FLOAT8OID};
	Datum		values[4];

	values[0] = UUIDPGetDatum(&job->job_id);
	values[1] = UUIDPGetDatum(&job->lease_token);
	values[2] = Float4GetDatum((float4) progress);
	values[3] = Float8GetDatum((double) vproxy_lease_duration);
	return run_guarded_call("SELECT vproxy.heartbeat_job($1, $2, $3, $4)", 4, types, values, error);
}

/* Record success; errors come back in *error. */
CallOutcome
jobs_finish(const ClaimedJob *job, const char *result, char **error)
{
	Oid			types[3] = {UUIDOID, UUIDOID, TEXTOID};
	Datum		values[3];

	values[0] = UUIDPGetDatum(&job->job_id);
	values[1] = UUIDPGetDatum(&job->lease_token);
	values[2] = CStringGetTextDatum(jobs_clean_text(result));
	return run_guarded_call("SELECT vproxy.finish_job($1, $2, $3::jsonb)", 3, types, values, error);
}

/* Record a failed attempt; the new status, NULL if the lease is lost. */
char *
jobs_fail(const ClaimedJob *job, const char *error, bool retryable)
{
	Oid			types[5] = {UUIDOID, UUIDOID, TEXTOID, BOOLOID, FLOAT8OID};
	Datum		values[5];
	bool		isnull;
	char	   *status = NULL;

	values[0] = UUIDPGetDatum(&job->job_id);
	values[1] = UUIDPGetDatum(&job->lease_token);
	values[2] = CStringGetTextDatum(jobs_clean_text(error));
	values[3] = BoolGetDatum(retryable);
	values[4] = Float8GetDatum((double) vproxy_retry_delay);
	if (!begin_call())
		return NULL;
	run("SELECT vproxy.fail_job($1, $2, $3, $4, $5)", 5, types, values, NULL);
	{
		Datum		value = column(1, &isnull);

		if (!isnull)
		{
			MemoryContext spi_context = MemoryContextSwitchTo(caller_context);

			status = TextDatumGetCString(value);
			MemoryContextSwitchTo(spi_context);
		}
	}
	end_call();
	return status;
}

/* Hand the job back without spending an attempt. */
bool
jobs_release(const ClaimedJob *job)
{
	Oid			types[2] = {UUIDOID, UUIDOID};
	Datum		values[2];
	bool		isnull;
	bool		released;

	values[0] = UUIDPGetDatum(&job->job_id);
	values[1] = UUIDPGetDatum(&job->lease_token);
	if (!begin_call())
		return false;
	run("SELECT vproxy.release_job($1, $2)", 2, types, values, NULL);
	released = DatumGetBool(column(1, &isnull));
	end_call();
	return released;
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
