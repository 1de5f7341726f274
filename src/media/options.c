/*
 * options.c
 *		The settings of proxy and thumbnail: the documented defaults and the
 *		bounds every caller (the commands, the job runner) checks against.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "media/media.h"

static const char *const x264_presets[] = {
	"ultrafast", "superfast", "veryfast", "faster", "fast",
	"medium", "slow", "slower", "veryslow", "placebo",
};

/* The documented proxy settings. */
void
media_proxy_defaults(ProxyOptions *options)
{
	memset(options, 0, sizeof(*options));
	options->height = 480;
	options->fps = 10.0;
	options->crf = 28;
	snprintf(options->preset, sizeof(options->preset), "medium");
	options->audio_bitrate = 64000;
	options->keyframe_seconds = 2.0;
}

/* The documented thumbnail settings. */
void
media_thumbnail_defaults(ThumbnailOptions *options)
{
	memset(options, 0, sizeof(*options));
	options->at_seconds = -1.0;
	options->width = 320;
}

/* EX_USAGE naming a setting outside [low, high]. */
static int
out_of_range(char *why, const char *setting, double low, double high)
{
	snprintf(why, MEDIA_WHY_MAX, "%s must be between %g and %g", setting, low, high);
	return EX_USAGE;
}

/* Whether the proxy settings are within what the encoders support. */
int
media_check_proxy_options(const ProxyOptions *options, char *why)
{
	size_t		i;

	if (options->height < 16 || options->height > 4320)
		return out_of_range(why, "height", 16, 4320);
	if (!isfinite(options->fps) || options->fps < 0.1 || options->fps > 240.0)
		return out_of_range(why, "fps", 0.1, 240);
	if (options->crf < 0 || options->crf > 51)
		return out_of_range(why, "crf", 0, 51);
	if (options->audio_bitrate < 8000 || options->audio_bitrate > 512000)
		return out_of_range(why, "audio bitrate", 8000, 512000);
	for (i = 0; i < sizeof(x264_presets) / sizeof(x264_presets[0]); i++)
		if (strcmp(options->preset, x264_presets[i]) == 0)
			return 0;
	snprintf(why, MEDIA_WHY_MAX, "preset \"%.32s\" is not an x264 preset", options->preset);
	return EX_USAGE;
}

/* Whether the thumbnail settings are usable (a negative time means the default). */
int
media_check_thumbnail_options(const ThumbnailOptions *options, char *why)
{
	if (options->width < 16 || options->width > 4096)
		return out_of_range(why, "thumbnail width", 16, 4096);
	if (!isfinite(options->at_seconds) || options->at_seconds > 1e9)
		return out_of_range(why, "thumbnail time", 0, 1e9);
	return 0;
}
