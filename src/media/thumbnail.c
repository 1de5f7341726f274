/*
 * thumbnail.c
 *		media_make_thumbnail: the JPEG of the frame `ffmpeg -ss T -i IN
 *		-frames:v 1` picks (the first frame at or after T from the start of
 *		the file), upright, with square pixels, `width` wide, full-range
 *		colour, quality equivalent to ffmpeg's -q:v 2.
 */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>

#include "media/media_internal.h"

#define THUMBNAIL_DEFAULT_SECONDS 5.0
#define THUMBNAIL_JPEG_QUALITY 95
/* how long after a concealed frame a clean one is still preferred */
#define CLEAN_WAIT_SECONDS 2

typedef struct ThumbnailRun
{
	const char *path;			/* of the input */
	MediaInput	input;
	AVCodecContext *decoder;
	VideoFilter filter;
	VideoFilterSpec spec;
	Orientation orientation;
	int			width;			/* asked for */
	int64_t		target_pts;		/* first acceptable pts, stream time base */
	int64_t		latest_end_pts; /* end of the latest frame, for one without a time */
	AVFrame    *previous;		/* the latest usable frame before the target */
	AVFrame    *concealed[3];	/* the first usable concealed frame at or after
								 * the target (1), the frames before (0) and
								 * after it (2), while a clean one is awaited */
	int64_t		clean_wait_pts; /* a clean frame past this is not awaited */
	AVFrame    *picture;		/* the chosen picture, filtered */
	bool		fed;			/* the filter has had the chosen frame */
	double		seek_seconds;	/* where the current attempt seeked to */
	bool		seen_packet;	/* a video packet came since the seek */
	bool		seen_frame;		/* a usable frame came since the seek */
	bool		overshot;		/* the first one was already past the target */
} ThumbnailRun;

/* The time to take the picture at: the asked one, or the midpoint. */
static double
choose_time(const ThumbnailOptions *options, double duration)
{
	double		at = options->at_seconds < 0 ? THUMBNAIL_DEFAULT_SECONDS : options->at_seconds;

	if (at >= duration)
		at = duration / 2.0;
	return at;
}

/*
 * The thumbnail's size: `width` wide, the height from the display aspect
 * ratio.  An extreme ratio (a 32x8192 strip would give 320x81920, beyond what
 * libjpeg-turbo writes) has its height clamped to the largest side vproxy
 * accepts, the width following the aspect ratio, as the proxy clamps its
 * height and derives its width.
 */
static void
thumbnail_size(int width, int display_width, int display_height,
			   int *thumbnail_width, int *thumbnail_height)
{
	double		height = (double) width * display_height / display_width;

	if (height > MEDIA_MAX_SIDE)
	{
		*thumbnail_height = MEDIA_MAX_SIDE;
		*thumbnail_width = media_even((double) MEDIA_MAX_SIDE * display_width / display_height);
		return;
	}
	*thumbnail_width = media_even(width);
	*thumbnail_height = media_even(height);
}

/* Build the filter for frames like `frame`. */
static int
open_filter(ThumbnailRun *run, const AVFrame *frame, char *why)
{
	AVStream   *video = run->input.video;
	AVRational	sar = av_guess_sample_aspect_ratio(run->input.format, video, (AVFrame *) frame);
	int			display_width;
	int			display_height;

	media_display_size(frame->width, frame->height, sar, &run->orientation,
					   &display_width, &display_height);
	run->spec.first_frame = frame;
	run->spec.time_base = video->time_base;
	run->spec.sample_aspect = sar;
	run->spec.orientation = &run->orientation;
	run->spec.deinterlace = frame->interlaced_frame;
	run->spec.fps = 0;
	thumbnail_size(run->width, display_width, display_height, &run->spec.width, &run->spec.height);
	run->spec.scale_flags = "bicubic";
	run->spec.full_range = true;
	run->spec.threads = 1;
	return media_video_filter_open(&run->spec, &run->filter, why);
}

/* Feed one frame (NULL: the end) to the filter; keep the first picture at or after the target. */
static int
filter_frame(ThumbnailRun *run, AVFrame *frame, char *why)
{
	AVFrame    *out;
	int			ret = av_buffersrc_add_frame_flags(run->filter.source, frame, AV_BUFFERSRC_FLAG_KEEP_REF);

	if (ret < 0)
		return media_fail_av(why, ret, "cannot filter the thumbnail picture");
	out = av_frame_alloc();
	if (out == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	while (run->picture == NULL && (ret = av_buffersink_get_frame(run->filter.sink, out)) >= 0)
	{
		/* the deinterlacer doubles the time base */
		AVRational	sink_time_base = av_buffersink_get_time_base(run->filter.sink);

		if (out->pts == AV_NOPTS_VALUE || frame == NULL ||
			av_rescale_q(out->pts, sink_time_base, run->input.video->time_base) >= run->target_pts)
		{
			run->picture = out;
			return 0;
		}
		av_frame_unref(out);
	}
	av_frame_free(&out);
	if (ret < 0 && ret != AVERROR(EAGAIN) && ret != AVERROR_EOF)
		return media_fail_av(why, ret, "cannot filter the thumbnail picture");
	return 0;
}

/*
 * Take `frame` as the picture: the filter is built for it and gets the frame
 * before it (the deinterlacer wants it; may be NULL or empty), it, and the
 * frame after it when there is one (later frames follow as they come).
 */
static int
choose_frame(ThumbnailRun *run, AVFrame *before, AVFrame *frame, AVFrame *after, char *why)
{
	int			status;

	run->fed = true;
	if ((status = open_filter(run, frame, why)) != 0)
		return status;
	if (run->spec.deinterlace && before != NULL && before->buf[0] != NULL &&
		(status = filter_frame(run, before, why)) != 0)
		return status;
	if ((status = filter_frame(run, frame, why)) != 0)
		return status;
	if (after != NULL && after->buf[0] != NULL)
		status = filter_frame(run, after, why);
	return status;
}

/* Forget the concealed frame awaiting a clean one. */
static void
forget_concealed(ThumbnailRun *run)
{
	for (int i = 0; i < 3; i++)
		av_frame_free(&run->concealed[i]);
}

/* Take the concealed frame after all: no clean one came in time. */
static int
choose_concealed(ThumbnailRun *run, char *why)
{
	int			status = choose_frame(run, run->concealed[0], run->concealed[1], run->concealed[2], why);

	forget_concealed(run);
	return status;
}

/*
 * Keep a concealed frame at or after the target, with the frame before it;
 * a clean frame is awaited for CLEAN_WAIT_SECONDS of the video's time.
 */
static int
keep_concealed(ThumbnailRun *run, AVFrame *frame, char *why)
{
	int64_t		wait = av_rescale_q(CLEAN_WAIT_SECONDS, (AVRational) {1, 1}, run->input.video->time_base);

	if (run->previous->buf[0] != NULL && (run->concealed[0] = av_frame_clone(run->previous)) == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	if ((run->concealed[1] = av_frame_clone(frame)) == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	run->clean_wait_pts = frame->pts == AV_NOPTS_VALUE ? AV_NOPTS_VALUE : media_ts_add(frame->pts, wait);
	return 0;
}

/*
 * Handle one decoded frame.  The picture is the first clean frame at or
 * after the target; where that frame is concealed, the next clean one
 * within CLEAN_WAIT_SECONDS, else the concealed one.  Frames of one flat
 * colour are never shown (frame_usable.c).
 */
static int
take_frame(ThumbnailRun *run, AVFrame *frame, char *why)
{
	int			status = 0;

	frame->pts = frame->best_effort_timestamp;
	/* one given back without a time (a raw stream's last) follows the latest */
	if (frame->pts == AV_NOPTS_VALUE)
		frame->pts = run->latest_end_pts;
	if (frame->pts != AV_NOPTS_VALUE && frame->pkt_duration > 0)
		run->latest_end_pts = media_ts_add(frame->pts, frame->pkt_duration);
	if (!media_frame_is_usable(frame))
		return 0;
	/* the chosen frame went in: the later ones follow it (the deinterlacer's next) */
	if (run->fed)
		return filter_frame(run, frame, why);
	/* the seek landed past the target: the caller seeks earlier */
	if (!run->seen_frame && run->seek_seconds > 0 &&
		frame->pts != AV_NOPTS_VALUE && frame->pts > run->target_pts)
	{
		run->overshot = true;
		return 0;
	}
	run->seen_frame = true;
	if (run->concealed[1] != NULL && run->concealed[2] == NULL &&
		(run->concealed[2] = av_frame_clone(frame)) == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	if (frame->pts != AV_NOPTS_VALUE && frame->pts < run->target_pts)
	{
		av_frame_unref(run->previous);
		av_frame_move_ref(run->previous, frame);
		return 0;
	}
	if (media_frame_is_clean(frame))
	{
		status = choose_frame(run, run->previous, frame, NULL, why);
		forget_concealed(run);
		return status;
	}
	if (run->concealed[1] == NULL)
		status = keep_concealed(run, frame, why);
	else if (run->clean_wait_pts == AV_NOPTS_VALUE ||
			 (frame->pts != AV_NOPTS_VALUE && frame->pts > run->clean_wait_pts))
		return choose_concealed(run, why);
	av_frame_unref(run->previous);
	av_frame_move_ref(run->previous, frame);
	return status;
}

/* Receive what the decoder has ready; stop once the picture is there. */
static int
drain_decoder(ThumbnailRun *run, AVFrame *frame, char *why)
{
	int			status = 0;

	while (status == 0 && run->picture == NULL && !run->overshot &&
		   avcodec_receive_frame(run->decoder, frame) >= 0)
	{
		status = take_frame(run, frame, why);
		av_frame_unref(frame);
	}
	return status;
}

/* Feed one video packet to the decoder and take what comes out. */
static int
decode_packet(ThumbnailRun *run, const AVPacket *packet, AVFrame *frame, char *why)
{
	int			ret;

	/* after a seek the first packet is a keyframe: past the target, seek earlier */
	if (!run->seen_packet && run->seek_seconds > 0 &&
		packet->pts != AV_NOPTS_VALUE && packet->pts > run->target_pts)
	{
		run->overshot = true;
		return 0;
	}
	run->seen_packet = true;
	ret = avcodec_send_packet(run->decoder, packet);
	if (ret == AVERROR(ENOMEM))
		return media_fail_av(why, ret, "cannot decode the video");
	return drain_decoder(run, frame, why);
}

/* What is left at the end of the input: the concealed frame, or the last frame. */
static int
finish_picture(ThumbnailRun *run, AVFrame *frame, char *why)
{
	if (run->concealed[1] != NULL)
		return choose_concealed(run, why);
	/* past the last frame: the last one there is */
	if (run->previous->buf[0] != NULL)
	{
		run->target_pts = run->previous->pts;
		av_frame_move_ref(frame, run->previous);
		return choose_frame(run, NULL, frame, NULL, why);
	}
	return 0;
}

/* Decode from the seek point until the picture is chosen. */
static int
find_picture(ThumbnailRun *run, char *why)
{
	AVPacket   *packet = av_packet_alloc();
	AVFrame    *frame = av_frame_alloc();
	int			status = 0;

	if (packet == NULL || frame == NULL)
		status = media_fail(why, EX_TEMPFAIL, "out of memory");
	while (status == 0 && run->picture == NULL && !run->overshot)
	{
		status = media_read_packet(&run->input, packet, why);
		if (status == 1)
		{
			status = 0;
			break;
		}
		if (status == 0 && packet->stream_index == run->input.video->index)
			status = decode_packet(run, packet, frame, why);
		av_packet_unref(packet);
	}
	if (status == 0 && run->picture == NULL && !run->overshot)
	{
		avcodec_send_packet(run->decoder, NULL);
		status = drain_decoder(run, frame, why);
	}
	/* nothing decodable after the seek point (no keyframe there): seek earlier */
	if (status == 0 && run->picture == NULL && !run->fed && !run->seen_frame &&
		run->seek_seconds > 0)
		run->overshot = true;
	if (status == 0 && run->picture == NULL && !run->fed && !run->overshot)
		status = finish_picture(run, frame, why);
	if (status == 0 && run->picture == NULL && run->fed)
		status = filter_frame(run, NULL, why);
	if (status == 0 && run->picture == NULL && !run->overshot)
		status = media_fail(why, EX_DATAERR, "no frame of the video stream decodes into a picture");
	av_packet_free(&packet);
	av_frame_free(&frame);
	return status;
}

/* Start an attempt from the input's current position. */
static void
start_attempt(ThumbnailRun *run, double seek_seconds)
{
	run->seek_seconds = seek_seconds;
	run->seen_packet = false;
	run->seen_frame = false;
	run->overshot = false;
	run->latest_end_pts = AV_NOPTS_VALUE;
	av_frame_unref(run->previous);
	forget_concealed(run);
	avcodec_flush_buffers(run->decoder);
}

/*
 * Seek to `seconds` before the start of the picture's time, as ffmpeg -ss
 * does (a little earlier when the format seeks by decoding time and the
 * video reorders frames); from the start when the file cannot seek.
 */
static void
seek_to(ThumbnailRun *run, double seconds)
{
	int64_t		timestamp;
	bool		seeked = false;

	if (!(run->input.format->iformat->flags & AVFMT_SEEK_TO_PTS) &&
		run->input.video->codecpar->video_delay > 0)
		seconds -= 3.0 / 23.0;
	timestamp = media_ts_add(run->input.start_time, seconds > 0 ? llround(seconds * AV_TIME_BASE) : 0);
	if (seconds > 0 && timestamp != AV_NOPTS_VALUE)
		seeked = media_seek(&run->input, timestamp);
	else
		media_seek_start(&run->input);
	start_attempt(run, seeked ? seconds : 0);
}

/*
 * Decode from the very beginning, as probe did: the input opened afresh, so
 * that no seek (Matroska without cues, a damaged index) can skip the frames
 * that decode.
 */
static int
find_picture_from_beginning(ThumbnailRun *run, char *why)
{
	const MediaHooks *hooks = run->input.hooks;
	int			status;

	media_input_close(&run->input);
	status = media_input_open(run->path, hooks, &run->input, why);
	if (status != 0)
		return status;
	start_attempt(run, 0);
	return find_picture(run, why);
}

/*
 * Find the picture at `at` seconds.  Some formats (MPEG-TS, Ogg) seek only
 * roughly and may land past the time asked for, or where no keyframe
 * follows; then seek again earlier, further each time, then to the start,
 * at last decode from the beginning of a fresh opening: the frame at the
 * time asked, else the nearest one that decodes.
 */
static int
find_picture_at(ThumbnailRun *run, double at, char *why)
{
	static const double backoff[] = {0.0, 1.0, 5.0, 20.0, 60.0, -1.0};
	int			status = 0;

	for (size_t i = 0; i < sizeof(backoff) / sizeof(backoff[0]); i++)
	{
		double		seek = backoff[i] < 0 ? 0.0 : at - backoff[i];

		if (i > 0 && run->seek_seconds <= 0)
			break;
		seek_to(run, seek);
		status = find_picture(run, why);
		if (status != 0 || !run->overshot)
			break;
	}
	if (status == EX_DATAERR && run->picture == NULL && !run->fed)
		status = find_picture_from_beginning(run, why);
	return status;
}

/*
 * The first acceptable pts for a picture at `at` seconds, as ffmpeg -ss
 * computes it: timestamps shifted by -(start + T), frames below 0 dropped.
 * A start time so large that this does not fit is a damaged file.
 */
static int
choose_target(ThumbnailRun *run, double at, char *why)
{
	int64_t		target = media_ts_add(run->input.start_time, llround(at * AV_TIME_BASE));
	int64_t		shifted = target == AV_NOPTS_VALUE ? AV_NOPTS_VALUE :
		av_rescale_q(-target, AV_TIME_BASE_Q, run->input.video->time_base);

	if (shifted == AV_NOPTS_VALUE)
		return media_fail(why, EX_DATAERR, "the file's start time is out of range");
	run->target_pts = -shifted;
	return 0;
}

/* Write the JPEG thumbnail of `input` to `output`. */
int
media_make_thumbnail(const char *input, const char *output,
					 const ThumbnailOptions *options, const MediaHooks *hooks,
					 ThumbnailInfo *thumbnail_info, char *why)
{
	ThumbnailRun run;
	char		temp_path[4096];
	double		at = 0.0;
	int			status;

	memset(&run, 0, sizeof(run));
	memset(thumbnail_info, 0, sizeof(*thumbnail_info));
	run.path = input;
	temp_path[0] = '\0';
	status = media_input_open(input, hooks, &run.input, why);
	if (status == 0)
	{
		run.orientation = media_orientation(run.input.video);
		at = choose_time(options, media_duration_seconds(&run.input));
		status = choose_target(&run, at, why);
	}
	if (status == 0 && (run.previous = av_frame_alloc()) == NULL)
		status = media_fail(why, EX_TEMPFAIL, "out of memory");
	if (status == 0)
		status = media_open_decoder(run.input.video, media_decoder_threads(false), &run.decoder, why);
	run.width = options->width;
	if (status == 0)
		status = find_picture_at(&run, at, why);
	if (status == 0)
		status = media_temp_path(output, temp_path, sizeof(temp_path), why);
	if (status == 0)
		status = media_write_jpeg(run.picture, THUMBNAIL_JPEG_QUALITY, temp_path, why);
	if (status == 0)
		status = media_commit_output(temp_path, output, &thumbnail_info->file_size_bytes, why);
	else if (temp_path[0] != '\0')
		unlink(temp_path);
	if (status == 0)
	{
		thumbnail_info->width = run.picture->width;
		thumbnail_info->height = run.picture->height;
		thumbnail_info->timestamp_seconds = at;
	}
	av_frame_free(&run.picture);
	av_frame_free(&run.previous);
	forget_concealed(&run);
	media_video_filter_close(&run.filter);
	avcodec_free_context(&run.decoder);
	media_input_close(&run.input);
	return status;
}
