/*
 * proxy.c
 *		media_make_proxy: read the input once, sending video packets to
 *		proxy_video.c and audio packets to proxy_audio.c, whose encoders feed
 *		the MP4 muxer (proxy_output.c).  Written under a temporary name,
 *		checked by probing it, then renamed into place.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "media/proxy_internal.h"

/* Read every packet and hand it to its side; flush both at the end. */
static int
transcode(ProxyRun *run, char *why)
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
			status = proxy_audio_packet(run, packet, why);
		av_packet_unref(packet);
	}
	av_packet_free(&packet);
	if (status == 0)
		status = proxy_video_finish(run, why);
	if (status == 0)
		status = proxy_audio_finish(run, why);
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
	av_frame_free(&run->decoded);
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
		run.packet = av_packet_alloc();
		run.frame = av_frame_alloc();
		run.decoded = av_frame_alloc();
		if (run.packet == NULL || run.frame == NULL || run.decoded == NULL)
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
	return status;
}
