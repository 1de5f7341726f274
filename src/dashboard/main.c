/*
 * main.c
 *		vproxy-dashboard: options, the check at start, the threads (HTTP,
 *		reader, listener) and a clean stop on SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sysexits.h>
#include <unistd.h>

#include "dashboard/dashboard.h"

#ifndef VPROXY_VERSION
#define VPROXY_VERSION "unknown"
#endif

/* This program's version (the extension's default_version it was built with). */
const char *
dash_version(void)
{
	return VPROXY_VERSION;
}

/* The --help text. */
static void
usage(FILE *out)
{
	fprintf(out,
			"vproxy-dashboard shows a vproxy queue live in a browser and to Prometheus.\n\n"
			"Usage:\n  vproxy-dashboard [OPTION]...\n\n"
			"Options:\n"
			"  -d, --dbname=CONNINFO      conninfo string or URI of a role with the monitor\n"
			"                             grants (PG* variables, service files, .pgpass apply)\n"
			"      --listen=ADDR:PORT     where to serve (default 127.0.0.1:8787)\n"
			"      --token-file=FILE      require the token in FILE: Authorization: Bearer\n"
			"                             TOKEN, or a browser's login\n"
			"      --help, --version\n\n"
			"Pages: / (the page), /events (server-sent events), /metrics (Prometheus).\n"
			"Exit status: 0 after SIGTERM or SIGINT; 64 usage; 66 or 65 the token file\n"
			"cannot be read or holds no token; 69 cannot connect at start, no vproxy (or an\n"
			"older one) in the database, or cannot listen;\n"
			"77 the database refused the role or the role lacks the monitor grants.\n");
}

/* Fail with a usage message. */
static void
bad_usage(const char *message, const char *value)
{
	fprintf(stderr, "vproxy-dashboard: %s%s%s\nTry \"vproxy-dashboard --help\".\n", message,
			value ? ": " : "", value ? value : "");
	exit(EX_USAGE);
}

/* Resolve ADDR:PORT ("[v6]:PORT" for IPv6) into the listening address. */
static bool
parse_listen(const char *text, Options *o)
{
	char		host[128];
	const char *port;
	struct addrinfo hints = {0};
	struct addrinfo *found;

	if (text[0] == '[')
	{
		const char *close = strchr(text, ']');

		if (close == NULL || close[1] != ':' || (size_t) (close - text - 1) >= sizeof(host))
			return false;
		memcpy(host, text + 1, close - text - 1);
		host[close - text - 1] = '\0';
		port = close + 2;
	}
	else
	{
		const char *colon = strrchr(text, ':');

		if (colon == NULL || (size_t) (colon - text) >= sizeof(host))
			return false;
		memcpy(host, text, colon - text);
		host[colon - text] = '\0';
		port = colon + 1;
	}
	if (host[0] == '\0' || port[0] == '\0')
		return false;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if (getaddrinfo(host, port, &hints, &found) != 0)
		return false;
	memcpy(&o->listen_addr, found->ai_addr, found->ai_addrlen);
	freeaddrinfo(found);
	snprintf(o->listen_text, sizeof(o->listen_text), "%s", text);
	return true;
}

/* Read the command line into the options. */
static void
parse_options(int argc, char **argv, Options *o)
{
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"listen", required_argument, NULL, 'l'},
		{"token-file", required_argument, NULL, 't'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0}
	};
	int			c;

	memset(o, 0, sizeof(*o));
	if (!parse_listen("127.0.0.1:8787", o))
		bad_usage("cannot resolve the default address", "127.0.0.1:8787");
	while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				o->conninfo = optarg;
				break;
			case 'l':
				if (!parse_listen(optarg, o))
					bad_usage("--listen must be ADDR:PORT, e.g. 127.0.0.1:8787 or [::1]:8787", optarg);
				break;
			case 't':
				o->token_file = optarg;
				break;
			case 'h':
				usage(stdout);
				exit(0);
			case 'V':
				printf("vproxy-dashboard %s\n", VPROXY_VERSION);
				exit(0);
			default:
				usage(stderr);
				exit(EX_USAGE);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument", argv[optind]);
}

/* Allow as many open files as the hard limit: one per connection. */
static void
raise_file_limit(void)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max)
	{
		limit.rlim_cur = limit.rlim_max;
		setrlimit(RLIMIT_NOFILE, &limit);
	}
}

/* Check, start the threads, serve until SIGTERM or SIGINT, stop them. */
int
main(int argc, char **argv)
{
	Options		options;
	sigset_t	signals;
	struct MHD_Daemon *daemon;
	const union MHD_DaemonInfo *info;
	int			status;
	int			signo;
	MHD_socket	listen_socket;

	parse_options(argc, argv, &options);
	if (options.token_file != NULL && (status = auth_load(options.token_file)) != 0)
		return status;
	/* the threads inherit this mask: only sigwait below takes the signals */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &signals, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_file_limit();
	if ((status = db_check_first(options.conninfo)) != 0)
		return status;
	media_init();
	assets_find("/");

	views_start(options.conninfo);
	events_start(options.conninfo);
	if ((daemon = http_start(&options)) == NULL)
		return EX_UNAVAILABLE;
	info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
	logfmt_event("info", "listening", "address=%s port=%u token=%s version=%s", options.listen_text,
			 info ? (unsigned int) info->port : 0, auth_enabled() ? "required" : "none",
			 VPROXY_VERSION);

	for (;;)
	{
		if (sigwait(&signals, &signo) != 0)
			continue;
		if (signo != SIGHUP)
			break;
	}
	logfmt_event("info", "stopping", "signal=%s", signo == SIGTERM ? "SIGTERM" : "SIGINT");
	/* no new connection; the ones waiting for views or events get their answer */
	listen_socket = MHD_quiesce_daemon(daemon);
	events_stop();
	views_stop();
	MHD_stop_daemon(daemon);
	if (listen_socket != MHD_INVALID_SOCKET)
		close(listen_socket);
	logfmt_event("info", "stopped", NULL);
	return 0;
}
