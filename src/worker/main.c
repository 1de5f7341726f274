/*
 * main.c
 *		vproxy-worker: options, signals and the loop that claims jobs into
 *		--concurrency slots, supervises their children (src/supervise),
 *		heartbeats, reports outcomes and sleeps in poll() on the libpq socket
 *		(LISTEN vproxy_work), the children's pipes and a signal pipe.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "worker/worker.h"

#ifndef VPROXY_VERSION
#define VPROXY_VERSION "unknown"
#endif

/* longest sleep of the loop */
#define MAX_IDLE_SLEEP_MS 60000
/* after SIGTERM, how long hand-backs may wait for a lost connection */
#define STOP_REPORT_GRACE_MS 10000

static volatile sig_atomic_t got_stop = 0;
static int	signal_pipe[2] = {-1, -1};

/* SIGTERM, SIGINT: stop; SIGCHLD: wake the loop.  Both through the pipe. */
static void
handle_signal(int signo)
{
	int			save_errno = errno;
	char		byte = (char) signo;

	if (signo == SIGTERM || signo == SIGINT)
		got_stop = 1;
	if (write(signal_pipe[1], &byte, 1) < 0)
	{
		/* the pipe is full: the loop wakes anyway */
	}
	errno = save_errno;
}

/* Empty the signal pipe and take the stop request. */
static void
drain_signal_pipe(Worker *w)
{
	char		buffer[64];

	while (read(signal_pipe[0], buffer, sizeof(buffer)) > 0)
		;
	if (got_stop && !w->stopping)
	{
		w->stopping = true;
		log_event("info", "stopping", "worker=%s note=\"handing jobs back\"", w->options.name);
	}
}

/* Install the handlers; SIGPIPE is ignored (a child that stops reading its stdin). */
static void
set_up_signals(void)
{
	struct sigaction action;

	if (pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
	{
		perror("vproxy-worker: pipe");
		exit(EX_OSERR);
	}
	memset(&action, 0, sizeof(action));
	action.sa_handler = handle_signal;
	sigemptyset(&action.sa_mask);
	action.sa_flags = SA_RESTART;
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGCHLD, &action, NULL);
	action.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &action, NULL);
	sigaction(SIGHUP, &action, NULL);
}

/* The running children's pipes as poll() entries (at most 4 per slot); their number. */
int
children_poll_fds(const Worker *w, struct pollfd *fds)
{
	int			nfds = 0;

	for (int i = 0; i < w->options.concurrency; i++)
	{
		SupWaitFd	child_fds[4];
		int			n;

		if (!w->slots[i].busy || w->slots[i].ended)
			continue;
		n = sup_child_wait_fds(&w->slots[i].run.child, child_fds);
		for (int k = 0; k < n; k++)
			fds[nfds++] = (struct pollfd) {child_fds[k].fd,
				child_fds[k].for_write ? POLLOUT : POLLIN, 0};
	}
	return nfds;
}

/* Pump every running child's pipes (and reap the ones that exited). */
void
pump_children(Worker *w)
{
	for (int i = 0; i < w->options.concurrency; i++)
		if (w->slots[i].busy && !w->slots[i].ended)
			sup_child_pump(&w->slots[i].run.child);
}

static void
usage(FILE *out)
{
	fprintf(out,
			"vproxy-worker runs the jobs of a vproxy queue on this machine, over libpq.\n\n"
			"Usage:\n  vproxy-worker [OPTION]...\n\n"
			"Options:\n"
			"  -d, --dbname=CONNINFO      conninfo string or URI (PG* variables, service files,\n"
			"                             .pgpass and TLS settings apply as for psql)\n"
			"      --name=NAME            shown in vproxy.workers (default: the host name)\n"
			"      --concurrency=N        jobs at once, one child each (default 1)\n"
			"      --job-types=LIST       comma-separated job types to take (default: all)\n"
			"      --poll-interval=SECS   poll instead of LISTEN (for PgBouncer in transaction mode)\n"
			"      --once                 exit 0 once the queue has nothing runnable\n"
			"      --transcode=PATH       vproxy-transcode (default: next to this program)\n"
			"      --temp-directory=DIR   where children make their temp directories\n"
			"      --nice=N               children's nice value (default 0)\n"
			"      --threads=N            children's thread budget: decoder, filters, x264 (default 0: as many as cores)\n"
			"      --memory-limit=SIZE    children's address-space limit, e.g. 4GB (default: none)\n"
			"      --help, --version\n\n"
			"S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
			"AWS_SESSION_TOKEN; storage location and key templates from the database.\n"
			"Exit status: 0 after SIGTERM or --once; 64 usage; 69 cannot connect at start;\n"
			"77 the database refused the worker (authentication or privileges).\n");
}

/* Parse a whole integer within [min, max]. */
static bool
parse_long(const char *text, long long min, long long max, long long *value)
{
	char	   *end;

	errno = 0;
	*value = strtoll(text, &end, 10);
	return errno == 0 && end != text && *end == '\0' && *value >= min && *value <= max;
}

/* Parse a size: bytes, or a number with kB, MB, GB or TB. */
static bool
parse_size(const char *text, long long *bytes)
{
	char	   *end;
	double		number;
	double		unit = 1;

	errno = 0;
	number = strtod(text, &end);
	if (errno != 0 || end == text || number < 0)
		return false;
	if (strcasecmp(end, "kB") == 0)
		unit = 1024.0;
	else if (strcasecmp(end, "MB") == 0)
		unit = 1024.0 * 1024;
	else if (strcasecmp(end, "GB") == 0)
		unit = 1024.0 * 1024 * 1024;
	else if (strcasecmp(end, "TB") == 0)
		unit = 1024.0 * 1024 * 1024 * 1024;
	else if (*end != '\0' && strcmp(end, "B") != 0)
		return false;
	if (number * unit > 9.0e18)
		return false;
	*bytes = (long long) (number * unit);
	return true;
}

/* "a,b" as the text[] literal "{a,b}"; NULL if a type is not a plain word. */
static char *
job_types_literal(const char *list)
{
	size_t		len = strlen(list);
	char	   *literal = malloc(len + 3);

	if (literal == NULL || len == 0)
	{
		free(literal);
		return NULL;
	}
	for (const char *c = list; *c; c++)
		if (!(*c == ',' || *c == '_' || (*c >= 'a' && *c <= 'z')))
		{
			free(literal);
			return NULL;
		}
	snprintf(literal, len + 3, "{%s}", list);
	return literal;
}

/* vproxy-transcode in the directory of this program. */
static char *
default_transcode(void)
{
	static char path[PATH_MAX];
	char		self[PATH_MAX];
	ssize_t		len = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (len <= 0)
		return "vproxy-transcode";
	self[len] = '\0';
	snprintf(path, sizeof(path), "%s/vproxy-transcode", dirname(self));
	return path;
}

/* Fail with a usage message. */
static void
bad_usage(const char *message, const char *value)
{
	fprintf(stderr, "vproxy-worker: %s%s%s\nTry \"vproxy-worker --help\".\n", message,
			value ? ": " : "", value ? value : "");
	exit(EX_USAGE);
}

/* Read the command line into the options. */
static void
parse_options(int argc, char **argv, Options *o)
{
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"name", required_argument, NULL, 'n'},
		{"concurrency", required_argument, NULL, 'c'},
		{"job-types", required_argument, NULL, 'j'},
		{"poll-interval", required_argument, NULL, 'p'},
		{"once", no_argument, NULL, 'o'},
		{"transcode", required_argument, NULL, 't'},
		{"temp-directory", required_argument, NULL, 'T'},
		{"nice", required_argument, NULL, 'N'},
		{"threads", required_argument, NULL, 'H'},
		{"memory-limit", required_argument, NULL, 'M'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	int			c;
	long long	number;
	char	   *end;

	memset(o, 0, sizeof(*o));
	o->concurrency = 1;
	o->memory_limit = -1;
	o->temp_directory = "";
	o->transcode = default_transcode();
	if (gethostname(o->name, sizeof(o->name) - 1) != 0 || o->name[0] == '\0')
		snprintf(o->name, sizeof(o->name), "vproxy-worker");
	while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				o->conninfo = optarg;
				break;
			case 'n':
				if (optarg[0] == '\0' || strlen(optarg) >= sizeof(o->name))
					bad_usage("--name must be 1 to 127 characters", NULL);
				snprintf(o->name, sizeof(o->name), "%s", optarg);
				break;
			case 'c':
				if (!parse_long(optarg, 1, MAX_CONCURRENCY, &number))
					bad_usage("--concurrency must be a whole number from 1 to 64", optarg);
				o->concurrency = (int) number;
				break;
			case 'j':
				if ((o->job_types = job_types_literal(optarg)) == NULL)
					bad_usage("--job-types must be a comma-separated list of job types", optarg);
				break;
			case 'p':
				errno = 0;
				o->poll_interval = strtod(optarg, &end);
				if (errno != 0 || end == optarg || *end != '\0' || !(o->poll_interval >= 0.01) ||
					o->poll_interval > 86400)
					bad_usage("--poll-interval must be a number of seconds from 0.01 to 86400", optarg);
				break;
			case 'o':
				o->once = true;
				break;
			case 't':
				o->transcode = optarg;
				break;
			case 'T':
				o->temp_directory = optarg;
				break;
			case 'N':
				if (!parse_long(optarg, -20, 19, &number))
					bad_usage("--nice must be a whole number from -20 to 19", optarg);
				o->nice = (int) number;
				break;
			case 'H':
				if (!parse_long(optarg, 0, 1024, &number))
					bad_usage("--threads must be a whole number from 0 to 1024", optarg);
				o->threads = (int) number;
				break;
			case 'M':
				if (!parse_size(optarg, &o->memory_limit))
					bad_usage("--memory-limit must be a size such as 4GB, 512MB or 0 (none)", optarg);
				break;
			case 'h':
				usage(stdout);
				exit(0);
			case 'V':
				printf("vproxy-worker %s\n", VPROXY_VERSION);
				exit(0);
			default:
				usage(stderr);
				exit(EX_USAGE);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument", argv[optind]);
	if (access(o->transcode, X_OK) != 0)
	{
		fprintf(stderr, "vproxy-worker: cannot execute \"%s\": %s\n", o->transcode, strerror(errno));
		exit(EX_USAGE);
	}
}

/* Whether any slot holds a job. */
static bool
any_busy(const Worker *w)
{
	for (int i = 0; i < w->options.concurrency; i++)
		if (w->slots[i].busy)
			return true;
	return false;
}

/* A free slot, or NULL. */
static Slot *
free_slot(Worker *w)
{
	for (int i = 0; i < w->options.concurrency; i++)
		if (!w->slots[i].busy)
			return &w->slots[i];
	return NULL;
}

/* Supervise the running children: heartbeats, deadlines, stops, ends. */
static void
supervise(Worker *w, int64_t now)
{
	for (int i = 0; i < w->options.concurrency; i++)
	{
		Slot	   *slot = &w->slots[i];

		if (!slot->busy || slot->ended)
			continue;
		if (w->stopping)
			sup_run_stop(&slot->run, SUP_STOP_SHUTDOWN);
		if (sup_run_heartbeat_due(&slot->run, now))
		{
			if (w->db.ready)
				jobs_heartbeat(w, slot, now);
			else
				sup_run_heartbeat_sent(&slot->run, now, true);	/* cut off: go on */
		}
		if (sup_run_advance(&slot->run, now))
		{
			slot->ended = true;
			sup_run_outcome(&slot->run, &slot->outcome);
			slot->report_at_ms = now;
		}
	}
	for (int i = 0; i < w->options.concurrency; i++)
	{
		Slot	   *slot = &w->slots[i];

		if (slot->busy && slot->ended && w->db.ready && now >= slot->report_at_ms)
			jobs_report(w, slot, now);
	}
}

/* Claim into the free slots while there is work; false if a claim found none. */
static bool
claim_while_work(Worker *w)
{
	Slot	   *slot;

	w->woken = false;
	while ((slot = free_slot(w)) != NULL && w->db.ready && !w->stopping)
	{
		if (!jobs_claim_one(w, slot))
			return false;
		w->next_claim_ms = 0;
	}
	return true;
}

/* How long the loop may sleep. */
static int
sleep_ms(const Worker *w, int64_t now)
{
	int64_t		wait = MAX_IDLE_SLEEP_MS;

	if (free_slot((Worker *) w) != NULL && w->next_claim_ms - now < wait)
		wait = w->next_claim_ms - now;
	if (w->db.ready && w->next_checkin_ms - now < wait)
		wait = w->next_checkin_ms - now;
	if (!w->db.ready && !w->db.connecting && w->db.retry_at_ms - now < wait)
		wait = w->db.retry_at_ms - now;
	for (int i = 0; i < w->options.concurrency; i++)
	{
		const Slot *slot = &w->slots[i];
		int64_t		slot_wait;

		if (!slot->busy)
			continue;
		slot_wait = slot->ended ? slot->report_at_ms - now : sup_run_wait_ms(&slot->run, now);
		if (slot_wait < wait)
			wait = slot_wait;
	}
	if (w->woken && free_slot((Worker *) w) != NULL && w->db.ready && !w->stopping)
		wait = 0;
	return wait < 0 ? 0 : (int) wait;
}

/* Sleep in poll() on the signal pipe, the database socket and the children's pipes. */
static void
wait_for_events(Worker *w, int timeout_ms)
{
	struct pollfd fds[2 + 4 * MAX_CONCURRENCY];
	int			nfds = 0;
	int			db_fd;
	int			db_events = db_poll_events(w, &db_fd);

	fds[nfds++] = (struct pollfd) {signal_pipe[0], POLLIN, 0};
	if (db_events)
		fds[nfds++] = (struct pollfd) {db_fd, (short) db_events, 0};
	nfds += children_poll_fds(w, fds + nfds);
	if (poll(fds, nfds, timeout_ms) < 0 && errno != EINTR)
	{
		perror("vproxy-worker: poll");
		exit(EX_OSERR);
	}
	drain_signal_pipe(w);
	if (db_events && fds[1].revents)
		db_socket_ready(w);
	pump_children(w);
}

/* Name this run of the worker in its leases: host, name, pid and start time. */
static void
name_holder(Worker *w)
{
	struct timespec now;

	if (gethostname(w->host, sizeof(w->host) - 1) != 0)
		snprintf(w->host, sizeof(w->host), "unknown");
	clock_gettime(CLOCK_REALTIME, &now);
	snprintf(w->holder, sizeof(w->holder), "vproxy-worker %s@%s/%d/%lld",
			 w->options.name, w->host, (int) getpid(), (long long) now.tv_sec);
	srandom((unsigned int) (now.tv_nsec ^ getpid()));
	snprintf(w->application_name, sizeof(w->application_name), "vproxy-worker %.49s",
			 w->options.name);
}

int
main(int argc, char **argv)
{
	static Worker w;
	int64_t		stop_deadline = 0;
	int			status;

	parse_options(argc, argv, &w.options);
	w.slots = calloc((size_t) w.options.concurrency, sizeof(Slot));
	if (w.slots == NULL)
		return EX_OSERR;
	set_up_signals();
	name_holder(&w);
	if ((status = db_connect_first(&w)) != 0)
		return status;
	log_event("info", "worker_start", "worker=%s concurrency=%d listen=%s once=%s version=%s",
			  w.options.name, w.options.concurrency,
			  w.options.poll_interval > 0 ? "no" : "yes", w.options.once ? "yes" : "no",
			  VPROXY_VERSION);

	for (;;)
	{
		int64_t		now = sup_now_ms();
		bool		found_none = false;

		drain_signal_pipe(&w);
		if (w.stopping && stop_deadline == 0)
			stop_deadline = now + SUP_GRACE_MS + STOP_REPORT_GRACE_MS;
		db_step(&w, now);
		supervise(&w, now);
		if (w.db.ready && now >= w.next_checkin_ms)
			(void) jobs_checkin(&w);
		if (!w.stopping && w.db.ready && free_slot(&w) != NULL &&
			(w.woken || now >= w.next_claim_ms))
			found_none = !claim_while_work(&w);
		if (w.options.once && found_none && !any_busy(&w))
		{
			log_event("info", "queue_drained", "worker=%s", w.options.name);
			break;
		}
		if (w.stopping && (!any_busy(&w) || now >= stop_deadline))
			break;
		wait_for_events(&w, sleep_ms(&w, sup_now_ms()));
	}

	for (int i = 0; i < w.options.concurrency; i++)
		if (w.slots[i].busy)
		{
			/* the database stayed away: the lease runs out, the child must not outlive us */
			sup_child_stop_now(&w.slots[i].run.child, SUP_GRACE_MS);
			log_event("warning", "job_not_handed_back", "worker=%s job=%s", w.options.name,
					  w.slots[i].job_id);
		}
	if (w.db.ready)
		jobs_checkout(&w);
	db_close(&w);
	log_event("info", "worker_stop", "worker=%s", w.options.name);
	return 0;
}
