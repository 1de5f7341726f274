/*
 * containers.c
 *		The container formats vproxy accepts, by libavformat demuxer, each
 *		with the reason it is on the list.
 *
 * The list is a defence: every demuxer parses hostile bytes, and some reach
 * other files or the network (hls, dash, concat, image sequences, playlists,
 * the data and subfile protocols' users).  A demuxer is on it because real
 * uploads come in it; its fuzzing record is in src/media/README.md
 * (Containers).  Everything else libavformat knows is refused with "not a
 * video container vproxy accepts".
 */
#include <string.h>

#include <libavutil/avstring.h>

#include "media/media_internal.h"

typedef struct Container
{
	const char *demuxer;		/* libavformat's short name(s) */
	const char *shown;			/* what a user calls it */
} Container;

/* Each with who makes such uploads. */
static const Container containers[] = {
	/* phones, cameras, screen recorders, editors' exports: most uploads */
	{"mov,mp4,m4a,3gp,3g2,mj2", "MP4, MOV, 3GP"},
	/* browser recordings (MediaRecorder), OBS, downloads */
	{"matroska,webm", "MKV, WebM"},
	/* dashcams, older cameras (MJPEG), Windows tools */
	{"avi", "AVI"},
	/* camcorders (AVCHD .MTS), broadcast captures, recorder exports */
	{"mpegts", "MPEG-TS/M2TS"},
	/* DVD VOB, older camcorders (MOD/TOD) */
	{"mpeg", "MPEG-PS/VOB"},
	/* Flash-era uploads, live-stream recordings */
	{"flv", "FLV"},
	/* Windows Media recordings */
	{"asf", "ASF/WMV"},
	/* broadcast and professional cameras */
	{"mxf", "MXF"},
	/* GNOME screencasts (Theora), Linux tools */
	{"ogg", "Ogg"},
	/* MiniDV camcorder captures */
	{"dv", "DV"},
	/* VP8/VP9 streams of libvpx tools and WebRTC recorders */
	{"ivf", "IVF"},
	/* security cameras and NVR exports: the bare stream, no container */
	{"h264", "raw H.264"},
	{"hevc", "raw HEVC"},
};

#define CONTAINER_COUNT (sizeof(containers) / sizeof(containers[0]))

/* Join one field of every entry with `separator` into `buffer`, once. */
static const char *
joined(char *buffer, size_t size, size_t field_offset, const char *separator)
{
	if (buffer[0] != '\0')
		return buffer;
	for (size_t i = 0; i < CONTAINER_COUNT; i++)
	{
		const char *field = *(const char *const *) ((const char *) &containers[i] + field_offset);

		if (i > 0)
			av_strlcat(buffer, separator, size);
		av_strlcat(buffer, field, size);
	}
	return buffer;
}

/* The demuxers accepted, as libavformat's format_whitelist option takes them. */
const char *
media_container_whitelist(void)
{
	static char whitelist[512];

	return joined(whitelist, sizeof(whitelist), offsetof(Container, demuxer), ",");
}

/* The containers accepted, in words, for the message refusing the others. */
const char *
media_container_names(void)
{
	static char names[512];

	return joined(names, sizeof(names), offsetof(Container, shown), ", ");
}

/* Whether a demuxer (by its short name) is one of those accepted. */
bool
media_container_accepted(const char *demuxer)
{
	return demuxer != NULL && av_match_list(demuxer, media_container_whitelist(), ',') > 0;
}
