/*
 * timeline.c
 *		Timestamps as the ffmpeg CLI sees them (FFmpeg 5.1, fftools/ffmpeg.c:
 *		process_input() and process_input_packet()), applied to every packet
 *		of the chosen streams as it is read (media_read_packet, and the timing
 *		pass of timing.c), so that probe, proxy and thumbnail see one
 *		continuous time:
 *
 *		- In formats whose timestamps may jump (AVFMT_TS_DISCONT: MPEG-TS,
 *		  MPEG-PS, Ogg), a packet whose dts lies more than 10 s
 *		  (dts_delta_threshold) from where its stream should go on, or more
 *		  than 0.1 s before its stream's last dts, starts a new part: the
 *		  file's offset moves so that the packet lands where its stream
 *		  should have gone on (recordings joined end to end, a recorder's
 *		  clock reset).  A stream's first packet is compared with the last
 *		  packet of either stream.  The offset applies to every later packet.
 *		- A video packet without a dts gets the one its stream should go on
 *		  at: a raw H.264/HEVC stream carries no timestamps, and its frames
 *		  follow one another from minus the decoder's delay, as in the CLI.
 *
 * Jumps are counted: in a file that has them, a time can only be found by
 * reading from the start (seek.c).  All arithmetic on what the file says
 * is checked: a sum that does not fit leaves the packet as it came.
 */
#include <string.h>

#include "media/media_internal.h"

/* ffmpeg.c's dts_delta_threshold */
#define JUMP_THRESHOLD ((int64_t) 10 * AV_TIME_BASE)
/* how far a stream may go back before it counts as a jump */
#define BACKWARD_TOLERANCE (AV_TIME_BASE / 10)

/* One frame of `rate` in AV_TIME_BASE units, 0 when the rate is unknown. */
static int64_t
frame_duration(AVRational rate)
{
	if (rate.num <= 0 || rate.den <= 0)
		return 0;
	return av_rescale_q(1, av_inv_q(rate), AV_TIME_BASE_Q);
}

/*
 * Set up for reading `format` from its start: `video` and `audio` (either
 * may be NULL) are its chosen streams, `start_time` the file's.
 */
void
timeline_init(Timeline *timeline, const AVFormatContext *format,
			  const AVStream *video, const AVStream *audio, int64_t start_time)
{
	int64_t		delay = 0;

	memset(timeline, 0, sizeof(*timeline));
	timeline->discontinuous = (format->iformat->flags & AVFMT_TS_DISCONT) != 0;
	timeline->streams[0].index = video != NULL ? video->index : -1;
	timeline->streams[0].video = true;
	timeline->streams[1].index = audio != NULL ? audio->index : -1;
	if (video != NULL)
	{
		AVRational	rate = video->r_frame_rate.num > 0 ? video->r_frame_rate : video->avg_frame_rate;

		timeline->streams[0].frame_duration = frame_duration(rate);
		/* the CLI starts a stream without timestamps at minus the reordering delay */
		if (video->codecpar->video_delay < 0 ||
			__builtin_mul_overflow((int64_t) video->codecpar->video_delay,
								   frame_duration(video->avg_frame_rate), &delay))
			delay = 0;
	}
	timeline->first_video_dts = media_ts_sub(start_time, delay);
	timeline_restart(timeline, 0, true);
}

/*
 * Forget where the streams were, after a seek: later timestamps get
 * `offset` (AV_TIME_BASE units); `at_start` when the seek went back to the
 * file's first byte, where a stream without timestamps starts again.
 */
void
timeline_restart(Timeline *timeline, int64_t offset, bool at_start)
{
	timeline->offset = offset;
	timeline->last_ts = AV_NOPTS_VALUE;
	timeline->at_start = at_start;
	for (int i = 0; i < 2; i++)
		timeline->streams[i].dts = timeline->streams[i].next_dts = AV_NOPTS_VALUE;
}

/* The chosen stream a packet belongs to, or NULL. */
static TimelineStream *
stream_of(Timeline *timeline, const AVPacket *packet)
{
	for (int i = 0; i < 2; i++)
		if (timeline->streams[i].index >= 0 && timeline->streams[i].index == packet->stream_index)
			return &timeline->streams[i];
	return NULL;
}

/* Whether a difference of timestamps is a jump by the CLI's threshold. */
static bool
far_apart(int64_t delta)
{
	return delta != AV_NOPTS_VALUE && (delta > JUMP_THRESHOLD || delta < -JUMP_THRESHOLD);
}

/*
 * The CLI's test for a jump at a packet whose dts (AV_TIME_BASE units,
 * re-based so far) is `dts`: if it is one, move the offset and shift the
 * packet.  Returns the packet's dts after that.
 */
static int64_t
rebase_jump(Timeline *timeline, TimelineStream *stream, const AVStream *av_stream,
			AVPacket *packet, int64_t dts)
{
	int64_t		delta = AV_NOPTS_VALUE;
	int64_t		offset;
	int64_t		shift;
	int64_t		shifted_dts;
	int64_t		shifted_pts;

	if (stream->next_dts != AV_NOPTS_VALUE)
	{
		int64_t		tolerated = media_ts_add(dts, BACKWARD_TOLERANCE);
		int64_t		late = media_ts_sub(dts, stream->next_dts);

		if (far_apart(late) ||
			(tolerated != AV_NOPTS_VALUE && stream->dts != AV_NOPTS_VALUE && tolerated < stream->dts))
			delta = late;
	}
	else if (timeline->last_ts != AV_NOPTS_VALUE)
	{
		int64_t		late = media_ts_sub(dts, timeline->last_ts);

		if (far_apart(late))
			delta = late;
	}
	if (delta == AV_NOPTS_VALUE)
		return dts;
	offset = media_ts_sub(timeline->offset, delta);
	shift = av_rescale_q(delta, AV_TIME_BASE_Q, av_stream->time_base);
	shifted_dts = media_ts_sub(packet->dts, shift);
	shifted_pts = media_ts_sub(packet->pts, shift);
	if (offset == AV_NOPTS_VALUE || shifted_dts == AV_NOPTS_VALUE ||
		(packet->pts != AV_NOPTS_VALUE && shifted_pts == AV_NOPTS_VALUE))
		return dts;
	timeline->offset = offset;
	timeline->jumps++;
	packet->dts = shifted_dts;
	packet->pts = shifted_pts;
	return dts - delta;
}

/*
 * Put a packet of `stream` (just read) on the timeline: shift it by the
 * offset, give a video packet without a dts the one its stream should go
 * on at, and re-base at a jump.
 */
void
timeline_packet(Timeline *timeline, const AVStream *av_stream, AVPacket *packet)
{
	TimelineStream *stream = stream_of(timeline, packet);
	int64_t		offset;
	int64_t		dts;
	int64_t		duration;

	if (stream == NULL)
		return;
	if (timeline->offset != 0)
	{
		offset = av_rescale_q(timeline->offset, AV_TIME_BASE_Q, av_stream->time_base);
		packet->pts = media_ts_add(packet->pts, offset);
		packet->dts = media_ts_add(packet->dts, offset);
	}
	if (stream->video && (packet->dts != AV_NOPTS_VALUE || packet->pts != AV_NOPTS_VALUE))
		timeline->video_timed = true;
	if (stream->video && packet->dts == AV_NOPTS_VALUE)
	{
		int64_t		expected = stream->next_dts != AV_NOPTS_VALUE ? stream->next_dts :
			timeline->at_start ? timeline->first_video_dts : AV_NOPTS_VALUE;

		if (expected != AV_NOPTS_VALUE)
			packet->dts = av_rescale_q(expected, AV_TIME_BASE_Q, av_stream->time_base);
	}
	if (packet->dts == AV_NOPTS_VALUE)
		return;
	dts = av_rescale_q_rnd(packet->dts, av_stream->time_base, AV_TIME_BASE_Q,
						   AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
	if (timeline->discontinuous)
		dts = rebase_jump(timeline, stream, av_stream, packet, dts);
	timeline->last_ts = dts;
	stream->dts = dts;
	duration = packet->duration > 0 ?
		av_rescale_q(packet->duration, av_stream->time_base, AV_TIME_BASE_Q) : stream->frame_duration;
	stream->next_dts = media_ts_add(dts, duration);
}
