/*
 * options.c
 *		vproxy-worker's command line, read with getopt_long as
 *		vproxy-transcode reads its own.  Every mistake is refused here, with
 *		exit status 64 and before any connection: the children's limits with
 *		the very check (and words) of the child (src/common/child_limits.h),
 *		job types this version does not know, a transcode program that
 *		cannot be run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "worker/worker.h"

/* getopt_long codes of the options without a short form */
enum
{
	OPT_NAME = 256,
	OPT_CONCURRENCY,
	OPT_JOB_TYPES,
	OPT_POLL_INTERVAL,
	OPT_ONCE,
	OPT_TRANSCODE,
	OPT_TEMP_DIRECTORY,
	OPT_NICE,
	OPT_THREADS,
	OPT_MEMORY_LIMIT,
	OPT_VERSION
};

/* The job types of the queue this version serves. */
static const char *const job_types[] = {
	"proxy_generation", "metadata_extraction", "thumbnail_generation", "video_deletion",
	"proxy_segment",
};

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
			"      --job-types=LIST       comma-separated job types to take (default: all):\n"
			"                             proxy_generation, metadata_extraction,\n"
			"                             thumbnail_generation, video_deletion, proxy_segment\n"
			"      --poll-interval=SECS   poll instead of LISTEN (for PgBouncer in transaction mode)\n"
			"      --once                 exit 0 once the queue has nothing runnable\n"
			"      --transcode=PATH       vproxy-transcode (default: next to this program)\n"
			"      --temp-directory=DIR   where children make their temp directories\n"
			"      --nice=N               children's nice value, 0 to 19 (default 0)\n"
			"      --threads=N            children's thread budget: decoder, filters, x264,\n"
			"                             0 to 256 (default 0: as many as cores)\n"
			"      --memory-limit=SIZE    children's address-space limit, 0 (none) or 64MB to 1PB,\n"
			"                             such as 4GB (default: none)\n"
			"      --help, --version\n\n"
			"S3 credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and\n"
			"AWS_SESSION_TOKEN; storage location and key templates from the database.\n"
			"Exit status: 0 after SIGTERM or --once; 64 usage (checked before connecting);\n"
			"69 cannot reach the server at start; 77 the database refused the worker\n"
			"(authentication, unknown role or database, privileges, another vproxy version).\n");
}

/* Fail with a usage message. */
static void
bad_usage(const char *message, const char *value, const char *why)
{
	fprintf(stderr, "vproxy-worker: %s%s%s%s%s\nTry \"vproxy-worker --help\".\n", message,
			value ? ": " : "", value ? value : "", why ? ": " : "", why ? why : "");
	exit(EX_USAGE);
}

/* Whether name (len bytes) is a job type this version serves. */
static bool
known_job_type(const char *name, size_t len)
{
	for (size_t i = 0; i < sizeof(job_types) / sizeof(job_types[0]); i++)
		if (strlen(job_types[i]) == len && strncmp(job_types[i], name, len) == 0)
			return true;
	return false;
}

/* "a,b" as the text[] literal "{a,b}"; every type must be one this version serves. */
static char *
job_types_literal(const char *list)
{
	size_t		len = strlen(list);
	char	   *literal;

	for (const char *item = list;; item += strcspn(item, ",") + 1)
	{
		size_t		item_len = strcspn(item, ",");

		if (!known_job_type(item, item_len))
		{
			char		unknown[64];

			snprintf(unknown, sizeof(unknown), "\"%.*s\"", item_len > 40 ? 40 : (int) item_len, item);
			bad_usage("--job-types: unknown job type", unknown,
					  "the types are proxy_generation, metadata_extraction, thumbnail_generation, "
					  "video_deletion and proxy_segment");
		}
		if (item[item_len] == '\0')
			break;
	}
	literal = malloc(len + 3);
	if (literal == NULL)
		exit(EX_OSERR);
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

/* Take a limit of the children, with the child's own check and words. */
static void
take_limit(Options *o, ChildLimit which, const char *message, const char *value)
{
	const char *wrong = child_limits_set(&o->limits, which, value);

	if (wrong != NULL)
		bad_usage(message, value, wrong);
}

/* Read the command line into the options; exit 64 on any mistake. */
void
options_parse(int argc, char **argv, Options *o)
{
	static const struct option longopts[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"name", required_argument, NULL, OPT_NAME},
		{"concurrency", required_argument, NULL, OPT_CONCURRENCY},
		{"job-types", required_argument, NULL, OPT_JOB_TYPES},
		{"poll-interval", required_argument, NULL, OPT_POLL_INTERVAL},
		{"once", no_argument, NULL, OPT_ONCE},
		{"transcode", required_argument, NULL, OPT_TRANSCODE},
		{"temp-directory", required_argument, NULL, OPT_TEMP_DIRECTORY},
		{"nice", required_argument, NULL, OPT_NICE},
		{"threads", required_argument, NULL, OPT_THREADS},
		{"memory-limit", required_argument, NULL, OPT_MEMORY_LIMIT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, OPT_VERSION},
		{NULL, 0, NULL, 0}
	};
	int			c;
	char	   *end;

	memset(o, 0, sizeof(*o));
	o->concurrency = 1;
	child_limits_defaults(&o->limits);
	o->limits.memory_limit_bytes = 0;
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
			case OPT_NAME:
				if (optarg[0] == '\0' || strlen(optarg) >= sizeof(o->name))
					bad_usage("--name must be 1 to 127 characters", NULL, NULL);
				snprintf(o->name, sizeof(o->name), "%s", optarg);
				break;
			case OPT_CONCURRENCY:
				if (!child_limits_parse_int(optarg, &o->concurrency) || o->concurrency < 1 ||
					o->concurrency > MAX_CONCURRENCY)
					bad_usage("--concurrency must be a whole number from 1 to 64", optarg, NULL);
				break;
			case OPT_JOB_TYPES:
				o->job_types = job_types_literal(optarg);
				break;
			case OPT_POLL_INTERVAL:
				errno = 0;
				o->poll_interval = strtod(optarg, &end);
				if (errno != 0 || end == optarg || *end != '\0' || !(o->poll_interval >= 0.01) ||
					o->poll_interval > 86400)
					bad_usage("--poll-interval must be a number of seconds from 0.01 to 86400", optarg, NULL);
				break;
			case OPT_ONCE:
				o->once = true;
				break;
			case OPT_TRANSCODE:
				o->transcode = optarg;
				break;
			case OPT_TEMP_DIRECTORY:
				o->temp_directory = optarg;
				break;
			case OPT_NICE:
				take_limit(o, CHILD_LIMIT_NICE, "invalid value for --nice", optarg);
				break;
			case OPT_THREADS:
				take_limit(o, CHILD_LIMIT_THREADS, "invalid value for --threads", optarg);
				break;
			case OPT_MEMORY_LIMIT:
				take_limit(o, CHILD_LIMIT_MEMORY, "invalid value for --memory-limit", optarg);
				break;
			case 'h':
				usage(stdout);
				exit(0);
			case OPT_VERSION:
				printf("vproxy-worker %s\n", VPROXY_VERSION);
				exit(0);
			default:
				usage(stderr);
				exit(EX_USAGE);
		}
	}
	if (optind < argc)
		bad_usage("unexpected argument", argv[optind], NULL);
	if (access(o->transcode, X_OK) != 0)
	{
		fprintf(stderr, "vproxy-worker: cannot execute \"%s\": %s\n", o->transcode, strerror(errno));
		exit(EX_USAGE);
	}
}
