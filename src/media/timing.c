/*
 * timing.c
 *		The input's duration and frame rate, from its timestamps where the
 *		container states none or an implausible one.
 *
 * Duration: the container's (or the video stream's) when it states one.
 * A live recording (a browser's MediaRecorder WebM, a stream cut by a
 * capture tool) states none; libavformat then leaves it unknown or guesses
 * it from a bit rate.  Then the end of the last packets is the duration:
 * read near the end of the file, where the format allows a byte seek (1 MiB
 * from the end, four times more each time nothing with a timestamp is found
 * there), else the whole file, demuxing only (no decoding).  The end is the
 * latest pts + duration of the chosen video and audio streams, so duplicate
 * and out-of-order timestamps and a cut-off last cluster do not matter; the
 * duration runs from the file's start time, as ffprobe's does.  Timestamps
 * spanning more than 48 hours are damaged: refused, since the proxy would
 * fill the span with copies of frames.  (A stated duration up to 48 hours
 * is taken as it is: a header may lie about days over two seconds of real
 * timestamps, and the proxy follows the timestamps; a longer one is no
 * statement, and the timestamps are measured.)
 *
 * Frame rate: the average the container states, else the nominal one,
 * when it is plausible.  A rate above 240 or equal to the inverse of the
 * time base (a QuickTime clip's 600, a WebM's 1000) is a time base, not a
 * rate: then it is the real average, frames over the video's duration
 * (the container's frame count, else the video packets counted in one pass
 * over the file).
 */
#include <math.h>

#include "media/media_internal.h"

#define TAIL_WINDOW_BYTES ((int64_t) 1 << 20)
/* no upload lasts longer: a longer span is damaged timestamps */
#define MAX_DURATION_HOURS 48
#define MAX_PLAUSIBLE_FPS 240
/* no reordering shows a frame further from its decoding time */
#define MAX_REORDER_GAP ((int64_t) 10 * AV_TIME_BASE)

/* What a pass over the packets found; times in AV_TIME_BASE units. */
typedef struct PacketScan
{
	int			video_index;	/* in the scanning context, -1: none */
	int			audio_index;
	int64_t		first;			/* earliest time any packet is shown */
	int64_t		end;			/* latest end of any packet, AV_NOPTS_VALUE */
	int64_t		video_first;	/* earliest video pts */
	int64_t		video_last;		/* latest video pts */
	int64_t		video_end;		/* latest video pts + duration */
	int64_t		video_packets;
	Timeline	timeline;		/* the scanned packets' timestamps, as read */
	bool		whole;			/* the scan read the whole file from its start */
} PacketScan;

/* Whether `rate` could be a frame rate of a stream in `time_base`. */
static bool
plausible_rate(AVRational rate, AVRational time_base)
{
	if (rate.num <= 0 || rate.den <= 0 || av_q2d(rate) > MAX_PLAUSIBLE_FPS)
		return false;
	return time_base.num <= 0 || time_base.den <= 0 || av_cmp_q(rate, av_inv_q(time_base)) != 0;
}

/* Whether `duration` (AV_TIME_BASE units) is longer than any upload. */
static bool
too_long(int64_t duration)
{
	return duration / AV_TIME_BASE > (int64_t) MAX_DURATION_HOURS * 3600;
}

/* The duration the container states (AV_TIME_BASE units), else 0. */
static int64_t
stated_duration(const MediaInput *input)
{
	const AVFormatContext *format = input->format;
	const AVStream *video = input->video;
	int64_t		duration = 0;

	/* a guess from the bit rate is no statement */
	if (format->duration_estimation_method == AVFMT_DURATION_FROM_BITRATE)
		return 0;
	if (format->duration != AV_NOPTS_VALUE && format->duration > 0)
		duration = format->duration;
	else if (video->duration != AV_NOPTS_VALUE && video->duration > 0)
		duration = av_rescale_q(video->duration, video->time_base, AV_TIME_BASE_Q);
	/* nor is one of years: the proxy would fill it with copies of a frame */
	return too_long(duration) ? 0 : duration;
}

/* The larger of two times, either possibly unknown. */
static int64_t
later(int64_t a, int64_t b)
{
	if (a == AV_NOPTS_VALUE)
		return b;
	if (b == AV_NOPTS_VALUE)
		return a;
	return a > b ? a : b;
}

/*
 * When a packet is shown: its pts, but its dts where the pts is unknown or
 * damaged (further from the dts than any reordering delays a frame: in a
 * file whose timestamps jump, only the dts is re-based, and a pts hours
 * from it would stretch the duration to hours).
 */
static int64_t
shown_at(const AVStream *stream, const AVPacket *packet)
{
	int64_t		gap;

	if (packet->pts == AV_NOPTS_VALUE || packet->dts == AV_NOPTS_VALUE)
		return packet->pts != AV_NOPTS_VALUE ? packet->pts : packet->dts;
	gap = media_ts_sub(packet->pts, packet->dts);
	if (gap != AV_NOPTS_VALUE)
		gap = av_rescale_q(gap, stream->time_base, AV_TIME_BASE_Q);
	if (gap == AV_NOPTS_VALUE || gap > MAX_REORDER_GAP || gap < -MAX_REORDER_GAP)
		return packet->dts;
	return packet->pts;
}

/* Account one packet of a chosen stream. */
static void
scan_packet(PacketScan *scan, const AVStream *stream, const AVPacket *packet)
{
	int64_t		pts = shown_at(stream, packet);
	int64_t		end;

	if (pts == AV_NOPTS_VALUE)
	{
		if (packet->stream_index == scan->video_index)
			scan->video_packets++;
		return;
	}
	end = media_ts_add(pts, packet->duration > 0 ? packet->duration : 0);
	pts = av_rescale_q(pts, stream->time_base, AV_TIME_BASE_Q);
	end = end == AV_NOPTS_VALUE ? pts : av_rescale_q(end, stream->time_base, AV_TIME_BASE_Q);
	scan->end = later(scan->end, end);
	if (scan->first == AV_NOPTS_VALUE || pts < scan->first)
		scan->first = pts;
	if (packet->stream_index != scan->video_index)
		return;
	scan->video_packets++;
	scan->video_last = later(scan->video_last, pts);
	scan->video_end = later(scan->video_end, end);
	if (scan->video_first == AV_NOPTS_VALUE || pts < scan->video_first)
		scan->video_first = pts;
}

/*
 * Read packets of `format` to the end of the file into `scan`.  A damaged
 * tail ends the pass, as it ends the input; 0 or a status.
 */
static int
scan_to_end(MediaInput *input, AVFormatContext *format, AVIOContext *pb,
			PacketScan *scan, char *why)
{
	AVPacket   *packet = av_packet_alloc();
	int			ret;

	if (packet == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory measuring the duration");
	for (;;)
	{
		ret = av_read_frame(format, packet);
		if (media_stop_requested(input->hooks))
		{
			av_packet_free(&packet);
			return media_fail_stopped(why);
		}
		if (ret == AVERROR(EAGAIN))
			continue;
		if (ret < 0)
			break;
		if (packet->stream_index == scan->video_index || packet->stream_index == scan->audio_index)
		{
			timeline_packet(&scan->timeline, format->streams[packet->stream_index], packet);
			scan_packet(scan, format->streams[packet->stream_index], packet);
		}
		av_packet_unref(packet);
	}
	av_packet_free(&packet);
	if (ret == AVERROR(ENOMEM) || media_input_read_failed(pb))
		return media_fail_input(why, pb, ret, "cannot read the input to measure its duration");
	return 0;
}

/*
 * Start a scan of `format`: the chosen streams by index, the others
 * discarded, timestamps put on a timeline as media_read_packet does.
 */
static void
scan_init(const MediaInput *input, AVFormatContext *format, PacketScan *scan)
{
	scan->video_index = (unsigned) input->video->index < format->nb_streams ? input->video->index : -1;
	scan->audio_index = input->audio != NULL &&
		(unsigned) input->audio->index < format->nb_streams ? input->audio->index : -1;
	scan->first = scan->end = scan->video_first = scan->video_last = scan->video_end = AV_NOPTS_VALUE;
	scan->video_packets = 0;
	for (unsigned i = 0; i < format->nb_streams; i++)
		if ((int) i != scan->video_index && (int) i != scan->audio_index)
			format->streams[i]->discard = AVDISCARD_ALL;
	timeline_init(&scan->timeline, format,
				  scan->video_index >= 0 ? format->streams[scan->video_index] : NULL,
				  scan->audio_index >= 0 ? format->streams[scan->audio_index] : NULL,
				  input->start_time);
}

/*
 * Scan the packets of a second opening of `path`: only the last part of the
 * file when `tail` and the format seeks by bytes, else all of it.  Where
 * timestamps may jump, the second opening is probed like the first, so that
 * its packets, their durations and so the jumps of its timeline are the
 * same as those the proxy and the thumbnail read.
 */
static int
scan_file(const char *path, MediaInput *input, bool tail, PacketScan *scan, char *why)
{
	AVFormatContext *format = NULL;
	AVIOContext *pb = NULL;
	bool		found = false;
	int			status = 0;
	int			ret;

	ret = media_open_container(path, input->hooks, &format, &pb, NULL);
	if (ret == AVERROR_EXIT)
		status = media_fail_stopped(why);
	else if (ret < 0)
		status = media_fail_input(why, pb, ret, "cannot open the input again to measure its duration");
	if (status == 0 && !tail && (format->iformat->flags & AVFMT_TS_DISCONT))
		status = media_find_stream_info(format, pb, input->hooks, why);
	if (status == 0)
		scan_init(input, format, scan);
	if (status == 0 && tail && !(format->iformat->flags & AVFMT_NO_BYTE_SEEK))
	{
		for (int64_t window = TAIL_WINDOW_BYTES; status == 0 && !found; window *= 4)
		{
			int64_t		position = input->file_size - window;

			if (position <= 0 || av_seek_frame(format, -1, position, AVSEEK_FLAG_BYTE) < 0)
				break;
			timeline_restart(&scan->timeline, 0, false);
			status = scan_to_end(input, format, pb, scan, why);
			found = scan->end != AV_NOPTS_VALUE;
		}
		if (status == 0 && !found)
		{
			/* nothing near the end: the whole file, from a fresh opening */
			avformat_close_input(&format);
			media_close_io(&pb);
			return scan_file(path, input, false, scan, why);
		}
	}
	else if (status == 0)
	{
		status = scan_to_end(input, format, pb, scan, why);
		scan->whole = true;
	}
	avformat_close_input(&format);
	media_close_io(&pb);
	return status;
}

/* Frames over the video's duration, from the container's count or a scan. */
static AVRational
average_rate(const MediaInput *input, const PacketScan *scan)
{
	const AVStream *video = input->video;
	int64_t		frames = 0;
	int64_t		span = 0;

	if (video->nb_frames > 0 && video->duration != AV_NOPTS_VALUE && video->duration > 0)
	{
		frames = video->nb_frames;
		span = av_rescale_q(video->duration, video->time_base, AV_TIME_BASE_Q);
	}
	else if (scan != NULL && scan->video_packets > 1 && scan->video_first != AV_NOPTS_VALUE)
	{
		/* with packet durations the span covers every frame, else one less */
		frames = scan->video_packets;
		span = media_ts_sub(scan->video_end, scan->video_first);
		if (scan->video_end <= scan->video_last)
			frames--;
	}
	if (frames <= 0 || span <= 0 || span == AV_NOPTS_VALUE)
		return (AVRational) {0, 1};
	return av_d2q(frames * (double) AV_TIME_BASE / span, 1 << 20);
}

/*
 * The span of a scan's packets (AV_TIME_BASE units), 0 when none had a
 * time.  A raw stream's video packets carry no timestamps: its frames
 * follow one another at the stream's rate, as the CLI times them.
 */
static int64_t
scanned_span(const MediaInput *input, const PacketScan *scan)
{
	int64_t		span;

	if (scan->whole && !scan->timeline.video_timed && scan->video_packets > 0 &&
		input->frame_rate.num > 0)
		return av_rescale_q(scan->video_packets, av_inv_q(input->frame_rate), AV_TIME_BASE_Q);
	if (scan->end == AV_NOPTS_VALUE)
		return 0;
	span = media_ts_sub(scan->end, input->start_time);
	return span == AV_NOPTS_VALUE ? 0 : span;
}

/*
 * Fill input->duration and input->frame_rate (see the top of this file);
 * 0, or a status when the video has no duration at all.  Where timestamps
 * may jump (MPEG-TS/PS, Ogg), the whole file is read, re-based as it is
 * read (timeline.c): where they did jump, what libavformat states is the
 * span from the first part's start to the last part's end, not the sum of
 * the parts, and the duration is measured instead, from the earliest
 * re-based time (libavformat's start time is the earliest raw timestamp:
 * a first frame stamped a day before the rest, re-based to follow them,
 * would start the video a day early).
 */
int
media_input_timing(const char *path, MediaInput *input, char *why)
{
	const AVStream *video = input->video;
	AVRational	stated = video->avg_frame_rate.num > 0 && video->avg_frame_rate.den > 0 ?
		video->avg_frame_rate : video->r_frame_rate;
	bool		rate_known = plausible_rate(stated, video->time_base);
	bool		count_known = video->nb_frames > 0 && video->duration != AV_NOPTS_VALUE && video->duration > 0;
	bool		discontinuous = (input->format->iformat->flags & AVFMT_TS_DISCONT) != 0;
	PacketScan	scan;
	bool		scanned = false;
	bool		measured = false;
	int			status;

	input->duration = stated_duration(input);
	input->frame_rate = rate_known ? stated : (AVRational) {0, 1};
	if (discontinuous || input->duration <= 0 || (!rate_known && !count_known))
	{
		/* the frame count needs every packet; the end only the last ones */
		status = scan_file(path, input, !discontinuous && (rate_known || count_known), &scan, why);
		if (status != 0)
			return status;
		scanned = true;
		if (scan.whole)
		{
			input->whole_file = scan.timeline;
			input->whole_file_read = true;
		}
		if (scan.timeline.jumps > 0 && scan.first != AV_NOPTS_VALUE)
			input->start_time = scan.first;
		if (input->duration <= 0 || scan.timeline.jumps > 0)
		{
			input->duration = scanned_span(input, &scan);
			measured = true;
		}
	}
	if (!rate_known)
	{
		input->frame_rate = average_rate(input, scanned ? &scan : NULL);
		if (!plausible_rate(input->frame_rate, (AVRational) {0, 1}))
			input->frame_rate = (AVRational) {0, 1};
	}
	if (input->duration <= 0)
		return media_fail(why, EX_DATAERR, "the video has no duration (no timestamps to measure it by)");
	if (measured && too_long(input->duration))
		return media_fail(why, EX_DATAERR,
						  "the video's timestamps span %.0f hours, more than the %d vproxy accepts (damaged timestamps)",
						  input->duration / (3600.0 * AV_TIME_BASE), MAX_DURATION_HOURS);
	return 0;
}

/* The frame rate of the input's video: plausible, or 0/1 when unknown. */
AVRational
media_frame_rate(const MediaInput *input)
{
	return input->frame_rate;
}

/* The input's duration in seconds. */
double
media_duration_seconds(const MediaInput *input)
{
	return input->duration / (double) AV_TIME_BASE;
}
