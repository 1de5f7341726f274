/*
 * frame_selection.h
 *		Predict, from a packet's timestamp alone, that the fps filter will
 *		drop the frame it holds, so that the decoder may skip it (when it is
 *		not a reference frame) instead of decoding it for nothing.
 */
#ifndef VPROXY_FRAME_SELECTION_H
#define VPROXY_FRAME_SELECTION_H

#include <stdbool.h>
#include <stdint.h>

#include <libavutil/rational.h>

typedef struct FrameSelection
{
	bool		enabled;		/* the prediction is exact for this stream */
	AVRational	in_time_base;	/* of the timestamps */
	AVRational	out_time_base;	/* 1 / output frame rate */
	int64_t		frame_duration; /* source frame interval, in_time_base */
} FrameSelection;

extern void frame_selection_init(FrameSelection *selection, AVRational in_time_base,
								 AVRational output_rate, AVRational source_rate,
								 bool constant_rate);
extern bool frame_selection_drops(const FrameSelection *selection, int64_t pts);

#endif							/* VPROXY_FRAME_SELECTION_H */
