/*
 * media_commands.c
 *		The commands probe, proxy and thumbnail: parse the arguments, call the
 *		media room, print its description as JSON.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "media/media.h"
#include "transcode/commands.h"
#include "transcode/media_json.h"
#include "transcode/process_limits.h"

/* getopt_long codes of the media options */
enum
{
	OPT_HEIGHT = 1,
	OPT_FPS,
	OPT_CRF,
	OPT_PRESET,
	OPT_AUDIO_BITRATE,
	OPT_PROGRESS_FD,
	OPT_AT,
	OPT_WIDTH
};

/* What the options of a media command fill in. */
typedef struct MediaArgs
{
	ChildLimits limits;
	ProxyOptions proxy;
	ThumbnailOptions thumbnail;
} MediaArgs;

/* Parse a finite number; the media room checks its range. */
static bool
parse_double(const char *text, double *value)
{
	char	   *end;
	double		parsed;

	errno = 0;
	parsed = strtod(text, &end);
	if (errno != 0 || end == text || *end != '\0' || !isfinite(parsed))
		return false;
	*value = parsed;
	return true;
}

/* Take one option of probe, proxy or thumbnail (each accepts only its own). */
static const char *
take_media_option(int code, const char *value, void *arg)
{
	MediaArgs  *args = arg;
	bool		ok = false;
	bool		taken;
	const char *wrong = process_limits_option(&args->limits, code, value, &taken);

	if (taken)
		return wrong;
	switch (code)
	{
		case OPT_HEIGHT:
			ok = child_limits_parse_int(value, &args->proxy.height);
			break;
		case OPT_FPS:
			ok = parse_double(value, &args->proxy.fps);
			break;
		case OPT_CRF:
			ok = child_limits_parse_int(value, &args->proxy.crf);
			break;
		case OPT_PRESET:
			ok = snprintf(args->proxy.preset, sizeof(args->proxy.preset), "%s", value) <
				(int) sizeof(args->proxy.preset);
			break;
		case OPT_AUDIO_BITRATE:
			ok = child_limits_parse_int(value, &args->proxy.audio_bitrate);
			break;
		case OPT_PROGRESS_FD:
			ok = transcode_progress_open(value);
			break;
		case OPT_AT:
			ok = parse_double(value, &args->thumbnail.at_seconds) && args->thumbnail.at_seconds >= 0.0;
			break;
		case OPT_WIDTH:
			ok = child_limits_parse_int(value, &args->thumbnail.width);
			break;
	}
	return ok ? NULL : "";
}

/* Defaults of every option. */
static void
media_args_defaults(MediaArgs *args)
{
	child_limits_defaults(&args->limits);
	media_proxy_defaults(&args->proxy);
	media_thumbnail_defaults(&args->thumbnail);
}

/* vproxy-transcode probe INPUT [--threads N] [--nice N] [--memory-limit SIZE] ... */
int
cmd_probe(int argc, char **argv)
{
	static const struct option options[] = {LIMIT_OPTIONS, {NULL, 0, NULL, 0}};
	MediaHooks	hooks = {transcode_stop_requested, NULL, NULL};
	MediaArgs	args;
	MediaInfo	info;
	char		why[MEDIA_WHY_MAX];
	int			status;
	int			first;

	media_args_defaults(&args);
	if ((status = transcode_parse_options(argc, argv, options, take_media_option, &args, 1,
										  "usage: vproxy-transcode probe INPUT [LIMITS]", &first)) != 0)
		return status;
	process_limits_apply(&args.limits);
	if ((status = transcode_confine((const char *[]) {argv[first], NULL}, NULL)) != 0)
		return status;
	status = media_probe(argv[first], &hooks, &info, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(media_info_json(&info));
}

/* The progress hook: forward the fraction to the progress channel. */
static void
report_proxy_progress(double fraction, void *arg)
{
	transcode_progress_report(fraction, (const char *) arg);
}

/*
 * vproxy-transcode proxy INPUT OUTPUT [--height N] [--fps N] [--crf N]
 *		[--preset NAME] [--audio-bitrate BPS] [--progress-fd N] [LIMITS]
 */
int
cmd_proxy(int argc, char **argv)
{
	static const struct option options[] = {
		{"height", required_argument, NULL, OPT_HEIGHT},
		{"fps", required_argument, NULL, OPT_FPS},
		{"crf", required_argument, NULL, OPT_CRF},
		{"preset", required_argument, NULL, OPT_PRESET},
		{"audio-bitrate", required_argument, NULL, OPT_AUDIO_BITRATE},
		{"progress-fd", required_argument, NULL, OPT_PROGRESS_FD},
		LIMIT_OPTIONS,
		{NULL, 0, NULL, 0}
	};
	MediaHooks	hooks = {transcode_stop_requested, report_proxy_progress, (void *) "proxy"};
	MediaArgs	args;
	MediaInfo	info;
	char		why[MEDIA_WHY_MAX];
	int			status;
	int			first;

	media_args_defaults(&args);
	if ((status = transcode_parse_options(argc, argv, options, take_media_option, &args, 2,
										  "usage: vproxy-transcode proxy INPUT OUTPUT [options]", &first)) != 0)
		return status;
	if ((status = media_check_proxy_options(&args.proxy, why)) != 0)
		return transcode_fail(status, "%s", why);
	process_limits_apply(&args.limits);
	if ((status = transcode_confine((const char *[]) {argv[first], NULL},
									(const char *[]) {argv[first + 1], NULL})) != 0)
		return status;
	status = media_make_proxy(argv[first], argv[first + 1], &args.proxy, &hooks, &info, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(media_info_json(&info));
}

/* vproxy-transcode thumbnail INPUT OUTPUT [--at SECONDS] [--width N] [LIMITS] */
int
cmd_thumbnail(int argc, char **argv)
{
	static const struct option options[] = {
		{"at", required_argument, NULL, OPT_AT},
		{"width", required_argument, NULL, OPT_WIDTH},
		LIMIT_OPTIONS,
		{NULL, 0, NULL, 0}
	};
	MediaHooks	hooks = {transcode_stop_requested, NULL, NULL};
	MediaArgs	args;
	ThumbnailInfo info;
	char		why[MEDIA_WHY_MAX];
	int			status;
	int			first;

	media_args_defaults(&args);
	if ((status = transcode_parse_options(argc, argv, options, take_media_option, &args, 2,
										  "usage: vproxy-transcode thumbnail INPUT OUTPUT [--at SECONDS] [--width N]",
										  &first)) != 0)
		return status;
	if ((status = media_check_thumbnail_options(&args.thumbnail, why)) != 0)
		return transcode_fail(status, "%s", why);
	process_limits_apply(&args.limits);
	if ((status = transcode_confine((const char *[]) {argv[first], NULL},
									(const char *[]) {argv[first + 1], NULL})) != 0)
		return status;
	status = media_make_thumbnail(argv[first], argv[first + 1], &args.thumbnail, &hooks, &info, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(thumbnail_info_json(&info));
}
