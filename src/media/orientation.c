/*
 * orientation.c
 *		Which way up a video is shown (the display matrix), and the size it is
 *		shown at (sample aspect ratio and rotation), the way the ffmpeg CLI's
 *		autorotation reads them.
 */
#include <math.h>

#include <libavutil/display.h>

#include "media/media_internal.h"

/* The stream's display matrix, or NULL. */
static const int32_t *
display_matrix(const AVStream *stream)
{
	size_t		size = 0;
	const uint8_t *data = av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, &size);

	if (data == NULL || size < 9 * sizeof(int32_t))
		return NULL;
	return (const int32_t *) data;
}

/*
 * Clockwise rotation in degrees, snapped to a quarter turn (a camera writes
 * nothing else; the odd angle is shown at the nearest quarter turn).
 */
static int
clockwise_quarter_turns(const int32_t *matrix)
{
	double		theta;
	int			quarter;

	if (matrix == NULL)
		return 0;
	theta = -round(av_display_rotation_get(matrix));
	if (isnan(theta))
		return 0;
	theta -= 360 * floor(theta / 360 + 0.9 / 360);
	quarter = (int) lround(theta / 90) % 4;
	return quarter;
}

/* How to turn the stream's pictures upright, as ffmpeg's autorotate does. */
Orientation
media_orientation(const AVStream *stream)
{
	const int32_t *matrix = display_matrix(stream);
	Orientation orientation = {0, "", false};

	switch (clockwise_quarter_turns(matrix))
	{
		case 1:
			orientation.rotation = 90;
			orientation.swaps_sides = true;
			orientation.filters = matrix[3] > 0 ? "transpose=cclock_flip" : "transpose=clock";
			break;
		case 2:
			orientation.rotation = 180;
			if (matrix[0] < 0 && matrix[4] < 0)
				orientation.filters = "hflip,vflip";
			else if (matrix[0] < 0)
				orientation.filters = "hflip";
			else if (matrix[4] < 0)
				orientation.filters = "vflip";
			break;
		case 3:
			orientation.rotation = 270;
			orientation.swaps_sides = true;
			orientation.filters = matrix[3] < 0 ? "transpose=clock_flip" : "transpose=cclock";
			break;
		default:
			if (matrix != NULL && matrix[4] < 0)
				orientation.filters = "vflip";
			break;
	}
	return orientation;
}

/* Round to the nearest even number, at least 2. */
int
media_even(double value)
{
	long		even = lround(value / 2.0) * 2;

	return even < 2 ? 2 : (int) even;
}

/* The size a picture is shown at: square pixels, upright. */
void
media_display_size(int width, int height, AVRational sar,
				   const Orientation *orientation,
				   int *display_width, int *display_height)
{

	/* an absurd ratio (beyond 1:16 .. 16:1) is a broken header: ignored */
	if (sar.num > 0 && sar.den > 0 && sar.num != sar.den &&
		(double) sar.num / sar.den <= 16.0 && (double) sar.den / sar.num <= 16.0)
		width = (int) lround((double) width * sar.num / sar.den);
	if (width < 1)
		width = 1;
	if (orientation->swaps_sides)
	{
		*display_width = height;
		*display_height = width;
	}
	else
	{
		*display_width = width;
		*display_height = height;
	}
}
