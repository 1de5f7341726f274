/*
 * commands.h
 *		The commands of vproxy-transcode and the few things they share:
 *		failure messages, stop requests (SIGTERM, SIGINT, SIGHUP) and the
 *		progress channel.
 *
 * A command returns the process exit status: 0, or a <sysexits.h> value as
 * documented in DESIGN.md at the top of the tree (64 usage, 65 bad media, 66 missing input,
 * 70 internal, 75 transient, 77 storage refused).  On success it has printed
 * exactly one JSON object on stdout; on failure its last line on stderr,
 * written by transcode_fail(), names the cause (valid UTF-8, cut on a
 * character boundary).
 */
#ifndef VPROXY_TRANSCODE_COMMANDS_H
#define VPROXY_TRANSCODE_COMMANDS_H

#include <getopt.h>
#include <stdbool.h>
#include <jansson.h>

#include "media/media.h"

extern int	cmd_probe(int argc, char **argv);
extern int	cmd_proxy(int argc, char **argv);
extern int	cmd_thumbnail(int argc, char **argv);
extern int	cmd_job(int argc, char **argv);
extern int	cmd_storage(int argc, char **argv);
extern int	cmd_plan(int argc, char **argv);
extern int	cmd_segment(int argc, char **argv);
extern int	cmd_audio(int argc, char **argv);
extern int	cmd_stitch(int argc, char **argv);

/* Print "vproxy-transcode: <cause>" as the last stderr line; return status. */
extern int	transcode_fail(int status, const char *fmt,...) __attribute__((format(printf, 2, 3)));

/*
 * Take one option of a command (its getopt_long code and value): NULL, or
 * what is wrong with the value ("" when the option's name says enough).
 */
typedef const char *(*TranscodeOptionFn) (int code, const char *value, void *arg);

/*
 * Parse a command's argv (argv[0] the command's name) with getopt_long,
 * handing each option to take; the operands are left at argv[*first_operand]
 * and must number `operands`.  0, or the exit status after the failure
 * message (an unknown option, a missing or refused value, a wrong number of
 * operands: then the usage line).
 */
extern int	transcode_parse_options(int argc, char **argv, const struct option *options,
									TranscodeOptionFn take, void *arg, int operands,
									const char *usage, int *first_operand);

/* Parse a finite number (an option's value); false if it is not one. */
extern bool transcode_parse_double(const char *text, double *value);

/* getopt_long codes of the proxy's options */
enum
{
	PROXY_OPTION_HEIGHT = 100,
	PROXY_OPTION_FPS,
	PROXY_OPTION_CRF,
	PROXY_OPTION_PRESET,
	PROXY_OPTION_AUDIO_BITRATE
};

/* The proxy's options --height, --fps, --crf, --preset, --audio-bitrate. */
#define PROXY_OPTIONS \
	{"height", required_argument, NULL, PROXY_OPTION_HEIGHT}, \
	{"fps", required_argument, NULL, PROXY_OPTION_FPS}, \
	{"crf", required_argument, NULL, PROXY_OPTION_CRF}, \
	{"preset", required_argument, NULL, PROXY_OPTION_PRESET}, \
	{"audio-bitrate", required_argument, NULL, PROXY_OPTION_AUDIO_BITRATE}

/*
 * Take a proxy option (code from PROXY_OPTIONS) into `options`: NULL, or
 * what is wrong with its value; false in *taken if code is none of them.
 */
extern const char *transcode_proxy_option(ProxyOptions *options, int code, const char *value,
										  bool *taken);

/*
 * Confine a command that works on local files, before it reads them, after
 * its limits (sandbox.h): read its inputs, write beside its outputs (each
 * list NULL-ended, or NULL), nothing else of the user's; no network.  0, or
 * the exit status after the failure message.
 */
extern int	transcode_confine(const char *const *inputs, const char *const *outputs);

/* Print one JSON object on stdout, then a newline; steals the reference. */
extern int	transcode_print_json(json_t *object);

/* Catch SIGTERM, SIGINT and SIGHUP as a stop request; ignore SIGPIPE. */
extern void transcode_install_stop_handlers(void);

/* Whether a stop was requested; usable as a should_stop hook. */
extern bool transcode_stop_requested(void *unused);

/* The signal that asked us to stop, 0 if none. */
extern int	transcode_stop_signal(void);

/*
 * The progress channel: "--progress-fd N" makes a command write lines
 * "progress <fraction> <stage>\n" to file descriptor N (fraction 0..1 of the
 * whole command, monotonic; stage one word).  Without it nothing is written.
 */
extern bool transcode_progress_open(const char *fd_text);
extern void transcode_progress_report(double fraction, const char *stage);

/*
 * Name the error code of a failure on the progress channel, "error <code>\n"
 * (job-protocol.md), just before the failing exit.
 */
extern void transcode_progress_error(const char *code);

#endif							/* VPROXY_TRANSCODE_COMMANDS_H */
