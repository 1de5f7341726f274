/*
 * shared.c
 *		What all commands share: failure messages, JSON output, stop requests
 *		and the progress channel.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "common/text_clip.h"
#include "media/media.h"
#include "transcode/commands.h"
#include "transcode/sandbox.h"

static volatile sig_atomic_t stop_signal_number;
static int	progress_fd = -1;
static double progress_last = -1.0;
static char progress_last_stage[32];

/*
 * Print the cause as the last stderr line and return the exit status.  A
 * failure after the process came near its address-space limit is for lack
 * of memory whatever the failing call said (x264 says "generic error", a
 * thread "cannot start"): it is worth a retry (75) and says "out of memory".
 */
int
transcode_fail(int status, const char *fmt,...)
{
	va_list		args;
	char		raw[1024];
	char		cause[1024];

	va_start(args, fmt);
	vsnprintf(raw, sizeof(raw), fmt, args);
	va_end(args);
	/* a key or a name cut by bytes on its way here: never a broken character */
	text_clip_copy(cause, sizeof(cause), raw);
	fflush(stdout);
	if ((status == EX_DATAERR || status == EX_SOFTWARE || status == EX_TEMPFAIL) &&
		media_memory_exhausted())
	{
		status = EX_TEMPFAIL;
		if (strstr(cause, "out of memory") == NULL)
			fputs("vproxy-transcode: out of memory (the address space reached its limit): ", stderr);
		else
			fputs("vproxy-transcode: ", stderr);
	}
	else
		fputs("vproxy-transcode: ", stderr);
	fputs(cause, stderr);
	fputc('\n', stderr);
	fflush(stderr);
	return status;
}

/* Parse a command's options with getopt_long; its operands at argv[*first_operand]. */
int
transcode_parse_options(int argc, char **argv, const struct option *options,
						TranscodeOptionFn take, void *arg, int operands,
						const char *usage, int *first_operand)
{
	int			code;
	int			index = -1;

	opterr = 0;
	optind = 1;
	while ((code = getopt_long(argc, argv, ":", options, &index)) != -1)
	{
		const char *wrong;

		if (code == ':')
			return transcode_fail(EX_USAGE, "option %s needs a value", argv[optind - 1]);
		if (code == '?')
			return transcode_fail(EX_USAGE, "unknown option %s", argv[optind - 1]);
		if ((wrong = take(code, optarg, arg)) != NULL)
			return transcode_fail(EX_USAGE, "invalid value for --%s: %s%s%s", options[index].name,
								  optarg, wrong[0] ? ": " : "", wrong);
	}
	if (argc - optind != operands)
		return transcode_fail(EX_USAGE, "%s", usage);
	*first_operand = optind;
	return 0;
}

/* Confine a command to its files (transcode_confine in commands.h). */
int
transcode_confine(const char *const *inputs, const char *const *outputs)
{
	SandboxRules rules = {inputs, NULL, outputs, NULL};
	char		why[SANDBOX_WHY_MAX];
	int			status = sandbox_apply(&rules, why);

	return status == 0 ? 0 : transcode_fail(status, "%s", why);
}

/* Print one JSON object on stdout followed by a newline. */
int
transcode_print_json(json_t *object)
{
	int			rc;

	if (object == NULL)
		return transcode_fail(EX_SOFTWARE, "out of memory building the result");
	rc = json_dumpf(object, stdout, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_REAL_PRECISION(10));
	json_decref(object);
	if (rc != 0 || fputc('\n', stdout) == EOF || fflush(stdout) != 0)
		return transcode_fail(EX_SOFTWARE, "cannot write the result: %s", strerror(errno));
	return 0;
}

/* Signal handler: remember the first stop request. */
static void
handle_stop(int signo)
{
	if (stop_signal_number == 0)
		stop_signal_number = signo;
}

/* Catch SIGTERM, SIGINT and SIGHUP as a stop request; ignore SIGPIPE. */
void
transcode_install_stop_handlers(void)
{
	struct sigaction action;

	memset(&action, 0, sizeof(action));
	action.sa_handler = handle_stop;
	sigemptyset(&action.sa_mask);
	sigaction(SIGTERM, &action, NULL);
	sigaction(SIGINT, &action, NULL);
	sigaction(SIGHUP, &action, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Whether a stop was requested. */
bool
transcode_stop_requested(void *unused)
{
	(void) unused;
	return stop_signal_number != 0;
}

/* The signal that asked us to stop, 0 if none. */
int
transcode_stop_signal(void)
{
	return stop_signal_number;
}

/* Accept "--progress-fd N": N must be an open file descriptor. */
bool
transcode_progress_open(const char *fd_text)
{
	char	   *end;
	long		fd;

	errno = 0;
	fd = strtol(fd_text, &end, 10);
	if (errno != 0 || *end != '\0' || end == fd_text || fd < 0 || fd > INT_MAX)
		return false;
	if (write((int) fd, "", 0) < 0)
		return false;
	progress_fd = (int) fd;
	return true;
}

/* Write a progress line when the fraction moved by 0.001 or the stage changed. */
void
transcode_progress_report(double fraction, const char *stage)
{
	char		line[64];
	int			len;

	if (progress_fd < 0)
		return;
	if (fraction < 0.0)
		fraction = 0.0;
	if (fraction > 1.0)
		fraction = 1.0;
	if (fraction < progress_last)
		fraction = progress_last;
	if (strcmp(stage, progress_last_stage) == 0 && fraction - progress_last < 0.001 && fraction < 1.0)
		return;
	len = snprintf(line, sizeof(line), "progress %.4f %s\n", fraction, stage);
	if (len > 0 && (size_t) len < sizeof(line))
	{
		ssize_t		written = write(progress_fd, line, len);

		(void) written;			/* a reader that went away is not our failure */
	}
	progress_last = fraction;
	snprintf(progress_last_stage, sizeof(progress_last_stage), "%s", stage);
}

/* Name the failure's error code on the progress channel. */
void
transcode_progress_error(const char *code)
{
	char		line[64];
	int			len;

	if (progress_fd < 0)
		return;
	len = snprintf(line, sizeof(line), "error %s\n", code);
	if (len > 0 && (size_t) len < sizeof(line))
	{
		ssize_t		written = write(progress_fd, line, len);

		(void) written;			/* a reader that went away is not our failure */
	}
}
