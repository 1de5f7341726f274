/*
 * proxy.c
 *		media_make_proxy: read the input once.  A decoding thread demuxes,
 *		decodes the video and filters it (frame rate, upright, scale); this
 *		thread encodes it and decodes and encodes the audio (proxy_video.c,
 *		proxy_audio.c), both encoders feeding the MP4 muxer
 *		(proxy_output.c).  The proxy's frames and the audio packets pass
 *		between the threads in file order through a short queue.  The
 *		file is written under a temporary name, checked by probing it, then
 *		renamed into place.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "media/proxy_internal.h"

#define WORK_QUEUE_ITEMS 8
/* x264 gets about four times the decoder's share of a contended core */
#define DECODER_NICE_STEP 6

/* Encode what the decoding thread hands over, until its end. */
static int
encode_all(ProxyRun *run, bool *done, char *why)
{
	WorkItem	item;
	int			status = 0;

	*done = false;
	while (status == 0 && !*done && work_queue_pop(&run->queue, &item))
	{
		switch (item.kind)
		{
			case WORK_VIDEO_FRAME:
				status = proxy_video_frame(run, item.frame, why);
				break;
			case WORK_AUDIO_PACKET:
				status = proxy_audio_packet(run, item.packet, why);
				break;
			case WORK_END:
				status = proxy_video_finish(run, why);
				if (status == 0)
					status = proxy_audio_finish(run, why);
				*done = status == 0;
				break;
		}
		work_item_free(&item);
	}
	return status;
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

/* The decoding side: read every packet, decode and filter the video, hand both over. */
static int
decode_all(ProxyRun *run, char *why)
{
	AVPacket   *packet = av_packet_alloc();
	int			status = 0;

	if (packet == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	while (status == 0 && !run->segment_done)
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
	/* a segment that has its frames ends there: nothing is flushed */
	if (status == 0 && !run->segment_done)
		status = proxy_video_end_decoding(run, why);
	if (status == 0 && !work_queue_push(&run->queue, (WorkItem) {WORK_END, NULL, NULL}))
		status = PROXY_ENCODER_FAILED;
	return status;
}

/*
 * The decoding thread.  It runs DECODER_NICE_STEP nice levels below the
 * encoder, and so do the decoder's frame threads, which it starts: x264, the
 * one stage that cannot spread over the cores, runs whenever it has a
 * frame, and the decoder fills the rest of the budget's cores.
 */
static void *
decoding_thread(void *arg)
{
	ProxyRun   *run = arg;

	media_lower_thread_priority(DECODER_NICE_STEP);
	run->decode_status = proxy_video_open_decoder(run, run->decode_why);
	if (run->decode_status == 0)
		run->decode_status = decode_all(run, run->decode_why);
	if (run->decode_status != 0)
		work_queue_abort(&run->queue);
	return NULL;
}

/*
 * Encode in this thread while another decodes; return the first failure of
 * either, with its cause in why.
 */
int
proxy_transcode(ProxyRun *run, char *why)
{
	pthread_t	decoder;
	bool		done;
	int			status;

	if (work_queue_init(&run->queue, WORK_QUEUE_ITEMS) != 0)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	if (pthread_create(&decoder, NULL, decoding_thread, run) != 0)
	{
		work_queue_destroy(&run->queue);
		return media_fail(why, EX_TEMPFAIL, "cannot start the decoding thread");
	}
	status = encode_all(run, &done, why);
	if (status != 0)
		work_queue_abort(&run->queue);
	pthread_join(decoder, NULL);
	work_queue_destroy(&run->queue);
	if (run->decode_status != 0 && run->decode_status != PROXY_ENCODER_FAILED)
		status = media_fail(why, run->decode_status, "%s", run->decode_why);
	else if (status == 0 && !done)
		status = media_fail(why, EX_SOFTWARE, "the decoding thread stopped early");
	if (status == 0 && media_stop_requested(run->input.hooks))
		status = media_fail_stopped(why);
	return status;
}

/*
 * Open the input of a run and set what its video and audio sides share;
 * the run is zeroed first.
 */
int
proxy_open_run(ProxyRun *run, const char *input, const ProxyOptions *options,
			   const MediaHooks *hooks, char *why)
{
	int			status;

	memset(run, 0, sizeof(*run));
	run->options = options;
	status = media_input_open(input, hooks, &run->input, why);
	if (status == 0)
	{
		run->duration = media_duration_seconds(&run->input);
		/* past the duration by more than 10% + 2 s, a timestamp is damaged */
		run->time_floor = -(run->input.duration / 10 + 2 * AV_TIME_BASE);
		run->time_limit = media_ts_add(run->input.duration, -run->time_floor);
		run->packet = av_packet_alloc();
		run->frame = av_frame_alloc();
		if (run->packet == NULL || run->frame == NULL)
			status = media_fail(why, EX_TEMPFAIL, "out of memory");
	}
	return status;
}

/* Free everything of the run. */
void
proxy_close_run(ProxyRun *run)
{
	proxy_output_close(run);
	chunk_close(&run->chunk);
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

	memset(proxy_info, 0, sizeof(*proxy_info));
	status = proxy_open_run(&run, input, options, hooks, why);
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
		status = proxy_transcode(&run, why);
	if (status == 0)
		status = proxy_output_finish(&run, why);
	proxy_close_run(&run);
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
