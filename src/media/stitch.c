/*
 * stitch.c
 *		media_stitch: the segments' chunks and the audio chunk into the
 *		proxy's MP4 as the single pass writes it: one sample description,
 *		the single pass's timestamps, faststart.
 *
 * First every segment is checked: identical stream headers (x264's
 * `stitchable`), slots following each other from 0 to the video's end,
 * each segment starting with a keyframe and holding only its own slots,
 * none with frames after the one that reached the video's end.  Then the
 * packets are muxed with the audio's, in decoding order.  A segment's
 * packets carry their presentation timestamps on the proxy's grid; their
 * decoding timestamps are made again for the whole stream the way x264
 * makes them in one pass (the k-th packet in decoding order gets the k-th
 * presentation timestamp less the B-frame delay; the first ones, the first
 * timestamps less the delay's length), since each segment's encoder
 * started a delay of its own (a one-frame segment has none).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libavutil/opt.h>

#include "media/chunk_file.h"
#include "media/media_internal.h"

typedef struct Stitch
{
	const char *const *segments;
	int			count;
	AVCodecParameters *video_par;	/* of the first segment */
	AVRational	video_time_base;
	int64_t    *pts;			/* every frame's, in presentation order */
	int64_t		frames;
	int64_t		capacity;		/* of pts */
	int64_t		delay_frames;	/* x264's B-frame delay */
	int64_t		delay_ticks;	/* and its length */
	int64_t		next_packet;	/* in decoding order */
	ChunkFile	audio;
	AVCodecParameters *audio_par;
	AVPacket   *audio_packet;	/* the next audio packet to mux, if any */
	bool		audio_pending;
	AVPacket   *packet;
	AVFormatContext *output;
	AVStream   *video_out;
	AVStream   *audio_out;
	const MediaHooks *hooks;
	char		temp_path[4096];
} Stitch;

/* Whether two segments' stream headers are the same. */
static bool
same_stream(const AVCodecParameters *a, const AVCodecParameters *b)
{
	return a->codec_id == b->codec_id && a->width == b->width && a->height == b->height &&
		a->format == b->format && a->extradata_size == b->extradata_size &&
		(a->extradata_size == 0 || memcmp(a->extradata, b->extradata, a->extradata_size) == 0);
}

/* Add a frame's presentation timestamp to the list. */
static int
add_pts(Stitch *stitch, int64_t pts, char *why)
{
	if (stitch->frames == stitch->capacity)
	{
		int64_t		capacity = stitch->capacity > 0 ? stitch->capacity * 2 : 4096;
		int64_t    *bigger = av_realloc_array(stitch->pts, capacity, sizeof(int64_t));

		if (bigger == NULL)
			return media_fail(why, EX_TEMPFAIL, "out of memory");
		stitch->pts = bigger;
		stitch->capacity = capacity;
	}
	stitch->pts[stitch->frames++] = pts;
	return 0;
}

/* Read a segment's packets: its own slots, a keyframe first; note the delay of the first. */
static int
check_packets(Stitch *stitch, ChunkFile *chunk, char *why)
{
	const ChunkHeader *header = &chunk->header;
	int64_t		count = 0;
	int			status;

	while ((status = chunk_read_packet(chunk, stitch->packet, why)) == 0)
	{
		int64_t		pts = stitch->packet->pts;
		int			flags = stitch->packet->flags;
		int64_t		dts = stitch->packet->dts;

		av_packet_unref(stitch->packet);
		if (pts < header->first_slot || (header->next_slot >= 0 && pts >= header->next_slot) ||
			(count == 0 && !(flags & AV_PKT_FLAG_KEY)))
			return media_fail(why, EX_SOFTWARE, "segment %s holds a frame out of its place (slot %lld)",
							  chunk->path, (long long) pts);
		if (stitch->frames == 0)
			stitch->delay_ticks = pts - dts;
		if ((status = add_pts(stitch, pts, why)) != 0)
			return status;
		count++;
	}
	return status == 1 ? 0 : status;
}

/* Check one segment against the first and the one before it. */
static int
check_segment(Stitch *stitch, int index, int64_t *next_first, bool *ended, char *why)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	ChunkFile	chunk;
	const char *path = stitch->segments[index];
	int			status;

	if (par == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	status = chunk_open(&chunk, path, par, why);
	if (status == 0 &&
		(par->codec_type != AVMEDIA_TYPE_VIDEO || chunk.header.first_slot != *next_first ||
		 (index == stitch->count - 1) != (chunk.header.next_slot < 0) ||
		 (*ended && chunk.header.packets > 0)))
		status = media_fail(why, EX_SOFTWARE, "segment %s does not follow the one before "
							"(slots from %lld)", path, (long long) chunk.header.first_slot);
	if (status == 0 && stitch->video_par == NULL)
	{
		stitch->video_par = par;
		stitch->video_time_base = chunk.header.time_base;
		par = NULL;
	}
	else if (status == 0 && (!same_stream(par, stitch->video_par) ||
							 av_cmp_q(chunk.header.time_base, stitch->video_time_base) != 0))
		status = media_fail(why, EX_SOFTWARE, "segment %s has other stream headers than the first", path);
	if (status == 0)
		status = check_packets(stitch, &chunk, why);
	if (status == 0)
	{
		*next_first = chunk.header.next_slot;
		*ended = *ended || chunk.header.reached_end;
	}
	chunk_close(&chunk);
	avcodec_parameters_free(&par);
	return status;
}

/* Order of int64_t values, for qsort. */
static int
compare_int64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a;
	int64_t		y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

/* Check every segment; list the frames in presentation order and find the B-frame delay. */
static int
check_segments(Stitch *stitch, char *why)
{
	int64_t		next_first = 0;
	bool		ended = false;
	int			status = 0;

	for (int i = 0; i < stitch->count && status == 0; i++)
		status = check_segment(stitch, i, &next_first, &ended, why);
	if (status != 0)
		return status;
	if (stitch->frames == 0)
		return media_fail(why, EX_SOFTWARE, "the segments hold no frame");
	qsort(stitch->pts, stitch->frames, sizeof(int64_t), compare_int64);
	for (int64_t i = 1; i < stitch->frames; i++)
		if (stitch->pts[i] == stitch->pts[i - 1])
			return media_fail(why, EX_SOFTWARE, "two frames of the segments share slot %lld",
							  (long long) stitch->pts[i]);
	while (stitch->delay_frames < stitch->frames &&
		   stitch->pts[stitch->delay_frames] - stitch->pts[0] < stitch->delay_ticks)
		stitch->delay_frames++;
	if (stitch->delay_ticks < 0 || stitch->delay_frames == stitch->frames ||
		stitch->pts[stitch->delay_frames] - stitch->pts[0] != stitch->delay_ticks)
		return media_fail(why, EX_SOFTWARE, "the first segment's decoding delay of %lld slots fits no frame",
						  (long long) stitch->delay_ticks);
	return 0;
}

/* Add a stream with the chunk's parameters to the output. */
static int
add_stream(Stitch *stitch, const AVCodecParameters *par, AVRational time_base,
		   AVStream **stream, char *why)
{
	*stream = avformat_new_stream(stitch->output, NULL);
	if (*stream == NULL || avcodec_parameters_copy((*stream)->codecpar, par) < 0)
		return media_fail(why, EX_TEMPFAIL, "out of memory setting up the MP4 muxer");
	(*stream)->time_base = time_base;
	return 0;
}

/* Open the MP4 muxer on the temporary file with the video and audio streams. */
static int
open_output(Stitch *stitch, bool has_audio, char *why)
{
	AVDictionary *options = NULL;
	int			ret;
	int			status;

	ret = avformat_alloc_output_context2(&stitch->output, NULL, "mp4", stitch->temp_path);
	if (ret < 0)
		return media_fail_av(why, ret, "cannot set up the MP4 muxer");
	status = add_stream(stitch, stitch->video_par, stitch->video_time_base, &stitch->video_out, why);
	if (status != 0)
		return status;
	stitch->video_out->avg_frame_rate = av_inv_q(stitch->video_time_base);
	if (has_audio &&
		(status = add_stream(stitch, stitch->audio_par, stitch->audio.header.time_base,
							 &stitch->audio_out, why)) != 0)
		return status;
	ret = avio_open(&stitch->output->pb, stitch->temp_path, AVIO_FLAG_WRITE);
	if (ret < 0)
		return media_fail_output(why, ret, "cannot write the proxy");
	av_dict_set(&options, "movflags", "+faststart", 0);
	ret = avformat_write_header(stitch->output, &options);
	av_dict_free(&options);
	if (ret < 0)
		return media_fail_output(why, ret, "cannot write the proxy header");
	return 0;
}

/* Write one packet, its timestamps in `time_base`, to `stream`. */
static int
write_packet(Stitch *stitch, AVPacket *packet, AVRational time_base, AVStream *stream, char *why)
{
	int			ret;

	packet->stream_index = stream->index;
	av_packet_rescale_ts(packet, time_base, stream->time_base);
	ret = av_interleaved_write_frame(stitch->output, packet);
	av_packet_unref(packet);
	if (ret < 0)
		return media_fail_output(why, ret, "cannot write the proxy");
	return 0;
}

/* Read the next audio packet into stitch->audio_packet, if there is one. */
static int
next_audio(Stitch *stitch, char *why)
{
	int			status;

	stitch->audio_pending = false;
	if (stitch->audio_out == NULL)
		return 0;
	status = chunk_read_packet(&stitch->audio, stitch->audio_packet, why);
	stitch->audio_pending = status == 0;
	return status == 1 ? 0 : status;
}

/* Mux the audio packets that come before decoding time `dts` of the video (all: INT64_MAX). */
static int
write_audio_before(Stitch *stitch, int64_t dts, char *why)
{
	int			status = 0;

	while (status == 0 && stitch->audio_pending &&
		   (dts == INT64_MAX ||
			av_compare_ts(stitch->audio_packet->dts, stitch->audio.header.time_base,
						  dts, stitch->video_time_base) < 0))
	{
		status = write_packet(stitch, stitch->audio_packet, stitch->audio.header.time_base,
							  stitch->audio_out, why);
		if (status == 0)
			status = next_audio(stitch, why);
	}
	return status;
}

/* The decoding timestamp x264 gives the k-th packet of the whole stream. */
static int64_t
stream_dts(const Stitch *stitch, int64_t k)
{
	return k >= stitch->delay_frames ? stitch->pts[k - stitch->delay_frames] :
		stitch->pts[k] - stitch->delay_ticks;
}

/* Mux one segment's packets, and the audio that comes before each. */
static int
mux_segment(Stitch *stitch, int index, char *why)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	ChunkFile	chunk;
	int			status;

	if (par == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	status = chunk_open(&chunk, stitch->segments[index], par, why);
	while (status == 0 && (status = chunk_read_packet(&chunk, stitch->packet, why)) == 0)
	{
		int64_t		previous = stitch->next_packet > 0 ?
			stream_dts(stitch, stitch->next_packet - 1) : INT64_MIN;

		if (stitch->next_packet == stitch->frames)
		{
			status = media_fail(why, EX_SOFTWARE, "segment %s changed while it was stitched",
								stitch->segments[index]);
			break;
		}
		stitch->packet->dts = stream_dts(stitch, stitch->next_packet++);
		if (stitch->packet->dts > stitch->packet->pts || stitch->packet->dts <= previous)
			status = media_fail(why, EX_SOFTWARE, "the segments' frame %lld cannot be decoded in order",
								(long long) stitch->packet->pts);
		if (status == 0)
			status = write_audio_before(stitch, stitch->packet->dts, why);
		if (status == 0)
			status = write_packet(stitch, stitch->packet, stitch->video_time_base,
								  stitch->video_out, why);
		if (media_stop_requested(stitch->hooks))
			status = media_fail_stopped(why);
	}
	av_packet_unref(stitch->packet);
	chunk_close(&chunk);
	avcodec_parameters_free(&par);
	return status == 1 ? 0 : status;
}

/* Mux everything and finish the file. */
static int
mux_all(Stitch *stitch, char *why)
{
	int			status = next_audio(stitch, why);
	int			ret;

	for (int i = 0; i < stitch->count && status == 0; i++)
	{
		status = mux_segment(stitch, i, why);
		if (status == 0 && stitch->hooks != NULL && stitch->hooks->progress != NULL)
			stitch->hooks->progress((double) (i + 1) / (stitch->count + 1), stitch->hooks->arg);
	}
	if (status == 0)
		status = write_audio_before(stitch, INT64_MAX, why);
	if (status != 0)
		return status;
	ret = av_write_trailer(stitch->output);
	if (ret >= 0)
		ret = avio_closep(&stitch->output->pb);
	if (ret < 0)
		return media_fail_output(why, ret, "cannot finish the proxy");
	return 0;
}

/* Free everything of the stitch but the output file. */
static void
close_stitch(Stitch *stitch)
{
	if (stitch->output != NULL)
	{
		if (stitch->output->pb != NULL)
			avio_closep(&stitch->output->pb);
		avformat_free_context(stitch->output);
	}
	chunk_close(&stitch->audio);
	avcodec_parameters_free(&stitch->video_par);
	avcodec_parameters_free(&stitch->audio_par);
	av_packet_free(&stitch->audio_packet);
	av_packet_free(&stitch->packet);
	av_free(stitch->pts);
}

/* Stitch the segments (in order) and the audio (or NULL) into the proxy at `output`. */
int
media_stitch(const char *const *segments, int count, const char *audio,
			 const char *output, const MediaHooks *hooks, MediaInfo *proxy_info, char *why)
{
	Stitch		stitch;
	int			status = 0;

	memset(&stitch, 0, sizeof(stitch));
	memset(proxy_info, 0, sizeof(*proxy_info));
	stitch.segments = segments;
	stitch.count = count;
	stitch.hooks = hooks;
	media_limit_resources();
	stitch.packet = av_packet_alloc();
	stitch.audio_packet = av_packet_alloc();
	stitch.audio_par = avcodec_parameters_alloc();
	if (stitch.packet == NULL || stitch.audio_packet == NULL || stitch.audio_par == NULL)
		status = media_fail(why, EX_TEMPFAIL, "out of memory");
	if (status == 0 && count < 1)
		status = media_fail(why, EX_USAGE, "no segment to stitch");
	if (status == 0)
		status = check_segments(&stitch, why);
	if (status == 0 && audio != NULL)
		status = chunk_open(&stitch.audio, audio, stitch.audio_par, why);
	if (status == 0 && audio != NULL && stitch.audio_par->codec_type != AVMEDIA_TYPE_AUDIO)
		status = media_fail(why, EX_SOFTWARE, "%s is not the audio of a split proxy", audio);
	if (status == 0)
		status = media_temp_path(output, stitch.temp_path, sizeof(stitch.temp_path), why);
	if (status == 0)
		status = open_output(&stitch, audio != NULL, why);
	if (status == 0)
		status = mux_all(&stitch, why);
	close_stitch(&stitch);
	if (status == 0 && media_probe(stitch.temp_path, NULL, proxy_info, why) != 0)
	{
		char		cause[MEDIA_WHY_MAX];

		snprintf(cause, sizeof(cause), "%s", why);
		status = media_fail(why, EX_SOFTWARE, "the proxy stitched does not read back: %s", cause);
	}
	if (status == 0)
		status = media_commit_output(stitch.temp_path, output, &proxy_info->file_size_bytes, why);
	else if (stitch.temp_path[0] != '\0')
		unlink(stitch.temp_path);
	if (status == 0 && hooks != NULL && hooks->progress != NULL)
		hooks->progress(1.0, hooks->arg);
	return status;
}
