/*
 * seek.c
 *		Seek an input to a time, so that what is decoded next shows right.
 *
 * After any seek but one to the very start, video packets are dropped until
 * a keyframe (media_read_packet): a demuxer without an index (MPEG-TS/PS,
 * Ogg, AVI without one) lands between keyframes, and a decoder fed a frame
 * without the frames it refers to shows garbage, not always saying so
 * (MPEG-4 part 2 and Theora say nothing).
 *
 * Where timestamps jumped (joined recordings, timeline.c), a time does not
 * name one place in the file: the same timestamp may be in several parts,
 * and the re-based time of a packet depends on all the packets before it.
 * There the file is read from its start, demuxing only, to the last
 * keyframe at or before the time; the reading goes back there by its byte
 * position, with the timeline as it stood at that keyframe, and decoding
 * starts there.  A raw stream has no timestamps to seek by: it is decoded
 * from its start.
 */
#include "media/media_internal.h"

/*
 * Go back to the very start of the file, whose first frames decode as the
 * CLI decodes them: where timestamps may jump, the first byte (a seek to
 * the start time searches by timestamp and can land after the first
 * keyframe), else the start time.
 */
void
media_seek_start(MediaInput *input)
{
	const AVInputFormat *iformat = input->format->iformat;

	if (!(iformat->flags & AVFMT_TS_DISCONT) || (iformat->flags & AVFMT_NO_BYTE_SEEK) ||
		av_seek_frame(input->format, -1, 0, AVSEEK_FLAG_BYTE) < 0)
		avformat_seek_file(input->format, -1, INT64_MIN, input->start_time, input->start_time, 0);
	timeline_restart(&input->timeline, 0, true);
	input->await_keyframe = false;
}

/*
 * Read from the start to the last video keyframe at or before `time`
 * (re-based, AV_TIME_BASE units); go back to it with the timeline as it
 * stood there.  False when there is none (or a stop request came): then
 * the input is back at its start.
 */
static bool
seek_by_reading(MediaInput *input, int64_t time)
{
	AVStream   *video = input->video;
	AVPacket   *packet = av_packet_alloc();
	Timeline	before;
	Timeline	at_keyframe;
	int64_t		keyframe_pos = -1;

	media_seek_start(input);
	while (packet != NULL && !media_stop_requested(input->hooks) &&
		   av_read_frame(input->format, packet) >= 0)
	{
		bool		is_video = packet->stream_index == video->index;
		bool		keyframe = is_video && (packet->flags & AV_PKT_FLAG_KEY) && packet->pos >= 0;
		int64_t		pts;

		if (!is_video && (input->audio == NULL || packet->stream_index != input->audio->index))
		{
			av_packet_unref(packet);
			continue;
		}
		before = input->timeline;
		timeline_packet(&input->timeline, input->format->streams[packet->stream_index], packet);
		pts = packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts;
		if (is_video && packet->dts != AV_NOPTS_VALUE &&
			av_compare_ts(packet->dts, video->time_base, time, AV_TIME_BASE_Q) > 0)
			break;
		if (keyframe && pts != AV_NOPTS_VALUE &&
			av_compare_ts(pts, video->time_base, time, AV_TIME_BASE_Q) <= 0)
		{
			keyframe_pos = packet->pos;
			at_keyframe = before;
		}
		av_packet_unref(packet);
	}
	av_packet_free(&packet);
	if (keyframe_pos < 0 || av_seek_frame(input->format, -1, keyframe_pos, AVSEEK_FLAG_BYTE) < 0)
	{
		media_seek_start(input);
		return false;
	}
	input->timeline = at_keyframe;
	input->await_keyframe = true;
	return true;
}

/*
 * Seek so that the next video packets read are the keyframe at or before
 * `time` (re-based, AV_TIME_BASE units, as the input's timestamps), or one
 * after it where the format seeks only roughly.  Returns false when it went
 * to the very start instead (media_seek_start): the format cannot seek
 * there, or the file has no timestamps to seek by.
 */
bool
media_seek(MediaInput *input, int64_t time)
{
	if (input->whole_file_read && !input->whole_file.video_timed)
	{
		media_seek_start(input);
		return false;
	}
	if (input->whole_file_read && input->whole_file.jumps > 0)
		return seek_by_reading(input, time);
	if (avformat_seek_file(input->format, -1, INT64_MIN, time, time, 0) < 0)
	{
		media_seek_start(input);
		return false;
	}
	timeline_restart(&input->timeline, 0, false);
	input->await_keyframe = true;
	return true;
}
