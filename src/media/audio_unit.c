/*
 * audio_unit.c
 *		media_make_audio: the audio of a split proxy, encoded once for the
 *		whole video by the single pass's own audio pipeline (proxy_audio.c),
 *		fed the same packets in the same order, into a chunk file for the
 *		stitch.  AAC encoded per segment would leave priming gaps and clicks
 *		at every join.  The video stream is discarded, so that the demuxer
 *		does not even read the pictures (of a container that says where they
 *		are).
 */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "media/proxy_internal.h"

/* Report how far into the input a packet lies. */
static void
report_progress(const ProxyRun *run, const AVPacket *packet)
{
	const MediaHooks *hooks = run->input.hooks;
	double		at;

	if (hooks == NULL || hooks->progress == NULL || run->duration <= 0 ||
		packet->pts == AV_NOPTS_VALUE)
		return;
	at = (packet->pts - run->audio_offset) * av_q2d(run->input.audio->time_base);
	hooks->progress(fmin(1.0, fmax(0.0, at / run->duration)), hooks->arg);
}

/* Decode, filter and encode every audio packet of the input, in file order. */
static int
encode_audio(ProxyRun *run, char *why)
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
			status = proxy_audio_finish(run, why);
			break;
		}
		if (status == 0 && packet->stream_index == run->input.audio->index)
		{
			report_progress(run, packet);
			status = proxy_audio_packet(run, packet, why);
		}
		av_packet_unref(packet);
	}
	av_packet_free(&packet);
	return status;
}

/* Write the whole video's audio to the chunk `output` (temp name beside it, renamed on success). */
int
media_make_audio(const char *input, const char *output, const ProxyOptions *options,
				 const MediaHooks *hooks, bool *has_audio, char *why)
{
	ProxyRun	run;
	char		temp_path[4096] = "";
	int			status;

	*has_audio = false;
	status = proxy_open_run(&run, input, options, hooks, why);
	if (status == 0 && run.input.audio == NULL)
	{
		proxy_close_run(&run);
		return 0;
	}
	/* the demuxer skips the pictures' bytes: read through ranged reads, the audio's alone */
	if (status == 0)
		run.input.video->discard = AVDISCARD_ALL;
	if (status == 0)
		status = proxy_audio_open(&run, why);
	if (status == 0)
		status = media_temp_path(output, temp_path, sizeof(temp_path), why);
	if (status == 0)
		status = chunk_create(&run.chunk, temp_path, run.audio_encoder, 0, -1, why);
	if (status == 0)
		status = encode_audio(&run, why);
	if (status == 0)
		status = chunk_finish(&run.chunk, true, why);
	proxy_close_run(&run);
	if (status == 0)
		status = media_commit_output(temp_path, output, NULL, why);
	else if (temp_path[0] != '\0')
		unlink(temp_path);
	*has_audio = status == 0;
	if (status == 0 && hooks != NULL && hooks->progress != NULL)
		hooks->progress(1.0, hooks->arg);
	return status;
}
