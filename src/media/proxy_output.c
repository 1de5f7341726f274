/*
 * proxy_output.c
 *		The proxy's MP4 file: open the muxer on the temporary file, write the
 *		encoders' packets interleaved, finish with the index moved before the
 *		media data (faststart).
 */
#include <libavutil/opt.h>

#include "media/proxy_internal.h"

/* Open the muxer on run->temp_path and add the streams of the opened encoders. */
int
proxy_output_open(ProxyRun *run, char *why)
{
	int			ret;

	ret = avformat_alloc_output_context2(&run->output, NULL, "mp4", run->temp_path);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot set up the MP4 muxer");
	run->video_out = avformat_new_stream(run->output, NULL);
	if (run->video_out == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory setting up the MP4 muxer");
	ret = avcodec_parameters_from_context(run->video_out->codecpar, run->video_encoder);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot set up the MP4 muxer");
	run->video_out->time_base = run->video_encoder->time_base;
	run->video_out->avg_frame_rate = run->frame_rate;
	if (run->audio_encoder != NULL)
	{
		run->audio_out = avformat_new_stream(run->output, NULL);
		if (run->audio_out == NULL)
			return media_fail(why, EX_TEMPFAIL, "out of memory setting up the MP4 muxer");
		ret = avcodec_parameters_from_context(run->audio_out->codecpar, run->audio_encoder);
		if (ret < 0)
			return media_fail_av(why, ret, "cannot set up the MP4 muxer");
		run->audio_out->time_base = run->audio_encoder->time_base;
	}
	ret = avio_open(&run->output->pb, run->temp_path, AVIO_FLAG_WRITE);
	if (ret < 0)
		return media_fail_output(why, ret, "cannot write the proxy");
	return 0;
}

/* Write the header: from here on packets may be written. */
int
proxy_output_start(ProxyRun *run, char *why)
{
	AVDictionary *options = NULL;
	int			ret;

	av_dict_set(&options, "movflags", "+faststart", 0);
	ret = avformat_write_header(run->output, &options);
	av_dict_free(&options);
	if (ret < 0)
		return media_fail_output(why, ret, "cannot write the proxy header");
	return 0;
}

/* Move every packet the encoder has ready into the file. */
int
proxy_output_encoded(ProxyRun *run, AVCodecContext *encoder, AVStream *stream, char *why)
{
	int			ret;

	while ((ret = avcodec_receive_packet(encoder, run->packet)) >= 0)
	{
		/*
		 * the video is constant-rate, one frame per tick of the encoder's
		 * time base; x264 leaves the duration 0, and the muxer would then
		 * end the track at its last frame's start (a one-frame video that
		 * starts late got an edit list of negative length): the ffmpeg CLI
		 * sets it the same way
		 */
		if (encoder->codec_type == AVMEDIA_TYPE_VIDEO && run->packet->duration == 0)
			run->packet->duration = 1;
		/* a unit of a split proxy keeps its packets for the stitch (chunk_file.c) */
		if (run->chunk.file != NULL)
		{
			int			status = run->segment != NULL && !segment_keep_packet(run, run->packet) ? 0 :
				chunk_write_packet(&run->chunk, run->packet, why);

			av_packet_unref(run->packet);
			if (status != 0)
				return status;
			continue;
		}
		run->packet->stream_index = stream->index;
		av_packet_rescale_ts(run->packet, encoder->time_base, stream->time_base);
		ret = av_interleaved_write_frame(run->output, run->packet);
		av_packet_unref(run->packet);
		if (ret < 0)
			return media_fail_output(why, ret, "cannot write the proxy");
	}
	if (ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
		return media_fail_av(why, ret, "the encoder failed");
	return 0;
}

/* Write the trailer (and move the index to the front) and close the file. */
int
proxy_output_finish(ProxyRun *run, char *why)
{
	int			ret = av_write_trailer(run->output);

	if (ret < 0)
		return media_fail_output(why, ret, "cannot finish the proxy");
	ret = avio_closep(&run->output->pb);
	if (ret < 0)
		return media_fail_output(why, ret, "cannot finish the proxy");
	return 0;
}

/* Free the muxer (the file itself is the caller's). */
void
proxy_output_close(ProxyRun *run)
{
	if (run->output != NULL)
	{
		if (run->output->pb != NULL)
			avio_closep(&run->output->pb);
		avformat_free_context(run->output);
		run->output = NULL;
	}
}
