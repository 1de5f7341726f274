/*
 * input.c
 *		Open an upload safely and choose its video and audio streams.
 *
 * Only the "file" protocol is allowed, so nothing a file says can make us
 * reach the network or another file (playlists, concat lists, data URLs), and
 * only the demuxers of containers.c are accepted (no image sequences, no hls,
 * no concat).  Probing is bounded in bytes and in time, decoders opened during
 * probing are refused oversized pictures, and a stop request interrupts any
 * blocking read.
 */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <libavutil/avstring.h>
#include <libavutil/dict.h>

#include "media/media_internal.h"

#define PROBE_BYTES "10000000"
#define ANALYZE_MICROSECONDS "10000000"
#define MAX_STREAMS "256"

/* Whether the caller asked us to stop. */
bool
media_stop_requested(const MediaHooks *hooks)
{
	return hooks != NULL && hooks->should_stop != NULL && hooks->should_stop(hooks->arg);
}

/* The failure for an operation stopped on request: worth a retry. */
int
media_fail_stopped(char *why)
{
	return media_fail(why, EX_TEMPFAIL, "stopped on request");
}

/* libavformat's interrupt callback: nonzero aborts the blocking call. */
static int
interrupt_requested(void *opaque)
{
	return media_stop_requested((const MediaHooks *) opaque);
}

/* Whether a stream is a real video stream (cover art does not count). */
static bool
is_real_video(const AVStream *stream)
{
	return stream->codecpar->codec_type == AVMEDIA_TYPE_VIDEO &&
		!(stream->disposition & AV_DISPOSITION_ATTACHED_PIC) &&
		stream->codecpar->codec_id != AV_CODEC_ID_NONE;
}

/* Whether a stream is an audio stream we could decode. */
static bool
is_usable_audio(const AVStream *stream)
{
	const AVCodecParameters *par = stream->codecpar;

	return par->codec_type == AVMEDIA_TYPE_AUDIO &&
		avcodec_find_decoder(par->codec_id) != NULL &&
		par->ch_layout.nb_channels > 0 && par->sample_rate > 0;
}

/* Whether the demuxer read any packet of a stream, or its index counts frames. */
static bool
carries_frames(const AVStream *stream)
{
	return (stream->event_flags & AVSTREAM_EVENT_FLAG_NEW_PACKETS) || stream->nb_frames > 0;
}

/*
 * Video: the stream a player plays.  One that carries frames (a programme's
 * PID may carry none; the CLI ranks those last too), then the default
 * disposition, then the most frames, then the longest, then the larger
 * picture.  Not the larger picture first: a Motion Photo's second track is
 * two stills larger than its motion, both marked default.
 */
static bool
better_video(const AVStream *candidate, const AVStream *best)
{
	bool		candidate_frames = carries_frames(candidate);
	bool		best_frames = carries_frames(best);
	bool		candidate_default = candidate->disposition & AV_DISPOSITION_DEFAULT;
	bool		best_default = best->disposition & AV_DISPOSITION_DEFAULT;
	int64_t		candidate_area = (int64_t) candidate->codecpar->width * candidate->codecpar->height;
	int64_t		best_area = (int64_t) best->codecpar->width * best->codecpar->height;

	if (candidate_frames != best_frames)
		return candidate_frames;
	if (candidate_default != best_default)
		return candidate_default;
	if (candidate->nb_frames > 0 && best->nb_frames > 0 && candidate->nb_frames != best->nb_frames)
		return candidate->nb_frames > best->nb_frames;
	if (candidate->duration > 0 && best->duration > 0)
	{
		int			order = av_compare_ts(candidate->duration, candidate->time_base,
										  best->duration, best->time_base);

		if (order != 0)
			return order > 0;
	}
	return candidate_area > best_area;
}

/* Audio: default disposition, then most channels, then highest bit rate. */
static bool
better_audio(const AVStream *candidate, const AVStream *best)
{
	bool		candidate_default = candidate->disposition & AV_DISPOSITION_DEFAULT;
	bool		best_default = best->disposition & AV_DISPOSITION_DEFAULT;
	int			candidate_channels = candidate->codecpar->ch_layout.nb_channels;
	int			best_channels = best->codecpar->ch_layout.nb_channels;

	if (candidate_default != best_default)
		return candidate_default;
	if (candidate_channels != best_channels)
		return candidate_channels > best_channels;
	return candidate->codecpar->bit_rate > best->codecpar->bit_rate;
}

/* Pick the video and audio streams; tell the demuxer to drop the others. */
static void
choose_streams(MediaInput *input)
{
	AVFormatContext *format = input->format;

	for (unsigned i = 0; i < format->nb_streams; i++)
	{
		AVStream   *stream = format->streams[i];

		if (stream->codecpar->codec_type == AVMEDIA_TYPE_AUDIO)
			input->audio_streams++;
		if (is_real_video(stream) &&
			(input->video == NULL || better_video(stream, input->video)))
			input->video = stream;
		else if (is_usable_audio(stream) &&
				 (input->audio == NULL || better_audio(stream, input->audio)))
			input->audio = stream;
	}
	for (unsigned i = 0; i < format->nb_streams; i++)
	{
		AVStream   *stream = format->streams[i];

		if (stream != input->video && stream != input->audio)
			stream->discard = AVDISCARD_ALL;
	}
}

/* Check what the container says before anything is decoded. */
static int
validate_streams(MediaInput *input, char *why)
{
	const AVCodecParameters *par;

	if (input->video == NULL)
		return media_fail(why, EX_DATAERR, "the file holds no video stream");
	par = input->video->codecpar;
	if (avcodec_find_decoder(par->codec_id) == NULL)
		return media_fail(why, EX_DATAERR, "no decoder for the video codec %s",
						  avcodec_get_name(par->codec_id));
	if (par->width <= 0 || par->height <= 0)
		return media_fail(why, EX_DATAERR, "the video stream has no picture size");
	if (par->width > MEDIA_MAX_SIDE || par->height > MEDIA_MAX_SIDE ||
		(int64_t) par->width * par->height > MEDIA_MAX_PIXELS)
		return media_fail(why, EX_DATAERR,
						  "the video is %dx%d, larger than vproxy accepts (%d on a side, %d pixels)",
						  par->width, par->height, MEDIA_MAX_SIDE, MEDIA_MAX_PIXELS);
	return 0;
}

/* Per-stream decoder options used while probing: refuse oversized pictures. */
static AVDictionary **
probe_options(const AVFormatContext *format)
{
	AVDictionary **options = av_calloc(format->nb_streams, sizeof(*options));

	if (options == NULL)
		return NULL;
	for (unsigned i = 0; i < format->nb_streams; i++)
		av_dict_set_int(&options[i], "max_pixels", MEDIA_MAX_PIXELS, 0);
	return options;
}

/* Free what probe_options made. */
static void
free_probe_options(AVDictionary **options, unsigned count)
{
	if (options == NULL)
		return;
	for (unsigned i = 0; i < count; i++)
		av_dict_free(&options[i]);
	av_free(options);
}

/*
 * Open `path` with the safety settings: the file protocol only, the accepted
 * demuxers only, bounded probing, `hooks` able to interrupt any read.  The
 * I/O context is our own, so it outlives a failed open (its error tells a
 * refused read from bad bytes): close both with avformat_close_input and
 * media_close_io.  Returns 0 or a libav error; *pb is NULL when the file could
 * not even be opened, *detected (if not NULL) the format recognised, if any.
 */
int
media_open_container(const char *path, const MediaHooks *hooks,
					 AVFormatContext **format, AVIOContext **pb,
					 const AVInputFormat **detected)
{
	AVDictionary *options = NULL;
	const AVInputFormat *iformat = NULL;
	char	   *url;
	int			ret;

	*pb = NULL;
	*format = avformat_alloc_context();
	if (*format == NULL)
		return AVERROR(ENOMEM);
	(*format)->interrupt_callback.callback = interrupt_requested;
	(*format)->interrupt_callback.opaque = (void *) hooks;
	url = av_asprintf("file:%s", path);
	if (url == NULL)
	{
		avformat_free_context(*format);
		*format = NULL;
		return AVERROR(ENOMEM);
	}
	av_dict_set(&options, "protocol_whitelist", "file", 0);
	/* an original read through ranged reads (source.c) */
	if (media_source_for(path) != NULL)
		ret = media_source_open_io(media_source_for(path), pb);
	else
		ret = avio_open2(pb, url, AVIO_FLAG_READ, &(*format)->interrupt_callback, &options);
	av_dict_free(&options);
	if (ret < 0)
	{
		av_free(url);
		avformat_free_context(*format);
		*format = NULL;
		*pb = NULL;
		return ret;
	}
	(*format)->pb = *pb;
	/* detect the format ourselves, to name it when its header is broken */
	ret = av_probe_input_buffer2(*pb, &iformat, url, NULL, 0, 0);
	if (ret < 0)
	{
		av_free(url);
		avformat_free_context(*format);
		*format = NULL;
		return ret;
	}
	if (detected != NULL)
		*detected = iformat;
	av_dict_set(&options, "protocol_whitelist", "file", 0);
	av_dict_set(&options, "format_whitelist", media_container_whitelist(), 0);
	av_dict_set(&options, "probesize", PROBE_BYTES, 0);
	av_dict_set(&options, "analyzeduration", ANALYZE_MICROSECONDS, 0);
	av_dict_set(&options, "max_streams", MAX_STREAMS, 0);
	ret = avformat_open_input(format, url, iformat, &options);
	av_free(url);
	av_dict_free(&options);
	return ret;
}

/*
 * Read the first packets of an opened container to learn its streams'
 * parameters, decoders refusing oversized pictures; 0 or a status.
 */
int
media_find_stream_info(AVFormatContext *format, AVIOContext *pb,
					   const MediaHooks *hooks, char *why)
{
	unsigned	stream_count = format->nb_streams;
	AVDictionary **stream_options = probe_options(format);
	int			ret;

	if (stream_options == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory probing the input");
	ret = avformat_find_stream_info(format, stream_options);
	free_probe_options(stream_options, stream_count);
	if (ret == AVERROR_EXIT)
		return media_fail_stopped(why);
	if (ret < 0)
		return media_fail_input(why, pb, ret, "cannot read the stream parameters");
	if (media_stop_requested(hooks))
		return media_fail_stopped(why);
	return 0;
}

/* Open `path`, read its headers and choose its streams; 0 or a status. */
int
media_input_open(const char *path, const MediaHooks *hooks,
				 MediaInput *input, char *why)
{
	struct stat st;
	const AVInputFormat *detected = NULL;
	int			ret;

	memset(input, 0, sizeof(*input));
	input->hooks = hooks;
	media_limit_resources();
	if (media_source_for(path) != NULL)
		st.st_size = media_source_for(path)->size;
	else if (stat(path, &st) != 0)
		return media_fail(why, EX_NOINPUT, "input %s does not exist", path);
	else if (!S_ISREG(st.st_mode))
		return media_fail(why, EX_DATAERR, "input %s is not a regular file", path);
	if (st.st_size == 0)
		return media_fail(why, EX_DATAERR, "input %s is empty", path);
	input->file_size = st.st_size;

	ret = media_open_container(path, hooks, &input->format, &input->pb, &detected);
	if (ret == AVERROR_EXIT)
		return media_fail_stopped(why);
	if (ret == AVERROR(ENOMEM) && input->format == NULL && input->pb == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory opening the input");
	if (input->pb == NULL)
		return media_fail(why, media_errno_status(AVUNERROR(ret), EX_NOINPUT),
						  "cannot open the input: %s", av_err2str(ret));
	if (!media_input_read_failed(input->pb) &&
		(ret == AVERROR(EINVAL) || ret == AVERROR_INVALIDDATA) &&
		(detected == NULL || !media_container_accepted(detected->name)))
		return media_fail(why, EX_DATAERR, "not a video container vproxy accepts (%s)",
						  media_container_names());
	if (ret < 0)
	{
		char		what[MEDIA_NAME_MAX + 32];

		snprintf(what, sizeof(what), "cannot open the input (%s)", detected != NULL ? detected->name : "unknown format");
		return media_fail_input(why, input->pb, ret, what);
	}

	if ((ret = media_find_stream_info(input->format, input->pb, hooks, why)) != 0)
		return ret;

	input->start_time = input->format->start_time == AV_NOPTS_VALUE ? 0 : input->format->start_time;
	choose_streams(input);
	if ((ret = validate_streams(input, why)) != 0)
		return ret;
	if ((ret = media_input_timing(path, input, why)) != 0)
		return ret;
	timeline_init(&input->timeline, input->format, input->video, input->audio, input->start_time);
	return 0;
}

/* Close the input; safe on a half-opened one. */
void
media_input_close(MediaInput *input)
{
	avformat_close_input(&input->format);
	media_close_io(&input->pb);
	input->video = NULL;
	input->audio = NULL;
}

/*
 * Read the next packet of a chosen stream, its timestamps put on the
 * input's timeline (timeline.c): 0, 1 at the end of the input, or a status.
 * After a seek (seek.c), every packet before the first video keyframe is
 * dropped: no decoder shows those frames right without what came before,
 * and the timeline goes on from where it stood at that keyframe.  Like the
 * ffmpeg CLI, a damaged tail ends the input instead of failing it (broken
 * structure included); a stop request, a read the system refused, or a
 * refused allocation fail it (media_errno_status tells out of memory from
 * an impossible size).
 */
int
media_read_packet(MediaInput *input, AVPacket *packet, char *why)
{
	int			ret;

	for (;;)
	{
		ret = av_read_frame(input->format, packet);
		if (media_stop_requested(input->hooks))
		{
			av_packet_unref(packet);
			return media_fail_stopped(why);
		}
		if (ret == AVERROR(EAGAIN))
			continue;
		if (ret == AVERROR(ENOMEM) || media_input_read_failed(input->pb))
			return media_fail_input(why, input->pb, ret, "cannot read the input");
		if (ret < 0)
			return 1;
		if (input->await_keyframe &&
			(packet->stream_index != input->video->index || !(packet->flags & AV_PKT_FLAG_KEY)))
		{
			av_packet_unref(packet);
			continue;
		}
		input->await_keyframe = false;
		if (packet->stream_index == input->video->index ||
			(input->audio != NULL && packet->stream_index == input->audio->index))
		{
			timeline_packet(&input->timeline, input->format->streams[packet->stream_index], packet);
			return 0;
		}
		av_packet_unref(packet);
	}
}
