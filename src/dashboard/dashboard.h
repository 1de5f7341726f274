/*
 * dashboard.h
 *		vproxy-dashboard: the queue seen live in a browser and by Prometheus.
 *		One HTTP thread (libmicrohttpd) answers every request from snapshots
 *		in memory; one reader thread with one libpq connection refreshes a
 *		snapshot at most once a second per view, and only when somebody
 *		asks; one listener thread with one LISTEN connection fans the job
 *		ends out to every /events client.  No request ever waits on the
 *		database with a connection of its own, so a slow or stuck browser
 *		holds nothing but its socket.
 */
#ifndef VPROXY_DASHBOARD_H
#define VPROXY_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>

#include "common/logfmt.h"
#include "common/text_clip.h"

#define UUID_TEXT_LEN 36

/* What the command line asked for. */
typedef struct Options
{
	const char *conninfo;		/* -d; NULL: libpq's defaults (PG* variables) */
	struct sockaddr_storage listen_addr;	/* --listen */
	char		listen_text[128];
	const char *token_file;		/* --token-file, or NULL: no token */
} Options;

/* The views the reader thread refreshes: each a query of queries.c. */
typedef enum ViewKind
{
	VIEW_SUMMARY,				/* counts, last hour, history, failures */
	VIEW_WORKERS,				/* vproxy.workers */
	VIEW_JOBS,					/* one page of the job list */
	VIEW_JOB					/* one job with its video */
} ViewKind;

/* Which view, with its parameters (only the ones of its kind are set). */
typedef struct ViewSpec
{
	ViewKind	kind;
	char		status[16];		/* VIEW_JOBS filters; "" = any */
	char		job_type[32];
	char		tenant[129];
	char		before_us[24];	/* keyset cursor: created_at in microseconds */
	char		before_id[UUID_TEXT_LEN + 1];	/* ... and id; "" = first page */
	char		job_id[UUID_TEXT_LEN + 1];	/* VIEW_JOB */
} ViewSpec;

/*
 * A view's result as of one refresh, shared by every request that reads it
 * and freed when the last one lets go.
 */
typedef struct Snapshot
{
	int			refs;			/* under the views lock */
	unsigned int status;		/* HTTP status: 200, 404 or 503 */
	json_t	   *data;			/* parsed (summary and workers only), or NULL */
	struct MHD_Response *response;	/* the JSON answer, headers set */
	int64_t		taken_at_ms;	/* wall clock when its query started */
} Snapshot;

/* A request waiting for views to be refreshed (lives in its request). */
typedef struct Waiter
{
	struct MHD_Connection *connection;	/* suspended until pending is 0 */
	int			pending;		/* views still to refresh; under the views lock */
} Waiter;

/* main.c */
extern const char *dash_version(void);

/* clock.c */
extern int64_t dash_now_ms(void);
extern int64_t dash_monotonic_ms(void);

/* db.c */
extern PGconn *db_connect(const char *conninfo, char *why, size_t why_size, bool *refused);
extern int	db_check_first(const char *conninfo);

/* queries.c: every statement the dashboard sends */
extern char *queries_run(PGconn *conn, const ViewSpec *spec, unsigned int *status,
						 char *why, size_t why_size);
extern const char *queries_session(void);
extern const char *queries_check(void);
extern const char *queries_listen(void);

/* views.c */
extern void views_start(const char *conninfo);
extern void views_stop(void);
extern bool views_fetch(const ViewSpec *specs, int n, int64_t after_ms, Snapshot **out,
						Waiter *waiter);
extern void views_release(Snapshot **snapshots, int n);
extern struct MHD_Response *views_metrics(Snapshot *summary, Snapshot *workers);
extern bool views_stopping(void);

/* events.c */
extern void events_start(const char *conninfo);
extern void events_stop(void);
extern struct MHD_Response *events_response(struct MHD_Connection *connection,
											const char *last_event_id);
extern int	events_clients(void);
extern int64_t events_published_ms(const char *event_id);
extern void events_progress(json_t *workers);

/* metrics.c */
extern const char *metrics_bounds_literal(void);
extern char *metrics_text(json_t *summary, json_t *workers, double summary_age,
						  double workers_age, size_t *len);

/* media.c; S3_ORIGIN_MAX bounds "scheme://host[:port]" */
#define S3_ORIGIN_MAX 320
extern void media_init(void);
extern void media_storage(const char *url, const char *endpoint, const char *region);
extern const char *media_origin(char *buffer, size_t size);
extern char *media_splice_urls(const char *job_json, const char *proxy_key,
							   const char *thumbnail_key);
extern enum MHD_Result media_serve(struct MHD_Connection *connection);

/* auth.c */
extern int	auth_load(const char *token_file);
extern bool auth_enabled(void);
extern bool auth_check(struct MHD_Connection *connection);
extern bool auth_login(const char *token, size_t len, char *cookie, size_t cookie_size);
extern const char *auth_logout_cookie(void);

/* assets.c */
typedef struct Asset
{
	const char *path;			/* the URL path */
	const char *content_type;
	const char *data;
	size_t		len;
} Asset;
extern const Asset *assets_find(const char *path);
extern const Asset *assets_login_page(void);

/* http.c */
extern struct MHD_Daemon *http_start(const Options *options);
extern void http_add_headers(struct MHD_Response *response, const char *content_type);
extern struct MHD_Response *http_text_response(const char *content_type, const char *text);
extern enum MHD_Result http_send(struct MHD_Connection *connection, unsigned int status,
								 const char *content_type, const char *text);

/* api.c */
extern enum MHD_Result api_handle(struct MHD_Connection *connection, const char *url,
								  Waiter *waiter);

#endif							/* VPROXY_DASHBOARD_H */
