/*
 * split_commands.c
 *		The pieces of a split proxy as commands, on local files (the job
 *		runner calls the same media functions for the queue's units):
 *
 *		plan INPUT [--segment-seconds S] [proxy options]
 *		segment INPUT CHUNK --first N [--next M] [--interlaced 0|1] [proxy options]
 *		audio INPUT CHUNK [--audio-bitrate BPS]
 *		stitch OUTPUT [--audio CHUNK] --segment CHUNK...
 *
 * each with [--progress-fd N] and the limits of process_limits.h.
 */
#include <stdlib.h>
#include <string.h>

#include "transcode/commands.h"
#include "transcode/media_json.h"
#include "transcode/process_limits.h"

#define SPLIT_MAX_SEGMENTS 100000

/* getopt_long codes of the split commands' own options */
enum
{
	OPT_SEGMENT_SECONDS = 1,
	OPT_FIRST,
	OPT_NEXT,
	OPT_INTERLACED,
	OPT_AUDIO,
	OPT_SEGMENT,
	OPT_PROGRESS_FD
};

/* What the options of one command may set. */
typedef struct SplitArgs
{
	ProxyOptions options;
	ChildLimits limits;
	double		segment_seconds;
	SegmentSpec segment;
	bool		first_given;
	const char *audio;
	const char **segments;		/* the stitch's chunks, in order */
	int			count;
} SplitArgs;

/* The progress hook: forward the fraction to the progress channel. */
static void
report_progress(double fraction, void *arg)
{
	transcode_progress_report(fraction, (const char *) arg);
}

/* Parse a whole int64 of at least -1 (a slot number). */
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

/* Take one option of a split command: NULL, or what is wrong with its value. */
static const char *
take_split_option(int code, const char *value, void *arg)
{
	SplitArgs  *args = arg;
	bool		taken;
	int			interlaced;
	const char *wrong = process_limits_option(&args->limits, code, value, &taken);

	if (taken)
		return wrong;
	wrong = transcode_proxy_option(&args->options, code, value, &taken);
	if (taken)
		return wrong;
	switch (code)
	{
		case OPT_SEGMENT_SECONDS:
			return transcode_parse_double(value, &args->segment_seconds) ? NULL : "";
		case OPT_FIRST:
			args->first_given = true;
			return parse_slot(value, &args->segment.first_slot) ? NULL : "";
		case OPT_NEXT:
			return parse_slot(value, &args->segment.next_slot) ? NULL : "";
		case OPT_INTERLACED:
			if (!child_limits_parse_int(value, &interlaced) || interlaced < 0 || interlaced > 1)
				return "0 or 1";
			args->segment.interlaced = interlaced == 1;
			return NULL;
		case OPT_AUDIO:
			args->audio = value;
			return NULL;
		case OPT_SEGMENT:
			if (args->count == SPLIT_MAX_SEGMENTS)
				return "too many segments";
			args->segments[args->count++] = value;
			return NULL;
		case OPT_PROGRESS_FD:
			return transcode_progress_open(value) ? NULL : "";
	}
	return "";
}

/*
 * Parse a command's arguments with its options, check the proxy options and
 * apply the limits; 0 or the exit status after the failure message.
 */
static int
parse_split_args(int argc, char **argv, const struct option *options, int operands,
				 const char *usage, SplitArgs *args, int *first)
{
	char		why[MEDIA_WHY_MAX];
	int			status;

	memset(args, 0, sizeof(*args));
	media_proxy_defaults(&args->options);
	child_limits_defaults(&args->limits);
	args->segment_seconds = 60.0;
	args->segment.next_slot = -1;
	/* room for every chunk, the audio and the end of the list */
	args->segments = calloc(argc + 2, sizeof(char *));
	if (args->segments == NULL)
		return transcode_fail(EX_SOFTWARE, "out of memory");
	if ((status = transcode_parse_options(argc, argv, options, take_split_option, args, operands,
										  usage, first)) != 0)
		return status;
	if ((status = media_check_proxy_options(&args->options, why)) != 0)
		return transcode_fail(status, "%s", why);
	process_limits_apply(&args->limits);
	return 0;
}

/* vproxy-transcode plan INPUT [--segment-seconds S] [proxy options] */
int
cmd_plan(int argc, char **argv)
{
	static const struct option options[] = {
		{"segment-seconds", required_argument, NULL, OPT_SEGMENT_SECONDS},
		PROXY_OPTIONS, LIMIT_OPTIONS, {NULL, 0, NULL, 0}
	};
	MediaHooks	hooks = {transcode_stop_requested, NULL, NULL};
	SplitArgs	args;
	SplitPlan	plan;
	char		why[MEDIA_WHY_MAX];
	int			status;
	int			first;

	status = parse_split_args(argc, argv, options, 1,
							  "usage: vproxy-transcode plan INPUT [--segment-seconds S] [options]",
							  &args, &first);
	if (status == 0)
		status = transcode_confine((const char *[]) {argv[first], NULL}, NULL);
	if (status == 0 &&
		(status = media_plan_split(argv[first], &args.options, args.segment_seconds, &hooks,
								   &plan, why)) != 0)
		status = transcode_fail(status, "%s", why);
	else if (status == 0)
		status = transcode_print_json(split_plan_json(&plan));
	free(args.segments);
	return status;
}

/* vproxy-transcode segment INPUT CHUNK --first N [--next M] [--interlaced 0|1] [options] */
int
cmd_segment(int argc, char **argv)
{
	static const struct option options[] = {
		{"first", required_argument, NULL, OPT_FIRST},
		{"next", required_argument, NULL, OPT_NEXT},
		{"interlaced", required_argument, NULL, OPT_INTERLACED},
		{"progress-fd", required_argument, NULL, OPT_PROGRESS_FD},
		PROXY_OPTIONS, LIMIT_OPTIONS, {NULL, 0, NULL, 0}
	};
	MediaHooks	hooks = {transcode_stop_requested, report_progress, (void *) "segment"};
	SplitArgs	args;
	SegmentInfo info;
	char		why[MEDIA_WHY_MAX];
	int			status;
	int			first;

	status = parse_split_args(argc, argv, options, 2,
							  "usage: vproxy-transcode segment INPUT CHUNK --first N [--next M] [options]",
							  &args, &first);
	if (status == 0 && !args.first_given)
		status = transcode_fail(EX_USAGE, "segment needs --first");
	if (status == 0)
		status = transcode_confine((const char *[]) {argv[first], NULL},
								   (const char *[]) {argv[first + 1], NULL});
	if (status == 0 &&
		(status = media_make_segment(argv[first], argv[first + 1], &args.options, &args.segment,
									 &hooks, &info, why)) != 0)
		status = transcode_fail(status, "%s", why);
	else if (status == 0)
		status = transcode_print_json(json_pack("{s:I,s:b,s:f,s:i}", "frames", (json_int_t) info.frames,
												"reached_end", info.reached_end,
												"preroll_seconds", info.preroll_seconds, "seeks", info.seeks));
	free(args.segments);
	return status;
}

/* vproxy-transcode audio INPUT CHUNK [--audio-bitrate BPS] */
int
cmd_audio(int argc, char **argv)
{
	static const struct option options[] = {
		{"progress-fd", required_argument, NULL, OPT_PROGRESS_FD},
		PROXY_OPTIONS, LIMIT_OPTIONS, {NULL, 0, NULL, 0}
	};
	MediaHooks	hooks = {transcode_stop_requested, report_progress, (void *) "audio"};
	SplitArgs	args;
	bool		has_audio;
	char		why[MEDIA_WHY_MAX];
	int			status;
	int			first;

	status = parse_split_args(argc, argv, options, 2,
							  "usage: vproxy-transcode audio INPUT CHUNK [--audio-bitrate BPS]",
							  &args, &first);
	if (status == 0)
		status = transcode_confine((const char *[]) {argv[first], NULL},
								   (const char *[]) {argv[first + 1], NULL});
	if (status == 0 &&
		(status = media_make_audio(argv[first], argv[first + 1], &args.options, &hooks,
								   &has_audio, why)) != 0)
		status = transcode_fail(status, "%s", why);
	else if (status == 0)
		status = transcode_print_json(json_pack("{s:b}", "has_audio", has_audio));
	free(args.segments);
	return status;
}

/* vproxy-transcode stitch OUTPUT [--audio CHUNK] --segment CHUNK... */
int
cmd_stitch(int argc, char **argv)
{
	static const struct option options[] = {
		{"audio", required_argument, NULL, OPT_AUDIO},
		{"segment", required_argument, NULL, OPT_SEGMENT},
		{"progress-fd", required_argument, NULL, OPT_PROGRESS_FD},
		LIMIT_OPTIONS, {NULL, 0, NULL, 0}
	};
	MediaHooks	hooks = {transcode_stop_requested, report_progress, (void *) "stitch"};
	SplitArgs	args;
	MediaInfo	info;
	char		why[MEDIA_WHY_MAX];
	int			status;
	int			first;

	status = parse_split_args(argc, argv, options, 1,
							  "usage: vproxy-transcode stitch OUTPUT [--audio CHUNK] --segment CHUNK...",
							  &args, &first);
	/* the chunks and the audio are read, the proxy written */
	if (status == 0)
	{
		args.segments[args.count] = args.audio;
		status = transcode_confine(args.segments, (const char *[]) {argv[first], NULL});
		args.segments[args.count] = NULL;
	}
	if (status == 0 &&
		(status = media_stitch(args.segments, args.count, args.audio, argv[first], &hooks,
							   &info, why)) != 0)
		status = transcode_fail(status, "%s", why);
	else if (status == 0)
		status = transcode_print_json(media_info_json(&info));
	free(args.segments);
	return status;
}
