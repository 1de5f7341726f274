/*
 * metrics.c
 *		/metrics in the Prometheus text format (version 0.0.4), made from the
 *		summary and workers snapshots: what the table holds now, not
 *		counters kept by this process, so that a restarted dashboard or two
 *		of them report the same numbers.  The duration histogram covers the
 *		completed jobs still in the table (vproxy.job_retention prunes
 *		them): read its quantiles straight, not through rate().
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard/dashboard.h"

/* Upper bounds (seconds) of the duration histogram, ascending. */
static const double duration_bounds[] = {0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
#define N_BOUNDS ((int) (sizeof(duration_bounds) / sizeof(duration_bounds[0])))

/* The bounds as the float8[] literal the summary query takes. */
const char *
metrics_bounds_literal(void)
{
	static char literal[256];

	if (literal[0] == '\0')
	{
		size_t		len = 0;

		literal[len++] = '{';
		for (int i = 0; i < N_BOUNDS; i++)
			len += snprintf(literal + len, sizeof(literal) - len, "%s%g", i ? "," : "", duration_bounds[i]);
		snprintf(literal + len, sizeof(literal) - len, "}");
	}
	return literal;
}

/* Write a label value with the text format's escapes (\\, \" and \n). */
static void
put_label(FILE *out, const char *value)
{
	for (const char *c = value; *c; c++)
	{
		if (*c == '\\' || *c == '"')
			fprintf(out, "\\%c", *c);
		else if (*c == '\n')
			fputs("\\n", out);
		else
			fputc(*c, out);
	}
}

/* A string member of an object, or "" when missing or not a string. */
static const char *
member_text(json_t *object, const char *key)
{
	const char *text = json_string_value(json_object_get(object, key));

	return text ? text : "";
}

/* A numeric member of an object, 0 when missing. */
static double
member_number(json_t *object, const char *key)
{
	return json_number_value(json_object_get(object, key));
}

/* A number as the text format writes it. */
static void
put_number(FILE *out, double value)
{
	if (value == (double) (long long) value && value < 1e15 && value > -1e15)
		fprintf(out, "%lld\n", (long long) value);
	else
		fprintf(out, "%.17g\n", value);
}

/*
 * One gauge of the summary's counts, summed over the error codes: its rows
 * come ordered by type, status and error code, so those of one type and
 * status are consecutive.
 */
static void
put_by_status(FILE *out, json_t *counts, const char *name, const char *member)
{
	size_t		n = json_array_size(counts);
	size_t		i = 0;

	while (i < n)
	{
		json_t	   *row = json_array_get(counts, i);
		const char *type = member_text(row, "job_type");
		const char *status = member_text(row, "status");
		double		sum = 0;

		for (; i < n; i++)
		{
			json_t	   *next = json_array_get(counts, i);

			if (strcmp(member_text(next, "job_type"), type) != 0 ||
				strcmp(member_text(next, "status"), status) != 0)
				break;
			sum += member_number(next, member);
		}
		fprintf(out, "%s{status=\"", name);
		put_label(out, status);
		fputs("\",job_type=\"", out);
		put_label(out, type);
		fputs("\"} ", out);
		put_number(out, sum);
	}
}

/*
 * The summary's counts: vproxy_jobs and vproxy_job_attempts by status and
 * type, vproxy_job_failures (failed jobs) by type and error code.
 */
static void
put_counts(FILE *out, json_t *counts)
{
	json_t	   *row;
	size_t		i;

	fputs("# HELP vproxy_jobs Jobs in vproxy.processing_jobs now, by status and type.\n"
		  "# TYPE vproxy_jobs gauge\n", out);
	put_by_status(out, counts, "vproxy_jobs", "jobs");
	fputs("# HELP vproxy_job_attempts Attempts spent by the jobs in vproxy.processing_jobs now, by status and type.\n"
		  "# TYPE vproxy_job_attempts gauge\n", out);
	put_by_status(out, counts, "vproxy_job_attempts", "attempts");
	fputs("# HELP vproxy_job_failures Failed jobs in vproxy.processing_jobs now, by type and error code (empty: none recorded).\n"
		  "# TYPE vproxy_job_failures gauge\n", out);
	json_array_foreach(counts, i, row)
	{
		if (strcmp(member_text(row, "status"), "failed") != 0)
			continue;
		fputs("vproxy_job_failures{job_type=\"", out);
		put_label(out, member_text(row, "job_type"));
		fputs("\",error_code=\"", out);
		put_label(out, member_text(row, "error_code"));
		fputs("\"} ", out);
		put_number(out, member_number(row, "jobs"));
	}
}

/* vproxy_job_attempt_failures: the failed attempts the jobs record, by type and code. */
static void
put_attempt_errors(FILE *out, json_t *attempt_errors)
{
	json_t	   *row;
	size_t		i;

	fputs("# HELP vproxy_job_attempt_failures Failed attempts recorded in the attempt_errors of the jobs in vproxy.processing_jobs now, by type and error code.\n"
		  "# TYPE vproxy_job_attempt_failures gauge\n", out);
	json_array_foreach(attempt_errors, i, row)
	{
		fputs("vproxy_job_attempt_failures{job_type=\"", out);
		put_label(out, member_text(row, "job_type"));
		fputs("\",error_code=\"", out);
		put_label(out, member_text(row, "error_code"));
		fputs("\"} ", out);
		put_number(out, member_number(row, "attempts"));
	}
}

/*
 * vproxy_job_duration_seconds: rows of the summary's durations give, per
 * type, how many completed jobs lie within how many of the largest bounds
 * (bounds_not_below = the number of bounds >= their run time); the count of
 * bound i (ascending) is the sum of the rows whose number reaches
 * N_BOUNDS - i.
 */
static void
put_durations(FILE *out, json_t *durations)
{
	size_t		i = 0;
	size_t		n = json_array_size(durations);

	fputs("# HELP vproxy_job_duration_seconds Run time (started_at to completed_at of the last attempt) of the completed jobs in vproxy.processing_jobs, by type.\n"
		  "# TYPE vproxy_job_duration_seconds histogram\n", out);
	while (i < n)
	{
		const char *type = member_text(json_array_get(durations, i), "job_type");
		double		within[N_BOUNDS + 1] = {0};
		double		count = 0;
		double		sum = 0;
		size_t		end = i;

		/* the rows of one type are consecutive (ordered by type) */
		while (end < n && strcmp(member_text(json_array_get(durations, end), "job_type"), type) == 0)
		{
			json_t	   *row = json_array_get(durations, end);
			int			reach = (int) member_number(row, "bounds_not_below");

			if (reach >= 0 && reach <= N_BOUNDS)
				within[reach] += member_number(row, "jobs");
			count += member_number(row, "jobs");
			sum += member_number(row, "seconds");
			end++;
		}
		for (int b = 0; b < N_BOUNDS; b++)
		{
			double		cumulative = 0;

			for (int reach = N_BOUNDS - b; reach <= N_BOUNDS; reach++)
				cumulative += within[reach];
			fputs("vproxy_job_duration_seconds_bucket{job_type=\"", out);
			put_label(out, type);
			fprintf(out, "\",le=\"%g\"} ", duration_bounds[b]);
			put_number(out, cumulative);
		}
		fputs("vproxy_job_duration_seconds_bucket{job_type=\"", out);
		put_label(out, type);
		fputs("\",le=\"+Inf\"} ", out);
		put_number(out, count);
		fputs("vproxy_job_duration_seconds_sum{job_type=\"", out);
		put_label(out, type);
		fputs("\"} ", out);
		put_number(out, sum);
		fputs("vproxy_job_duration_seconds_count{job_type=\"", out);
		put_label(out, type);
		fputs("\"} ", out);
		put_number(out, count);
		i = end;
	}
}

/* vproxy_workers{kind}: the workers of vproxy.workers (one per worker, not per job). */
static void
put_workers(FILE *out, json_t *workers)
{
	static const char *const kinds[] = {"in-server", "external"};
	json_t	   *row;
	size_t		i;

	fputs("# HELP vproxy_workers Workers serving the queue now (vproxy.workers), by kind.\n"
		  "# TYPE vproxy_workers gauge\n", out);
	for (int k = 0; k < 2; k++)
	{
		int			seen = 0;

		json_array_foreach(workers, i, row)
		{
			bool		first = true;
			json_t	   *other;
			size_t		j;

			if (strcmp(member_text(row, "kind"), kinds[k]) != 0)
				continue;
			/* an external worker shows one row per running job: count it once */
			json_array_foreach(workers, j, other)
			{
				if (j >= i)
					break;
				if (strcmp(member_text(other, "kind"), kinds[k]) == 0 &&
					strcmp(member_text(other, "name"), member_text(row, "name")) == 0 &&
					member_number(other, "pid") == member_number(row, "pid") &&
					strcmp(member_text(other, "host"), member_text(row, "host")) == 0)
					first = false;
			}
			seen += first;
		}
		fprintf(out, "vproxy_workers{kind=\"%s\"} %d\n", kinds[k], seen);
	}
	fputs("# HELP vproxy_workers_busy Jobs the workers run now, by kind.\n"
		  "# TYPE vproxy_workers_busy gauge\n", out);
	for (int k = 0; k < 2; k++)
	{
		int			busy = 0;

		json_array_foreach(workers, i, row)
			busy += strcmp(member_text(row, "kind"), kinds[k]) == 0 &&
			json_is_string(json_object_get(row, "job_id"));
		fprintf(out, "vproxy_workers_busy{kind=\"%s\"} %d\n", kinds[k], busy);
	}
}

/*
 * The whole exposition; malloc'd, its length in *len.  summary and workers
 * are the parsed snapshots, taken the given number of seconds ago.
 */
char *
metrics_text(json_t *summary, json_t *workers, double summary_age, double workers_age, size_t *len)
{
	char	   *text = NULL;
	FILE	   *out = open_memstream(&text, len);
	json_t	   *oldest;

	if (out == NULL)
		return NULL;
	put_counts(out, json_object_get(summary, "counts"));
	put_attempt_errors(out, json_object_get(summary, "attempt_errors"));
	put_durations(out, json_object_get(summary, "durations"));
	oldest = json_object_get(summary, "oldest_pending");
	fputs("# HELP vproxy_queue_oldest_pending_seconds How long the runnable pending job that waited longest has waited (since its run_at); 0 when none waits.\n"
		  "# TYPE vproxy_queue_oldest_pending_seconds gauge\n"
		  "vproxy_queue_oldest_pending_seconds ", out);
	put_number(out, json_is_object(oldest) ? member_number(oldest, "waiting_seconds") : 0);
	put_workers(out, workers);
	fprintf(out, "# HELP vproxy_dashboard_data_age_seconds How old the snapshot these values come from is, by view.\n"
			"# TYPE vproxy_dashboard_data_age_seconds gauge\n"
			"vproxy_dashboard_data_age_seconds{view=\"summary\"} %.3f\n"
			"vproxy_dashboard_data_age_seconds{view=\"workers\"} %.3f\n", summary_age, workers_age);
	fprintf(out, "# HELP vproxy_dashboard_events_clients Browsers and other clients connected to /events.\n"
			"# TYPE vproxy_dashboard_events_clients gauge\n"
			"vproxy_dashboard_events_clients %d\n", events_clients());
	if (fclose(out) != 0)
	{
		free(text);
		return NULL;
	}
	return text;
}
