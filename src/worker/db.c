/*
 * db.c
 *		vproxy-worker's connection: the first connect (blocking; a failure is
 *		one line and an exit status), reconnects with jittered backoff that
 *		never block the supervision of the children, calls with a deadline
 *		(a server that stops answering counts as a lost connection), and
 *		LISTEN vproxy_work for the wake-ups of enqueue, retry, release and
 *		cancel.  What the worker does meanwhile (check in, take a NOTIFY,
 *		keep its children's pipes flowing and their fences kept) comes
 *		through the hooks of Db: this file knows nothing of jobs.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/text_clip.h"
#include "worker/worker.h"

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 30000
/* while a call waits, the hooks are served at least this often (fences, SIGKILLs) */
#define HOOK_PERIOD_MS 100

/*
 * The session the worker's calls expect, whatever the role or database set;
 * the search_path too: the calls name built-in types without their schema,
 * and the database's owner could put its own of those names first.
 */
static const char *const session_setup =
"SET search_path = pg_catalog, pg_temp; "
"SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; "
"SET lock_timeout = '5s'; SET default_transaction_isolation = 'read committed'; "
"SET default_transaction_read_only = off";

/* Start a connection with the worker's application name. */
static PGconn *
start_connection(const Db *db)
{
	const char *keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {db->conninfo, db->application_name, NULL};

	return PQconnectStartParams(keywords, values, 1);
}

/* Run a utility statement of the session set-up; false (connection closed) on failure. */
static bool
set_up_statement(Db *db, const char *sql)
{
	PGresult   *result = PQexec(db->conn, sql);
	bool		ok = PQresultStatus(result) == PGRES_COMMAND_OK;
	char		why[512];

	PQclear(result);
	if (!ok)
	{
		text_clip_first_line(why, sizeof(why), PQerrorMessage(db->conn));
		db_lost(db, why);
	}
	return ok;
}

/* Session settings, LISTEN, check-in: the connection is then ready. */
static bool
set_up_session(Db *db)
{
	PQsetnonblocking(db->conn, 0);
	if (!set_up_statement(db, session_setup))
		return false;
	if (db->listen && !set_up_statement(db, "LISTEN vproxy_work"))
		return false;
	db->ready = true;
	if (!db->hooks.session_ready(db->hooks.arg))
		return false;
	db->backoff_ms = 0;
	return true;
}

/*
 * The SQLSTATE in a verbose libpq message ("...: FATAL:  28P01: password
 * authentication failed..."), taken out of the message; false if none.
 */
static bool
take_sqlstate(char *message, char sqlstate[6])
{
	for (char *c = strstr(message, ":  "); c != NULL; c = strstr(c + 1, ":  "))
	{
		char	   *code = c + 3;
		bool		plain = true;

		for (int i = 0; i < 5 && plain; i++)
			plain = (code[i] >= '0' && code[i] <= '9') || (code[i] >= 'A' && code[i] <= 'Z');
		if (!plain || code[5] != ':' || code[6] != ' ')
			continue;
		memcpy(sqlstate, code, 5);
		sqlstate[5] = '\0';
		memmove(code, code + 7, strlen(code + 7) + 1);
		return true;
	}
	return false;
}

/*
 * Whether a failed first connect was the server refusing this worker, as
 * opposed to not being reached: authentication (class 28: a wrong or missing
 * password, an unknown role, a role that may not log in, no pg_hba.conf
 * line), an unknown database (3D000), no CONNECT privilege (42501).
 */
static bool
refused(PGconn *conn, const char *sqlstate)
{
	if (PQconnectionNeedsPassword(conn))
		return true;
	if (sqlstate[0] == '\0')
		return false;
	return strncmp(sqlstate, "28", 2) == 0 || strcmp(sqlstate, "3D000") == 0 ||
		strcmp(sqlstate, "42501") == 0;
}

/* Connect, waiting for it, with the server's SQLSTATE in the message of a failure. */
static PGconn *
connect_blocking(const Db *db)
{
	PGconn	   *conn = start_connection(db);
	PostgresPollingStatusType state = PGRES_POLLING_WRITING;

	if (conn == NULL || PQstatus(conn) == CONNECTION_BAD)
		return conn;
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	while (state != PGRES_POLLING_OK && state != PGRES_POLLING_FAILED)
	{
		struct pollfd fd = {PQsocket(conn), state == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};

		if (poll(&fd, 1, -1) < 0 && errno != EINTR)
			break;
		state = PQconnectPoll(conn);
	}
	PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
	return conn;
}

/*
 * Connect at start: 0, or the exit status after one line on stderr (a
 * crash loop would not fix a wrong password): 77 when the server refused
 * this worker (authentication, an unknown role or database, or the
 * check-in was denied), 69 when it could not be reached or cannot take a
 * connection now.
 */
int
db_connect_first(Db *db)
{
	char		why[512];
	char		quoted[600];
	char		sqlstate[6] = "";

	db->conn = connect_blocking(db);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
	{
		int			status;

		text_clip_first_line(why, sizeof(why), db->conn ? PQerrorMessage(db->conn) : "out of memory");
		(void) take_sqlstate(why, sqlstate);
		status = db->conn && refused(db->conn, sqlstate) ? EX_NOPERM : EX_UNAVAILABLE;
		logfmt_event("error", "connect_failed", "sqlstate=%s error=%s", sqlstate[0] ? sqlstate : "none",
				  logfmt_quote(why, quoted, sizeof(quoted)));
		PQfinish(db->conn);
		db->conn = NULL;
		return status;
	}
	if (!set_up_session(db))
	{
		if (db->ready)
			return EX_NOPERM;	/* connected, but the check-in was refused */
		logfmt_event("error", "connect_failed", "error=%s",
				  logfmt_quote(db->last_error, quoted, sizeof(quoted)));
		return EX_UNAVAILABLE;
	}
	logfmt_event("info", "connected", "database=%s host=%s",
			  logfmt_quote(PQdb(db->conn), quoted, sizeof(quoted)),
			  PQhost(db->conn) ? PQhost(db->conn) : "local");
	return 0;
}

/* The connection is gone (or no longer trusted): close it and plan a reconnect. */
void
db_lost(Db *db, const char *why)
{
	char		quoted[600];
	int			delay;

	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
	db->ready = false;
	db->connecting = false;
	db->backoff_ms = db->backoff_ms == 0 ? BACKOFF_FIRST_MS :
		(db->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : db->backoff_ms * 2);
	/* full jitter on the upper half: workers cut off together come back apart */
	delay = db->backoff_ms / 2 + (int) (random() % (db->backoff_ms / 2 + 1));
	db->retry_at_ms = lease_clock_ms() + delay;
	if (strcmp(why, db->last_error) != 0 || db->backoff_ms == BACKOFF_FIRST_MS)
		logfmt_event("warning", "connection_lost", "retry_in_ms=%d error=%s", delay,
				  logfmt_quote(why, quoted, sizeof(quoted)));
	snprintf(db->last_error, sizeof(db->last_error), "%s", why);
}

/* Move a reconnect on: start it when due, finish it when libpq says so. */
void
db_step(Db *db, int64_t now_ms)
{
	char		why[512];

	if (db->ready)
		return;
	if (!db->connecting)
	{
		if (now_ms < db->retry_at_ms)
			return;
		db->conn = start_connection(db);
		if (db->conn == NULL || PQstatus(db->conn) == CONNECTION_BAD)
		{
			text_clip_first_line(why, sizeof(why), db->conn ? PQerrorMessage(db->conn) : "out of memory");
			db_lost(db, why);
			return;
		}
		db->connecting = true;
	}
	switch (PQconnectPoll(db->conn))
	{
		case PGRES_POLLING_READING:
			db->connect_wants = POLLIN;
			break;
		case PGRES_POLLING_WRITING:
			db->connect_wants = POLLOUT;
			break;
		case PGRES_POLLING_OK:
			db->connecting = false;
			if (set_up_session(db))
			{
				logfmt_event("info", "reconnected", NULL);
				db->last_error[0] = '\0';
			}
			break;
		case PGRES_POLLING_FAILED:
			text_clip_first_line(why, sizeof(why), PQerrorMessage(db->conn));
			db_lost(db, why);
			break;
		default:
			break;
	}
}

/* The socket to poll and for what (POLLIN/POLLOUT), 0 if none. */
int
db_poll_events(const Db *db, int *fd)
{
	*fd = db->conn ? PQsocket(db->conn) : -1;
	if (*fd < 0)
		return 0;
	if (db->connecting)
		return db->connect_wants;
	return db->ready ? POLLIN : 0;
}

/* Take the notifications that have arrived. */
static void
take_notifications(Db *db)
{
	PGnotify   *notify;

	while ((notify = PQnotifies(db->conn)) != NULL)
	{
		db->hooks.notified(db->hooks.arg, notify->extra);
		PQfreemem(notify);
	}
}

/* The socket is readable (or a connect is under way): read and dispatch. */
void
db_socket_ready(Db *db)
{
	char		why[512];

	if (db->connecting)
	{
		db_step(db, lease_clock_ms());
		return;
	}
	if (!db->ready)
		return;
	if (!PQconsumeInput(db->conn))
	{
		text_clip_first_line(why, sizeof(why), PQerrorMessage(db->conn));
		db_lost(db, why);
		return;
	}
	take_notifications(db);
}

/*
 * Run one statement with text parameters and wait at most timeout_ms for
 * its result, serving the hooks' descriptors meanwhile (the children's
 * pipes flow and their fences are kept while the server is slow).  NULL
 * when the connection is down or broke (then already closed); otherwise the
 * result, which may be an error (the caller asks call_policy what it means).
 */
PGresult *
db_call(Db *db, const char *sql, int nparams, const char *const *values, int timeout_ms)
{
	int64_t		deadline = lease_clock_ms() + timeout_ms;
	PGresult   *result = NULL;
	PGresult   *next;
	char		why[512];

	if (!db->ready)
		return NULL;
	if (!PQsendQueryParams(db->conn, sql, nparams, NULL, values, NULL, NULL, 0))
	{
		text_clip_first_line(why, sizeof(why), PQerrorMessage(db->conn));
		db_lost(db, why);
		return NULL;
	}
	for (;;)
	{
		int			flushed = PQflush(db->conn);
		struct pollfd fds[1 + DB_MAX_HOOK_FDS];
		int			nfds = 0;
		int64_t		now;

		if (flushed < 0)
			break;
		if (flushed == 0 && !PQisBusy(db->conn))
		{
			next = PQgetResult(db->conn);
			if (next == NULL)
			{
				if (PQstatus(db->conn) == CONNECTION_BAD)
					break;		/* the server said goodbye (a terminate, a shutdown) */
				take_notifications(db);
				return result;
			}
			PQclear(result);
			result = next;
			continue;
		}
		now = lease_clock_ms();
		if (now >= deadline)
		{
			PQclear(result);
			snprintf(why, sizeof(why), "no answer from the server in %d ms", timeout_ms);
			db_lost(db, why);
			return NULL;
		}
		fds[nfds++] = (struct pollfd) {PQsocket(db->conn), POLLIN | (flushed ? POLLOUT : 0), 0};
		nfds += db->hooks.wait_fds(db->hooks.arg, fds + nfds);
		if (poll(fds, nfds, (int) (deadline - now > HOOK_PERIOD_MS ? HOOK_PERIOD_MS : deadline - now)) < 0 &&
			errno != EINTR)
			break;
		db->hooks.after_wait(db->hooks.arg, lease_clock_ms());
		if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(db->conn))
			break;
	}
	PQclear(result);
	text_clip_first_line(why, sizeof(why), PQerrorMessage(db->conn));
	db_lost(db, why[0] ? why : "connection broken");
	return NULL;
}

/* Close the connection for good. */
void
db_close(Db *db)
{
	if (db->conn != NULL)
		PQfinish(db->conn);
	db->conn = NULL;
	db->ready = false;
}
