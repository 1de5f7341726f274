/*
 * queries.c
 *		Every statement vproxy-dashboard sends, in one place: the session's
 *		settings and the check at start, one per view, each a single SELECT
 *		that PostgreSQL answers with one JSON document, and the LISTEN of the
 *		listener.  They read only what the monitor
 *		role may read (tables and views of schema vproxy, which call
 *		vproxy.worker_activity() and pg_settings).  JSON numbers come out as
 *		PostgreSQL prints them; times as ISO 8601 in UTC (the session's
 *		TimeZone).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard/dashboard.h"

/* rows of the job list per page */
#define JOBS_PAGE_SIZE "50"

/*
 * The overview, over one snapshot of the table:
 * - counts: jobs by type, status and error code now, with their attempts;
 * - attempt_errors: the failed attempts the jobs record (attempt_errors),
 *   by type and error code, and how many of them in the last hour;
 * - durations: completed jobs by type and by how many of the histogram's
 *   bounds ($1, ascending) their run time does not exceed (width_bucket of
 *   the negated time over the negated bounds counts the bounds >= it);
 * - last_hour: jobs ended in the last hour by type and status, with the
 *   50th and 95th percentiles of their run time;
 * - history: for 61 points a minute apart ending now, the pending and the
 *   running jobs of each type, rebuilt from the jobs' created_at,
 *   started_at and completed_at (a job waiting for a retry counts as
 *   pending since it was created); width_bucket over the points (a binary
 *   search, three times cheaper than arithmetic on each row's times) gives
 *   the first point after each of them;
 * - ended_per_minute: jobs completed, failed and cancelled in each of the
 *   60 minutes;
 * - oldest_pending: the runnable job that has waited longest (from its
 *   run_at: a retry waits from when it became due), found by one probe of
 *   the queue index per priority (0 to 9) instead of a sort of the queue;
 * - failed_last_hour: jobs failed in the last hour by error code;
 * - recent_failures: the 20 newest failed jobs with their cause.
 */
static const char *const summary_sql =
"WITH clock AS MATERIALIZED ("
"	SELECT now() AS t1, now() - interval '60 minutes' AS t0,"
"		   array(SELECT now() - interval '60 minutes' + k * interval '1 minute'"
"				   FROM generate_series(0, 60) k ORDER BY k) AS points),"
"counts AS ("
"	SELECT j.job_type, j.status, j.error_code, count(*) AS jobs, sum(j.attempts) AS attempts"
"	  FROM vproxy.processing_jobs j"
"	 GROUP BY j.job_type, j.status, j.error_code),"
"attempt_errors AS ("
"	SELECT j.job_type, e.value ->> 'code' AS error_code, count(*) AS attempts,"
"		   count(*) FILTER (WHERE (e.value ->> 'at')::timestamptz > c.t0) AS last_hour"
"	  FROM clock c"
"	  JOIN vproxy.processing_jobs j ON j.attempt_errors <> '[]'::jsonb"
"	 CROSS JOIN LATERAL jsonb_array_elements(j.attempt_errors) e"
"	 GROUP BY 1, 2),"
"failed_last_hour AS ("
"	SELECT j.error_code, count(*) AS jobs"
"	  FROM vproxy.processing_jobs j, clock c"
"	 WHERE j.status = 'failed' AND j.completed_at > c.t0"
"	 GROUP BY 1),"
"durations AS ("
"	SELECT j.job_type,"
"		   width_bucket(-d.seconds, (SELECT array_agg(-b ORDER BY b DESC) FROM unnest($1::float8[]) b))"
"			   AS bounds_not_below,"
"		   count(*) AS jobs, sum(d.seconds) AS seconds"
"	  FROM vproxy.processing_jobs j"
"	 CROSS JOIN LATERAL (SELECT greatest(date_part('epoch', j.completed_at - j.started_at), 0) AS seconds) d"
"	 WHERE j.status = 'completed' AND j.started_at IS NOT NULL AND j.completed_at IS NOT NULL"
"	 GROUP BY 1, 2),"
"last_hour AS ("
"	SELECT j.job_type, j.status, count(*) AS jobs,"
"		   percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(date_part('epoch', j.completed_at - j.started_at), 0)) AS p50,"
"		   percentile_cont(0.95) WITHIN GROUP (ORDER BY greatest(date_part('epoch', j.completed_at - j.started_at), 0)) AS p95"
"	  FROM vproxy.processing_jobs j, clock c"
"	 WHERE j.status IN ('completed', 'failed', 'cancelled') AND j.completed_at > c.t0"
"	 GROUP BY 1, 2),"
"window_jobs AS ("
"	SELECT j.job_type, j.status, width_bucket(j.created_at, c.points) AS created_k,"
"		   CASE WHEN j.status <> 'pending' THEN width_bucket(j.started_at, c.points) END AS started_k,"
"		   width_bucket(j.completed_at, c.points) AS ended_k, count(*) AS jobs"
"	  FROM vproxy.processing_jobs j, clock c"
"	 WHERE j.completed_at IS NULL OR j.completed_at > c.t0"
"	 GROUP BY 1, 2, 3, 4, 5),"
"deltas AS ("
"	SELECT w.job_type, x.k, sum(x.alive) AS alive, sum(x.running) AS running"
"	  FROM window_jobs w"
"	 CROSS JOIN LATERAL (VALUES (w.created_k, w.jobs, 0), (w.ended_k, -w.jobs, 0),"
"								(w.started_k, 0, w.jobs),"
"								(CASE WHEN w.started_k IS NOT NULL THEN w.ended_k END, 0, -w.jobs))"
"		   AS x (k, alive, running)"
"	 WHERE x.k IS NOT NULL AND x.k <= 60"
"	 GROUP BY 1, 2),"
"depth AS ("
"	SELECT t.job_type, k.k,"
"		   sum(coalesce(d.alive, 0) - coalesce(d.running, 0)) OVER w AS pending,"
"		   sum(coalesce(d.running, 0)) OVER w AS running"
"	  FROM (SELECT DISTINCT job_type FROM deltas) t"
"	 CROSS JOIN generate_series(0, 60) k (k)"
"	  LEFT JOIN deltas d ON d.job_type = t.job_type AND d.k = k.k"
"	WINDOW w AS (PARTITION BY t.job_type ORDER BY k.k)),"
"history AS ("
"	SELECT d.job_type, array_agg(d.pending ORDER BY d.k) AS pending,"
"		   array_agg(d.running ORDER BY d.k) AS running"
"	  FROM depth d"
"	 GROUP BY d.job_type),"
"ended AS ("
"	SELECT s.status, array_agg(coalesce(n.jobs, 0) ORDER BY k.k) AS jobs"
"	  FROM (VALUES ('completed'), ('failed'), ('cancelled')) s (status)"
"	 CROSS JOIN generate_series(1, 60) k (k)"
"	  LEFT JOIN (SELECT w.status, w.ended_k, sum(w.jobs) AS jobs FROM window_jobs w"
"				  WHERE w.ended_k BETWEEN 1 AND 60 GROUP BY 1, 2) n"
"		ON n.status = s.status AND n.ended_k = k.k"
"	 GROUP BY s.status),"
"oldest AS ("
"	SELECT o.job_id, o.video_id, v.filename, v.mall_id, o.job_type, o.attempts, o.run_at,"
"		   o.created_at, greatest(date_part('epoch', c.t1 - o.run_at), 0) AS waiting_seconds"
"	  FROM clock c"
"	 CROSS JOIN generate_series(0, 9) p (priority)"
"	 CROSS JOIN LATERAL (SELECT j.id AS job_id, j.video_id, j.job_type, j.attempts, j.run_at, j.created_at"
"						   FROM vproxy.processing_jobs j"
"						  WHERE j.status = 'pending' AND j.priority = p.priority AND j.run_at <= c.t1"
"						  ORDER BY j.run_at, j.created_at"
"						  LIMIT 1) o"
"	  LEFT JOIN vproxy.videos v ON v.id = o.video_id"
"	 ORDER BY o.run_at, o.created_at"
"	 LIMIT 1),"
"failures AS ("
"	SELECT j.id AS job_id, j.video_id, v.filename, v.mall_id, j.job_type, j.attempts,"
"		   j.max_attempts, j.error_code, j.error_message, j.started_at, j.completed_at"
"	  FROM vproxy.processing_jobs j"
"	  LEFT JOIN vproxy.videos v ON v.id = j.video_id"
"	 WHERE j.status = 'failed'"
"	 ORDER BY j.completed_at DESC, j.id"
"	 LIMIT 20)"
"SELECT json_build_object("
"	'generated_at', c.t1,"
"	'window', json_build_object('start', c.t0, 'step_seconds', 60, 'points', 61),"
"	'counts', coalesce((SELECT json_agg(x ORDER BY x.job_type, x.status, x.error_code) FROM counts x), '[]'),"
"	'attempt_errors', coalesce((SELECT json_agg(x ORDER BY x.job_type, x.error_code) FROM attempt_errors x), '[]'),"
"	'failed_last_hour', coalesce((SELECT json_agg(x ORDER BY x.jobs DESC, x.error_code) FROM failed_last_hour x), '[]'),"
"	'durations', coalesce((SELECT json_agg(x ORDER BY x.job_type, x.bounds_not_below) FROM durations x), '[]'),"
"	'last_hour', coalesce((SELECT json_agg(x ORDER BY x.job_type, x.status) FROM last_hour x), '[]'),"
"	'history', coalesce((SELECT json_agg(x ORDER BY x.job_type) FROM history x), '[]'),"
"	'ended_per_minute', coalesce((SELECT json_agg(x ORDER BY x.status) FROM ended x), '[]'),"
"	'oldest_pending', (SELECT row_to_json(x) FROM oldest x),"
"	'recent_failures', coalesce((SELECT json_agg(x ORDER BY x.completed_at DESC, x.job_id) FROM failures x), '[]'))"
"  FROM clock c";

/* The workers in the server and outside it, as vproxy.workers shows them. */
static const char *const workers_sql =
"SELECT coalesce(json_agg(w ORDER BY w.kind DESC, w.name, w.job_id), '[]')"
"  FROM (SELECT w.kind, w.name, w.host, w.pid, w.state, w.job_id, w.video_id, w.job_type,"
"			   w.filename, w.attempt, w.progress, w.stage, w.state_since, w.job_started_at,"
"			   w.last_heartbeat"
"		  FROM vproxy.workers w) w";

/*
 * One page of jobs, newest first, filtered by status ($1), type ($2) and
 * tenant ($3) when not empty, after the keyset cursor ($4 created_at in
 * microseconds since the epoch, $5 id) when given; one row more than a
 * page tells whether another page follows.  The segments of split proxies
 * show on their parent's page, and in the list only when asked for by type.
 */
static const char *const jobs_sql =
"WITH page AS ("
"	SELECT j.id, j.video_id, v.filename, v.mall_id, j.job_type, j.status, j.priority,"
"		   j.attempts, j.max_attempts, j.progress, j.created_at, j.run_at, j.started_at,"
"		   j.completed_at, j.error_code, j.error_message, j.parent_job_id,"
"		   (extract(epoch FROM j.created_at) * 1000000)::bigint::text AS cursor_us"
"	  FROM vproxy.processing_jobs j"
"	  LEFT JOIN vproxy.videos v ON v.id = j.video_id"
"	 WHERE ($1 = '' OR j.status = $1)"
"	   AND ($2 = '' OR j.job_type = $2)"
"	   AND (j.parent_job_id IS NULL OR $2 = 'proxy_segment')"
"	   AND ($3 = '' OR v.mall_id = $3)"
"	   AND ($4::bigint IS NULL"
"			OR (j.created_at, j.id) < ('epoch'::timestamptz + ($4::bigint || ' microseconds')::interval, $5::uuid))"
"	 ORDER BY j.created_at DESC, j.id DESC"
"	 LIMIT " JOBS_PAGE_SIZE " + 1)"
"SELECT json_build_object("
"	'generated_at', now(),"
"	'jobs', coalesce((SELECT json_agg(p ORDER BY p.created_at DESC, p.id DESC)"
"					   FROM (SELECT * FROM page ORDER BY created_at DESC, id DESC LIMIT " JOBS_PAGE_SIZE ") p), '[]'),"
"	'more', (SELECT count(*) > " JOBS_PAGE_SIZE " FROM page))";

/*
 * One job ($1) with its video, its segments (a split proxy's, in the order
 * they were made, then of their parameters: jsonb orders numbers as
 * numbers) and the video's other jobs; the lease token (the fencing token of the attempt in
 * progress) and the planned output keys (the claim's, internal) are left
 * out.  Then the keys the media links are made of and the storage settings
 * (none secret).
 */
static const char *const job_sql =
"SELECT json_build_object("
"	'generated_at', now(),"
"	'job', to_jsonb(j) - 'lease_token' - 'planned_outputs',"
"	'video', to_jsonb(v),"
"	'video_jobs', (SELECT coalesce(json_agg(o ORDER BY o.created_at DESC, o.id), '[]')"
"					 FROM (SELECT o.id, o.job_type, o.status, o.attempts, o.created_at,"
"								  o.completed_at, o.error_code, o.error_message"
"							 FROM vproxy.processing_jobs o"
"							WHERE o.video_id = j.video_id AND o.parent_job_id IS NULL"
"							ORDER BY o.created_at DESC, o.id LIMIT 20) o),"
"	'segments', (SELECT coalesce(json_agg(s ORDER BY s.created_at, s.params, s.id), '[]')"
"				   FROM (SELECT s.id, s.status, s.params, s.attempts, s.max_attempts, s.progress,"
"								s.started_at, s.completed_at, s.error_code, s.error_message, s.created_at"
"						   FROM vproxy.processing_jobs s"
"						  WHERE s.parent_job_id = j.id) s)),"
"	   v.proxy_path, v.thumbnail_path, current_setting('vproxy.storage_url', true),"
"	   current_setting('vproxy.s3_endpoint', true), current_setting('vproxy.s3_region', true)"
"  FROM vproxy.processing_jobs j"
"  LEFT JOIN vproxy.videos v ON v.id = j.video_id"
" WHERE j.id = $1";

/*
 * The session every dashboard connection gets, whatever the role or database
 * set: read-only, no statement longer than 10 s, no lock waited for long,
 * times in UTC, no JIT (the same short queries run again and again), and
 * only pg_catalog for the names the queries leave unqualified (the
 * database's owner could put its own of those names first).
 */
const char *
queries_session(void)
{
	return "SET search_path = pg_catalog, pg_temp; "
		"SET default_transaction_read_only = on; SET statement_timeout = '10s'; "
		"SET lock_timeout = '2s'; SET idle_in_transaction_session_timeout = '10s'; "
		"SET TimeZone = 'UTC'; SET jit = off";
}

/*
 * The check at start, in one row: whether the role reads the queue (by oid:
 * a name would raise "permission denied for schema" instead), whether
 * schema vproxy exists, whether the role could write the queue, the role,
 * the database, the storage settings (the media links and the CSP) and
 * the version of the extension (the statements above need the schema of
 * the version this program was built with, or a later one).
 */
const char *
queries_check(void)
{
	return "SELECT coalesce(has_schema_privilege(n.oid, 'USAGE') "
		"       AND (SELECT count(*) = 3 AND bool_and(has_table_privilege(c.oid, 'SELECT')) "
		"              FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid "
		"               AND c.relname IN ('processing_jobs', 'videos', 'workers')) "
		"       AND (SELECT bool_and(has_function_privilege(p.oid, 'EXECUTE')) "
		"              FROM pg_catalog.pg_proc p WHERE p.pronamespace = n.oid "
		"               AND p.proname = 'worker_activity'), false), "
		"       n.oid IS NOT NULL, "
		"       (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) "
		"       OR coalesce((SELECT bool_or(has_table_privilege(c.oid, 'INSERT, UPDATE, DELETE')) "
		"                      FROM pg_catalog.pg_class c WHERE c.relnamespace = n.oid "
		"                       AND c.relkind = 'r'), false), "
		"       current_user, current_database(), "
		"       current_setting('vproxy.storage_url', true), "
		"       current_setting('vproxy.s3_endpoint', true), current_setting('vproxy.s3_region', true), "
		"       (SELECT e.extversion FROM pg_catalog.pg_extension e WHERE e.extname = 'vproxy') "
		"  FROM (SELECT) AS one LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'vproxy'";
}

/* The listener's one statement. */
const char *
queries_listen(void)
{
	return "LISTEN vproxy_jobs";
}

/* An error document {"error": why}, malloc'd. */
static char *
error_json(const char *why)
{
	json_t	   *object = json_pack("{s:s}", "error", why);
	char	   *text = json_dumps(object, JSON_COMPACT);

	json_decref(object);
	return text;
}

/*
 * Run the view's statement; the JSON document to serve (malloc'd), its
 * HTTP status in *status: 200, 404 (no such job) or 503 (the database
 * failed: why says how, and the document says it too).
 */
char *
queries_run(PGconn *conn, const ViewSpec *spec, unsigned int *status, char *why, size_t why_size)
{
	const char *sql = NULL;
	const char *params[5] = {NULL};
	int			nparams = 0;
	PGresult   *result;
	char	   *text;

	switch (spec->kind)
	{
		case VIEW_SUMMARY:
			sql = summary_sql;
			params[0] = metrics_bounds_literal();
			nparams = 1;
			break;
		case VIEW_WORKERS:
			sql = workers_sql;
			break;
		case VIEW_JOBS:
			sql = jobs_sql;
			params[0] = spec->status;
			params[1] = spec->job_type;
			params[2] = spec->tenant;
			params[3] = spec->before_us[0] ? spec->before_us : NULL;
			params[4] = spec->before_id[0] ? spec->before_id : NULL;
			nparams = 5;
			break;
		case VIEW_JOB:
			sql = job_sql;
			params[0] = spec->job_id;
			nparams = 1;
			break;
	}
	result = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(result) != PGRES_TUPLES_OK)
	{
		text_clip_first_line(why, why_size, PQresultErrorMessage(result));
		PQclear(result);
		*status = MHD_HTTP_SERVICE_UNAVAILABLE;
		return error_json(why);
	}
	if (PQntuples(result) == 0)
	{
		PQclear(result);
		*status = MHD_HTTP_NOT_FOUND;
		return error_json("no such job (it may have been pruned)");
	}
	if (spec->kind == VIEW_JOB)
	{
		media_storage(PQgetisnull(result, 0, 3) ? NULL : PQgetvalue(result, 0, 3),
					  PQgetvalue(result, 0, 4), PQgetvalue(result, 0, 5));
		text = media_splice_urls(PQgetvalue(result, 0, 0),
								 PQgetisnull(result, 0, 1) ? NULL : PQgetvalue(result, 0, 1),
								 PQgetisnull(result, 0, 2) ? NULL : PQgetvalue(result, 0, 2));
	}
	else
		text = strdup(PQgetvalue(result, 0, 0));
	PQclear(result);
	*status = MHD_HTTP_OK;
	return text;
}
