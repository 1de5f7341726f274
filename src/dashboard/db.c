/*
 * db.c
 *		vproxy-dashboard's connections: opened with a read-only session that
 *		cannot hold anything for long, and the check at start that the role
 *		reads the queue (a failure is one line and an exit status, as for
 *		vproxy-worker).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "dashboard/dashboard.h"

/*
 * Connect and set the session up; NULL with the reason in why on failure,
 * *refused telling an authentication failure from an unreachable server.
 */
PGconn *
db_connect(const char *conninfo, char *why, size_t why_size, bool *refused)
{
	const char *keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {conninfo, "vproxy-dashboard", NULL};
	PGconn	   *conn = PQconnectdbParams(keywords, values, 1);
	PGresult   *result;

	*refused = false;
	if (conn == NULL || PQstatus(conn) != CONNECTION_OK)
	{
		*refused = conn && (PQconnectionNeedsPassword(conn) || PQconnectionUsedPassword(conn));
		text_clip_first_line(why, why_size, conn ? PQerrorMessage(conn) : "out of memory");
		PQfinish(conn);
		return NULL;
	}
	result = PQexec(conn, queries_session());
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
	{
		text_clip_first_line(why, why_size, PQerrorMessage(conn));
		PQclear(result);
		PQfinish(conn);
		return NULL;
	}
	PQclear(result);
	return conn;
}

/* Whether version ("1.2.0") is at least the one this program was built for. */
static bool
version_at_least_ours(const char *version)
{
	int			theirs[3] = {0, 0, 0};
	int			ours[3] = {0, 0, 0};

	if (sscanf(version, "%d.%d.%d", &theirs[0], &theirs[1], &theirs[2]) < 2 ||
		sscanf(dash_version(), "%d.%d.%d", &ours[0], &ours[1], &ours[2]) < 2)
		return false;
	for (int i = 0; i < 3; i++)
		if (theirs[i] != ours[i])
			return theirs[i] > ours[i];
	return true;
}

/*
 * At start: connect, check that the role reads the queue, and take the
 * storage settings (the media links and the CSP need them).  0, or the
 * exit status after one log line: 69 when the server cannot be reached or
 * holds no vproxy (or an older one than this program's), 77 when it
 * refused the role or the role lacks the monitor grants.  A role that could write the queue gets a warning: the
 * dashboard needs only to read.
 */
int
db_check_first(const char *conninfo)
{
	char		why[512];
	char		quoted[600];
	bool		refused;
	PGconn	   *conn = db_connect(conninfo, why, sizeof(why), &refused);
	PGresult   *result;
	int			status = 0;

	if (conn == NULL)
	{
		logfmt_event("error", "connect_failed", "error=%s", logfmt_quote(why, quoted, sizeof(quoted)));
		return refused ? EX_NOPERM : EX_UNAVAILABLE;
	}
	result = PQexec(conn, queries_check());
	if (PQresultStatus(result) != PGRES_TUPLES_OK || PQntuples(result) != 1)
	{
		text_clip_first_line(why, sizeof(why), PQerrorMessage(conn));
		logfmt_event("error", "connect_failed", "error=%s", logfmt_quote(why, quoted, sizeof(quoted)));
		status = EX_UNAVAILABLE;
	}
	else if (strcmp(PQgetvalue(result, 0, 1), "t") != 0)
	{
		logfmt_event("error", "no_vproxy", "database=%s note=\"no schema vproxy: CREATE EXTENSION vproxy, or connect to the database that has it\"",
				 PQgetvalue(result, 0, 4));
		status = EX_UNAVAILABLE;
	}
	else if (!PQgetisnull(result, 0, 8) && !version_at_least_ours(PQgetvalue(result, 0, 8)))
	{
		logfmt_event("error", "vproxy_too_old", "database=%s version=%s note=\"this dashboard reads vproxy %s or later: run ALTER EXTENSION vproxy UPDATE there first\"",
				 logfmt_quote(PQgetvalue(result, 0, 4), quoted, sizeof(quoted)),
				 PQgetvalue(result, 0, 8), dash_version());
		status = EX_UNAVAILABLE;
	}
	else if (strcmp(PQgetvalue(result, 0, 0), "t") != 0)
	{
		logfmt_event("error", "not_allowed", "role=%s note=\"the role needs pg_monitor, USAGE on schema vproxy, SELECT on its tables and views, EXECUTE on vproxy.worker_activity()\"",
				 logfmt_quote(PQgetvalue(result, 0, 3), quoted, sizeof(quoted)));
		status = EX_NOPERM;
	}
	else
	{
		if (strcmp(PQgetvalue(result, 0, 2), "t") == 0)
			logfmt_event("warning", "role_can_write", "role=%s note=\"the dashboard only reads: give it a role with the monitor grants alone\"",
					 logfmt_quote(PQgetvalue(result, 0, 3), quoted, sizeof(quoted)));
		logfmt_event("info", "connected", "database=%s role=%s",
				 logfmt_quote(PQgetvalue(result, 0, 4), why, sizeof(why)),
				 logfmt_quote(PQgetvalue(result, 0, 3), quoted, sizeof(quoted)));
		/* the S3 origin must be in the CSP of the first page served */
		media_storage(PQgetisnull(result, 0, 5) ? NULL : PQgetvalue(result, 0, 5),
					  PQgetvalue(result, 0, 6), PQgetvalue(result, 0, 7));
	}
	PQclear(result);
	PQfinish(conn);
	return status;
}
