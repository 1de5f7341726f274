/*
 * frame_usable.c
 *		Whether a decoded frame counts as a picture.
 *
 * A frame the decoder concealed (a lost slice filled from its neighbours,
 * a capture starting mid-GOP whose first frames lack their references) is a
 * frame as the CLI shows it, and as a viewer sees it: it counts, unless
 * concealment is all there is.  A decoder that has nothing to show paints
 * the whole frame one colour (H.264 fills a missing reference with mid
 * grey; an untouched buffer is green in YUV), so a concealed frame of one
 * flat colour is unusable.  Clean frames always count, a flat one included
 * (a fade to black is a picture).
 */
#include <libavutil/pixdesc.h>

#include "media/media_internal.h"

/* Samples per side of the grid a frame is judged on. */
#define GRID 64

/* Whether a frame decoded without errors (no concealment, not corrupt). */
bool
media_frame_is_clean(const AVFrame *frame)
{
	return !(frame->flags & AV_FRAME_FLAG_CORRUPT) && frame->decode_error_flags == 0;
}

/*
 * Whether every sample of one component on the grid lies within a few
 * levels (at 8 bits; scaled to the component's depth) of the first.
 */
static bool
component_is_flat(const AVFrame *frame, const AVPixFmtDescriptor *desc, int component)
{
	/* chroma planes are subsampled (RGB formats say 0) */
	bool		chroma = component == 1 || component == 2;
	int			width = chroma ? AV_CEIL_RSHIFT(frame->width, desc->log2_chroma_w) : frame->width;
	int			height = chroma ? AV_CEIL_RSHIFT(frame->height, desc->log2_chroma_h) : frame->height;
	int			depth = desc->comp[component].depth;
	uint32_t	tolerance = depth > 8 ? 2u << (depth - 8) : 2u;
	bool		palette = (desc->flags & AV_PIX_FMT_FLAG_PAL) != 0;
	uint32_t	first = 0;

	for (int gy = 0; gy < GRID; gy++)
	{
		int			y = (int) ((int64_t) height * gy / GRID);

		for (int gx = 0; gx < GRID; gx++)
		{
			int			x = (int) ((int64_t) width * gx / GRID);
			uint32_t	value;

			av_read_image_line2(&value, (const uint8_t **) frame->data, frame->linesize,
								desc, x, y, component, 1, palette, 4);
			if (gx == 0 && gy == 0)
				first = value;
			else if (value > first + tolerance || value + tolerance < first)
				return false;
		}
	}
	return true;
}

/* Whether a frame's picture is one flat colour (alpha aside). */
static bool
frame_is_flat(const AVFrame *frame)
{
	const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(frame->format);
	int			components;

	/* a format we cannot read (hardware, bitstream) is not judged */
	if (desc == NULL || (desc->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)) ||
		frame->width <= 0 || frame->height <= 0 || frame->data[0] == NULL)
		return false;
	components = desc->nb_components;
	if (desc->flags & AV_PIX_FMT_FLAG_ALPHA)
		components--;
	for (int c = 0; c < components; c++)
		if (!component_is_flat(frame, desc, c))
			return false;
	return true;
}

/*
 * Whether a decoded frame counts: a clean one always, a concealed one
 * unless it is one flat colour.
 */
bool
media_frame_is_usable(const AVFrame *frame)
{
	return media_frame_is_clean(frame) || !frame_is_flat(frame);
}
