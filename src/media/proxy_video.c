/*
 * proxy_video.c
 *		The proxy's video: decode, select frames at the proxy's rate, turn
 *		upright, scale to square pixels, tone-map HDR, encode H.264.
 *
 * Timestamps are shifted by the file's start time, as the ffmpeg CLI does,
 * so audio and video keep their relative offset.  Frames the fps filter is
 * sure to drop are not even decoded when they are not references
 * (frame_selection.c), nor when they are but an IDR picture follows before
 * a frame the proxy shows (gop_tail.c).  A change of picture size or format
 * mid-stream rebuilds the filter, as the CLI does.
 *
 * Two threads share the work: the decoding thread (proxy_video_open_decoder,
 * proxy_video_packet, proxy_video_end_decoding) decodes and filters, and
 * hands the proxy's frames through the run's work queue to the encoding
 * thread (proxy_video_frame, proxy_video_finish), which runs x264 alone:
 * x264 is the one stage that does not spread over the cores, so whatever
 * else the encoding thread did would lengthen the run on sources where x264
 * is the bottleneck.
 */
#include <math.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/opt.h>

#include "media/proxy_internal.h"

/* Whether the container says the pictures are interlaced. */
static bool
interlaced_stream(const AVCodecParameters *par)
{
	return par->field_order == AV_FIELD_TT || par->field_order == AV_FIELD_BB ||
		par->field_order == AV_FIELD_TB || par->field_order == AV_FIELD_BT;
}

/* The proxy's frame rate: the one asked for, never above the source's. */
AVRational
proxy_video_rate(const MediaInput *input, const ProxyOptions *options)
{
	AVRational	rate = media_frame_rate(input);
	double		fps = options->fps;

	if (rate.num > 0 && rate.den > 0 && av_q2d(rate) < fps)
		fps = av_q2d(rate);
	return av_d2q(fps, INT_MAX);
}

/* The proxy's size and rate from the source's display size and rate. */
static void
choose_format(ProxyRun *run)
{
	AVStream   *video = run->input.video;
	AVRational	sar = av_guess_sample_aspect_ratio(run->input.format, video, NULL);
	int			display_width;
	int			display_height;

	media_display_size(video->codecpar->width, video->codecpar->height, sar,
					   &run->orientation, &display_width, &display_height);
	/* never upscaled: a shorter source keeps its height, made even */
	run->height = display_height > run->options->height ? run->options->height : display_height & ~1;
	if (run->height < 2)
		run->height = 2;
	run->width = media_even((double) run->height * display_width / display_height);
	run->frame_rate = proxy_video_rate(&run->input, run->options);
}

/* Open libx264 with the proxy settings. */
static int
open_encoder(ProxyRun *run, char *why)
{
	const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
	const AVCodecParameters *par = run->input.video->codecpar;
	AVCodecContext *encoder;
	AVDictionary *options = NULL;
	int			ret;

	if (codec == NULL)
		return media_fail(why, EX_SOFTWARE, "libavcodec has no libx264 encoder");
	encoder = run->video_encoder = avcodec_alloc_context3(codec);
	if (encoder == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory opening the H.264 encoder");
	encoder->width = run->width;
	encoder->height = run->height;
	encoder->pix_fmt = AV_PIX_FMT_YUV420P;
	encoder->sample_aspect_ratio = (AVRational)
	{
		1, 1
	};
	encoder->framerate = run->frame_rate;
	encoder->time_base = av_inv_q(run->frame_rate);
	encoder->gop_size = (int) lround(run->options->keyframe_seconds * av_q2d(run->frame_rate));
	if (encoder->gop_size < 1)
		encoder->gop_size = 1;
	encoder->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	/* its share of the thread budget (limits.c) */
	encoder->thread_count = media_encoder_threads();
	encoder->color_range = AVCOL_RANGE_MPEG;
	if (run->hdr)
	{
		encoder->color_primaries = AVCOL_PRI_BT709;
		encoder->color_trc = AVCOL_TRC_BT709;
		encoder->colorspace = AVCOL_SPC_BT709;
	}
	else
	{
		encoder->color_primaries = par->color_primaries;
		encoder->color_trc = par->color_trc;
		encoder->colorspace = par->color_space;
	}
	av_dict_set(&options, "preset", run->options->preset, 0);
	av_dict_set_int(&options, "crf", run->options->crf, 0);
	/* headers that do not depend on the pictures: one for all segments */
	if (run->segment != NULL)
		av_dict_set(&options, "x264-params", "stitchable=1:forced-idr=1", 0);
	ret = avcodec_open2(encoder, codec, &options);
	av_dict_free(&options);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot open the H.264 encoder");
	return 0;
}

/* Open the encoder and plan the frame selection. */
int
proxy_video_open(ProxyRun *run, char *why)
{
	AVStream   *video = run->input.video;

	run->video_offset = av_rescale_q(run->input.start_time, AV_TIME_BASE_Q, video->time_base);
	if (run->video_offset == AV_NOPTS_VALUE)
		return media_fail(why, EX_DATAERR, "the file's start time is out of range");
	run->orientation = media_orientation(video);
	run->deinterlace = interlaced_stream(video->codecpar);
	run->hdr = video->codecpar->color_trc == AVCOL_TRC_SMPTE2084 ||
		video->codecpar->color_trc == AVCOL_TRC_ARIB_STD_B67;
	run->last_video_pts = AV_NOPTS_VALUE;
	run->video_end_pts = AV_NOPTS_VALUE;
	run->video_floor_pts = av_rescale_q(run->time_floor, AV_TIME_BASE_Q, video->time_base);
	run->video_limit_pts = av_rescale_q(run->time_limit, AV_TIME_BASE_Q, video->time_base);
	run->filter_time_base = video->time_base;
	run->filter_scale = 1;
	run->filter_shift = 0;
	run->frame_interval = video->r_frame_rate.num > 0 && video->r_frame_rate.den > 0 ?
		av_rescale_q(1, av_inv_q(video->r_frame_rate), video->time_base) : 0;
	choose_format(run);
	frame_selection_init(&run->selection, video->time_base, run->frame_rate, video->r_frame_rate,
						 !run->deinterlace && av_cmp_q(video->avg_frame_rate, video->r_frame_rate) == 0);
	gop_tail_init(&run->gop_tail, video->codecpar);
	run->last_frame = av_frame_alloc();
	run->decoded = av_frame_alloc();
	if (run->last_frame == NULL || run->decoded == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	return open_encoder(run, why);
}

/* Open the video decoder (decoding thread: its frame threads share that thread's priority). */
int
proxy_video_open_decoder(ProxyRun *run, char *why)
{
	return media_open_decoder(run->input.video, media_decoder_threads(true), &run->video_decoder, why);
}

/* Encode one of the proxy's frames (NULL: flush the encoder); encoding thread. */
int
proxy_video_frame(ProxyRun *run, AVFrame *frame, char *why)
{
	int			ret;

	if (frame != NULL)
	{
		/* a rebuilt filter may repeat a tick: keep timestamps increasing */
		if (run->last_video_pts != AV_NOPTS_VALUE && frame->pts <= run->last_video_pts)
			return 0;
		run->last_video_pts = frame->pts;
		frame->pict_type = run->segment != NULL ? segment_picture_type(run, frame->pts) :
			AV_PICTURE_TYPE_NONE;
		run->frames_encoded++;
		if (run->input.hooks != NULL && run->input.hooks->progress != NULL && run->duration > 0)
			run->input.hooks->progress(run->segment != NULL ? segment_progress(run, frame->pts) :
									   fmin(1.0, frame->pts * av_q2d(run->video_encoder->time_base) / run->duration),
									   run->input.hooks->arg);
	}
	ret = avcodec_send_frame(run->video_encoder, frame);
	if (ret < 0 && ret != AVERROR_EOF)
		return media_fail_av(why, ret, "the H.264 encoder failed");
	return proxy_output_encoded(run, run->video_encoder, run->video_out, why);
}

/* Hand what the filter has ready to the encoding thread. */
static int
queue_filtered(ProxyRun *run, char *why)
{
	AVRational	sink_time_base = av_buffersink_get_time_base(run->video_filter.sink);
	AVFrame    *frame;
	int			ret;

	for (;;)
	{
		frame = av_frame_alloc();
		if (frame == NULL)
			return media_fail(why, EX_TEMPFAIL, "out of memory");
		if ((ret = av_buffersink_get_frame(run->video_filter.sink, frame)) < 0)
			break;
		/* a long gap is filled here, after the whole input has been read */
		if (media_stop_requested(run->input.hooks))
		{
			av_frame_free(&frame);
			return media_fail_stopped(why);
		}
		frame->pts = av_rescale_q(frame->pts, sink_time_base, run->video_encoder->time_base);
		if (run->segment != NULL && !segment_keep_frame(run, frame))
		{
			av_frame_free(&frame);
			continue;
		}
		run->frames_filtered++;
		if (!work_queue_push(&run->queue, (WorkItem) {WORK_VIDEO_FRAME, frame, NULL}))
		{
			av_frame_free(&frame);
			return PROXY_ENCODER_FAILED;
		}
	}
	av_frame_free(&frame);
	if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
		return media_fail_av(why, ret, "cannot filter the video");
	return 0;
}

/*
 * A frame's timestamp as the filter takes it: a segment's run on a finer
 * time base, shifted to its first slot (see segment.c); the same for the
 * whole proxy.
 */
static int64_t
filter_pts(const ProxyRun *run, int64_t pts)
{
	int64_t		scaled;

	if (pts == AV_NOPTS_VALUE || __builtin_mul_overflow(pts, run->filter_scale, &scaled))
		return AV_NOPTS_VALUE;
	return media_ts_sub(scaled, run->filter_shift);
}

/* Drain and free the filter, its input ending at end_pts (before a rebuild, or at the end). */
static int
finish_filter(ProxyRun *run, int64_t end_pts, char *why)
{
	int			ret;
	int			status;

	if (!run->video_filter_open)
		return 0;
	/*
	 * the end of the last frame, so the fps filter gives it its full time;
	 * not pushed through, but pulled frame by frame as the encoder takes
	 * them, so that a long fill never piles up in the filter's queue
	 */
	ret = av_buffersrc_close(run->video_filter.source, filter_pts(run, end_pts), 0);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot filter the video");
	status = queue_filtered(run, why);
	media_video_filter_close(&run->video_filter);
	run->video_filter_open = false;
	return status;
}

/* Build the filter for frames like `frame`. */
static int
open_filter(ProxyRun *run, const AVFrame *frame, char *why)
{
	AVStream   *video = run->input.video;
	VideoFilterSpec spec;
	int			status;

	if (frame->interlaced_frame)
		run->deinterlace = true;
	memset(&spec, 0, sizeof(spec));
	spec.first_frame = frame;
	spec.time_base = run->filter_time_base;
	spec.sample_aspect = av_guess_sample_aspect_ratio(run->input.format, video, NULL);
	spec.orientation = &run->orientation;
	spec.deinterlace = run->deinterlace;
	spec.fps = av_q2d(run->frame_rate);
	/* a rebuilt filter goes on from where the last one stopped */
	spec.fps_from_zero = run->frames_filtered == 0;
	spec.width = run->width;
	spec.height = run->height;
	spec.scale_flags = "lanczos";
	spec.zimg_filter = "lanczos";
	spec.full_range = false;
	spec.threads = 1;
	status = media_video_filter_open(&spec, &run->video_filter, why);
	if (status == 0)
	{
		run->video_filter_open = true;
		run->filter_width = frame->width;
		run->filter_height = frame->height;
		run->filter_format = frame->format;
	}
	return status;
}

/* Filter one decoded frame, taking its picture. */
static int
filter_frame(ProxyRun *run, AVFrame *frame, char *why)
{
	int64_t		duration = frame->pkt_duration > 0 ? frame->pkt_duration : run->frame_interval;
	int64_t		end_pts;
	int			status;
	int			ret;

	if (frame->width > MEDIA_MAX_SIDE || frame->height > MEDIA_MAX_SIDE)
		return media_fail(why, EX_DATAERR, "a frame is %dx%d, larger than vproxy accepts",
						  frame->width, frame->height);
	frame->pts = frame->best_effort_timestamp;
	/*
	 * one the decoder gives back without a time (the last ones of a raw
	 * stream) follows the latest, as the CLI times it
	 */
	if (frame->pts == AV_NOPTS_VALUE && run->video_end_pts != AV_NOPTS_VALUE)
		frame->pts = media_ts_add(run->video_end_pts, run->video_offset);
	/* a timestamp that cannot be shifted by the start time is damaged: skipped */
	if (frame->pts != AV_NOPTS_VALUE &&
		(frame->pts = media_ts_sub(frame->pts, run->video_offset)) == AV_NOPTS_VALUE)
		return 0;
	/*
	 * a frame far outside the input's duration has a damaged timestamp: the
	 * fps filter would fill the gap with copies of a frame (hours of them
	 * for a fuzzed one), so it is skipped
	 */
	if (frame->pts != AV_NOPTS_VALUE &&
		(frame->pts > run->video_limit_pts || frame->pts < run->video_floor_pts))
		return 0;
	if (media_frame_is_usable(frame))
		run->frames_decoded++;
	if (run->video_filter_open &&
		(frame->width != run->filter_width || frame->height != run->filter_height ||
		 frame->format != run->filter_format))
	{
		run->filter_rebuilds++;
		if ((status = finish_filter(run, frame->pts, why)) != 0)
			return status;
	}
	end_pts = media_ts_add(frame->pts, duration);
	if (end_pts != AV_NOPTS_VALUE && end_pts > run->video_limit_pts)
		end_pts = run->video_limit_pts;
	if (end_pts != AV_NOPTS_VALUE &&
		(run->video_end_pts == AV_NOPTS_VALUE || end_pts > run->video_end_pts))
		run->video_end_pts = end_pts;
	if (!run->video_filter_open && (status = open_filter(run, frame, why)) != 0)
		return status;
	if (run->segment != NULL && (status = segment_check_start(run, frame, why)) != 0)
		return status;
	av_frame_unref(run->last_frame);
	if (av_frame_ref(run->last_frame, frame) < 0)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	frame->pts = filter_pts(run, frame->pts);
	ret = av_buffersrc_add_frame_flags(run->video_filter.source, frame, 0);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot filter the video");
	return queue_filtered(run, why);
}

/* Filter what the decoder has ready. */
static int
drain_decoder(ProxyRun *run, char *why)
{
	AVFrame    *frame = run->decoded;
	int			status;
	int			ret;

	while ((ret = avcodec_receive_frame(run->video_decoder, frame)) >= 0)
	{
		/* a deinterlacer needs every frame: no more skipping */
		if (frame->interlaced_frame)
			run->selection.enabled = false;
		status = filter_frame(run, frame, why);
		av_frame_unref(frame);
		if (status != 0)
			return status;
	}
	if (ret == AVERROR(ENOMEM))
		return media_fail_av(why, ret, "cannot decode the video");
	return 0;
}

/* Decode one video packet, or only its references when the fps filter drops its frame. */
static int
decode_packet(ProxyRun *run, const AVPacket *packet, bool dropped, char *why)
{
	int			ret;

	run->video_decoder->skip_frame = dropped ? AVDISCARD_NONREF : AVDISCARD_DEFAULT;
	ret = avcodec_send_packet(run->video_decoder, packet);
	if (ret == AVERROR(ENOMEM))
		return media_fail_av(why, ret, "cannot decode the video");
	return drain_decoder(run, why);
}

/* Decode the dropped frames held back, oldest first. */
static int
decode_held(ProxyRun *run, char *why)
{
	AVPacket   *held;
	int			status = 0;

	while (status == 0 && (held = gop_tail_release(&run->gop_tail)) != NULL)
	{
		status = decode_packet(run, held, true, why);
		av_packet_free(&held);
	}
	return status;
}

/*
 * Decode one video packet (decoding thread).  A frame the fps filter is sure
 * to drop is not decoded when it is no reference, and is held back when it
 * is one, until an IDR picture shows that no later frame needs it
 * (gop_tail.c).
 */
int
proxy_video_packet(ProxyRun *run, AVPacket *packet, char *why)
{
	int64_t		pts = media_ts_sub(packet->pts, run->video_offset);
	bool		dropped = frame_selection_drops(&run->selection, pts);
	int			status;

	if (dropped && gop_tail_hold(&run->gop_tail, packet))
		return 0;
	gop_tail_settle(&run->gop_tail, packet, run->video_decoder->has_b_frames > 0);
	if ((status = decode_held(run, why)) != 0)
		return status;
	return decode_packet(run, packet, dropped, why);
}

/*
 * A video too short for the fps filter to keep any frame (a single frame,
 * or frames that all end before the start): show its last frame at the
 * start for one proxy frame rather than fail.
 */
static int
filter_last_frame(ProxyRun *run, char *why)
{
	AVFrame    *frame = run->last_frame;
	int64_t		period = av_rescale_q(1, av_inv_q(run->frame_rate), run->input.video->time_base);
	int64_t		end_pts;
	int			status;
	int			ret;

	if (frame->pts == AV_NOPTS_VALUE || frame->pts < 0)
		frame->pts = 0;
	end_pts = media_ts_add(frame->pts, period > 0 ? period : 1);
	if (end_pts == AV_NOPTS_VALUE)
		return media_fail(why, EX_DATAERR, "the video's timestamps are out of range");
	if ((status = open_filter(run, frame, why)) != 0)
		return status;
	ret = av_buffersrc_add_frame_flags(run->video_filter.source, frame, 0);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot filter the video");
	return finish_filter(run, end_pts, why);
}

/*
 * At the end of the input: flush the decoder and the filter (decoding
 * thread).
 */
int
proxy_video_end_decoding(ProxyRun *run, char *why)
{
	int			status;

	/* the last frames held end the video: their durations make its length */
	if ((status = decode_held(run, why)) != 0)
		return status;
	run->video_decoder->skip_frame = AVDISCARD_DEFAULT;
	avcodec_send_packet(run->video_decoder, NULL);
	status = drain_decoder(run, why);
	/* a segment that began too late is made again from further back (segment.c) */
	if (status == 0 && run->frames_decoded == 0 && (run->segment == NULL || run->segment_started))
		return media_fail(why, EX_DATAERR, "no frame of the video stream decodes into a picture");
	if (status == 0)
		status = finish_filter(run, run->video_end_pts, why);
	if (status == 0 && run->frames_filtered == 0 && run->last_frame->buf[0] != NULL &&
		run->segment == NULL)
		status = filter_last_frame(run, why);
	return status;
}

/* Flush the encoder after the last frame (encoding thread). */
int
proxy_video_finish(ProxyRun *run, char *why)
{
	int			status = proxy_video_frame(run, NULL, why);

	/* a segment planned past the video's real end has none */
	if (status == 0 && run->frames_encoded == 0 && run->segment == NULL)
		return media_fail(why, EX_DATAERR, "the video yields no frame at %g fps",
						  av_q2d(run->frame_rate));
	return status;
}

/* Free the video side. */
void
proxy_video_close(ProxyRun *run)
{
	media_video_filter_close(&run->video_filter);
	run->video_filter_open = false;
	gop_tail_close(&run->gop_tail);
	av_frame_free(&run->last_frame);
	av_frame_free(&run->decoded);
	avcodec_free_context(&run->video_decoder);
	avcodec_free_context(&run->video_encoder);
}
