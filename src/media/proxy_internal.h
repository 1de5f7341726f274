/*
 * proxy_internal.h
 *		The state of one proxy run, shared by the files that make the proxy:
 *		proxy.c (the run), proxy_video.c, proxy_audio.c, proxy_output.c.
 */
#ifndef VPROXY_PROXY_INTERNAL_H
#define VPROXY_PROXY_INTERNAL_H

#include "media/chunk_file.h"
#include "media/frame_selection.h"
#include "media/gop_tail.h"
#include "media/media_internal.h"
#include "media/work_queue.h"

/* A decoding-side status: the encoding side failed and gave its own cause. */
#define PROXY_ENCODER_FAILED (-1)

typedef struct ProxyRun
{
	const ProxyOptions *options;
	MediaInput	input;
	double		duration;		/* of the input, seconds */
	int64_t		time_floor;		/* timestamps outside [floor, limit] from the */
	int64_t		time_limit;		/* start are damaged: the duration with some
								 * slack, AV_TIME_BASE units */
	int64_t		video_offset;	/* input start time, video stream time base */
	int64_t		audio_offset;	/* input start time, audio stream time base */

	/*
	 * video: decoder -> filter (fps, upright, scale) in the decoding thread
	 * -> encoder in the encoding thread
	 */
	AVCodecContext *video_decoder;
	Orientation orientation;
	VideoFilter video_filter;
	bool		video_filter_open;
	int			filter_width;	/* what the filter was built for */
	int			filter_height;
	int			filter_format;
	AVRational	frame_rate;		/* of the proxy */
	int			width;			/* of the proxy */
	int			height;
	bool		deinterlace;
	bool		hdr;
	AVRational	filter_time_base;	/* of the timestamps given to the filter */
	int64_t		filter_scale;	/* stream ticks to filter ticks */
	int64_t		filter_shift;	/* a segment's first slot, in filter ticks */
	FrameSelection selection;	/* which source frames the fps filter keeps;
								 * decoding thread */
	GopTail		gop_tail;		/* dropped reference frames held back;
								 * decoding thread */
	AVCodecContext *video_encoder;
	int64_t		last_video_pts; /* last pts given to the encoder; encoding thread */
	int64_t		video_end_pts;	/* end of the latest decoded frame, stream time base */
	int64_t		video_floor_pts;	/* frames outside [floor, limit] are
									 * damaged: the input's duration with */
	int64_t		video_limit_pts;	/* some slack, stream time base */
	int64_t		frame_interval; /* nominal frame duration, stream time base */
	AVFrame    *decoded;		/* scratch for the decoder; decoding thread */
	AVFrame    *last_frame;		/* the latest frame given to the filter */
	int64_t		frames_decoded; /* usable (frame_usable.c); decoding thread */
	int64_t		frames_filtered;	/* decoding thread */
	int64_t		frames_encoded; /* encoding thread */

	/* audio: decoder -> filter (resample, downmix, 1024-sample frames) -> encoder */
	AVCodecContext *audio_decoder;
	AVFilterGraph *audio_graph;
	AVFilterContext *audio_source;
	AVFilterContext *audio_sink;
	int			audio_in_format;	/* what the graph was built for */
	int			audio_in_rate;
	AVChannelLayout audio_in_layout;
	AVCodecContext *audio_encoder;
	int64_t		audio_next_pts; /* expected pts of the next decoded samples */
	int64_t		audio_kept_end; /* end of the last frame kept, or NOPTS */
	int64_t		audio_rescale_last;

	/*
	 * a segment of a split proxy (segment.c), NULL for the whole proxy: its
	 * frames go to `chunk` instead of the MP4 muxer
	 */
	const SegmentSpec *segment;
	ChunkFile	chunk;
	int64_t		origin_slot;	/* the first slot filtered and encoded: the
								 * first one less the encoder's warm-up */
	int64_t		end_slot;		/* the first not encoded: the next segment's
								 * first plus the cool-down; -1: none */
	bool		segment_passed; /* a slot at or past next_slot came */
	bool		segment_done;	/* every slot before end_slot is out */
	bool		segment_started;	/* its first slot is the single pass's */
	bool		segment_misaligned; /* decoding began too late: seek earlier */
	int			clean_before_first; /* clean frames up to the first slot */
	int64_t		preroll_start;	/* pts of the first frame decoded, stream time base */
	int64_t		filter_rebuilds;	/* decoding thread */

	/* between the threads */
	WorkQueue	queue;
	int			decode_status;	/* of the decoding thread */
	char		decode_why[MEDIA_WHY_MAX];

	/* output */
	AVFormatContext *output;
	AVStream   *video_out;
	AVStream   *audio_out;
	AVPacket   *packet;			/* scratch for encoders */
	AVFrame    *frame;			/* scratch for the audio; encoding thread */
	char		temp_path[4096];
} ProxyRun;

/* proxy.c */
extern int	proxy_open_run(ProxyRun *run, const char *input, const ProxyOptions *options,
						   const MediaHooks *hooks, char *why);
extern int	proxy_transcode(ProxyRun *run, char *why);
extern void proxy_close_run(ProxyRun *run);

/* proxy_video.c */
extern AVRational proxy_video_rate(const MediaInput *input, const ProxyOptions *options);
extern int	proxy_video_open(ProxyRun *run, char *why);
extern int	proxy_video_packet(ProxyRun *run, AVPacket *packet, char *why);
extern int	proxy_video_open_decoder(ProxyRun *run, char *why);
extern int	proxy_video_end_decoding(ProxyRun *run, char *why);
extern int	proxy_video_frame(ProxyRun *run, AVFrame *frame, char *why);
extern int	proxy_video_finish(ProxyRun *run, char *why);
extern void proxy_video_close(ProxyRun *run);

/* proxy_audio.c */
extern int	proxy_audio_open(ProxyRun *run, char *why);
extern int	proxy_audio_packet(ProxyRun *run, AVPacket *packet, char *why);
extern int	proxy_audio_finish(ProxyRun *run, char *why);
extern void proxy_audio_close(ProxyRun *run);

/* proxy_output.c */
extern int	proxy_output_open(ProxyRun *run, char *why);
extern int	proxy_output_start(ProxyRun *run, char *why);
extern int	proxy_output_encoded(ProxyRun *run, AVCodecContext *encoder,
								 AVStream *stream, char *why);
extern int	proxy_output_finish(ProxyRun *run, char *why);
extern void proxy_output_close(ProxyRun *run);

/* segment_frames.c */
extern int	segment_clean_frames_needed(const ProxyRun *run);
extern int	segment_check_start(ProxyRun *run, const AVFrame *frame, char *why);
extern bool segment_keep_frame(ProxyRun *run, AVFrame *frame);
extern enum AVPictureType segment_picture_type(const ProxyRun *run, int64_t pts);
extern bool segment_keep_packet(const ProxyRun *run, const AVPacket *packet);
extern double segment_progress(const ProxyRun *run, int64_t pts);

#endif							/* VPROXY_PROXY_INTERNAL_H */
