/*
 * events.c
 *		/events: server-sent events fed by one LISTEN connection however
 *		many clients watch.
 *
 *		The listener thread LISTENs on vproxy_jobs and puts every payload,
 *		as one "data:" line, into a ring of the last RING_SIZE events.  Each
 *		client is a chunked response whose content reader copies the events
 *		it has not sent yet; with nothing to send it suspends its connection,
 *		and a new event resumes every suspended client.  A client that reads
 *		slowly only falls behind in the ring (and gets "event: resync" if it
 *		falls out of it): nobody waits for it.  The ids ("<run>-<seq>") let a
 *		reconnecting EventSource resume where it stopped, or learn with a
 *		resync that this process restarted.  Besides the job ends (the
 *		default event type, the NOTIFY payload as is), "event: progress"
 *		carries the progress of running jobs, from the workers view that
 *		the reader thread refreshes while clients are connected, and a
 *		comment every 15 s keeps proxies from closing an idle stream and
 *		shows which clients have gone.
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "dashboard/dashboard.h"

#define RING_SIZE 1024
#define PING_MS 15000
#define BACKOFF_FIRST_MS 250
#define BACKOFF_MAX_MS 10000
/* running jobs whose progress is followed */
#define MAX_TRACKED 512

typedef struct Client
{
	struct MHD_Connection *connection;
	uint64_t	next;			/* sequence number of the next event to send */
	char	   *pending;		/* the frame being written, or NULL */
	size_t		pending_len;
	size_t		pending_off;
	bool		suspended;
	unsigned int pinged;		/* the last ping round sent */
	bool		resync;			/* it missed events: tell it first */
	struct Client *prev;
	struct Client *next_client;
} Client;

typedef struct Tracked
{
	char		job_id[UUID_TEXT_LEN + 1];
	double		progress;
} Tracked;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_t listener;
static char *ring[RING_SIZE];	/* frames by sequence number modulo RING_SIZE */
static size_t ring_len[RING_SIZE];
static int64_t ring_published_ms[RING_SIZE];	/* wall clock */
static uint64_t next_seq = 1;
static char run_id[9];			/* this process's part of the event ids */
static Client *clients;
static int	n_clients;
static unsigned int ping_round;
static bool stopping;
static char *listener_conninfo;
static Tracked tracked[MAX_TRACKED];
static int	n_tracked;

/* Resume every suspended client: there is something new for them (under the lock). */
static void
resume_clients(void)
{
	for (Client *c = clients; c != NULL; c = c->next_client)
		if (c->suspended)
		{
			c->suspended = false;
			MHD_resume_connection(c->connection);
		}
}

/* The oldest sequence number still in the ring (under the lock). */
static uint64_t
oldest_seq(void)
{
	return next_seq > RING_SIZE ? next_seq - RING_SIZE : 1;
}

/*
 * Add an event to the ring and wake the clients: "id:", then "event:" when
 * a type is given, then one "data:" line per line of data.
 */
static void
publish(const char *type, const char *data)
{
	char	   *frame = NULL;
	size_t		len = 0;
	FILE	   *out = open_memstream(&frame, &len);
	const char *line = data;

	if (out == NULL)
		return;
	pthread_mutex_lock(&lock);
	fprintf(out, "id: %s-%llu\n", run_id, (unsigned long long) next_seq);
	if (type != NULL)
		fprintf(out, "event: %s\n", type);
	for (;;)
	{
		size_t		n = strcspn(line, "\r\n");

		fprintf(out, "data: %.*s\n", (int) n, line);
		if (line[n] == '\0')
			break;
		line += n + (line[n] == '\r' && line[n + 1] == '\n' ? 2 : 1);
	}
	fputc('\n', out);
	if (fclose(out) != 0)
	{
		pthread_mutex_unlock(&lock);
		free(frame);
		return;
	}
	free(ring[next_seq % RING_SIZE]);
	ring[next_seq % RING_SIZE] = frame;
	ring_len[next_seq % RING_SIZE] = len;
	ring_published_ms[next_seq % RING_SIZE] = dash_now_ms();
	next_seq++;
	resume_clients();
	pthread_mutex_unlock(&lock);
}

/* Set the client's next frame to a copy of text (under the lock). */
static bool
set_pending(Client *c, const char *text, size_t len)
{
	c->pending = malloc(len);
	if (c->pending == NULL)
		return false;
	memcpy(c->pending, text, len);
	c->pending_len = len;
	c->pending_off = 0;
	return true;
}

/*
 * The content reader of a client: the rest of the frame in progress, else
 * the next frame (resync, event, ping), else suspend until there is one.
 */
static ssize_t
client_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	Client	   *c = cls;
	size_t		n;

	pthread_mutex_lock(&lock);
	if (stopping)
	{
		pthread_mutex_unlock(&lock);
		return MHD_CONTENT_READER_END_OF_STREAM;
	}
	if (c->pending == NULL)
	{
		static const char resync_frame[] = "event: resync\ndata: {}\n\n";
		static const char ping_frame[] = ": ping\n\n";
		bool		ok = true;

		/* fallen out of the ring: say so, then go on with what it still holds */
		if (c->next < oldest_seq())
		{
			c->resync = true;
			c->next = oldest_seq();
		}
		if (c->resync)
		{
			ok = set_pending(c, resync_frame, sizeof(resync_frame) - 1);
			c->resync = false;
		}
		else if (c->next < next_seq)
		{
			ok = set_pending(c, ring[c->next % RING_SIZE], ring_len[c->next % RING_SIZE]);
			c->next++;
		}
		else if (c->pinged != ping_round)
		{
			ok = set_pending(c, ping_frame, sizeof(ping_frame) - 1);
			c->pinged = ping_round;
		}
		else
		{
			c->suspended = true;
			MHD_suspend_connection(c->connection);
			pthread_mutex_unlock(&lock);
			return 0;
		}
		if (!ok)
		{
			pthread_mutex_unlock(&lock);
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
	n = c->pending_len - c->pending_off;
	if (n > max)
		n = max;
	memcpy(buf, c->pending + c->pending_off, n);
	c->pending_off += n;
	if (c->pending_off == c->pending_len)
	{
		free(c->pending);
		c->pending = NULL;
	}
	pthread_mutex_unlock(&lock);
	return (ssize_t) n;
}

/* The end of a client's response: forget it. */
static void
client_free(void *cls)
{
	Client	   *c = cls;

	pthread_mutex_lock(&lock);
	if (c->prev)
		c->prev->next_client = c->next_client;
	else
		clients = c->next_client;
	if (c->next_client)
		c->next_client->prev = c->prev;
	n_clients--;
	pthread_mutex_unlock(&lock);
	free(c->pending);
	free(c);
}

/*
 * The sequence number of an event id of this run ("<run>-<seq>") that this
 * process has published, or 0 (under the lock).
 */
static uint64_t
parse_event_id(const char *event_id)
{
	size_t		run_len = strlen(run_id);
	unsigned long long seq;
	char	   *end;

	if (event_id == NULL || strncmp(event_id, run_id, run_len) != 0 || event_id[run_len] != '-')
		return 0;
	seq = strtoull(event_id + run_len + 1, &end, 10);
	return *end == '\0' && seq > 0 && seq < next_seq ? seq : 0;
}

/*
 * When the event of this id was published (wall clock, ms), or 0 when it is
 * not one of this process's or has left the ring.
 */
int64_t
events_published_ms(const char *event_id)
{
	int64_t		published = 0;
	uint64_t	seq;

	pthread_mutex_lock(&lock);
	seq = parse_event_id(event_id);
	if (seq != 0 && seq >= oldest_seq())
		published = ring_published_ms[seq % RING_SIZE];
	pthread_mutex_unlock(&lock);
	return published;
}

/*
 * A new /events client: its stream starts with the reconnection delay and
 * then the events after last_event_id (the EventSource's Last-Event-ID) when
 * this process still has them, else only new ones (with a resync first when
 * it had seen events it can no longer get).
 */
struct MHD_Response *
events_response(struct MHD_Connection *connection, const char *last_event_id)
{
	static const char hello[] = "retry: 2000\n: vproxy-dashboard events\n\n";
	Client	   *c = calloc(1, sizeof(Client));
	struct MHD_Response *response;

	if (c == NULL)
		return NULL;
	c->connection = connection;
	pthread_mutex_lock(&lock);
	c->next = next_seq;
	c->pinged = ping_round;
	if (last_event_id != NULL && last_event_id[0] != '\0')
	{
		uint64_t	seen = parse_event_id(last_event_id);

		if (seen != 0 && seen + 1 >= oldest_seq())
			c->next = seen + 1;
		else
			c->resync = true;
	}
	if (!set_pending(c, hello, sizeof(hello) - 1))
	{
		pthread_mutex_unlock(&lock);
		free(c);
		return NULL;
	}
	c->next_client = clients;
	if (clients)
		clients->prev = c;
	clients = c;
	n_clients++;
	pthread_mutex_unlock(&lock);

	response = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, client_read, c,
												 client_free);
	if (response == NULL)
	{
		client_free(c);
		return NULL;
	}
	http_add_headers(response, "text/event-stream; charset=utf-8");
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(response, "X-Accel-Buffering", "no");
	return response;
}

/* How many clients /events has. */
int
events_clients(void)
{
	int			n;

	pthread_mutex_lock(&lock);
	n = n_clients;
	pthread_mutex_unlock(&lock);
	return n;
}

/*
 * The workers view was refreshed: publish a progress event for every
 * running job that is new or whose progress changed.
 */
void
events_progress(json_t *workers)
{
	Tracked		now[MAX_TRACKED];
	int			n_now = 0;
	json_t	   *row;
	size_t		i;

	json_array_foreach(workers, i, row)
	{
		const char *job_id = json_string_value(json_object_get(row, "job_id"));
		double		progress = json_number_value(json_object_get(row, "progress"));
		bool		changed = true;

		if (job_id == NULL || strlen(job_id) != UUID_TEXT_LEN || n_now == MAX_TRACKED)
			continue;
		for (int k = 0; k < n_tracked; k++)
			if (strcmp(tracked[k].job_id, job_id) == 0)
				changed = tracked[k].progress != progress;
		memcpy(now[n_now].job_id, job_id, UUID_TEXT_LEN + 1);
		now[n_now++].progress = progress;
		if (changed)
		{
			json_t	   *event = json_pack("{s:s,s:O,s:O,s:s,s:f,s:O}",
										  "job_id", job_id,
										  "video_id", json_object_get(row, "video_id"),
										  "job_type", json_object_get(row, "job_type"),
										  "status", "running",
										  "progress", progress,
										  "worker", json_object_get(row, "name"));
			char	   *text = event ? json_dumps(event, JSON_COMPACT) : NULL;

			if (text != NULL)
				publish("progress", text);
			free(text);
			json_decref(event);
		}
	}
	memcpy(tracked, now, sizeof(Tracked) * n_now);
	n_tracked = n_now;
}

/* Whether the listener should stop. */
static bool
listener_stopping(void)
{
	bool		result;

	pthread_mutex_lock(&lock);
	result = stopping;
	pthread_mutex_unlock(&lock);
	return result;
}

/* Every PING_MS, a ping round: every client sends a comment (under no lock). */
static void
ping_if_due(int64_t *ping_at_ms)
{
	int64_t		now = dash_monotonic_ms();

	if (now < *ping_at_ms)
		return;
	*ping_at_ms = now + PING_MS;
	pthread_mutex_lock(&lock);
	ping_round++;
	resume_clients();
	pthread_mutex_unlock(&lock);
}

/* Connect and LISTEN; NULL (reason logged) on failure. */
static PGconn *
listen_connect(void)
{
	char		why[512];
	char		quoted[600];
	bool		refused;
	PGconn	   *conn = db_connect(listener_conninfo, why, sizeof(why), &refused);
	PGresult   *result;

	if (conn == NULL)
	{
		logfmt_event("warning", "listener_connect_failed", "error=%s",
				 logfmt_quote(why, quoted, sizeof(quoted)));
		return NULL;
	}
	result = PQexec(conn, queries_listen());
	if (PQresultStatus(result) != PGRES_COMMAND_OK)
	{
		text_clip_first_line(why, sizeof(why), PQerrorMessage(conn));
		logfmt_event("warning", "listen_failed", "error=%s", logfmt_quote(why, quoted, sizeof(quoted)));
		PQclear(result);
		PQfinish(conn);
		return NULL;
	}
	PQclear(result);
	PQsetnonblocking(conn, 1);
	return conn;
}

/* The listener thread: LISTEN, fan the notifications out, ping, reconnect. */
static void *
listener_main(void *arg)
{
	PGconn	   *conn = NULL;
	int64_t		backoff_ms = 0;
	int64_t		retry_at_ms = 0;
	int64_t		ping_at_ms = dash_monotonic_ms() + PING_MS;
	bool		was_connected = false;

	while (!listener_stopping())
	{
		struct pollfd fd = {-1, POLLIN, 0};
		PGnotify   *notify;
		char		why[512];
		char		quoted[600];

		ping_if_due(&ping_at_ms);
		if (conn == NULL && dash_monotonic_ms() >= retry_at_ms)
		{
			conn = listen_connect();
			if (conn == NULL)
			{
				backoff_ms = backoff_ms == 0 ? BACKOFF_FIRST_MS :
					(backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff_ms * 2);
				retry_at_ms = dash_monotonic_ms() + backoff_ms;
			}
			else
			{
				backoff_ms = 0;
				logfmt_event("info", "listening", "channel=vproxy_jobs");
				/* jobs may have ended while nobody listened */
				if (was_connected)
					publish("resync", "{}");
				was_connected = true;
			}
		}
		if (conn != NULL)
			fd.fd = PQsocket(conn);
		/* at most 200 ms without looking at the stop flag and the pings */
		if (poll(&fd, fd.fd >= 0 ? 1 : 0, 200) > 0 && conn != NULL)
		{
			if (!PQconsumeInput(conn))
			{
				text_clip_first_line(why, sizeof(why), PQerrorMessage(conn));
				logfmt_event("warning", "listener_connection_lost", "error=%s",
						 logfmt_quote(why, quoted, sizeof(quoted)));
				PQfinish(conn);
				conn = NULL;
				continue;
			}
			while ((notify = PQnotifies(conn)) != NULL)
			{
				publish(NULL, notify->extra);
				PQfreemem(notify);
			}
		}
	}
	PQfinish(conn);
	return arg;
}

/* Start the listener thread on its own connection. */
void
events_start(const char *conninfo)
{
	unsigned char bytes[4];

	if (getrandom(bytes, sizeof(bytes), 0) != (ssize_t) sizeof(bytes))
		memset(bytes, 0, sizeof(bytes));
	snprintf(run_id, sizeof(run_id), "%02x%02x%02x%02x", bytes[0], bytes[1], bytes[2], bytes[3]);
	listener_conninfo = conninfo ? strdup(conninfo) : NULL;
	if (pthread_create(&listener, NULL, listener_main, NULL) != 0)
	{
		logfmt_event("error", "thread_failed", "thread=listener");
		exit(1);
	}
}

/* Stop the listener; every client's stream ends. */
void
events_stop(void)
{
	pthread_mutex_lock(&lock);
	stopping = true;
	resume_clients();
	pthread_mutex_unlock(&lock);
	pthread_join(listener, NULL);
}
