/*
 * decode.c
 *		Open decoders with the safety settings and check that a video's first
 *		frame decodes into a picture.
 */
#include <libavutil/opt.h>

#include "media/media_internal.h"

/* Open a decoder for `stream` with `threads` threads (0: one per core). */
int
media_open_decoder(AVStream *stream, int threads, AVCodecContext **decoder,
				   char *why)
{
	const AVCodec *codec = avcodec_find_decoder(stream->codecpar->codec_id);
	AVCodecContext *context;
	int			ret;

	*decoder = NULL;
	if (codec == NULL)
		return media_fail(why, EX_DATAERR, "no decoder for the codec %s",
						  avcodec_get_name(stream->codecpar->codec_id));
	context = avcodec_alloc_context3(codec);
	if (context == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory opening a decoder");
	ret = avcodec_parameters_to_context(context, stream->codecpar);
	if (ret < 0)
	{
		avcodec_free_context(&context);
		return media_fail_av(why, ret, "cannot set up the decoder");
	}
	context->pkt_timebase = stream->time_base;
	context->max_pixels = MEDIA_MAX_PIXELS;
	context->thread_count = threads;
	context->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
	ret = avcodec_open2(context, codec, NULL);
	if (ret < 0)
	{
		avcodec_free_context(&context);
		return media_fail_av(why, ret, "cannot open the decoder");
	}
	*decoder = context;
	return 0;
}

/* Send one packet (NULL: flush); a damaged packet is skipped, like the CLI. */
static int
send_packet(AVCodecContext *decoder, const AVPacket *packet, char *why)
{
	int			ret = avcodec_send_packet(decoder, packet);

	if (ret == AVERROR(ENOMEM))
		return media_fail_av(why, ret, "cannot decode the video");
	return 0;
}

/*
 * Decode from the start of the video stream until one frame comes out
 * usable: clean, or concealed but more than one flat colour
 * (frame_usable.c).  Leaves the input read past that point: reopen it to
 * start over.
 */
int
media_decode_first_frame(MediaInput *input, char *why)
{
	AVCodecContext *decoder;
	AVPacket   *packet = av_packet_alloc();
	AVFrame    *frame = av_frame_alloc();
	bool		flushed = false;
	int			status;

	if (packet == NULL || frame == NULL)
	{
		av_packet_free(&packet);
		av_frame_free(&frame);
		return media_fail(why, EX_TEMPFAIL, "out of memory decoding the video");
	}
	status = media_open_decoder(input->video, 1, &decoder, why);
	while (status == 0)
	{
		int			ret = avcodec_receive_frame(decoder, frame);

		if (ret == 0 && media_frame_is_usable(frame))
			break;
		if (ret == 0)
		{
			av_frame_unref(frame);
			continue;
		}
		if (ret == AVERROR(ENOMEM))
		{
			status = media_fail_av(why, ret, "cannot decode the video");
			break;
		}
		if (ret == AVERROR_EOF || flushed)
		{
			status = media_fail(why, EX_DATAERR, "no frame of the video stream decodes into a picture");
			break;
		}
		/* EAGAIN, or a damaged packet: feed the next one */
		status = media_read_packet(input, packet, why);
		if (status == 1)
		{
			flushed = true;
			status = send_packet(decoder, NULL, why);
		}
		else if (status == 0)
		{
			if (packet->stream_index == input->video->index)
				status = send_packet(decoder, packet, why);
			av_packet_unref(packet);
		}
	}
	if (status == 0 && (frame->width > MEDIA_MAX_SIDE || frame->height > MEDIA_MAX_SIDE))
		status = media_fail(why, EX_DATAERR, "a frame is %dx%d, larger than vproxy accepts",
							frame->width, frame->height);
	avcodec_free_context(&decoder);
	av_packet_free(&packet);
	av_frame_free(&frame);
	return status;
}
