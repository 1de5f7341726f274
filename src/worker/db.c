/*
 * db.c
 *		vproxy-worker's connection: the first connect (blocking; a failure is
 *		one line and an exit status), reconnects with jittered backoff that
 *		never block the supervision of the children, calls with a deadline
 *		(a server that stops answering counts as a lost connection), and
 *		LISTEN vproxy_work for the wake-ups of enqueue, retry, release and
 *		cancel.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "worker/worker.h"

#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 30000

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

/* The first line of libpq's message, without "FATAL:" noise at the end. */
static void
first_line(const char *message, char *buffer, size_t size)
{
	size_t		len;

	snprintf(buffer, size, "%s", message ? message : "");
	len = strcspn(buffer, "\n");
	buffer[len] = '\0';
	while (len > 0 && buffer[len - 1] == ' ')
		buffer[--len] = '\0';
}

/* Start a connection with the worker's application name. */
static PGconn *
start_connection(const Worker *w, bool blocking)
{
	const char *keywords[] = {"dbname", "fallback_application_name", NULL};
	const char *values[] = {w->options.conninfo, w->application_name, NULL};

	return blocking ? PQconnectdbParams(keywords, values, 1) :
		PQconnectStartParams(keywords, values, 1);
}

/* Run a utility statement of the session set-up; false (connection closed) on failure. */
static bool
set_up_statement(Worker *w, const char *sql)
{
	PGresult   *result = PQexec(w->db.conn, sql);
	bool		ok = PQresultStatus(result) == PGRES_COMMAND_OK;
	char		why[512];

	PQclear(result);
	if (!ok)
	{
		first_line(PQerrorMessage(w->db.conn), why, sizeof(why));
		db_lost(w, why);
	}
	return ok;
}

/* Session settings, LISTEN, check-in: the connection is then ready. */
static bool
set_up_session(Worker *w)
{
	PQsetnonblocking(w->db.conn, 0);
	if (!set_up_statement(w, session_setup))
		return false;
	if (w->options.poll_interval <= 0 && !set_up_statement(w, "LISTEN vproxy_work"))
		return false;
	w->db.ready = true;
	if (!jobs_checkin(w))
		return false;
	/* what was enqueued while we were away: look at once */
	w->woken = true;
	w->db.backoff_ms = 0;
	return true;
}

/*
 * Connect at start: 0, or the exit status after one line on stderr (a
 * crash loop would not fix a wrong password): 77 when the server refused
 * this worker (authentication, or the check-in was denied), 69 when it
 * could not be reached.
 */
int
db_connect_first(Worker *w)
{
	char		why[512];
	char		quoted[600];

	w->db.conn = start_connection(w, true);
	if (w->db.conn == NULL || PQstatus(w->db.conn) != CONNECTION_OK)
	{
		bool		refused = w->db.conn &&
			(PQconnectionNeedsPassword(w->db.conn) || PQconnectionUsedPassword(w->db.conn));

		first_line(w->db.conn ? PQerrorMessage(w->db.conn) : "out of memory", why, sizeof(why));
		log_event("error", "connect_failed", "error=%s", log_quote(why, quoted, sizeof(quoted)));
		PQfinish(w->db.conn);
		w->db.conn = NULL;
		return refused ? EX_NOPERM : EX_UNAVAILABLE;
	}
	if (!set_up_session(w))
	{
		if (w->db.ready)
			return EX_NOPERM;	/* connected, but the check-in was refused */
		log_event("error", "connect_failed", "error=%s",
				  log_quote(w->db.last_error, quoted, sizeof(quoted)));
		return EX_UNAVAILABLE;
	}
	log_event("info", "connected", "database=%s host=%s",
			  log_quote(PQdb(w->db.conn), quoted, sizeof(quoted)),
			  PQhost(w->db.conn) ? PQhost(w->db.conn) : "local");
	return 0;
}

/* The connection is gone (or no longer trusted): close it and plan a reconnect. */
void
db_lost(Worker *w, const char *why)
{
	char		quoted[600];
	int			delay;

	if (w->db.conn != NULL)
		PQfinish(w->db.conn);
	w->db.conn = NULL;
	w->db.ready = false;
	w->db.connecting = false;
	w->db.backoff_ms = w->db.backoff_ms == 0 ? BACKOFF_FIRST_MS :
		(w->db.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->db.backoff_ms * 2);
	/* full jitter on the upper half: workers cut off together come back apart */
	delay = w->db.backoff_ms / 2 + (int) (random() % (w->db.backoff_ms / 2 + 1));
	w->db.retry_at_ms = sup_now_ms() + delay;
	if (strcmp(why, w->db.last_error) != 0 || w->db.backoff_ms == BACKOFF_FIRST_MS)
		log_event("warning", "connection_lost", "retry_in_ms=%d error=%s", delay,
				  log_quote(why, quoted, sizeof(quoted)));
	snprintf(w->db.last_error, sizeof(w->db.last_error), "%s", why);
}

/* Move a reconnect on: start it when due, finish it when libpq says so. */
void
db_step(Worker *w, int64_t now_ms)
{
	char		why[512];

	if (w->db.ready)
		return;
	if (!w->db.connecting)
	{
		if (now_ms < w->db.retry_at_ms)
			return;
		w->db.conn = start_connection(w, false);
		if (w->db.conn == NULL || PQstatus(w->db.conn) == CONNECTION_BAD)
		{
			first_line(w->db.conn ? PQerrorMessage(w->db.conn) : "out of memory", why, sizeof(why));
			db_lost(w, why);
			return;
		}
		w->db.connecting = true;
	}
	switch (PQconnectPoll(w->db.conn))
	{
		case PGRES_POLLING_READING:
			w->db.connect_wants = POLLIN;
			break;
		case PGRES_POLLING_WRITING:
			w->db.connect_wants = POLLOUT;
			break;
		case PGRES_POLLING_OK:
			w->db.connecting = false;
			if (set_up_session(w))
			{
				log_event("info", "reconnected", NULL);
				w->db.last_error[0] = '\0';
			}
			break;
		case PGRES_POLLING_FAILED:
			first_line(PQerrorMessage(w->db.conn), why, sizeof(why));
			db_lost(w, why);
			break;
		default:
			break;
	}
}

/* The socket to poll and for what (POLLIN/POLLOUT), 0 if none. */
int
db_poll_events(const Worker *w, int *fd)
{
	*fd = w->db.conn ? PQsocket(w->db.conn) : -1;
	if (*fd < 0)
		return 0;
	if (w->db.connecting)
		return w->db.connect_wants;
	return w->db.ready ? POLLIN : 0;
}

/* Take the notifications that have arrived. */
static void
take_notifications(Worker *w)
{
	PGnotify   *notify;

	while ((notify = PQnotifies(w->db.conn)) != NULL)
	{
		jobs_notified(w, notify->extra);
		PQfreemem(notify);
	}
}

/* The socket is readable (or a connect is under way): read and dispatch. */
void
db_socket_ready(Worker *w)
{
	char		why[512];

	if (w->db.connecting)
	{
		db_step(w, sup_now_ms());
		return;
	}
	if (!w->db.ready)
		return;
	if (!PQconsumeInput(w->db.conn))
	{
		first_line(PQerrorMessage(w->db.conn), why, sizeof(why));
		db_lost(w, why);
		return;
	}
	take_notifications(w);
}

/*
 * Run one statement with text parameters and wait at most timeout_ms for
 * its result, keeping the children's pipes flowing meanwhile.  NULL when the
 * connection is down or broke (then already closed); otherwise the result,
 * which may be an error (the caller asks call_policy what it means).
 */
PGresult *
db_call(Worker *w, const char *sql, int nparams, const char *const *values, int timeout_ms)
{
	int64_t		deadline = sup_now_ms() + timeout_ms;
	PGresult   *result = NULL;
	PGresult   *next;
	char		why[512];

	if (!w->db.ready)
		return NULL;
	if (!PQsendQueryParams(w->db.conn, sql, nparams, NULL, values, NULL, NULL, 0))
	{
		first_line(PQerrorMessage(w->db.conn), why, sizeof(why));
		db_lost(w, why);
		return NULL;
	}
	for (;;)
	{
		int			flushed = PQflush(w->db.conn);
		struct pollfd fds[1 + 4 * MAX_CONCURRENCY];
		int			nfds = 0;
		int64_t		now;

		if (flushed < 0)
			break;
		if (flushed == 0 && !PQisBusy(w->db.conn))
		{
			next = PQgetResult(w->db.conn);
			if (next == NULL)
			{
				if (PQstatus(w->db.conn) == CONNECTION_BAD)
					break;		/* the server said goodbye (a terminate, a shutdown) */
				take_notifications(w);
				return result;
			}
			PQclear(result);
			result = next;
			continue;
		}
		now = sup_now_ms();
		if (now >= deadline)
		{
			PQclear(result);
			snprintf(why, sizeof(why), "no answer from the server in %d ms", timeout_ms);
			db_lost(w, why);
			return NULL;
		}
		fds[nfds++] = (struct pollfd) {PQsocket(w->db.conn), POLLIN | (flushed ? POLLOUT : 0), 0};
		nfds += children_poll_fds(w, fds + nfds);
		if (poll(fds, nfds, (int) (deadline - now > 1000 ? 1000 : deadline - now)) < 0 &&
			errno != EINTR)
			break;
		pump_children(w);
		if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(w->db.conn))
			break;
	}
	PQclear(result);
	first_line(PQerrorMessage(w->db.conn), why, sizeof(why));
	db_lost(w, why[0] ? why : "connection broken");
	return NULL;
}

/* Close the connection for good. */
void
db_close(Worker *w)
{
	if (w->db.conn != NULL)
		PQfinish(w->db.conn);
	w->db.conn = NULL;
	w->db.ready = false;
}
