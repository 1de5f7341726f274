/*
 * media.h
 *		What the media room offers: probe and validate an upload, make the
 *		streaming proxy and the JPEG thumbnail.  Built on libav; no PostgreSQL,
 *		no storage, no JSON in here.  See src/media/README.md.
 *
 * Every entry point returns 0 on success or a <sysexits.h> status:
 *		EX_DATAERR		not a usable video (bad, unsupported or hostile media)
 *		EX_NOINPUT		the input file does not exist
 *		EX_TEMPFAIL		worth a retry: out of space or memory, I/O error,
 *						interrupted by a stop request
 *		EX_NOPERM		the output may not be written
 *		EX_SOFTWARE		internal error (e.g. the output folder does not exist)
 * On failure `why` (MEDIA_WHY_MAX bytes) holds one line naming the cause, and
 * no output file is left behind.
 *
 * The first call caps the process's address space (4 GiB unless
 * media_set_memory_limit said otherwise) and quiets libav's logging
 * (limits.c; time is bounded by the supervisor's wall-clock timeout).  The hooks of media_make_proxy are called from
 * its encoding thread (progress) and its decoding thread (should_stop), never
 * at the same time as another call of the same hook.
 */
#ifndef VPROXY_MEDIA_H
#define VPROXY_MEDIA_H

#include <stdbool.h>
#include <stdint.h>
#include <sysexits.h>

#define MEDIA_WHY_MAX 512
#define MEDIA_NAME_MAX 64

/* Callbacks a long operation calls; any may be NULL. */
typedef struct MediaHooks
{
	bool		(*should_stop) (void *arg);	/* true: abandon now, clean up */
	void		(*progress) (double fraction, void *arg);	/* 0..1, monotonic */
	void	   *arg;
} MediaHooks;

/*
 * An input read through ranged reads instead of a file (source.c): its size
 * and a read of up to `size` bytes at `offset`, which returns the count (0
 * only at the end) or a negated <sysexits.h> status.
 */
typedef struct MediaSource
{
	int64_t		size;
	int			(*read_at) (void *arg, int64_t offset, uint8_t *buffer, int size);
	void	   *arg;
} MediaSource;

/* Let `source` stand in for the file `path` in the media calls that follow (NULL: none). */
extern void media_set_source(const char *path, const MediaSource *source);

/* What probe reports of a file (the "original" or "proxy" object). */
typedef struct MediaInfo
{
	int			width;			/* as stored, like ffprobe */
	int			height;
	int			display_width;	/* after sample aspect ratio and rotation */
	int			display_height;
	double		fps;			/* average frame rate, else nominal */
	double		duration_seconds;
	char		codec[MEDIA_NAME_MAX];	/* FFmpeg codec name */
	int64_t		bitrate;		/* container bit rate, bit/s */
	int64_t		file_size_bytes;
	int			rotation;		/* clockwise degrees turned for display:
								 * 0/90/180/270, as ffmpeg's autorotate */
	char		pix_fmt[MEDIA_NAME_MAX];
	int			sample_aspect_num;
	int			sample_aspect_den;
	char		field_order[MEDIA_NAME_MAX];	/* progressive, tt, bb, tb, bt,
												 * unknown */
	char		color_transfer[MEDIA_NAME_MAX];
	bool		hdr;			/* PQ or HLG transfer */
	char		format_name[MEDIA_NAME_MAX];	/* container, e.g. "mov,mp4,..." */
	int64_t		frame_count;	/* from the container, 0 when unknown */
	bool		has_audio;
	char		audio_codec[MEDIA_NAME_MAX];	/* "" without audio */
	int			audio_channels;
	int			audio_sample_rate;
	int			audio_streams;	/* how many audio streams there are */
} MediaInfo;

/* Settings of the proxy; media_proxy_defaults() fills the documented ones. */
typedef struct ProxyOptions
{
	int			height;			/* 480, never upscaled */
	double		fps;			/* 10, never above the source */
	int			crf;			/* 28 */
	char		preset[MEDIA_NAME_MAX];	/* "medium" */
	int			audio_bitrate;	/* 64000 bit/s */
	double		keyframe_seconds;	/* 2 */
} ProxyOptions;

/* Settings of the thumbnail; at_seconds < 0 means "the default time". */
typedef struct ThumbnailOptions
{
	double		at_seconds;		/* 5.0, or the midpoint when beyond the end */
	int			width;			/* 320 */
} ThumbnailOptions;

/* What was written as the thumbnail. */
typedef struct ThumbnailInfo
{
	int			width;
	int			height;
	int64_t		file_size_bytes;
	double		timestamp_seconds;
} ThumbnailInfo;

/*
 * Process-wide bounds (limits.c), set before the first media call:
 * the address-space limit in bytes (0: none of ours), and the number of
 * threads decoder, filters and x264 share (0: as many as the cores).
 */
extern void media_set_memory_limit(uint64_t bytes);
extern void media_set_thread_budget(int threads);

/* Whether the process came near its address-space limit (a failure then is "out of memory"). */
extern bool media_memory_exhausted(void);

extern void media_proxy_defaults(ProxyOptions *options);
extern void media_thumbnail_defaults(ThumbnailOptions *options);

/* Whether settings are within what the proxy and thumbnail support; 0 or EX_USAGE. */
extern int	media_check_proxy_options(const ProxyOptions *options, char *why);
extern int	media_check_thumbnail_options(const ThumbnailOptions *options, char *why);

/* Open, validate (see the issue: streams, duration, dimensions, first frame) and describe. */
extern int	media_probe(const char *input, const MediaHooks *hooks,
						MediaInfo *info, char *why);

/* Write the proxy to `output` (temp name beside it, renamed on success); describe it. */
extern int	media_make_proxy(const char *input, const char *output,
							 const ProxyOptions *options, const MediaHooks *hooks,
							 MediaInfo *proxy_info, char *why);

/* Write the JPEG thumbnail to `output` (temp name beside it, renamed on success). */
extern int	media_make_thumbnail(const char *input, const char *output,
								 const ThumbnailOptions *options,
								 const MediaHooks *hooks,
								 ThumbnailInfo *thumbnail_info, char *why);

/*
 * Split proxies (split_plan.c, segment.c, audio_unit.c, stitch.c): the
 * proxy's frames are numbered from 0 on its constant-rate grid ("slots"); a
 * segment makes slots [first_slot, next_slot) of the single pass, exactly,
 * from a keyframe before them; the audio is encoded once for the whole
 * video; the stitch puts the chunks together into the single pass's MP4.
 */
typedef struct SplitPlan
{
	int			fps_num;		/* the proxy's frame rate */
	int			fps_den;
	int64_t		slots;			/* the proxy's frames, as the durations say */
	int64_t		segment_slots;	/* a whole number of keyframe intervals */
	int			segments;		/* the last one runs to the video's end */
	bool		interlaced;		/* the first frame is: deinterlace throughout */
} SplitPlan;

typedef struct SegmentSpec
{
	int64_t		first_slot;
	int64_t		next_slot;		/* -1: to the video's end */
	bool		interlaced;		/* SplitPlan.interlaced */
} SegmentSpec;

/* What a segment made. */
typedef struct SegmentInfo
{
	int64_t		frames;
	bool		reached_end;	/* the video ended within the segment */
	double		preroll_seconds;	/* decoded before its first slot */
	int			seeks;			/* openings until its start was exact */
} SegmentInfo;

/* Plan the segments of `input`'s proxy, about `segment_seconds` each. */
extern int	media_plan_split(const char *input, const ProxyOptions *options,
							 double segment_seconds, const MediaHooks *hooks,
							 SplitPlan *plan, char *why);

/* Write a segment's video to the chunk file `output`. */
extern int	media_make_segment(const char *input, const char *output,
							   const ProxyOptions *options, const SegmentSpec *segment,
							   const MediaHooks *hooks, SegmentInfo *info, char *why);

/* Write the whole video's audio to the chunk `output`; *has_audio false: none, no file. */
extern int	media_make_audio(const char *input, const char *output,
							 const ProxyOptions *options, const MediaHooks *hooks,
							 bool *has_audio, char *why);

/* Stitch the segments' chunks, in order, and the audio chunk (or NULL) into the proxy. */
extern int	media_stitch(const char *const *segments, int count, const char *audio,
						 const char *output, const MediaHooks *hooks,
						 MediaInfo *proxy_info, char *why);

#endif							/* VPROXY_MEDIA_H */
