/*
 * segment_frames.c
 *		What a segment of a split proxy keeps of the proxy's run: the
 *		checks and choices the proxy's loop (proxy_video.c, proxy_output.c)
 *		makes for a segment, frame by frame and packet by packet.  The run
 *		itself, its seeks and retries are segment.c's.
 */
#include <math.h>

#include "media/proxy_internal.h"

/* Frames without errors needed at or before the first slot. */
int
segment_clean_frames_needed(const ProxyRun *run)
{
	return run->deinterlace ? 2 : 1;
}

/*
 * Check a frame about to be filtered (decoding thread): once one rounds
 * past the filter's first slot, enough frames without errors must have come
 * at or before it, else the segment's frames would not be the single pass's.
 */
int
segment_check_start(ProxyRun *run, const AVFrame *frame, char *why)
{
	int64_t		slot;

	if (run->preroll_start == AV_NOPTS_VALUE)
		run->preroll_start = frame->pts;
	if (run->segment_started || frame->pts == AV_NOPTS_VALUE)
		return 0;
	slot = av_rescale_q_rnd(frame->pts, run->input.video->time_base, av_inv_q(run->frame_rate),
							AV_ROUND_NEAR_INF | AV_ROUND_PASS_MINMAX);
	if (slot <= run->origin_slot)
	{
		if (media_frame_is_clean(frame))
			run->clean_before_first++;
		return 0;
	}
	if (run->clean_before_first >= segment_clean_frames_needed(run))
	{
		run->segment_started = true;
		return 0;
	}
	run->segment_misaligned = true;
	return media_fail(why, EX_SOFTWARE, "decoding began after the segment's first frame");
}

/*
 * Whether a filtered frame goes to the encoder (decoding thread); its
 * timestamp is made the proxy's slot.  Past the end of the cool-down the
 * segment is done and reading stops.
 */
bool
segment_keep_frame(ProxyRun *run, AVFrame *frame)
{
	frame->pts += run->origin_slot;
	if (run->segment->next_slot >= 0 && frame->pts >= run->segment->next_slot)
		run->segment_passed = true;
	if (run->end_slot >= 0 && frame->pts >= run->end_slot)
	{
		run->segment_done = true;
		return false;
	}
	return true;
}

/* How a frame is encoded: an IDR picture at the segment's first and next slots. */
enum AVPictureType
segment_picture_type(const ProxyRun *run, int64_t pts)
{
	return pts == run->segment->first_slot || pts == run->segment->next_slot ?
		AV_PICTURE_TYPE_I : AV_PICTURE_TYPE_NONE;
}

/* Whether a packet is the segment's own, not the warm-up's or the cool-down's. */
bool
segment_keep_packet(const ProxyRun *run, const AVPacket *packet)
{
	return packet->pts >= run->segment->first_slot &&
		(run->segment->next_slot < 0 || packet->pts < run->segment->next_slot);
}

/* The share of the segment encoded once slot `pts` is. */
double
segment_progress(const ProxyRun *run, int64_t pts)
{
	double		first = (double) run->segment->first_slot;
	double		end = run->segment->next_slot >= 0 ? (double) run->segment->next_slot :
		run->duration * av_q2d(run->frame_rate);

	return end > first ? fmin(1.0, fmax(0.0, (pts - first) / (end - first))) : 1.0;
}
