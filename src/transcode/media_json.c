/*
 * media_json.c
 *		MediaInfo and ThumbnailInfo as jansson objects.  The first seven keys
 *		of a video and the four of a thumbnail are the fixed contract
 *		(DESIGN.md at the top of the tree); the others describe what a caller may want to know.
 */
#include <math.h>
#include <stdio.h>

#include "transcode/media_json.h"

/* A number rounded to `digits` decimals, so 29.97 does not print 29.9700299. */
static json_t *
rounded_real(double value, int digits)
{
	double		scale = pow(10.0, digits);

	return json_real(round(value * scale) / scale);
}

/* A name, or null when empty. */
static json_t *
name_or_null(const char *name)
{
	return name[0] != '\0' ? json_string(name) : json_null();
}

/* The JSON object of a video. */
json_t *
media_info_json(const MediaInfo *info)
{
	char		sar[32];

	snprintf(sar, sizeof(sar), "%d:%d", info->sample_aspect_num, info->sample_aspect_den);
	return json_pack("{s:i, s:i, s:o, s:o, s:s, s:I, s:I,"
					 " s:i, s:i, s:i, s:s, s:s, s:s, s:s, s:b, s:s, s:I,"
					 " s:b, s:o, s:i, s:i, s:i}",
					 "width", info->width,
					 "height", info->height,
					 "fps", rounded_real(info->fps, 3),
					 "duration_seconds", rounded_real(info->duration_seconds, 3),
					 "codec", info->codec,
					 "bitrate", (json_int_t) info->bitrate,
					 "file_size_bytes", (json_int_t) info->file_size_bytes,
					 "display_width", info->display_width,
					 "display_height", info->display_height,
					 "rotation", info->rotation,
					 "pix_fmt", info->pix_fmt,
					 "sample_aspect_ratio", sar,
					 "field_order", info->field_order,
					 "color_transfer", info->color_transfer,
					 "hdr", info->hdr,
					 "format_name", info->format_name,
					 "frame_count", (json_int_t) info->frame_count,
					 "has_audio", info->has_audio,
					 "audio_codec", name_or_null(info->audio_codec),
					 "audio_channels", info->audio_channels,
					 "audio_sample_rate", info->audio_sample_rate,
					 "audio_streams", info->audio_streams);
}

/* The JSON object of a thumbnail. */
json_t *
thumbnail_info_json(const ThumbnailInfo *info)
{
	return json_pack("{s:i, s:i, s:I, s:o}",
					 "width", info->width,
					 "height", info->height,
					 "file_size_bytes", (json_int_t) info->file_size_bytes,
					 "timestamp_seconds", rounded_real(info->timestamp_seconds, 3));
}

/* A split proxy's plan: the rate, the frame count and each segment's slots. */
json_t *
split_plan_json(const SplitPlan *plan)
{
	json_t	   *segments = json_array();

	for (int i = 0; i < plan->segments; i++)
		json_array_append_new(segments,
							  json_pack("{s:I,s:I}", "first_slot", (json_int_t) (i * plan->segment_slots),
										"next_slot", (json_int_t) (i + 1 < plan->segments ?
																   (i + 1) * plan->segment_slots : -1)));
	return json_pack("{s:i,s:i,s:I,s:I,s:b,s:o}", "fps_num", plan->fps_num, "fps_den", plan->fps_den,
					 "slots", (json_int_t) plan->slots, "segment_slots", (json_int_t) plan->segment_slots,
					 "interlaced", plan->interlaced, "segments", segments);
}
