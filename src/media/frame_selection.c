/*
 * frame_selection.c
 *		Which frames libavfilter's fps filter keeps, told in advance.
 *
 * The fps filter rounds each frame's timestamp to the output time base
 * (nearest, halves away from zero) and outputs, for each output tick, the
 * last frame whose rounded timestamp is not after the tick.  So a frame is
 * dropped whenever the frame after it rounds to the same tick or an earlier
 * one.  In a constant-rate source the next frame comes one frame interval
 * later, so "a frame one interval later rounds to the same tick" proves the
 * frame is dropped.  Only this sure case is reported: a wrong guess would cost a
 * picture, a missed one only some decoding time.
 */
#include <libavutil/avutil.h>
#include <libavutil/mathematics.h>

#include "media/frame_selection.h"

/* Set up the prediction; it stays off unless the source rate is constant. */
void
frame_selection_init(FrameSelection *selection, AVRational in_time_base,
					 AVRational output_rate, AVRational source_rate, bool constant_rate)
{
	int64_t		interval;
	AVRational	interval_q;

	selection->enabled = false;
	selection->in_time_base = in_time_base;
	selection->out_time_base = av_inv_q(output_rate);
	selection->frame_duration = 0;
	if (!constant_rate || source_rate.num <= 0 || source_rate.den <= 0 ||
		in_time_base.num <= 0 || output_rate.num <= 0 ||
		av_cmp_q(source_rate, output_rate) <= 0)
		return;
	/* the interval must be a whole number of time-base units */
	interval = av_rescale_q(1, av_inv_q(source_rate), in_time_base);
	interval_q = av_mul_q(av_make_q((int) interval, 1), in_time_base);
	if (interval <= 0 || interval > INT32_MAX || av_cmp_q(interval_q, av_inv_q(source_rate)) != 0)
		return;
	selection->frame_duration = interval;
	selection->enabled = true;
}

/* The output tick of a timestamp, rounded as the fps filter rounds it. */
static int64_t
output_tick(const FrameSelection *selection, int64_t pts)
{
	return av_rescale_q_rnd(pts, selection->in_time_base, selection->out_time_base,
							AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
}

/* Whether the frame with timestamp `pts` is certain to be dropped. */
bool
frame_selection_drops(const FrameSelection *selection, int64_t pts)
{
	int64_t		next_pts;

	/* a timestamp so large that the next frame's overflows is damaged: decode it */
	if (!selection->enabled || pts == AV_NOPTS_VALUE || pts < 0 ||
		__builtin_add_overflow(pts, selection->frame_duration, &next_pts))
		return false;
	return output_tick(selection, next_pts) <= output_tick(selection, pts);
}
