/*
 * proxy.c
 *		media_make_proxy: read the input once.  This thread demuxes and
 *		decodes the video; a second thread filters and encodes it and
 *		decodes and encodes the audio (proxy_video.c, proxy_audio.c), both
 *		encoders feeding the MP4 muxer (proxy_output.c).  Packets and frames
 *		pass between the threads in file order through a short queue.  The
 *		file is written under a temporary name, checked by probing it, then
 *		renamed into place.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "media/proxy_internal.h"

#define WORK_QUEUE_ITEMS 8

/* The encoding thread: filter and encode what the decoding thread hands over. */
static void *
encoding_thread(void *arg)
{
	ProxyRun   *run = arg;
	WorkItem	item;
	int			status = 0;

	while (status == 0 && !run->encode_done && work_queue_pop(&run->queue, &item))
	{
		switch (item.kind)
		{
			case WORK_VIDEO_FRAME:
				status = proxy_video_frame(run, item.frame, run->encode_why);
				break;
			case WORK_AUDIO_PACKET:
				status = proxy_audio_packet(run, item.packet, run->encode_why);
				break;
			case WORK_END:
				status = proxy_video_finish(run, run->encode_why);
				if (status == 0)
					status = proxy_audio_finish(run, run->encode_why);
				run->encode_done = status == 0;
				break;
		}
		work_item_free(&item);
	}
	run->encode_status = status;
	if (status != 0)
		work_queue_abort(&run->queue);
	return NULL;
}

/* Hand an audio packet to the encoding thread. */
static int
queue_audio_packet(ProxyRun *run, AVPacket *packet, char *why)
{
	AVPacket   *copy = av_packet_clone(packet);

	if (copy == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	if (!work_queue_push(&run->queue, (WorkItem) {WORK_AUDIO_PACKET, NULL, copy}))
	{
		av_packet_free(&copy);
		return PROXY_ENCODER_FAILED;
	}
	return 0;
}

/* The decoding side: read every packet, decode the video, hand both over. */
static int
decode_all(ProxyRun *run, char *why)
{
	AVPacket   *packet = av_packet_alloc();
	int			status = 0;

	if (packet == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	while (status == 0)
	{
		status = media_read_packet(&run->input, packet, why);
		if (status == 1)
		{
			status = 0;
			break;
		}
		if (status != 0)
			break;
		if (packet->stream_index == run->input.video->index)
			status = proxy_video_packet(run, packet, why);
		else
			status = queue_audio_packet(run, packet, why);
		av_packet_unref(packet);
	}
	av_packet_free(&packet);
	if (status == 0)
		status = proxy_video_flush_decoder(run, why);
	if (status == 0 && !work_queue_push(&run->queue, (WorkItem) {WORK_END, NULL, NULL}))
		status = PROXY_ENCODER_FAILED;
	return status;
}

/*
 * Decode in this thread while another filters and encodes; return the first
 * failure of either, with its cause in why.
 */
static int
transcode(ProxyRun *run, char *why)
{
	pthread_t	encoder;
	int			status;

	if (work_queue_init(&run->queue, WORK_QUEUE_ITEMS) != 0)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	if (pthread_create(&encoder, NULL, encoding_thread, run) != 0)
	{
		work_queue_destroy(&run->queue);
		return media_fail(why, EX_TEMPFAIL, "cannot start the encoding thread");
	}
	status = decode_all(run, why);
	if (status != 0)
		work_queue_abort(&run->queue);
	pthread_join(encoder, NULL);
	work_queue_destroy(&run->queue);
	if (status == PROXY_ENCODER_FAILED || (status == 0 && run->encode_status != 0))
		status = media_fail(why, run->encode_status, "%s", run->encode_why);
	else if (status == 0 && !run->encode_done)
		status = media_fail(why, EX_SOFTWARE, "the encoding thread stopped early");
	if (status == 0 && media_stop_requested(run->input.hooks))
		status = media_fail_stopped(why);
	return status;
}

/* Free everything of the run. */
static void
close_run(ProxyRun *run)
{
	proxy_output_close(run);
	proxy_video_close(run);
	proxy_audio_close(run);
	av_packet_free(&run->packet);
	av_frame_free(&run->frame);
	media_input_close(&run->input);
}

/* Write the proxy of `input` to `output` and describe it. */
int
media_make_proxy(const char *input, const char *output,
				 const ProxyOptions *options, const MediaHooks *hooks,
				 MediaInfo *proxy_info, char *why)
{
	ProxyRun	run;
	int			status;

	memset(&run, 0, sizeof(run));
	memset(proxy_info, 0, sizeof(*proxy_info));
	run.options = options;
	status = media_input_open(input, hooks, &run.input, why);
	if (status == 0)
	{
		run.duration = media_duration_seconds(&run.input);
		/* past the duration by more than 10% + 2 s, a timestamp is damaged */
		run.time_floor = -(run.input.duration / 10 + 2 * AV_TIME_BASE);
		run.time_limit = media_ts_add(run.input.duration, -run.time_floor);
		run.packet = av_packet_alloc();
		run.frame = av_frame_alloc();
		if (run.packet == NULL || run.frame == NULL)
			status = media_fail(why, EX_TEMPFAIL, "out of memory");
	}
	if (status == 0)
		status = proxy_video_open(&run, why);
	if (status == 0)
		status = proxy_audio_open(&run, why);
	if (status == 0)
		status = media_temp_path(output, run.temp_path, sizeof(run.temp_path), why);
	if (status == 0)
		status = proxy_output_open(&run, why);
	if (status == 0)
		status = proxy_output_start(&run, why);
	if (status == 0)
		status = transcode(&run, why);
	if (status == 0)
		status = proxy_output_finish(&run, why);
	close_run(&run);
	if (status == 0 && media_probe(run.temp_path, NULL, proxy_info, why) != 0)
	{
		char		cause[MEDIA_WHY_MAX];

		snprintf(cause, sizeof(cause), "%s", why);
		status = media_fail(why, EX_SOFTWARE, "the proxy written does not read back: %s", cause);
	}
	if (status == 0)
		status = media_commit_output(run.temp_path, output, &proxy_info->file_size_bytes, why);
	else if (run.temp_path[0] != '\0')
		unlink(run.temp_path);
	if (status == 0 && hooks != NULL && hooks->progress != NULL)
		hooks->progress(1.0, hooks->arg);
	return status;
}
