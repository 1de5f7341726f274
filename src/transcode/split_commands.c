/*
 * split_commands.c
 *		The pieces of a split proxy as commands, on local files (the job
 *		runner calls the same media functions for the queue's units):
 *
 *		plan INPUT [--segment-seconds S] [proxy options]
 *		segment INPUT CHUNK --first N [--next M] [--interlaced 0|1] [proxy options]
 *		audio INPUT CHUNK [--audio-bitrate BPS]
 *		stitch OUTPUT [--audio CHUNK] SEGMENT_CHUNK...
 *
 * each with [--progress-fd N] and the limits of process_limits.h.
 */
#include <stdlib.h>
#include <string.h>

#include "transcode/commands.h"
#include "transcode/media_json.h"
#include "transcode/process_limits.h"

#define SPLIT_MAX_SEGMENTS 100000

/* What the options of one command may set. */
typedef struct SplitArgs
{
	ProxyOptions options;
	ProcessLimits limits;
	double		segment_seconds;
	SegmentSpec segment;
	bool		first_given;
	const char *audio;
} SplitArgs;

/* The progress hook: forward the fraction to the progress channel. */
static void
report_progress(double fraction, void *arg)
{
	transcode_progress_report(fraction, (const char *) arg);
}

/* Parse a whole int64 (a slot number). */
static bool
parse_slot(const char *text, int64_t *value)
{
	char	   *end;
	long long	parsed = strtoll(text, &end, 10);

	if (end == text || *end != '\0' || parsed < -1)
		return false;
	*value = parsed;
	return true;
}

/* Parse the options from argv[first] on; 0 or a status. */
static int
parse_args(int argc, char **argv, int first, SplitArgs *args)
{
	int			interlaced;

	memset(args, 0, sizeof(*args));
	media_proxy_defaults(&args->options);
	process_limits_defaults(&args->limits);
	args->segment_seconds = 60.0;
	args->segment.next_slot = -1;
	for (int i = first; i < argc; i += 2)
	{
		const char *name = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		bool		ok;

		if (value == NULL)
			return transcode_fail(EX_USAGE, "option %s needs a value", name);
		if (strcmp(name, "--segment-seconds") == 0)
			ok = transcode_parse_double(value, &args->segment_seconds);
		else if (strcmp(name, "--first") == 0)
			ok = args->first_given = parse_slot(value, &args->segment.first_slot);
		else if (strcmp(name, "--next") == 0)
			ok = parse_slot(value, &args->segment.next_slot);
		else if (strcmp(name, "--interlaced") == 0)
		{
			ok = transcode_parse_int(value, &interlaced) && (interlaced == 0 || interlaced == 1);
			args->segment.interlaced = interlaced == 1;
		}
		else if (strcmp(name, "--audio") == 0)
			ok = (args->audio = value) != NULL;
		else if (strcmp(name, "--progress-fd") == 0)
			ok = transcode_progress_open(value);
		else if (!transcode_proxy_option(name, value, &args->options, &ok) &&
				 !process_limits_option(name, value, &args->limits, &ok))
			return transcode_fail(EX_USAGE, "unknown option %s", name);
		if (!ok)
			return transcode_fail(EX_USAGE, "invalid value for %s: %s", name, value);
	}
	return 0;
}

/* Check the proxy options and apply the limits; 0 or a status. */
static int
prepare(SplitArgs *args)
{
	char		why[MEDIA_WHY_MAX];
	int			status = media_check_proxy_options(&args->options, why);

	if (status != 0)
		return transcode_fail(status, "%s", why);
	process_limits_apply(&args->limits);
	return 0;
}

/* vproxy-transcode plan INPUT [--segment-seconds S] [proxy options] */
int
cmd_plan(int argc, char **argv)
{
	MediaHooks	hooks = {transcode_stop_requested, NULL, NULL};
	SplitArgs	args;
	SplitPlan	plan;
	char		why[MEDIA_WHY_MAX];
	int			status;

	if (argc < 2 || argv[1][0] == '-')
		return transcode_fail(EX_USAGE, "usage: vproxy-transcode plan INPUT [--segment-seconds S] [options]");
	if ((status = parse_args(argc, argv, 2, &args)) != 0 || (status = prepare(&args)) != 0)
		return status;
	status = media_plan_split(argv[1], &args.options, args.segment_seconds, &hooks, &plan, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(split_plan_json(&plan));
}

/* vproxy-transcode segment INPUT CHUNK --first N [--next M] [--interlaced 0|1] [options] */
int
cmd_segment(int argc, char **argv)
{
	MediaHooks	hooks = {transcode_stop_requested, report_progress, (void *) "segment"};
	SplitArgs	args;
	SegmentInfo info;
	char		why[MEDIA_WHY_MAX];
	int			status;

	if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
		return transcode_fail(EX_USAGE, "usage: vproxy-transcode segment INPUT CHUNK --first N [--next M] [options]");
	if ((status = parse_args(argc, argv, 3, &args)) != 0)
		return status;
	if (!args.first_given)
		return transcode_fail(EX_USAGE, "segment needs --first");
	if ((status = prepare(&args)) != 0)
		return status;
	status = media_make_segment(argv[1], argv[2], &args.options, &args.segment, &hooks, &info, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(json_pack("{s:I,s:b,s:f,s:i}", "frames", (json_int_t) info.frames,
										  "reached_end", info.reached_end,
										  "preroll_seconds", info.preroll_seconds, "seeks", info.seeks));
}

/* vproxy-transcode audio INPUT CHUNK [--audio-bitrate BPS] */
int
cmd_audio(int argc, char **argv)
{
	MediaHooks	hooks = {transcode_stop_requested, report_progress, (void *) "audio"};
	SplitArgs	args;
	bool		has_audio;
	char		why[MEDIA_WHY_MAX];
	int			status;

	if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
		return transcode_fail(EX_USAGE, "usage: vproxy-transcode audio INPUT CHUNK [--audio-bitrate BPS]");
	if ((status = parse_args(argc, argv, 3, &args)) != 0 || (status = prepare(&args)) != 0)
		return status;
	status = media_make_audio(argv[1], argv[2], &args.options, &hooks, &has_audio, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(json_pack("{s:b}", "has_audio", has_audio));
}

/* vproxy-transcode stitch OUTPUT [--audio CHUNK] SEGMENT_CHUNK... */
int
cmd_stitch(int argc, char **argv)
{
	MediaHooks	hooks = {transcode_stop_requested, report_progress, (void *) "stitch"};
	SplitArgs	args;
	MediaInfo	info;
	char		why[MEDIA_WHY_MAX];
	int			options_at = 2;
	int			status;

	if (argc < 3 || argv[1][0] == '-')
		return transcode_fail(EX_USAGE, "usage: vproxy-transcode stitch OUTPUT [--audio CHUNK] SEGMENT_CHUNK...");
	while (options_at < argc && argv[options_at][0] == '-')
		options_at += 2;
	if (options_at > argc || argc - options_at > SPLIT_MAX_SEGMENTS)
		return transcode_fail(EX_USAGE, "usage: vproxy-transcode stitch OUTPUT [--audio CHUNK] SEGMENT_CHUNK...");
	if ((status = parse_args(options_at, argv, 2, &args)) != 0 || (status = prepare(&args)) != 0)
		return status;
	status = media_stitch((const char *const *) argv + options_at, argc - options_at, args.audio,
						  argv[1], &hooks, &info, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(media_info_json(&info));
}
