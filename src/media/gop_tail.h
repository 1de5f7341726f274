/*
 * gop_tail.h
 *		Skip the tail of a group of pictures that the proxy does not show:
 *		reference frames the fps filter drops are held back, and never
 *		decoded when an IDR picture comes before the next frame it keeps.
 */
#ifndef VPROXY_GOP_TAIL_H
#define VPROXY_GOP_TAIL_H

#include <stdbool.h>

#include <libavcodec/codec_par.h>
#include <libavcodec/packet.h>

/* Dropped frames held at most; at 30 fps to 10 there are two between kept frames. */
#define GOP_TAIL_MAX_HELD 16

typedef struct GopTail
{
	bool		enabled;		/* H.264 or HEVC whose NAL units can be read */
	enum AVCodecID codec;
	int			length_size;	/* bytes of each NAL unit's length; 0 = start codes */
	bool		cra_ends_group; /* HEVC without reordering: a CRA is as good as an IDR */
	int64_t		last_pts;		/* the latest timestamp, to see reordering */
	AVPacket   *held[GOP_TAIL_MAX_HELD];
	int			held_count;
} GopTail;

extern void gop_tail_init(GopTail *tail, const AVCodecParameters *par);
extern bool gop_tail_hold(GopTail *tail, AVPacket *packet);
extern void gop_tail_settle(GopTail *tail, const AVPacket *packet, bool decoder_reorders);
extern AVPacket *gop_tail_release(GopTail *tail);
extern void gop_tail_close(GopTail *tail);

#endif							/* VPROXY_GOP_TAIL_H */
