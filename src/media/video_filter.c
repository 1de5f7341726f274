/*
 * video_filter.c
 *		The libavfilter chain that turns decoded pictures into proxy or
 *		thumbnail pictures:
 *
 *		deinterlace -> frame rate -> upright -> scale -> HDR to SDR -> pixel format
 *
 * Frame-rate selection comes before anything that touches pixels, so only
 * the frames that are kept get rotated and scaled.  Deinterlacing (bwdif,
 * one frame per frame, only frames flagged interlaced) comes first because
 * it needs the neighbouring frames.  HDR (PQ, HLG) is tone-mapped after the
 * downscale, on a quarter of the pixels, with zscale and tonemap (hable).
 *
 * The downscale is zimg's (zscale) where it takes the frames as they come,
 * swscale's elsewhere: zimg's lanczos costs half of swscale's (1.1 against
 * 2.3 ms a 1080p frame on the 2-core bench machine) for the same picture.
 */
#include <stdio.h>
#include <string.h>

#include <libavfilter/buffersink.h>
#include <libavfilter/buffersrc.h>
#include <libavutil/pixdesc.h>

#include "media/media_internal.h"

#define FILTERS_MAX 1024

/* Whether a frame carries an HDR transfer function (PQ or HLG). */
static bool
frame_is_hdr(const AVFrame *frame)
{
	return frame->color_trc == AVCOL_TRC_SMPTE2084 ||
		frame->color_trc == AVCOL_TRC_ARIB_STD_B67;
}

/*
 * Whether zimg can resize the frame as it comes: planar limited-range YUV
 * whose chroma subsampling divides both sides (so after a transpose too).
 * Other frames (packed, paletted, full range, odd sizes) go to swscale,
 * which also converts them.
 */
static bool
zimg_resizes(const AVFrame *frame)
{
	switch (frame->format)
	{
		case AV_PIX_FMT_YUV420P:
		case AV_PIX_FMT_YUV422P:
		case AV_PIX_FMT_YUV444P:
		case AV_PIX_FMT_YUV420P10:
		case AV_PIX_FMT_YUV422P10:
		case AV_PIX_FMT_YUV444P10:
			break;
		default:
			return false;
	}
	return frame->color_range != AVCOL_RANGE_JPEG &&
		frame->width % 2 == 0 && frame->height % 2 == 0;
}

/* zscale's name of the frame's transfer, primaries, matrix and range. */
static void
hdr_input_options(const AVFrame *frame, char *buffer, size_t size)
{
	const char *transfer = frame->color_trc == AVCOL_TRC_ARIB_STD_B67 ? "arib-std-b67" : "smpte2084";
	const char *primaries = frame->color_primaries == AVCOL_PRI_BT709 ? "709" : "2020";
	const char *matrix = frame->colorspace == AVCOL_SPC_BT2020_CL ? "2020_cl" :
	frame->colorspace == AVCOL_SPC_BT709 ? "709" : "2020_ncl";
	const char *range = frame->color_range == AVCOL_RANGE_JPEG ? "full" : "limited";

	snprintf(buffer, size, "tin=%s:pin=%s:min=%s:rin=%s", transfer, primaries, matrix, range);
}

/* Write the filter chain's description into `chain`. */
static void
describe_chain(const VideoFilterSpec *spec, bool hdr, char *chain, size_t size)
{
	int			used = 0;
	char		hdr_input[128];

#define APPEND(...) \
	do { \
		int			n = snprintf(chain + used, size - used, __VA_ARGS__); \
		if (n > 0 && (size_t) n < size - used) \
			used += n; \
	} while (0)

	chain[0] = '\0';
	if (spec->deinterlace)
		APPEND("bwdif=mode=send_frame:parity=auto:deint=interlaced,");
	if (spec->fps > 0)
		APPEND("fps=fps=%.17g%s,", spec->fps, spec->fps_from_zero ? ":start_time=0" : "");
	if (spec->orientation->filters[0] != '\0')
		APPEND("%s,", spec->orientation->filters);
	if (spec->zimg_filter != NULL && zimg_resizes(spec->first_frame))
		APPEND("zscale=w=%d:h=%d:filter=%s,setsar=1,", spec->width, spec->height, spec->zimg_filter);
	else
		APPEND("scale=w=%d:h=%d:flags=%s,setsar=1,", spec->width, spec->height, spec->scale_flags);
	if (hdr)
	{
		hdr_input_options(spec->first_frame, hdr_input, sizeof(hdr_input));
		APPEND("zscale=%s:t=linear:npl=100,format=gbrpf32le,zscale=p=709,"
			   "tonemap=tonemap=hable:desat=0,zscale=t=709:m=709:r=%s,",
			   hdr_input, spec->full_range ? "full" : "limited");
	}
	APPEND("format=%s", spec->full_range ? "yuvj420p" : "yuv420p");
#undef APPEND
}

/* Build and configure the graph; 0 or a status. */
int
media_video_filter_open(const VideoFilterSpec *spec, VideoFilter *filter, char *why)
{
	const AVFrame *frame = spec->first_frame;
	AVRational	sar = frame->sample_aspect_ratio.num > 0 ? frame->sample_aspect_ratio : spec->sample_aspect;
	AVFilterInOut *outputs = NULL;
	AVFilterInOut *inputs = NULL;
	char		source_args[256];
	char		chain[FILTERS_MAX];
	int			ret;

	memset(filter, 0, sizeof(*filter));
	if (sar.num <= 0 || sar.den <= 0)
		sar = (AVRational)
		{
			1, 1
		};
	filter->graph = avfilter_graph_alloc();
	if (filter->graph == NULL)
		return media_fail(why, EX_TEMPFAIL, "out of memory building the video filters");
	filter->graph->nb_threads = spec->threads;
	snprintf(source_args, sizeof(source_args),
			 "video_size=%dx%d:pix_fmt=%d:time_base=%d/%d:pixel_aspect=%d/%d",
			 frame->width, frame->height, frame->format,
			 spec->time_base.num, spec->time_base.den, sar.num, sar.den);
	ret = avfilter_graph_create_filter(&filter->source, avfilter_get_by_name("buffer"),
									   "in", source_args, NULL, filter->graph);
	if (ret >= 0)
		ret = avfilter_graph_create_filter(&filter->sink, avfilter_get_by_name("buffersink"),
										   "out", NULL, NULL, filter->graph);
	if (ret < 0)
	{
		media_video_filter_close(filter);
		return media_fail_av(why, ret, "cannot set up the video filters");
	}

	describe_chain(spec, frame_is_hdr(frame), chain, sizeof(chain));
	outputs = avfilter_inout_alloc();
	inputs = avfilter_inout_alloc();
	if (outputs == NULL || inputs == NULL)
	{
		avfilter_inout_free(&outputs);
		avfilter_inout_free(&inputs);
		media_video_filter_close(filter);
		return media_fail(why, EX_TEMPFAIL, "out of memory building the video filters");
	}
	outputs->name = av_strdup("in");
	outputs->filter_ctx = filter->source;
	inputs->name = av_strdup("out");
	inputs->filter_ctx = filter->sink;
	ret = avfilter_graph_parse_ptr(filter->graph, chain, &inputs, &outputs, NULL);
	avfilter_inout_free(&outputs);
	avfilter_inout_free(&inputs);
	if (ret >= 0)
		ret = avfilter_graph_config(filter->graph, NULL);
	if (ret < 0)
	{
		media_video_filter_close(filter);
		return media_fail_av(why, ret, "cannot configure the video filters");
	}
	return 0;
}

/* Free the graph. */
void
media_video_filter_close(VideoFilter *filter)
{
	avfilter_graph_free(&filter->graph);
	filter->source = NULL;
	filter->sink = NULL;
}
