/*
 * media_internal.h
 *		What the files of the media room share among themselves: the opened
 *		input, decoders, orientation, output files and failure messages.
 */
#ifndef VPROXY_MEDIA_INTERNAL_H
#define VPROXY_MEDIA_INTERNAL_H

#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>

#include "media/media.h"
#include "media/timeline.h"

/* Refuse frames larger than this on a side or in area (decompression bombs). */
#define MEDIA_MAX_SIDE 8192
#define MEDIA_MAX_PIXELS (1 << 26)

/* An input file opened with the safety settings, its streams chosen. */
typedef struct MediaInput
{
	AVFormatContext *format;
	AVIOContext *pb;			/* ours: outlives a failed open */
	AVStream   *video;			/* the video stream we use */
	AVStream   *audio;			/* the best audio stream, NULL without one */
	int			audio_streams;	/* how many audio streams the file has */
	int64_t		start_time;		/* of the file, AV_TIME_BASE units, 0 if none */
	int64_t		file_size;
	int64_t		duration;		/* AV_TIME_BASE units, > 0 (timing.c) */
	AVRational	frame_rate;		/* of the video, plausible or 0/1 (timing.c) */
	Timeline	timeline;		/* of the packets read (timeline.c) */
	Timeline	whole_file;		/* of timing.c's pass over the whole file */
	bool		whole_file_read;	/* whether timing.c made that pass */
	bool		await_keyframe; /* after a seek: drop packets until a video
								 * keyframe (seek.c) */
	const MediaHooks *hooks;
} MediaInput;

/* How a decoded picture must be turned to be shown upright. */
typedef struct Orientation
{
	int			rotation;		/* clockwise degrees: 0, 90, 180, 270 */
	const char *filters;		/* libavfilter chain doing it, "" for none */
	bool		swaps_sides;	/* width and height trade places */
} Orientation;

/* errors.c */
extern int	media_fail(char *why, int status, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
extern int	media_fail_av(char *why, int averror, const char *what);
extern int	media_fail_output(char *why, int averror, const char *what);
extern int	media_errno_status(int error, int otherwise);
extern bool media_input_read_failed(const AVIOContext *pb);
extern int	media_fail_input(char *why, const AVIOContext *pb, int averror,
							 const char *what);

/* containers.c */
extern const char *media_container_whitelist(void);
extern const char *media_container_names(void);
extern bool media_container_accepted(const char *demuxer);

/* timestamps.c */
extern int64_t media_ts_add(int64_t a, int64_t b);
extern int64_t media_ts_sub(int64_t a, int64_t b);

/* limits.c */
extern void media_limit_resources(void);
extern int	media_decoder_threads(bool beside_encoder);
extern int	media_encoder_threads(void);
extern void media_lower_thread_priority(int steps);

/* input.c */
extern int	media_open_container(const char *path, const MediaHooks *hooks,
								 AVFormatContext **format, AVIOContext **pb,
								 const AVInputFormat **detected);
extern int	media_input_open(const char *path, const MediaHooks *hooks,
							 MediaInput *input, char *why);
extern void media_input_close(MediaInput *input);
extern double media_duration_seconds(const MediaInput *input);
extern int	media_find_stream_info(AVFormatContext *format, AVIOContext *pb,
								   const MediaHooks *hooks, char *why);
extern int	media_read_packet(MediaInput *input, AVPacket *packet, char *why);
extern bool media_stop_requested(const MediaHooks *hooks);
extern int	media_fail_stopped(char *why);

/* seek.c */
extern void media_seek_start(MediaInput *input);
extern bool media_seek(MediaInput *input, int64_t time);

/* source.c */
extern const MediaSource *media_source_for(const char *path);
extern int	media_source_open_io(const MediaSource *source, AVIOContext **pb);
extern void media_close_io(AVIOContext **pb);

/* timing.c */
extern int	media_input_timing(const char *path, MediaInput *input, char *why);
extern AVRational media_frame_rate(const MediaInput *input);

/* decode.c */
extern int	media_open_decoder(AVStream *stream, int threads,
							   AVCodecContext **decoder, char *why);
extern int	media_decode_first_frame(MediaInput *input, char *why);

/* frame_usable.c */
extern bool media_frame_is_clean(const AVFrame *frame);
extern bool media_frame_is_usable(const AVFrame *frame);

/* orientation.c */
extern Orientation media_orientation(const AVStream *stream);
extern void media_display_size(int width, int height, AVRational sar,
							   const Orientation *orientation,
							   int *display_width, int *display_height);
extern int	media_even(double value);

/* video_filter.c */
typedef struct VideoFilterSpec
{
	const AVFrame *first_frame; /* describes the decoded frames */
	AVRational	time_base;		/* of the frames' pts */
	AVRational	sample_aspect;	/* of the stream, when the frames have none */
	const Orientation *orientation;
	bool		deinterlace;
	double		fps;			/* 0: keep every frame */
	bool		fps_from_zero;	/* first output frame at 0: a late start is
								 * filled with the first frame, frames before
								 * 0 are trimmed (the CLI's constant rate) */
	int			width;			/* output size, already even */
	int			height;
	const char *scale_flags;	/* swscale algorithm, e.g. "lanczos" */
	const char *zimg_filter;	/* zscale's, where it takes the frames; NULL: swscale only */
	bool		full_range;		/* yuvj420p (JPEG) instead of yuv420p */
	int			threads;		/* for the filters that slice the work */
} VideoFilterSpec;

typedef struct VideoFilter
{
	AVFilterGraph *graph;
	AVFilterContext *source;
	AVFilterContext *sink;
} VideoFilter;

extern int	media_video_filter_open(const VideoFilterSpec *spec,
									VideoFilter *filter, char *why);
extern void media_video_filter_close(VideoFilter *filter);

/* jpeg.c */
extern int	media_write_jpeg(const AVFrame *frame, int quality, const char *path,
							 char *why);

/* output_file.c */
extern int	media_temp_path(const char *output, char *temp_path, size_t size,
							char *why);
extern int	media_commit_output(const char *temp_path, const char *output,
								int64_t *file_size, char *why);

#endif							/* VPROXY_MEDIA_INTERNAL_H */
