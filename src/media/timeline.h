/*
 * timeline.h
 *		The timestamps of an input as the ffmpeg CLI sees them: re-based
 *		after a jump in formats whose timestamps may jump (MPEG-TS/PS, Ogg),
 *		and a dts for video packets that carry none (raw H.264/HEVC).
 */
#ifndef VPROXY_TIMELINE_H
#define VPROXY_TIMELINE_H

#include <stdbool.h>
#include <stdint.h>

#include <libavformat/avformat.h>

/* Where one of the chosen streams was; AV_TIME_BASE units, re-based. */
typedef struct TimelineStream
{
	int			index;			/* in the format context, -1: none */
	bool		video;
	int64_t		dts;			/* of its last packet, or AV_NOPTS_VALUE */
	int64_t		next_dts;		/* where it should go on, or AV_NOPTS_VALUE */
	int64_t		frame_duration; /* nominal (video), 0 when unknown */
} TimelineStream;

typedef struct Timeline
{
	bool		discontinuous;	/* the format's timestamps may jump */
	int64_t		offset;			/* added to every timestamp read */
	int64_t		last_ts;		/* dts of the last packet of either stream */
	int64_t		first_video_dts;	/* for a stream without any: the CLI's start */
	bool		at_start;		/* reading from the file's first byte */
	TimelineStream streams[2];	/* the chosen video and audio */
	bool		video_timed;	/* a video packet came with a timestamp of its own */
	int64_t		jumps;			/* how many times the offset moved */
} Timeline;

extern void timeline_init(Timeline *timeline, const AVFormatContext *format,
						  const AVStream *video, const AVStream *audio,
						  int64_t start_time);
extern void timeline_restart(Timeline *timeline, int64_t offset, bool at_start);
extern void timeline_packet(Timeline *timeline, const AVStream *stream, AVPacket *packet);

#endif							/* VPROXY_TIMELINE_H */
