/*
 * jobs.c
 *		vproxy-worker's calls of the queue's SQL functions (the same ones the
 *		in-server workers call) and the life of one job in a slot: claim,
 *		start the child with the full spec, heartbeat, and tell the database
 *		what the run came to by the failure policy of src/supervise.  Every
 *		write after the claim presents the lease token: a worker that was cut
 *		off while another took its job over writes nothing.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/text_clip.h"
#include "supervise/call_policy.h"
#include "worker/worker.h"

/* how long one call may take before the connection counts as lost */
#define CALL_TIMEOUT_MS 10000
/* an idle worker that hears no NOTIFY looks for work this often anyway */
#define IDLE_CLAIM_MS 60000
/* a result the database did not take is offered again this often */
#define REPORT_RETRY_MS 1000

/* Start a log line's fields for a job. */
static const char *
job_fields(const Worker *w, const Slot *slot, char *buffer, size_t size)
{
	snprintf(buffer, size, "worker=%s job=%s video=%s type=%s attempt=%d",
			 w->options.name, slot->job_id, slot->video_id, slot->job_type, slot->attempt);
	return buffer;
}

/* The SQLSTATE of an error result, or NULL. */
static const char *
sqlstate_of(const PGresult *result)
{
	return PQresultErrorField(result, PG_DIAG_SQLSTATE);
}

/* The primary message of an error result, on one line. */
static const char *
message_of(const PGresult *result, char *buffer, size_t size)
{
	const char *message = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);

	snprintf(buffer, size, "%s", message ? message : PQresultErrorMessage(result));
	buffer[strcspn(buffer, "\n")] = '\0';
	return buffer;
}

/*
 * Say who we are; the database answers with its vproxy version and lease
 * length (how often to check in).  Everything a job needs comes with its
 * claim.
 */
bool
jobs_checkin(Worker *w)
{
	char		pid[16],
				concurrency[16];
	const char *values[6];
	PGresult   *result;
	json_t	   *root;
	json_error_t error;
	char		message[512],
				quoted[600];
	int64_t		now = lease_clock_ms();

	snprintf(pid, sizeof(pid), "%d", (int) getpid());
	snprintf(concurrency, sizeof(concurrency), "%d", w->options.concurrency);
	values[0] = w->holder;
	values[1] = w->options.name;
	values[2] = w->host;
	values[3] = pid;
	values[4] = concurrency;
	values[5] = w->options.job_types;
	result = db_call(&w->db, "SELECT vproxy.worker_checkin($1, $2, $3, $4::int, $5::int, $6::text[])::text",
					 6, values, CALL_TIMEOUT_MS);
	if (result == NULL)
		return false;
	if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1)
	{
		logfmt_event("error", "checkin_failed", "worker=%s sqlstate=%s error=%s", w->options.name,
				  sqlstate_of(result) ? sqlstate_of(result) : "none",
				  logfmt_quote(message_of(result, message, sizeof(message)), quoted, sizeof(quoted)));
		PQclear(result);
		w->next_checkin_ms = now + 10000;
		return false;
	}
	root = json_loads(PQgetvalue(result, 0, 0), 0, &error);
	PQclear(result);
	if (root == NULL)
		return false;
	snprintf(w->settings.extension_version, sizeof(w->settings.extension_version), "%s",
			 json_string_value(json_object_get(root, "extension_version")) ?
			 json_string_value(json_object_get(root, "extension_version")) : "");
	w->settings.lease_seconds = json_number_value(json_object_get(root, "lease_seconds"));
	json_decref(root);
	if (strcmp(w->settings.extension_version, VPROXY_VERSION) != 0)
	{
		/* another SQL API: refused at once, and a restart would not help */
		logfmt_event("error", "version_mismatch", "worker=%s worker_version=%s extension_version=%s "
				  "note=\"run ALTER EXTENSION vproxy UPDATE in the database, or a vproxy-worker of its version\"",
				  w->options.name, VPROXY_VERSION,
				  logfmt_quote(w->settings.extension_version, quoted, sizeof(quoted)));
		w->exit_status = EX_NOPERM;
		w->stopping = true;
		return false;
	}
	if (w->settings.lease_seconds <= 0)
	{
		logfmt_event("error", "checkin_failed", "worker=%s error=\"the check-in did not say the lease\"",
				  w->options.name);
		w->next_checkin_ms = now + 10000;
		return false;
	}
	w->settings.fetched_at_ms = now;
	/* seen at least three times per lease, so that monitoring keeps us */
	w->next_checkin_ms = now + (int64_t) (w->settings.lease_seconds * 1000 / 3);
	return true;
}

/* Leave the registry (monitoring) on the way out. */
void
jobs_checkout(Worker *w)
{
	const char *values[1] = {w->holder};
	PGresult   *result = db_call(&w->db, "SELECT vproxy.worker_checkout($1)", 1, values, 2000);

	PQclear(result);
}

/* Set a string member from the environment ("" if unset). */
static void
set_from_environment(json_t *object, const char *field, const char *variable)
{
	const char *value = getenv(variable);

	json_object_set_new(object, field, json_string(value ? value : ""));
}

/*
 * What the child reads on stdin (src/transcode/job-protocol.md): line 1,
 * the claim's spec as it came; line 2, this worker's local part: the S3
 * credentials and CA bundle from its environment (never from the
 * database), its temp directory, the limits of its options and the first
 * lease fence.
 */
static char *
child_input(const Worker *w, const char *claim_spec, int64_t fence_ms)
{
	json_t	   *local = json_object();
	json_t	   *credentials = json_object();
	json_t	   *limits = json_object();
	char	   *local_text;
	char	   *input = NULL;

	set_from_environment(credentials, "access_key_id", "AWS_ACCESS_KEY_ID");
	set_from_environment(credentials, "secret_access_key", "AWS_SECRET_ACCESS_KEY");
	set_from_environment(credentials, "session_token", "AWS_SESSION_TOKEN");
	json_object_set_new(local, "credentials", credentials);
	set_from_environment(local, "ca_file", "AWS_CA_BUNDLE");
	json_object_set_new(local, "temp_directory", json_string(w->options.temp_directory));
	json_object_set_new(limits, "nice", json_integer(w->options.limits.nice));
	json_object_set_new(limits, "threads", json_integer(w->options.limits.threads));
	json_object_set_new(limits, "memory_limit_bytes",
						json_integer(w->options.limits.memory_limit_bytes));
	json_object_set_new(local, "limits", limits);
	json_object_set_new(local, "lease_until_ms", json_integer(fence_ms));
	local_text = json_dumps(local, JSON_COMPACT);
	json_decref(local);
	if (local_text != NULL && asprintf(&input, "%s\n%s\n", claim_spec, local_text) < 0)
		input = NULL;
	free(local_text);
	return input;
}

/*
 * One try of fail_job: true when settled (recorded, or the lease is gone),
 * false to try again later; *refused set when the database refused the
 * message itself (then nothing is settled).
 */
static bool
try_failure(Worker *w, Slot *slot, const char *error_code, const char *cause, bool retryable,
			bool *refused)
{
	const char *values[5];
	PGresult   *result;
	char		fields[512],
				quoted[SUP_STDERR_TAIL + 300],
				message[512];
	const char *status;

	*refused = false;
	values[0] = slot->job_id;
	values[1] = slot->lease_token;
	values[2] = error_code;
	values[3] = cause;
	values[4] = retryable ? "true" : "false";
	result = db_call(&w->db, "SELECT vproxy.fail_job($1, $2, $3, $4, $5)", 5, values, CALL_TIMEOUT_MS);
	if (result == NULL)
		return false;			/* told again after the reconnect */
	job_fields(w, slot, fields, sizeof(fields));
	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		CallPolicy	policy = call_policy(sqlstate_of(result));

		logfmt_event("warning", "call_failed", "%s call=fail_job sqlstate=%s error=%s", fields,
				  sqlstate_of(result) ? sqlstate_of(result) : "none",
				  logfmt_quote(message_of(result, message, sizeof(message)), quoted, sizeof(quoted)));
		PQclear(result);
		*refused = policy == CALL_POLICY_BAD_DATA;
		return policy == CALL_POLICY_GIVE_UP;	/* give up: the lease runs out */
	}
	status = PQgetisnull(result, 0, 0) ? NULL : PQgetvalue(result, 0, 0);
	logfmt_quote(cause, quoted, sizeof(quoted));
	if (status == NULL)
		logfmt_event("warning", "lease_lost", "%s note=\"failure not recorded\" error=%s", fields, quoted);
	else if (strcmp(status, "pending") == 0)
		logfmt_event("warning", "job_retry", "%s error=%s", fields, quoted);
	else
		logfmt_event("error", "job_failed", "%s error=%s", fields, quoted);
	PQclear(result);
	return true;
}

/*
 * Record a failed attempt and log what becomes of the job.  A message the
 * database refuses (a trigger of the application, an encoding that cannot
 * hold it) is replaced by a plain one: the job never stays running for it.
 */
static bool
record_failure(Worker *w, Slot *slot, const SupOutcome *outcome)
{
	bool		retryable = outcome->verdict != SUP_FAIL;
	bool		refused;

	if (try_failure(w, slot, outcome->error_code, outcome->message, retryable, &refused))
		return true;
	if (!refused)
		return false;			/* offered again later */
	if (try_failure(w, slot, outcome->error_code, SUP_REFUSED_MESSAGE, retryable, &refused))
		return true;
	return refused;				/* even that refused: the lease runs out */
}

/* Record a failure this worker found itself (not the child): the outcome it makes. */
static bool
record_worker_failure(Worker *w, Slot *slot, const char *cause, bool retryable)
{
	SupOutcome	outcome;

	memset(&outcome, 0, sizeof(outcome));
	outcome.verdict = retryable ? SUP_RETRY : SUP_FAIL;
	snprintf(outcome.error_code, sizeof(outcome.error_code), "internal");
	text_clip_copy(outcome.message, sizeof(outcome.message), cause);
	return record_failure(w, slot, &outcome);
}

/* Free a slot for the next job. */
static void
free_slot(Worker *w, Slot *slot)
{
	sup_child_free(&slot->run.child);
	free(slot->spec);
	memset(slot, 0, sizeof(*slot));
	/* a slot is free: look for work again */
	w->woken = true;
}

/* Claim one job into slot and start its child; false when there was nothing to claim. */
bool
jobs_claim_one(Worker *w, Slot *slot)
{
	const char *values[2];
	PGresult   *result;
	char		fields[512],
				message[512],
				quoted[600];
	int64_t		now;
	int64_t		sent;

	values[0] = w->holder;
	values[1] = w->options.job_types;
	/* noted before the claim's transaction starts: the database counts the lease from later */
	sent = lease_clock_ms();
	result = db_call(&w->db, "SELECT job_id, video_id, job_type, attempt, lease_token, lease_seconds, "
					 "timeout_seconds, spec::text FROM vproxy.claim_job($1, $2::text[])",
					 2, values, CALL_TIMEOUT_MS);
	if (result == NULL)
		return false;
	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		logfmt_event("warning", "claim_failed", "worker=%s sqlstate=%s error=%s", w->options.name,
				  sqlstate_of(result) ? sqlstate_of(result) : "none",
				  logfmt_quote(message_of(result, message, sizeof(message)), quoted, sizeof(quoted)));
		PQclear(result);
		w->next_claim_ms = lease_clock_ms() + 1000;
		return false;
	}
	if (PQntuples(result) == 0)
	{
		PGresult   *next;

		PQclear(result);
		next = db_call(&w->db, "SELECT extract(epoch FROM vproxy.next_claim_at($1::text[]) - clock_timestamp())",
					   1, &values[1], CALL_TIMEOUT_MS);
		/*
		 * Look again when a delayed job becomes due, at the poll interval
		 * (no LISTEN), or after a minute in case a NOTIFY was lost.
		 */
		now = lease_clock_ms();
		w->next_claim_ms = now + (w->options.poll_interval > 0 ?
								  (int64_t) (w->options.poll_interval * 1000) : IDLE_CLAIM_MS);
		if (next != NULL && PQresultStatus(next) == PGRES_TUPLES_OK && PQntuples(next) == 1 &&
			!PQgetisnull(next, 0, 0))
		{
			double		seconds = atof(PQgetvalue(next, 0, 0));
			/* due but locked by another claimer: look again soon */
			int64_t		due = now + (seconds <= 0 ? 100 : (int64_t) (seconds * 1000) + 1);

			if (due < w->next_claim_ms)
				w->next_claim_ms = due;
		}
		PQclear(next);
		return false;
	}

	memset(slot, 0, sizeof(*slot));
	slot->busy = true;
	snprintf(slot->job_id, sizeof(slot->job_id), "%s", PQgetvalue(result, 0, 0));
	snprintf(slot->video_id, sizeof(slot->video_id), "%s", PQgetvalue(result, 0, 1));
	snprintf(slot->job_type, sizeof(slot->job_type), "%s", PQgetvalue(result, 0, 2));
	slot->attempt = atoi(PQgetvalue(result, 0, 3));
	snprintf(slot->lease_token, sizeof(slot->lease_token), "%s", PQgetvalue(result, 0, 4));
	slot->lease_seconds = atof(PQgetvalue(result, 0, 5));
	slot->timeout_seconds = (int) atof(PQgetvalue(result, 0, 6));
	slot->spec = child_input(w, PQgetvalue(result, 0, 7), sup_lease_fence_ms(sent, slot->lease_seconds));
	PQclear(result);
	job_fields(w, slot, fields, sizeof(fields));
	logfmt_event("info", "job_start", "%s", fields);

	if (slot->spec == NULL ||
		!sup_run_start(&slot->run, w->options.transcode, slot->spec, strlen(slot->spec),
					   slot->timeout_seconds, sup_lease_fence_ms(sent, slot->lease_seconds)))
	{
		char		cause[600];

		snprintf(cause, sizeof(cause), slot->spec ? "cannot start %s: %s" : "out of memory",
				 w->options.transcode, strerror(errno));
		slot->ended = true;
		slot->outcome.verdict = SUP_RETRY;
		snprintf(slot->outcome.error_code, sizeof(slot->outcome.error_code), "internal");
		text_clip_copy(slot->outcome.message, sizeof(slot->outcome.message), cause);
		slot->report_at_ms = lease_clock_ms();
	}
	return true;
}

/*
 * Extend the lease and store progress: a renewal moves the fence (from the
 * time the call was sent: the database counts the lease from later), a lost
 * lease stops the child, a failed call leaves the fence where it was.
 */
void
jobs_heartbeat(Worker *w, Slot *slot)
{
	char		progress[32];
	const char *values[3];
	PGresult   *result;
	char		fields[512],
				message[512],
				quoted[600];
	SupLease	outcome = SUP_LEASE_UNKNOWN;
	int64_t		sent = lease_clock_ms();

	snprintf(progress, sizeof(progress), "%.4f", slot->run.child.progress);
	values[0] = slot->job_id;
	values[1] = slot->lease_token;
	values[2] = progress;
	result = db_call(&w->db, "SELECT vproxy.heartbeat_job($1, $2, $3)", 3, values, CALL_TIMEOUT_MS);
	job_fields(w, slot, fields, sizeof(fields));
	/* the lease granted from now, NULL when it is lost */
	if (result != NULL && PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
		outcome = PQgetisnull(result, 0, 0) ? SUP_LEASE_LOST : SUP_LEASE_RENEWED;
	if (outcome == SUP_LEASE_RENEWED)
		slot->lease_seconds = atof(PQgetvalue(result, 0, 0));
	else if (result != NULL && PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		logfmt_event("warning", "heartbeat_failed", "%s sqlstate=%s error=%s", fields,
				  sqlstate_of(result) ? sqlstate_of(result) : "none",
				  logfmt_quote(message_of(result, message, sizeof(message)), quoted, sizeof(quoted)));
		/* a call that cannot succeed: the lease runs out as if it were lost */
		if (call_policy(sqlstate_of(result)) != CALL_POLICY_RETRY)
			outcome = SUP_LEASE_LOST;
	}
	PQclear(result);
	if (outcome == SUP_LEASE_LOST)
		logfmt_event("warning", "lease_lost", "%s note=\"cancelled or taken over; stopping the child\"",
				  fields);
	sup_run_heartbeat_done(&slot->run, sent, lease_clock_ms(), outcome, slot->lease_seconds);
}

/* Offer the child's result; true when the slot is settled. */
static bool
record_result(Worker *w, Slot *slot, int64_t now_ms)
{
	const char *values[3] = {slot->job_id, slot->lease_token, slot->run.child.output};
	PGresult   *result;
	char		fields[512],
				message[512],
				quoted[600],
				cause[600];
	CallPolicy	policy;

	result = db_call(&w->db, "SELECT vproxy.finish_job($1, $2, $3::jsonb)", 3, values, CALL_TIMEOUT_MS);
	if (result == NULL)
		return false;
	job_fields(w, slot, fields, sizeof(fields));
	if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1)
	{
		if (strcmp(PQgetvalue(result, 0, 0), "t") == 0)
			logfmt_event("info", "job_finish", "%s seconds=%.1f cpu_seconds=%.1f max_rss_mb=%ld",
					  fields, sup_run_seconds(&slot->run, now_ms),
					  sup_child_cpu_seconds(&slot->run.child),
					  slot->run.child.usage.ru_maxrss / 1024);
		else
			logfmt_event("warning", "lease_lost", "%s note=\"result not recorded\"", fields);
		PQclear(result);
		return true;
	}
	policy = call_policy(sqlstate_of(result));
	message_of(result, message, sizeof(message));
	logfmt_event("warning", "call_failed", "%s call=finish_job sqlstate=%s error=%s", fields,
			  sqlstate_of(result) ? sqlstate_of(result) : "none",
			  logfmt_quote(message, quoted, sizeof(quoted)));
	PQclear(result);
	if (policy == CALL_POLICY_BAD_DATA)
	{
		snprintf(cause, sizeof(cause), "cannot record the result: %s", message);
		return record_worker_failure(w, slot, cause, false);
	}
	if (policy == CALL_POLICY_GIVE_UP)
		return true;			/* the lease runs out */
	if (w->stopping)
	{
		const char *release[2] = {slot->job_id, slot->lease_token};

		PQclear(db_call(&w->db, "SELECT vproxy.release_job($1, $2)", 2, release, CALL_TIMEOUT_MS));
		return true;
	}
	/* keep the lease while the database is in the way; a lost one settles it */
	jobs_heartbeat(w, slot);
	return slot->run.stop == SUP_STOP_LEASE_LOST;
}

/* Tell the database what the finished run came to; the slot is freed once it has taken it. */
void
jobs_report(Worker *w, Slot *slot, int64_t now_ms)
{
	bool		settled = false;
	char		fields[512];
	const char *values[2] = {slot->job_id, slot->lease_token};
	PGresult   *result;

	job_fields(w, slot, fields, sizeof(fields));
	switch (slot->outcome.verdict)
	{
		case SUP_SUCCEEDED:
			settled = record_result(w, slot, now_ms);
			break;
		case SUP_RETRY:
		case SUP_FAIL:
			settled = record_failure(w, slot, &slot->outcome);
			break;
		case SUP_ABANDON:
			if (slot->run.stop == SUP_STOP_LEASE_EXPIRED)
				logfmt_event("warning", "job_abandoned",
						  "%s note=\"lease not renewed in time; child stopped at the fence, nothing written\"",
						  fields);
			else
				logfmt_event("warning", "job_abandoned", "%s note=\"cancelled or taken over; nothing written\"",
						  fields);
			settled = true;
			break;
		case SUP_HAND_BACK:
			result = db_call(&w->db, "SELECT vproxy.release_job($1, $2)", 2, values, CALL_TIMEOUT_MS);
			if (result == NULL)
				break;
			if (PQresultStatus(result) == PGRES_TUPLES_OK && PQntuples(result) == 1 &&
				strcmp(PQgetvalue(result, 0, 0), "t") == 0)
				logfmt_event("info", "job_released", "%s note=\"handed back on shutdown, attempt not counted\"",
						  fields);
			PQclear(result);
			settled = true;
			break;
	}
	if (settled)
		free_slot(w, slot);
	else
		slot->report_at_ms = now_ms + REPORT_RETRY_MS;
}

/* A NOTIFY on vproxy_work: work to claim, or (payload a job id) a job to check now. */
void
jobs_notified(Worker *w, const char *payload)
{
	if (payload == NULL || payload[0] == '\0')
	{
		w->woken = true;
		return;
	}
	for (int i = 0; i < w->options.concurrency; i++)
		if (w->slots[i].busy && !w->slots[i].ended && strcmp(w->slots[i].job_id, payload) == 0)
			sup_run_ask_heartbeat(&w->slots[i].run);
	/* a released or cancelled job may free a video for others */
	w->woken = true;
}
