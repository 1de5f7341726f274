/*
 * gop_tail.c
 *		The frames before an IDR picture that no shown frame needs.
 *
 * At 30 fps to 10 the fps filter drops two frames in three.  The ones that
 * are not references are never decoded (frame_selection.c); the reference
 * frames must be, because a later frame the proxy shows may refer to them,
 * unless an IDR picture comes first: no picture after an IDR (H.264 or
 * HEVC) refers to one before it.  So a dropped frame is held back, and
 * when the next packet that is not held is an IDR the held frames are
 * never decoded; any other packet hands them to the decoder first.  Phones
 * record without B-frames and with a keyframe every second or less, so the
 * frames after the last one the proxy shows in each group are all
 * references; skipping them saves 1 frame in 30 to 1 in 12 of the decode.
 *
 * Only what the NAL unit types prove is trusted: a packet must hold an IDR
 * slice (or, in HEVC that reorders no pictures, a CRA) and be marked a
 * keyframe; a held packet must carry no parameter sets and no new
 * extradata or parameters for the decoder; and a packet whose NAL units
 * cannot be read is never held and never ends a tail.
 */
#include <string.h>

#include "media/gop_tail.h"

/* What a packet's NAL units are. */
#define NAL_IDR				0x1
#define NAL_CRA				0x2
#define NAL_PARAMETER_SET	0x4
#define NAL_UNREADABLE		0x8

/* Set up for a video stream; off unless H.264 or HEVC. */
void
gop_tail_init(GopTail *tail, const AVCodecParameters *par)
{
	const uint8_t *extra = par->extradata;
	int			extra_size = par->extradata_size;

	memset(tail, 0, sizeof(*tail));
	tail->codec = par->codec_id;
	if (par->codec_id == AV_CODEC_ID_H264 && extra_size >= 7 && extra[0] == 1)
		tail->length_size = (extra[4] & 3) + 1; /* avcC, as in MP4 and Matroska */
	else if (par->codec_id == AV_CODEC_ID_HEVC && extra_size >= 23 &&
			 (extra[0] || extra[1] || extra[2] > 1))
		tail->length_size = (extra[21] & 3) + 1;	/* hvcC, the HEVC decoder's test */
	else if (par->codec_id != AV_CODEC_ID_H264 && par->codec_id != AV_CODEC_ID_HEVC)
		return;
	/*
	 * HEVC's CRA (x265's keyframe) ends a group too: only its leading RASL
	 * pictures may refer to pictures before it, and a stream that reorders
	 * no pictures has no leading pictures.  Whether it reorders is asked of
	 * the container, the decoder (the sequence parameter set) and the
	 * packets seen so far: all three must say no.
	 */
	tail->cra_ends_group = par->codec_id == AV_CODEC_ID_HEVC && par->video_delay == 0;
	tail->last_pts = AV_NOPTS_VALUE;
	tail->enabled = true;
}

/* What one NAL unit is, from its header. */
static unsigned
nal_kind(enum AVCodecID codec, const uint8_t *nal, size_t size)
{
	int			type;
	bool		base_layer;

	if (codec == AV_CODEC_ID_H264)
	{
		if (size < 1)
			return NAL_UNREADABLE;
		type = nal[0] & 0x1f;
		if (type == 5)
			return NAL_IDR;
		/* sequence, picture, extension and subset sequence parameter sets */
		return type == 7 || type == 8 || type == 13 || type == 15 ? NAL_PARAMETER_SET : 0;
	}
	if (size < 2)
		return NAL_UNREADABLE;
	type = (nal[0] >> 1) & 0x3f;
	base_layer = (nal[0] & 1) == 0 && (nal[1] >> 3) == 0;
	/* IDR_W_RADL, IDR_N_LP and CRA of the base layer */
	if (base_layer && (type == 19 || type == 20))
		return NAL_IDR;
	if (base_layer && type == 21)
		return NAL_CRA;
	/* video, sequence and picture parameter sets */
	return type >= 32 && type <= 34 ? NAL_PARAMETER_SET : 0;
}

/* The kinds of a packet's NAL units, each prefixed by its length. */
static unsigned
length_prefixed_kinds(const GopTail *tail, const uint8_t *data, size_t size)
{
	unsigned	kinds = 0;
	size_t		pos = 0;

	if (size == 0)
		return NAL_UNREADABLE;
	while (pos < size)
	{
		size_t		length = 0;

		if (size - pos < (size_t) tail->length_size)
			return NAL_UNREADABLE;
		for (int i = 0; i < tail->length_size; i++)
			length = length << 8 | data[pos++];
		if (length == 0 || length > size - pos)
			return NAL_UNREADABLE;
		kinds |= nal_kind(tail->codec, data + pos, length);
		pos += length;
	}
	return kinds;
}

/* The kinds of a packet's NAL units, each after a start code (00 00 01). */
static unsigned
start_code_kinds(const GopTail *tail, const uint8_t *data, size_t size)
{
	unsigned	kinds = 0;
	bool		found = false;
	size_t		pos = 2;

	while (pos < size)
	{
		const uint8_t *one = memchr(data + pos, 1, size - pos);

		if (one == NULL)
			break;
		pos = one - data;
		if (data[pos - 1] == 0 && data[pos - 2] == 0)
		{
			found = true;
			kinds |= nal_kind(tail->codec, data + pos + 1, size - pos - 1);
		}
		pos++;
	}
	return found ? kinds : NAL_UNREADABLE;
}

/* The kinds of a packet's NAL units. */
static unsigned
packet_kinds(const GopTail *tail, const AVPacket *packet)
{
	if (packet->data == NULL || packet->size <= 0)
		return NAL_UNREADABLE;
	return tail->length_size > 0 ?
		length_prefixed_kinds(tail, packet->data, packet->size) :
		start_code_kinds(tail, packet->data, packet->size);
}

/* Note a packet's place in the order: a timestamp going back is a reordered picture. */
static void
note_order(GopTail *tail, const AVPacket *packet)
{
	if (packet->pts == AV_NOPTS_VALUE)
		return;
	if (tail->last_pts != AV_NOPTS_VALUE && packet->pts <= tail->last_pts)
		tail->cra_ends_group = false;
	else
		tail->last_pts = packet->pts;
}

/*
 * Hold a packet whose frame the fps filter drops, taking its reference;
 * false (the packet untouched) when it cannot be held.
 */
bool
gop_tail_hold(GopTail *tail, AVPacket *packet)
{
	AVPacket   *held;

	note_order(tail, packet);
	if (!tail->enabled || tail->held_count == GOP_TAIL_MAX_HELD ||
		av_packet_get_side_data(packet, AV_PKT_DATA_NEW_EXTRADATA, NULL) != NULL ||
		av_packet_get_side_data(packet, AV_PKT_DATA_PARAM_CHANGE, NULL) != NULL ||
		packet_kinds(tail, packet) != 0)
		return false;
	if ((held = av_packet_alloc()) == NULL)
		return false;
	av_packet_move_ref(held, packet);
	tail->held[tail->held_count++] = held;
	return true;
}

/*
 * Settle the held packets on the next packet that is not held: an IDR
 * picture (or a CRA without leading pictures) skips them all; anything else
 * leaves them to gop_tail_release.
 */
void
gop_tail_settle(GopTail *tail, const AVPacket *packet, bool decoder_reorders)
{
	unsigned	kinds;

	note_order(tail, packet);
	if (decoder_reorders)
		tail->cra_ends_group = false;
	if (tail->held_count == 0 || (packet->flags & AV_PKT_FLAG_KEY) == 0)
		return;
	kinds = packet_kinds(tail, packet);
	if ((kinds & NAL_UNREADABLE) != 0 ||
		((kinds & NAL_IDR) == 0 && ((kinds & NAL_CRA) == 0 || !tail->cra_ends_group)))
		return;
	gop_tail_close(tail);
}

/* The oldest held packet, now the caller's to decode and free; NULL when none. */
AVPacket *
gop_tail_release(GopTail *tail)
{
	AVPacket   *oldest;

	if (tail->held_count == 0)
		return NULL;
	oldest = tail->held[0];
	memmove(tail->held, tail->held + 1, --tail->held_count * sizeof(tail->held[0]));
	return oldest;
}

/* Free the held packets. */
void
gop_tail_close(GopTail *tail)
{
	for (int i = 0; i < tail->held_count; i++)
		av_packet_free(&tail->held[i]);
	tail->held_count = 0;
}
