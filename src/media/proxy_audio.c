/*
 * proxy_audio.c
 *		The proxy's audio: decode the chosen track, resample and downmix to
 *		AAC's needs (stereo at most, mono stays mono; the source rate when AAC
 *		has it, else 48 kHz), cut into 1024-sample frames, encode AAC.
 */
#include <stdio.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>

#include "media/proxy_internal.h"

/* The source rate if AAC can code it, else 48 kHz. */
static int
aac_sample_rate(int source_rate)
{
	static const int rates[] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
	22050, 16000, 12000, 11025, 8000, 7350};

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++)
		if (rates[i] == source_rate)
			return source_rate;
	return 48000;
}

/* Open the AAC encoder for the chosen rate and channel count. */
static int
open_encoder(ProxyRun *run, char *why)
{
	const AVCodec *codec = avcodec_find_encoder(AV_CODEC_ID_AAC);
	const AVCodecParameters *par = run->input.audio->codecpar;
	AVCodecContext *encoder;
	int			ret;

	if (codec == NULL)
		return media_fail(why, EX_SOFTWARE, "libavcodec has no AAC encoder");
	encoder = run->audio_encoder = avcodec_alloc_context3(codec);
	if (encoder == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory opening the AAC encoder");
	encoder->sample_rate = aac_sample_rate(par->sample_rate);
	av_channel_layout_default(&encoder->ch_layout, par->ch_layout.nb_channels >= 2 ? 2 : 1);
	encoder->sample_fmt = AV_SAMPLE_FMT_FLTP;
	encoder->bit_rate = run->options->audio_bitrate;
	encoder->time_base = (AVRational)
	{
		1, encoder->sample_rate
	};
	encoder->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
	ret = avcodec_open2(encoder, codec, NULL);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot open the AAC encoder");
	return 0;
}

/* Build the resampling graph for frames like `frame`. */
static int
open_filter(ProxyRun *run, const AVFrame *frame, char *why)
{
	AVCodecContext *encoder = run->audio_encoder;
	AVFilterInOut *outputs = avfilter_inout_alloc();
	AVFilterInOut *inputs = avfilter_inout_alloc();
	char		layout[128];
	char		out_layout[64];
	char		args[512];
	char		chain[256];
	int			ret;

	if (outputs == NULL || inputs == NULL)
	{
		avfilter_inout_free(&outputs);
		avfilter_inout_free(&inputs);
		return media_fail(why, EX_TEMPFAIL, "out of memory building the audio filters");
	}
	if (frame->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC)
	{
		AVChannelLayout guessed;

		av_channel_layout_default(&guessed, frame->ch_layout.nb_channels);
		av_channel_layout_describe(&guessed, layout, sizeof(layout));
		av_channel_layout_uninit(&guessed);
	}
	else
		av_channel_layout_describe(&frame->ch_layout, layout, sizeof(layout));
	av_channel_layout_describe(&encoder->ch_layout, out_layout, sizeof(out_layout));
	snprintf(args, sizeof(args), "time_base=1/%d:sample_rate=%d:sample_fmt=%s:channel_layout=%s",
			 frame->sample_rate, frame->sample_rate,
			 av_get_sample_fmt_name(frame->format), layout);
	snprintf(chain, sizeof(chain), "aresample=%d,aformat=sample_fmts=fltp:sample_rates=%d:channel_layouts=%s",
			 encoder->sample_rate, encoder->sample_rate, out_layout);

	run->audio_graph = avfilter_graph_alloc();
	if (run->audio_graph == NULL)
		ret = AVERROR(ENOMEM);
	else
	{
		/* no slice threads of its own: audio is a sliver of the thread budget */
		run->audio_graph->nb_threads = 1;
		ret = avfilter_graph_create_filter(&run->audio_source, avfilter_get_by_name("abuffer"),
										   "in", args, NULL, run->audio_graph);
	}
	if (ret >= 0)
		ret = avfilter_graph_create_filter(&run->audio_sink, avfilter_get_by_name("abuffersink"),
										   "out", NULL, NULL, run->audio_graph);
	if (ret >= 0)
	{
		outputs->name = av_strdup("in");
		outputs->filter_ctx = run->audio_source;
		inputs->name = av_strdup("out");
		inputs->filter_ctx = run->audio_sink;
		ret = avfilter_graph_parse_ptr(run->audio_graph, chain, &inputs, &outputs, NULL);
	}
	avfilter_inout_free(&outputs);
	avfilter_inout_free(&inputs);
	if (ret >= 0)
		ret = avfilter_graph_config(run->audio_graph, NULL);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot set up the audio filters");
	av_buffersink_set_frame_size(run->audio_sink, encoder->frame_size);
	run->audio_in_format = frame->format;
	run->audio_in_rate = frame->sample_rate;
	av_channel_layout_uninit(&run->audio_in_layout);
	return av_channel_layout_copy(&run->audio_in_layout, &frame->ch_layout) < 0 ?
		media_fail(why, EX_TEMPFAIL, "out of memory") : 0;
}

/* Whether `frame` is in the format the audio graph was built for. */
static bool
same_audio_format(const ProxyRun *run, const AVFrame *frame)
{
	return frame->format == run->audio_in_format &&
		frame->sample_rate == run->audio_in_rate &&
		av_channel_layout_compare(&frame->ch_layout, &run->audio_in_layout) == 0;
}

/* Encode what the filter has ready (everything, at the end). */
static int
encode_filtered(ProxyRun *run, char *why)
{
	int			ret;
	int			status;

	while ((ret = av_buffersink_get_frame(run->audio_sink, run->frame)) >= 0)
	{
		ret = avcodec_send_frame(run->audio_encoder, run->frame);
		av_frame_unref(run->frame);
		if (ret < 0)
			return media_fail_av(why, ret, "the AAC encoder failed");
		if ((status = proxy_output_encoded(run, run->audio_encoder, run->audio_out, why)) != 0)
			return status;
	}
	if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
		return media_fail_av(why, ret, "cannot filter the audio");
	return 0;
}

/*
 * Give a decoded frame its timestamp in samples from the start of the file,
 * the way the ffmpeg CLI does (rescaled without drift, gaps kept), and keep
 * the timeline going forward.  False when the frame is not to be heard: its
 * timestamp is out of range or far outside the input's duration (damaged),
 * it ends before the proxy's start, or it goes back over what was kept.
 */
static bool
stamp_frame(ProxyRun *run, AVFrame *frame)
{
	AVRational	time_base = run->input.audio->time_base;
	AVRational	sample_time = {1, frame->sample_rate};
	int64_t		pts = frame->pts != AV_NOPTS_VALUE ? frame->pts : frame->best_effort_timestamp;
	int64_t		next_pts;

	if (pts != AV_NOPTS_VALUE)
	{
		if ((pts = media_ts_sub(pts, run->audio_offset)) == AV_NOPTS_VALUE)
			return false;
		pts = av_rescale_delta(time_base, pts, sample_time, frame->nb_samples,
							   &run->audio_rescale_last, sample_time);
	}
	else
		pts = run->audio_next_pts;
	if ((next_pts = media_ts_add(pts, frame->nb_samples)) == AV_NOPTS_VALUE)
		return false;
	run->audio_next_pts = next_pts;
	/*
	 * ending before the proxy's start, it cannot be heard (and a track that
	 * ends before 0 gets an edit list of negative length)
	 */
	if (next_pts <= 0)
		return false;
	/* far outside the input's duration: a damaged timestamp (as for video) */
	if (pts < av_rescale_q(run->time_floor, AV_TIME_BASE_Q, sample_time) ||
		pts > av_rescale_q(run->time_limit, AV_TIME_BASE_Q, sample_time))
		return false;
	/*
	 * timestamps going back (repeated, or reset mid-file) would reach the
	 * muxer out of order, which refuses them: a frame overlapping the last
	 * one a little follows it, one going back further is dropped
	 */
	if (run->audio_kept_end != AV_NOPTS_VALUE && pts < run->audio_kept_end)
	{
		if (run->audio_kept_end - pts >= frame->nb_samples)
			return false;
		pts = run->audio_kept_end;
	}
	run->audio_kept_end = pts + frame->nb_samples;
	frame->pts = pts;
	return true;
}

/* Move the decoder's frames through the filter and encoder. */
static int
drain_decoder(ProxyRun *run, char *why)
{
	int			ret;
	int			status;

	while ((ret = avcodec_receive_frame(run->audio_decoder, run->frame)) >= 0)
	{
		/*
		 * A change of format, rate or layout mid-stream (broadcast TS) gets a
		 * new graph; like the ffmpeg CLI, the old one's last partial frame
		 * (under 1024 samples) is let go, as AAC takes no short frame but the
		 * last.
		 */
		if (run->audio_graph != NULL && !same_audio_format(run, run->frame))
			avfilter_graph_free(&run->audio_graph);
		if (run->audio_graph == NULL && (status = open_filter(run, run->frame, why)) != 0)
			return status;
		if (!stamp_frame(run, run->frame))
		{
			av_frame_unref(run->frame);
			continue;
		}
		ret = av_buffersrc_add_frame_flags(run->audio_source, run->frame, 0);
		av_frame_unref(run->frame);
		if (ret < 0)
			return media_fail_av(why, ret, "cannot filter the audio");
		if ((status = encode_filtered(run, why)) != 0)
			return status;
	}
	if (ret == AVERROR(ENOMEM))
		return media_fail_av(why, ret, "cannot decode the audio");
	return 0;
}

/* Open the audio decoder and encoder, when the input has audio. */
int
proxy_audio_open(ProxyRun *run, char *why)
{
	int			status;

	if (run->input.audio == NULL)
		return 0;
	run->audio_offset = av_rescale_q(run->input.start_time, AV_TIME_BASE_Q, run->input.audio->time_base);
	if (run->audio_offset == AV_NOPTS_VALUE)
		return media_fail(why, EX_DATAERR, "the file's start time is out of range");
	run->audio_rescale_last = AV_NOPTS_VALUE;
	run->audio_kept_end = AV_NOPTS_VALUE;
	status = media_open_decoder(run->input.audio, 1, &run->audio_decoder, why);
	if (status == 0)
		status = open_encoder(run, why);
	return status;
}

/* Decode, filter and encode one audio packet; a damaged one is skipped. */
int
proxy_audio_packet(ProxyRun *run, AVPacket *packet, char *why)
{
	int			ret = avcodec_send_packet(run->audio_decoder, packet);

	if (ret == AVERROR(ENOMEM))
		return media_fail_av(why, ret, "cannot decode the audio");
	return drain_decoder(run, why);
}

/* Flush decoder, filter and encoder at the end of the input. */
int
proxy_audio_finish(ProxyRun *run, char *why)
{
	int			status;
	int			ret;

	if (run->audio_decoder == NULL)
		return 0;
	avcodec_send_packet(run->audio_decoder, NULL);
	if ((status = drain_decoder(run, why)) != 0)
		return status;
	if (run->audio_graph != NULL)
	{
		ret = av_buffersrc_add_frame_flags(run->audio_source, NULL, 0);
		if (ret < 0)
			return media_fail_av(why, ret, "cannot filter the audio");
		if ((status = encode_filtered(run, why)) != 0)
			return status;
	}
	ret = avcodec_send_frame(run->audio_encoder, NULL);
	if (ret < 0 && ret != AVERROR_EOF)
		return media_fail_av(why, ret, "the AAC encoder failed");
	return proxy_output_encoded(run, run->audio_encoder, run->audio_out, why);
}

/* Free the audio side. */
void
proxy_audio_close(ProxyRun *run)
{
	avfilter_graph_free(&run->audio_graph);
	av_channel_layout_uninit(&run->audio_in_layout);
	avcodec_free_context(&run->audio_decoder);
	avcodec_free_context(&run->audio_encoder);
}
