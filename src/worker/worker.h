/*
 * worker.h
 *		vproxy-worker: the queue of vproxy.database served from another
 *		machine over libpq.  The child, its run and the failure policy come
 *		from src/supervise (the same code as the in-server workers); the SQL
 *		functions claim_job, heartbeat_job, finish_job, fail_job and
 *		release_job carry the queue's semantics.  This program adds the
 *		connection (LISTEN, reconnect, calls with a deadline), the slots of
 *		--concurrency and the logs.  The connection layer (db.c) knows
 *		nothing of jobs or slots: it calls back through DbHooks.
 */
#ifndef VPROXY_WORKER_H
#define VPROXY_WORKER_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "common/child_limits.h"
#include "common/logfmt.h"
#include "supervise/supervise.h"

/* this program's version, which the database's vproxy must have (worker.mk) */
#ifndef VPROXY_VERSION
#define VPROXY_VERSION "unknown"
#endif

#define UUID_TEXT_LEN 36
/* the most slots one worker runs */
#define MAX_CONCURRENCY 64

/* What the command line asked for. */
typedef struct Options
{
	const char *conninfo;		/* -d; NULL: libpq's defaults (PG* variables) */
	char		name[128];		/* --name, default the host name */
	int			concurrency;	/* --concurrency */
	char	   *job_types;		/* --job-types as a text[] literal, or NULL */
	double		poll_interval;	/* --poll-interval seconds; 0: LISTEN only */
	bool		once;			/* --once */
	const char *transcode;		/* --transcode */
	const char *temp_directory; /* --temp-directory */
	ChildLimits limits;			/* --nice, --threads, --memory-limit */
} Options;

/* One job in progress (or finished, its outcome not yet told to the database). */
typedef struct Slot
{
	bool		busy;
	char		job_id[UUID_TEXT_LEN + 1];
	char		video_id[UUID_TEXT_LEN + 1];
	char		lease_token[UUID_TEXT_LEN + 1];
	char		job_type[32];
	int			attempt;
	double		lease_seconds;	/* the lease the claim granted */
	int			timeout_seconds;	/* vproxy.job_timeout at the claim */
	char	   *spec;			/* what the child reads: the claim's spec and the local part */
	SupRun		run;
	bool		ended;			/* the run has finished; outcome below */
	SupOutcome	outcome;
	int			finish_tries;	/* failed attempts to record the outcome */
	int64_t		report_at_ms;	/* when to try recording it again */
} Slot;

struct pollfd;

/*
 * What the connection layer calls back, so that it knows nothing of jobs,
 * slots or children.
 */
typedef struct DbHooks
{
	/* the session is set up (first connect or reconnect): check in; false if refused */
	bool		(*session_ready) (void *arg);
	/* a NOTIFY on vproxy_work came, with its payload */
	void		(*notified) (void *arg, const char *payload);
	/* while a call waits: the descriptors to watch besides the socket, their number */
	int			(*wait_fds) (void *arg, struct pollfd *fds);
	/* ... and after each wait (at least every 100 ms): serve them, keep the fences */
	void		(*after_wait) (void *arg, int64_t now_ms);
	void	   *arg;
} DbHooks;

/* at most this many descriptors come from wait_fds */
#define DB_MAX_HOOK_FDS (4 * MAX_CONCURRENCY)

/* The connection and what it knows. */
typedef struct Db
{
	const char *conninfo;		/* NULL: libpq's defaults */
	const char *application_name;
	bool		listen;			/* LISTEN vproxy_work */
	DbHooks		hooks;
	PGconn	   *conn;			/* NULL while down */
	bool		ready;			/* connected, LISTENing, checked in */
	bool		connecting;		/* a PQconnectStart is under way */
	short		connect_wants;	/* POLLIN or POLLOUT: what PQconnectPoll waits for */
	int64_t		retry_at_ms;	/* next reconnect attempt */
	int			backoff_ms;
	char		last_error[512];
} Db;

/*
 * What the database this worker serves said at the last check-in
 * (vproxy.worker_checkin); everything a job needs comes with its claim.
 */
typedef struct Settings
{
	char		extension_version[32];
	double		lease_seconds;	/* vproxy.lease_duration: check in three times per lease */
	int64_t		fetched_at_ms;
} Settings;

typedef struct Worker
{
	Options		options;
	char		holder[320];	/* lease holder of this worker's jobs */
	char		host[128];
	char		application_name[64];	/* "vproxy-worker NAME" (pg_stat_activity) */
	Db			db;
	Settings	settings;
	Slot	   *slots;
	bool		woken;			/* a NOTIFY said there may be work */
	int64_t		next_claim_ms;	/* when a claim could find work (0: at once) */
	int64_t		next_checkin_ms;
	bool		stopping;		/* SIGTERM or SIGINT, or a refused check-in */
	int			exit_status;	/* 0, or why the worker stops (EX_NOPERM: refused) */
} Worker;

/* db.c: the connection, its calls and LISTEN. */
extern int	db_connect_first(Db *db);
extern void db_step(Db *db, int64_t now_ms);
extern int	db_poll_events(const Db *db, int *fd);
extern void db_socket_ready(Db *db);
extern void db_lost(Db *db, const char *why);
extern PGresult *db_call(Db *db, const char *sql, int nparams, const char *const *values,
						 int timeout_ms);
extern void db_close(Db *db);

/* jobs.c: the queue's calls and one job's life. */
extern bool jobs_checkin(Worker *w);
extern void jobs_checkout(Worker *w);
extern bool jobs_claim_one(Worker *w, Slot *slot);
extern void jobs_heartbeat(Worker *w, Slot *slot);
extern void jobs_report(Worker *w, Slot *slot, int64_t now_ms);
extern void jobs_notified(Worker *w, const char *payload);

/* options.c: the command line. */
extern void options_parse(int argc, char **argv, Options *o);

#endif							/* VPROXY_WORKER_H */
