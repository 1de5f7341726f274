/*
 * main.c
 *		vproxy-worker: signals and the loop that claims jobs into
 *		--concurrency slots, supervises their children (src/supervise),
 *		heartbeats, reports outcomes and sleeps in poll() on the libpq socket
 *		(LISTEN vproxy_work), the children's pipes and a signal pipe.  It
 *		hands the connection layer its hooks: check in, take a NOTIFY, and
 *		keep the children going (pipes, fences) while a call waits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "worker/worker.h"

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
		logfmt_event("info", "stopping", "worker=%s note=\"handing jobs back\"", w->options.name);
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
static int
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
static void
pump_children(Worker *w)
{
	for (int i = 0; i < w->options.concurrency; i++)
		if (w->slots[i].busy && !w->slots[i].ended)
			sup_child_pump(&w->slots[i].run.child);
}

/* Hook: the session is up; check in, and look for work at once. */
static bool
hook_session_ready(void *arg)
{
	Worker	   *w = arg;

	if (!jobs_checkin(w))
		return false;
	/* what was enqueued while we were away */
	w->woken = true;
	return true;
}

/* Hook: a NOTIFY on vproxy_work. */
static void
hook_notified(void *arg, const char *payload)
{
	jobs_notified((Worker *) arg, payload);
}

/* Hook: the children's pipes, to watch while a call waits. */
static int
hook_wait_fds(void *arg, struct pollfd *fds)
{
	return children_poll_fds((Worker *) arg, fds);
}

/*
 * Hook: after a wait inside a call, pump the children and move their runs
 * on, so that a fence passes or a SIGKILL comes on time however slow the
 * server is; the ends are taken by supervise() afterwards.
 */
static void
hook_after_wait(void *arg, int64_t now_ms)
{
	Worker	   *w = arg;

	pump_children(w);
	for (int i = 0; i < w->options.concurrency; i++)
		if (w->slots[i].busy && !w->slots[i].ended)
			(void) sup_run_advance(&w->slots[i].run, now_ms);
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
				jobs_heartbeat(w, slot);
			else				/* cut off: the child goes on until the fence */
				sup_run_heartbeat_done(&slot->run, now, now, SUP_LEASE_UNKNOWN, 0);
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

		/* an abandoned run is told to nobody: settled even while cut off */
		if (slot->busy && slot->ended && now >= slot->report_at_ms &&
			(w->db.ready || slot->outcome.verdict == SUP_ABANDON))
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

	/* cut off, neither a claim nor a report is due: the reconnect is */
	if (w->db.ready && free_slot((Worker *) w) != NULL && w->next_claim_ms - now < wait)
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
		if (!slot->ended)
			slot_wait = sup_run_wait_ms(&slot->run, now);
		else if (w->db.ready || slot->outcome.verdict == SUP_ABANDON)
			slot_wait = slot->report_at_ms - now;
		else
			continue;
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
	int			db_events = db_poll_events(&w->db, &db_fd);

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
		db_socket_ready(&w->db);
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

	options_parse(argc, argv, &w.options);
	w.slots = calloc((size_t) w.options.concurrency, sizeof(Slot));
	if (w.slots == NULL)
		return EX_OSERR;
	set_up_signals();
	name_holder(&w);
	w.db.conninfo = w.options.conninfo;
	w.db.application_name = w.application_name;
	w.db.listen = w.options.poll_interval <= 0;
	w.db.hooks = (DbHooks) {hook_session_ready, hook_notified, hook_wait_fds, hook_after_wait, &w};
	if ((status = db_connect_first(&w.db)) != 0)
		return status;
	logfmt_event("info", "worker_start", "worker=%s concurrency=%d listen=%s once=%s version=%s",
			  w.options.name, w.options.concurrency,
			  w.options.poll_interval > 0 ? "no" : "yes", w.options.once ? "yes" : "no",
			  VPROXY_VERSION);

	for (;;)
	{
		int64_t		now = lease_clock_ms();
		bool		found_none = false;

		drain_signal_pipe(&w);
		if (w.stopping && stop_deadline == 0)
			stop_deadline = now + SUP_GRACE_MS + STOP_REPORT_GRACE_MS;
		db_step(&w.db, now);
		supervise(&w, now);
		if (w.db.ready && now >= w.next_checkin_ms)
			(void) jobs_checkin(&w);
		if (!w.stopping && w.db.ready && free_slot(&w) != NULL &&
			(w.woken || now >= w.next_claim_ms))
			found_none = !claim_while_work(&w);
		if (w.options.once && found_none && !any_busy(&w))
		{
			logfmt_event("info", "queue_drained", "worker=%s", w.options.name);
			break;
		}
		if (w.stopping && (!any_busy(&w) || now >= stop_deadline))
			break;
		wait_for_events(&w, sleep_ms(&w, lease_clock_ms()));
	}

	for (int i = 0; i < w.options.concurrency; i++)
		if (w.slots[i].busy)
		{
			/* the database stayed away: the lease runs out, the child must not outlive us */
			sup_child_stop_now(&w.slots[i].run.child, SUP_GRACE_MS);
			logfmt_event("warning", "job_not_handed_back", "worker=%s job=%s", w.options.name,
					  w.slots[i].job_id);
		}
	if (w.db.ready)
		jobs_checkout(&w);
	db_close(&w.db);
	logfmt_event("info", "worker_stop", "worker=%s", w.options.name);
	return w.exit_status;
}
