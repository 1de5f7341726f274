/*
 * jpeg.c
 *		Write a full-range YUV 4:2:0 picture as a baseline JPEG with
 *		libjpeg-turbo, straight from the planes (no RGB round trip).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <turbojpeg.h>

#include "media/media_internal.h"

/*
 * Write `frame` (yuvj420p) to `path`.  The quality is the libjpeg one whose
 * quantisation matches ffmpeg's "-q:v 2" (see README.md for the measurement).
 */
int
media_write_jpeg(const AVFrame *frame, int quality, const char *path, char *why)
{
	tjhandle	handle = tjInitCompress();
	const unsigned char *planes[3] = {frame->data[0], frame->data[1], frame->data[2]};
	int			strides[3] = {frame->linesize[0], frame->linesize[1], frame->linesize[2]};
	unsigned char *jpeg = NULL;
	unsigned long jpeg_size = 0;
	FILE	   *file;
	int			status = 0;

	if (handle == NULL)
		return media_fail(why, EX_SOFTWARE, "cannot start libjpeg-turbo");
	if (frame->format != AV_PIX_FMT_YUVJ420P)
	{
		tjDestroy(handle);
		return media_fail(why, EX_SOFTWARE, "thumbnail picture is not in full-range 4:2:0");
	}
	if (tjCompressFromYUVPlanes(handle, planes, frame->width, strides, frame->height,
								TJSAMP_420, &jpeg, &jpeg_size, quality, TJFLAG_ACCURATEDCT) != 0)
	{
		status = media_fail(why, EX_SOFTWARE, "JPEG compression failed: %s", tjGetErrorStr2(handle));
		tjDestroy(handle);
		tjFree(jpeg);
		return status;
	}
	tjDestroy(handle);

	file = fopen(path, "wb");
	if (file == NULL)
	{
		int			error = errno;

		status = media_fail(why, media_errno_status(error, EX_SOFTWARE),
							"cannot write the thumbnail: %s", strerror(error));
	}
	else
	{
		size_t		written = fwrite(jpeg, 1, jpeg_size, file);
		int			write_error = ferror(file) ? errno : 0;

		if (fclose(file) != 0 && write_error == 0)
			write_error = errno;
		if (written != jpeg_size && write_error == 0)
			write_error = EIO;
		if (write_error != 0)
			status = media_fail(why, media_errno_status(write_error, EX_SOFTWARE),
								"cannot write the thumbnail: %s", strerror(write_error));
	}
	tjFree(jpeg);
	return status;
}
