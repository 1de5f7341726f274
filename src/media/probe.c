/*
 * probe.c
 *		media_probe: validate an upload and describe it, the way ffprobe
 *		would.
 */
#include <stdio.h>
#include <string.h>

#include <libavutil/pixdesc.h>

#include "media/media_internal.h"

/* Copy a name into a fixed field, "" for NULL. */
static void
set_name(char *field, const char *name)
{
	snprintf(field, MEDIA_NAME_MAX, "%s", name != NULL ? name : "");
}

/* ffprobe's word for a field order. */
static const char *
field_order_name(enum AVFieldOrder order)
{
	switch (order)
	{
		case AV_FIELD_PROGRESSIVE:
			return "progressive";
		case AV_FIELD_TT:
			return "tt";
		case AV_FIELD_BB:
			return "bb";
		case AV_FIELD_TB:
			return "tb";
		case AV_FIELD_BT:
			return "bt";
		default:
			return "unknown";
	}
}

/* Fill `info` from an opened input. */
static void
describe(const MediaInput *input, MediaInfo *info)
{
	const AVStream *video = input->video;
	const AVCodecParameters *par = video->codecpar;
	AVRational	sar = av_guess_sample_aspect_ratio(input->format, (AVStream *) video, NULL);
	Orientation orientation = media_orientation(video);

	memset(info, 0, sizeof(*info));
	info->width = par->width;
	info->height = par->height;
	media_display_size(par->width, par->height, sar, &orientation,
					   &info->display_width, &info->display_height);
	info->fps = av_q2d(media_frame_rate(input));
	info->duration_seconds = media_duration_seconds(input);
	set_name(info->codec, avcodec_get_name(par->codec_id));
	/* where timestamps jumped, libavformat's rate is over its own wrong span */
	info->bitrate = input->format->bit_rate > 0 && !(input->whole_file_read && input->whole_file.jumps > 0) ?
		input->format->bit_rate : av_rescale(input->file_size, 8 * (int64_t) AV_TIME_BASE, input->duration);
	info->file_size_bytes = input->file_size;
	info->rotation = orientation.rotation;
	set_name(info->pix_fmt, av_get_pix_fmt_name(par->format));
	info->sample_aspect_num = sar.num > 0 ? sar.num : 1;
	info->sample_aspect_den = sar.num > 0 ? sar.den : 1;
	set_name(info->field_order, field_order_name(par->field_order));
	set_name(info->color_transfer, av_color_transfer_name(par->color_trc));
	info->hdr = par->color_trc == AVCOL_TRC_SMPTE2084 || par->color_trc == AVCOL_TRC_ARIB_STD_B67;
	set_name(info->format_name, input->format->iformat->name);
	info->frame_count = video->nb_frames > 0 ? video->nb_frames : 0;
	info->audio_streams = input->audio_streams;
	if (input->audio != NULL)
	{
		info->has_audio = true;
		set_name(info->audio_codec, avcodec_get_name(input->audio->codecpar->codec_id));
		info->audio_channels = input->audio->codecpar->ch_layout.nb_channels;
		info->audio_sample_rate = input->audio->codecpar->sample_rate;
	}
}

/* Open, validate (streams, duration, size, first frame) and describe `path`. */
int
media_probe(const char *path, const MediaHooks *hooks, MediaInfo *info, char *why)
{
	MediaInput	input;
	int			status;

	status = media_input_open(path, hooks, &input, why);
	if (status == 0)
	{
		describe(&input, info);
		status = media_decode_first_frame(&input, why);
	}
	media_input_close(&input);
	return status;
}
