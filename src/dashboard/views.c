/*
 * views.c
 *		The snapshots and the reader thread that refreshes them.
 *
 *		A view is one statement of queries.c with its parameters (the
 *		summary, the workers, a page of the job list, a job).  A request
 *		takes the view's latest snapshot at once: while somebody asks for a
 *		view (in the last WARM_MS), the reader thread keeps it fresh,
 *		refreshing it at most once a second, and at most once every ten
 *		times its query took (so that a large table costs the database at
 *		most a tenth of one backend per view), whether one client asks or a
 *		thousand.  A request waits only for a view's first snapshot, for one
 *		gone cold, or for one taken after a given /events event (the page
 *		asks so after a job's end, to show it); then it registers as a
 *		waiter, its connection is suspended (libmicrohttpd keeps serving
 *		everybody else) and the reader thread resumes it once the view has
 *		such a snapshot.  One connection runs every query, one at a time,
 *		views with waiters first.  While /events has clients, the workers
 *		view is refreshed every interval for their progress events.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dashboard/dashboard.h"

/* the shortest time between two refreshes of a view */
#define MIN_INTERVAL_MS 1000
/* ... and the longest, however slow its query */
#define MAX_INTERVAL_MS 30000
/* a view nobody asked for in this long is dropped */
#define IDLE_VIEW_MS 60000
/* views kept at once (job pages and list pages are views too) */
#define MAX_VIEWS 512
/* a view asked for within this long is kept fresh */
#define WARM_MS 30000
/* reconnect backoff of the reader connection */
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 10000

/* One registration of a waiter on a view. */
typedef struct WaitNode
{
	Waiter	   *waiter;
	int64_t		after_ms;		/* it needs a snapshot taken at or after this */
	struct WaitNode *next;
} WaitNode;

typedef struct View
{
	ViewSpec	spec;
	Snapshot   *current;		/* NULL until the first refresh */
	int64_t		refreshed_ms;	/* monotonic start of the last refresh */
	int64_t		took_ms;		/* how long it took */
	int64_t		took_before_ms; /* ... and the one before */
	int64_t		wanted_ms;		/* monotonic time of the last request */
	int64_t		waiting_since_ms;	/* first waiter's arrival, 0 = none waits */
	WaitNode   *waiters;
	bool		refreshing;		/* its query runs now */
	struct View *next;
} View;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t reader;
static View *views;
static int	n_views;
static bool stopping;
static char *reader_conninfo;

/* Whether two specs name the same view. */
static bool
same_spec(const ViewSpec *a, const ViewSpec *b)
{
	return a->kind == b->kind && strcmp(a->status, b->status) == 0 &&
		strcmp(a->job_type, b->job_type) == 0 && strcmp(a->tenant, b->tenant) == 0 &&
		strcmp(a->before_us, b->before_us) == 0 && strcmp(a->before_id, b->before_id) == 0 &&
		strcmp(a->job_id, b->job_id) == 0;
}

/*
 * The least time between two refreshes of a view: ten times its query's
 * time, the shorter of the last two (a first query on a cold connection is
 * slower than the ones after it).
 */
static int64_t
interval_ms(const View *view)
{
	int64_t		took = view->took_ms < view->took_before_ms ? view->took_ms : view->took_before_ms;
	int64_t		interval = took * 10;

	if (interval < MIN_INTERVAL_MS)
		return MIN_INTERVAL_MS;
	return interval > MAX_INTERVAL_MS ? MAX_INTERVAL_MS : interval;
}

/* Drop one reference to a snapshot (under the lock). */
static void
snapshot_unref(Snapshot *snapshot)
{
	if (snapshot == NULL || --snapshot->refs > 0)
		return;
	MHD_destroy_response(snapshot->response);
	json_decref(snapshot->data);
	free(snapshot);
}

/* Free views nobody asked for lately and nobody waits for (under the lock). */
static void
drop_idle_views(int64_t now)
{
	View	  **link = &views;

	while (*link != NULL)
	{
		View	   *view = *link;

		if (view->waiters == NULL && !view->refreshing &&
			view->spec.kind != VIEW_SUMMARY && view->spec.kind != VIEW_WORKERS &&
			now - view->wanted_ms > IDLE_VIEW_MS)
		{
			*link = view->next;
			snapshot_unref(view->current);
			free(view);
			n_views--;
		}
		else
			link = &view->next;
	}
}

/* The view of a spec, made if new; NULL when too many views are kept (under the lock). */
static View *
find_view(const ViewSpec *spec, int64_t now)
{
	View	   *view;

	for (view = views; view != NULL; view = view->next)
		if (same_spec(&view->spec, spec))
			return view;
	if (n_views >= MAX_VIEWS)
		drop_idle_views(now);
	if (n_views >= MAX_VIEWS || (view = calloc(1, sizeof(View))) == NULL)
		return NULL;
	view->spec = *spec;
	view->next = views;
	views = view;
	n_views++;
	return view;
}

/*
 * Whether the view's snapshot will do for a request that needs one taken at
 * or after after_ms (wall clock; 0: any): there is one, it is new enough,
 * and the view has not gone cold (unrefreshed for a while: nobody asked).
 */
static bool
will_do(const View *view, int64_t after_ms, int64_t now)
{
	return view->current != NULL && view->current->taken_at_ms >= after_ms &&
		now - view->refreshed_ms < interval_ms(view) + WARM_MS;
}

/*
 * Take the snapshots of n views into out (each to be given back with
 * views_release) and return true; or, when one of them will not do (see
 * will_do), register the waiter, suspend its connection and return false:
 * the reader thread resumes it once the views have snapshots that do, and
 * the request asks again.  A view that cannot be kept (too many) or a
 * stopping dashboard gives a NULL snapshot.
 */
bool
views_fetch(const ViewSpec *specs, int n, int64_t after_ms, Snapshot **out, Waiter *waiter)
{
	int64_t		now = dash_monotonic_ms();
	bool		ready = true;

	pthread_mutex_lock(&lock);
	for (int i = 0; i < n; i++)
	{
		View	   *view = find_view(&specs[i], now);
		WaitNode   *node;

		out[i] = NULL;
		if (view == NULL || stopping)
			continue;
		view->wanted_ms = now;
		if (will_do(view, after_ms, now))
		{
			out[i] = view->current;
			out[i]->refs++;
			continue;
		}
		if ((node = malloc(sizeof(WaitNode))) == NULL)
			continue;
		node->waiter = waiter;
		node->after_ms = after_ms;
		node->next = view->waiters;
		view->waiters = node;
		if (view->waiting_since_ms == 0)
			view->waiting_since_ms = now;
		waiter->pending++;
		ready = false;
	}
	if (!ready)
	{
		for (int i = 0; i < n; i++)
		{
			snapshot_unref(out[i]);
			out[i] = NULL;
		}
		MHD_suspend_connection(waiter->connection);
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
	return ready;
}

/* Give back snapshots taken by views_fetch. */
void
views_release(Snapshot **snapshots, int n)
{
	pthread_mutex_lock(&lock);
	for (int i = 0; i < n; i++)
		snapshot_unref(snapshots[i]);
	pthread_mutex_unlock(&lock);
}

/* Whether the dashboard is stopping. */
bool
views_stopping(void)
{
	bool		result;

	pthread_mutex_lock(&lock);
	result = stopping;
	pthread_mutex_unlock(&lock);
	return result;
}

/*
 * Resume the waiters the view's new snapshot does for (all of them when
 * stopping), each once its last view does (under the lock).
 */
static void
wake_waiters(View *view)
{
	WaitNode  **link = &view->waiters;

	while (*link != NULL)
	{
		WaitNode   *node = *link;

		if (!stopping && view->current != NULL && view->current->taken_at_ms < node->after_ms)
		{
			link = &node->next;
			continue;
		}
		*link = node->next;
		if (--node->waiter->pending == 0)
			MHD_resume_connection(node->waiter->connection);
		free(node);
	}
	if (view->waiters == NULL)
		view->waiting_since_ms = 0;
}

/*
 * The view to refresh now (under the lock), among those past their interval
 * that somebody waits for, asked for lately, or (the workers) follows on
 * /events: the one whose first waiter came first, else any.  Otherwise
 * NULL, and *sleep_ms says when to look again.
 */
static View *
next_view(int64_t now, int64_t *sleep_ms)
{
	View	   *best = NULL;
	bool		watched = events_clients() > 0;

	*sleep_ms = 1000;
	for (View *view = views; view != NULL; view = view->next)
	{
		int64_t		due = view->refreshed_ms + interval_ms(view);
		bool		wanted = view->waiters != NULL || now - view->wanted_ms < WARM_MS ||
			(watched && view->spec.kind == VIEW_WORKERS);

		if (!wanted || view->refreshing)
			continue;
		if (view->current != NULL && due > now)
		{
			if (due - now < *sleep_ms)
				*sleep_ms = due - now;
			continue;
		}
		if (best == NULL || (view->waiting_since_ms != 0 &&
							 (best->waiting_since_ms == 0 ||
							  view->waiting_since_ms < best->waiting_since_ms)))
			best = view;
	}
	return best;
}

/* The JSON answer of a snapshot, with the headers of every API answer. */
static struct MHD_Response *
json_response(char *text)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);

	http_add_headers(response, "application/json; charset=utf-8");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return response;
}

/* Run one view's query (without the lock) into a new snapshot. */
static Snapshot *
refresh(PGconn *conn, const ViewSpec *spec, int64_t started_wall_ms)
{
	Snapshot   *snapshot = calloc(1, sizeof(Snapshot));
	char		why[512];
	char		quoted[600];
	char	   *text;

	if (snapshot == NULL)
		return NULL;
	text = queries_run(conn, spec, &snapshot->status, why, sizeof(why));
	if (snapshot->status == MHD_HTTP_SERVICE_UNAVAILABLE)
		logfmt_event("warning", "query_failed", "view=%d error=%s", (int) spec->kind,
				 logfmt_quote(why, quoted, sizeof(quoted)));
	if (text == NULL)
	{
		free(snapshot);
		return NULL;
	}
	if (snapshot->status == MHD_HTTP_OK &&
		(spec->kind == VIEW_SUMMARY || spec->kind == VIEW_WORKERS))
		snapshot->data = json_loads(text, JSON_DECODE_ANY, NULL);
	snapshot->response = json_response(text);
	snapshot->taken_at_ms = started_wall_ms;
	snapshot->refs = 1;
	return snapshot;
}

/* A snapshot saying the database cannot be reached. */
static Snapshot *
unavailable(const char *why)
{
	Snapshot   *snapshot = calloc(1, sizeof(Snapshot));
	json_t	   *object = json_pack("{s:s}", "error", why);
	char	   *text = json_dumps(object, JSON_COMPACT);

	json_decref(object);
	if (snapshot == NULL || text == NULL)
	{
		free(snapshot);
		free(text);
		return NULL;
	}
	snapshot->status = MHD_HTTP_SERVICE_UNAVAILABLE;
	snapshot->response = json_response(text);
	snapshot->taken_at_ms = dash_now_ms();
	snapshot->refs = 1;
	return snapshot;
}

/* The reader thread: connect, then refresh the views asked for, one at a time. */
static void *
reader_main(void *arg)
{
	PGconn	   *conn = NULL;
	int64_t		backoff_ms = 0;
	int64_t		retry_at_ms = 0;
	char		why[512] = "not connected yet";
	char		quoted[600];

	pthread_mutex_lock(&lock);
	while (!stopping)
	{
		int64_t		now = dash_monotonic_ms();
		int64_t		sleep_ms;
		View	   *view = next_view(now, &sleep_ms);
		ViewSpec	spec;
		Snapshot   *snapshot;

		if (view == NULL)
		{
			struct timespec until;

			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += sleep_ms / 1000;
			until.tv_nsec += (sleep_ms % 1000) * 1000000;
			if (until.tv_nsec >= 1000000000)
			{
				until.tv_sec++;
				until.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&wake, &lock, &until);
			continue;
		}
		spec = view->spec;
		view->refreshing = true;
		view->refreshed_ms = now;
		pthread_mutex_unlock(&lock);

		if (conn == NULL && now >= retry_at_ms)
		{
			bool		refused;

			conn = db_connect(reader_conninfo, why, sizeof(why), &refused);
			if (conn == NULL)
			{
				backoff_ms = backoff_ms == 0 ? BACKOFF_FIRST_MS :
					(backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2);
				retry_at_ms = now + backoff_ms;
				logfmt_event("warning", "reader_connect_failed", "error=%s retry_ms=%lld",
						 logfmt_quote(why, quoted, sizeof(quoted)), (long long) backoff_ms);
			}
			else
			{
				backoff_ms = 0;
				logfmt_event("info", "reader_connected", NULL);
			}
		}
		if (conn != NULL)
		{
			snapshot = refresh(conn, &spec, dash_now_ms());
			if (PQstatus(conn) != CONNECTION_OK)
			{
				text_clip_first_line(why, sizeof(why), PQerrorMessage(conn));
				logfmt_event("warning", "reader_connection_lost", "error=%s",
						 logfmt_quote(why, quoted, sizeof(quoted)));
				PQfinish(conn);
				conn = NULL;
				retry_at_ms = 0;
			}
		}
		else
			snapshot = unavailable(why);

		pthread_mutex_lock(&lock);
		view->refreshing = false;
		view->took_before_ms = view->took_ms;
		view->took_ms = dash_monotonic_ms() - now;
		if (snapshot != NULL)
		{
			snapshot_unref(view->current);
			view->current = snapshot;
			if (spec.kind == VIEW_WORKERS && snapshot->data != NULL)
				events_progress(snapshot->data);
		}
		wake_waiters(view);
	}
	/* stopping: nobody waits any more */
	for (View *view = views; view != NULL; view = view->next)
		wake_waiters(view);
	pthread_mutex_unlock(&lock);
	PQfinish(conn);
	return arg;
}

/* Start the reader thread on its own connection. */
void
views_start(const char *conninfo)
{
	reader_conninfo = conninfo ? strdup(conninfo) : NULL;
	if (pthread_create(&reader, NULL, reader_main, NULL) != 0)
	{
		logfmt_event("error", "thread_failed", "thread=reader");
		exit(1);
	}
}

/* Stop the reader thread: every waiter is resumed (and answered 503). */
void
views_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(reader, NULL);
}

/* The /metrics answer from the summary and workers snapshots. */
struct MHD_Response *
views_metrics(Snapshot *summary, Snapshot *workers)
{
	size_t		len = 0;
	int64_t		now = dash_now_ms();
	char	   *text = metrics_text(summary->data, workers->data,
									(now - summary->taken_at_ms) / 1000.0,
									(now - workers->taken_at_ms) / 1000.0, &len);
	struct MHD_Response *response;

	if (text == NULL)
		return NULL;
	response = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	http_add_headers(response, "text/plain; version=0.0.4; charset=utf-8");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return response;
}
