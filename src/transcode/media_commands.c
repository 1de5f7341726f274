/*
 * media_commands.c
 *		The commands probe, proxy and thumbnail: parse the arguments, call the
 *		media room, print its description as JSON.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "media/media.h"
#include "transcode/commands.h"
#include "transcode/media_json.h"
#include "transcode/process_limits.h"

/* Parse a finite number; the media room checks its range. */
bool
transcode_parse_double(const char *text, double *value)
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

/* The progress hook: forward the fraction to the progress channel. */
static void
report_proxy_progress(double fraction, void *arg)
{
	transcode_progress_report(fraction, (const char *) arg);
}

/* vproxy-transcode probe INPUT [--threads N] [--nice N] [--memory-limit BYTES] */
int
cmd_probe(int argc, char **argv)
{
	MediaHooks	hooks = {transcode_stop_requested, NULL, NULL};
	ProcessLimits limits;
	MediaInfo	info;
	char		why[MEDIA_WHY_MAX];
	int			status;

	process_limits_defaults(&limits);
	if (argc < 2 || argv[1][0] == '-')
		return transcode_fail(EX_USAGE, "usage: vproxy-transcode probe INPUT [--threads N] [--nice N] [--memory-limit BYTES]");
	for (int i = 2; i < argc; i += 2)
	{
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		bool		ok;

		if (value == NULL)
			return transcode_fail(EX_USAGE, "option %s needs a value", argv[i]);
		if (!process_limits_option(argv[i], value, &limits, &ok))
			return transcode_fail(EX_USAGE, "unknown option %s", argv[i]);
		if (!ok)
			return transcode_fail(EX_USAGE, "invalid value for %s: %s", argv[i], value);
	}
	process_limits_apply(&limits);
	status = media_probe(argv[1], &hooks, &info, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(media_info_json(&info));
}

/*
 * Parse one of the proxy's options (--height, --fps, --crf, --preset,
 * --audio-bitrate); false if `name` is none of them.
 */
bool
transcode_proxy_option(const char *name, const char *value, ProxyOptions *options, bool *ok)
{
	if (strcmp(name, "--height") == 0)
		*ok = transcode_parse_int(value, &options->height);
	else if (strcmp(name, "--fps") == 0)
		*ok = transcode_parse_double(value, &options->fps);
	else if (strcmp(name, "--crf") == 0)
		*ok = transcode_parse_int(value, &options->crf);
	else if (strcmp(name, "--preset") == 0)
		*ok = snprintf(options->preset, sizeof(options->preset), "%s", value) < (int) sizeof(options->preset);
	else if (strcmp(name, "--audio-bitrate") == 0)
		*ok = transcode_parse_int(value, &options->audio_bitrate);
	else
		return false;
	return true;
}

/*
 * vproxy-transcode proxy INPUT OUTPUT [--height N] [--fps N] [--crf N]
 *		[--preset NAME] [--audio-bitrate BPS] [--progress-fd N]
 *		[--threads N] [--nice N] [--memory-limit BYTES]
 */
int
cmd_proxy(int argc, char **argv)
{
	MediaHooks	hooks = {transcode_stop_requested, report_proxy_progress, (void *) "proxy"};
	ProcessLimits limits;
	ProxyOptions options;
	MediaInfo	info;
	char		why[MEDIA_WHY_MAX];
	int			status;

	media_proxy_defaults(&options);
	process_limits_defaults(&limits);
	if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
		return transcode_fail(EX_USAGE, "usage: vproxy-transcode proxy INPUT OUTPUT [options]");
	for (int i = 3; i < argc; i += 2)
	{
		const char *name = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		bool		ok;

		if (value == NULL)
			return transcode_fail(EX_USAGE, "option %s needs a value", name);
		if (strcmp(name, "--progress-fd") == 0)
			ok = transcode_progress_open(value);
		else if (!transcode_proxy_option(name, value, &options, &ok) &&
				 !process_limits_option(name, value, &limits, &ok))
			return transcode_fail(EX_USAGE, "unknown option %s", name);
		if (!ok)
			return transcode_fail(EX_USAGE, "invalid value for %s: %s", name, value);
	}
	if ((status = media_check_proxy_options(&options, why)) != 0)
		return transcode_fail(status, "%s", why);
	process_limits_apply(&limits);
	status = media_make_proxy(argv[1], argv[2], &options, &hooks, &info, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(media_info_json(&info));
}

/*
 * vproxy-transcode thumbnail INPUT OUTPUT [--at SECONDS] [--width N]
 *		[--threads N] [--nice N] [--memory-limit BYTES]
 */
int
cmd_thumbnail(int argc, char **argv)
{
	MediaHooks	hooks = {transcode_stop_requested, NULL, NULL};
	ProcessLimits limits;
	ThumbnailOptions options;
	ThumbnailInfo info;
	char		why[MEDIA_WHY_MAX];
	int			status;

	media_thumbnail_defaults(&options);
	process_limits_defaults(&limits);
	if (argc < 3 || argv[1][0] == '-' || argv[2][0] == '-')
		return transcode_fail(EX_USAGE, "usage: vproxy-transcode thumbnail INPUT OUTPUT [--at SECONDS] [--width N]");
	for (int i = 3; i < argc; i += 2)
	{
		const char *name = argv[i];
		const char *value = i + 1 < argc ? argv[i + 1] : NULL;
		bool		ok;

		if (value == NULL)
			return transcode_fail(EX_USAGE, "option %s needs a value", name);
		if (strcmp(name, "--at") == 0)
			ok = transcode_parse_double(value, &options.at_seconds) && options.at_seconds >= 0.0;
		else if (strcmp(name, "--width") == 0)
			ok = transcode_parse_int(value, &options.width);
		else if (!process_limits_option(name, value, &limits, &ok))
			return transcode_fail(EX_USAGE, "unknown option %s", name);
		if (!ok)
			return transcode_fail(EX_USAGE, "invalid value for %s: %s", name, value);
	}
	if ((status = media_check_thumbnail_options(&options, why)) != 0)
		return transcode_fail(status, "%s", why);
	process_limits_apply(&limits);
	status = media_make_thumbnail(argv[1], argv[2], &options, &hooks, &info, why);
	if (status != 0)
		return transcode_fail(status, "%s", why);
	return transcode_print_json(thumbnail_info_json(&info));
}
