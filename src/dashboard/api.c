/*
 * api.c
 *		The JSON the page reads and /metrics: each answer is a view's
 *		snapshot (views.c), never a query of its own.
 *
 *		/api/summary		counts, last hour, history, oldest waiting, failures
 *		/api/workers		vproxy.workers
 *		/api/jobs?status=&type=&tenant=&before=US_ID	one page, newest first
 *		/api/job/UUID		one job, its video, its media links
 *		/api/session		whether a token is required, the version
 *		/metrics			Prometheus text format
 *
 *		?after_event=ID (an /events id) asks for data taken after that event
 *		was published: the page shows a job's end that way.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard/dashboard.h"

/* Whether text is a UUID in its canonical 8-4-4-4-12 form. */
static bool
is_uuid(const char *text)
{
	if (strlen(text) != UUID_TEXT_LEN)
		return false;
	for (int i = 0; i < UUID_TEXT_LEN; i++)
	{
		bool		dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? text[i] != '-' : !isxdigit((unsigned char) text[i]))
			return false;
	}
	return true;
}

/* Copy a query argument into dest if it is at most size - 1 bytes with no control character. */
static bool
take_argument(struct MHD_Connection *connection, const char *name, char *dest, size_t size)
{
	const char *value = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, name);

	dest[0] = '\0';
	if (value == NULL)
		return true;
	if (strlen(value) >= size)
		return false;
	for (const char *c = value; *c; c++)
		if ((unsigned char) *c < ' ' || *c == 0x7f)
			return false;
	strcpy(dest, value);
	return true;
}

/* The job list's filters and cursor from the query string; false if one is malformed. */
static bool
jobs_spec(struct MHD_Connection *connection, ViewSpec *spec)
{
	static const char *const statuses[] = {"", "pending", "running", "completed", "failed", "cancelled"};
	char		before[64];
	bool		known = false;
	const char *sep;

	if (!take_argument(connection, "status", spec->status, sizeof(spec->status)) ||
		!take_argument(connection, "type", spec->job_type, sizeof(spec->job_type)) ||
		!take_argument(connection, "tenant", spec->tenant, sizeof(spec->tenant)) ||
		!take_argument(connection, "before", before, sizeof(before)))
		return false;
	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		known |= strcmp(spec->status, statuses[i]) == 0;
	if (!known)
		return false;
	for (const char *c = spec->job_type; *c; c++)
		if (!(*c == '_' || (*c >= 'a' && *c <= 'z')))
			return false;
	if (before[0] == '\0')
		return true;
	/* the cursor: created_at in microseconds since the epoch, "_", the id */
	sep = strchr(before, '_');
	if (sep == NULL || sep == before || (size_t) (sep - before) >= sizeof(spec->before_us) ||
		!is_uuid(sep + 1))
		return false;
	for (const char *c = before; c < sep; c++)
		if (!isdigit((unsigned char) *c) && !(c == before && *c == '-'))
			return false;
	memcpy(spec->before_us, before, sep - before);
	spec->before_us[sep - before] = '\0';
	strcpy(spec->before_id, sep + 1);
	return true;
}

/* Send a JSON error with a status. */
static enum MHD_Result
send_error(struct MHD_Connection *connection, unsigned int status, const char *why)
{
	json_t	   *object = json_pack("{s:s}", "error", why);
	char	   *text = json_dumps(object, JSON_COMPACT);
	enum MHD_Result ret = http_send(connection, status, "application/json; charset=utf-8",
									text ? text : "{}");

	json_decref(object);
	free(text);
	return ret;
}

/* /api/session: what the page needs to know about this dashboard. */
static enum MHD_Result
send_session(struct MHD_Connection *connection)
{
	json_t	   *object = json_pack("{s:b,s:s}", "auth", auth_enabled(), "version", dash_version());
	char	   *text = json_dumps(object, JSON_COMPACT);
	enum MHD_Result ret = http_send(connection, MHD_HTTP_OK, "application/json; charset=utf-8",
									text ? text : "{}");

	json_decref(object);
	free(text);
	return ret;
}

/*
 * Answer an API path or /metrics from its views' snapshots; when a view must
 * be refreshed first, the connection is suspended and MHD_YES returned: the
 * request comes back here once it is.
 */
enum MHD_Result
api_handle(struct MHD_Connection *connection, const char *url, Waiter *waiter)
{
	ViewSpec	specs[2];
	Snapshot   *snapshots[2] = {NULL, NULL};
	int			n = 1;
	const char *after_event = MHD_lookup_connection_value(connection, MHD_GET_ARGUMENT_KIND, "after_event");
	enum MHD_Result ret;

	memset(specs, 0, sizeof(specs));
	if (strcmp(url, "/api/session") == 0)
		return send_session(connection);
	if (strcmp(url, "/api/summary") == 0)
		specs[0].kind = VIEW_SUMMARY;
	else if (strcmp(url, "/api/workers") == 0)
		specs[0].kind = VIEW_WORKERS;
	else if (strcmp(url, "/metrics") == 0)
	{
		specs[0].kind = VIEW_SUMMARY;
		specs[1].kind = VIEW_WORKERS;
		n = 2;
	}
	else if (strcmp(url, "/api/jobs") == 0)
	{
		specs[0].kind = VIEW_JOBS;
		if (!jobs_spec(connection, &specs[0]))
			return send_error(connection, MHD_HTTP_BAD_REQUEST,
							  "status, type, tenant or before is malformed");
	}
	else if (strncmp(url, "/api/job/", 9) == 0)
	{
		specs[0].kind = VIEW_JOB;
		if (!is_uuid(url + 9))
			return send_error(connection, MHD_HTTP_NOT_FOUND, "no such job");
		strcpy(specs[0].job_id, url + 9);
	}
	else
		return send_error(connection, MHD_HTTP_NOT_FOUND, "no such page");

	if (!views_fetch(specs, n, after_event ? events_published_ms(after_event) : 0, snapshots, waiter))
		return MHD_YES;			/* suspended until the views are refreshed */
	if (snapshots[0] == NULL || (n == 2 && snapshots[1] == NULL))
		ret = send_error(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
						 views_stopping() ? "the dashboard is stopping" : "too many views at once");
	else if (n == 1)
		ret = MHD_queue_response(connection, snapshots[0]->status, snapshots[0]->response);
	else if (snapshots[0]->status != MHD_HTTP_OK || snapshots[1]->status != MHD_HTTP_OK ||
			 snapshots[0]->data == NULL || snapshots[1]->data == NULL)
		ret = http_send(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain; charset=utf-8",
						"the database cannot be read now: see the dashboard's log\n");
	else
	{
		struct MHD_Response *response = views_metrics(snapshots[0], snapshots[1]);

		ret = response ? MHD_queue_response(connection, MHD_HTTP_OK, response) : MHD_NO;
		if (response)
			MHD_destroy_response(response);
	}
	views_release(snapshots, n);
	return ret;
}
