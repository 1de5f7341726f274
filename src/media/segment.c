/*
 * segment.c
 *		media_make_segment: the video of one segment of a split proxy, frame
 *		for frame the single pass's slots [first_slot, next_slot).
 *
 * The run is the proxy's own (proxy.c, proxy_video.c): the same decoder,
 * filter chain and x264 settings, plus x264's `stitchable`, so that every
 * segment's stream headers are the same.  What differs:
 *
 * - The encoder is warmed up on the keyframe interval of slots before the
 *   first one and cooled down on half of one after the last, and those
 *   packets are dropped; the first and next slots are forced to IDR
 *   pictures, so nothing kept refers to a dropped frame.  Started cold,
 *   x264's rate control has no history (a keyframe's quantizer follows the
 *   recent P-frames'): the first IDR picture of a segment came out at SSIM
 *   0.969 where the single pass had 0.976 on camera-like 480p (0.9757 after
 *   10 frames of warm-up, 0.9762 after 20); stopped cold, its lookahead
 *   sees no future and the last frames before a join lost up to 0.0013.
 *   A 3-minute 720p phone-like clip in 10 s segments: overall SSIM 0.00006
 *   below the single pass cold, equal with this warm-up and cool-down.
 * - Decoding begins at a keyframe before the slot the filter starts at (a
 *   seek), not at the start.  The fps filter gives each slot the last
 *   frame whose rounded timestamp is not after it, so the start is exact
 *   once a frame decoded without errors rounds to that slot or earlier (two
 *   of them when deinterlacing: bwdif looks at the frame before).  That is checked on the
 *   frames themselves, since a demuxer may seek roughly and an open GOP's
 *   leading pictures do not decode; where it fails, the segment is made
 *   again from further back, at last from the start.
 * - The filter takes timestamps on a time base fine enough to hold the
 *   source's ticks and the proxy's exactly, shifted so that the filter's
 *   first slot is 0 (the fps filter's start_time=0 there): the fps filter rounds every
 *   frame as in the single pass, and fills nothing in before the first slot.
 * - Slots at or past next_slot are dropped and reading stops at the first of
 *   them: the fps filter is never flushed there as if the video ended.  Only
 *   a segment that reaches the video's end flushes it, as the single pass does.
 * - Packets go to a chunk file (chunk_file.c), stamped on the proxy's grid.
 */
#include <math.h>
#include <string.h>
#include <unistd.h>

#include "media/proxy_internal.h"

/* Seconds before the slot preceding the first one to seek to, by attempt; then the start. */
static const double seek_margins[] = {0.0, 2.0, 10.0};

#define SEEK_ATTEMPTS ((int) (sizeof(seek_margins) / sizeof(seek_margins[0])))

/*
 * The filter's timeline: a time base dividing both the stream's and the
 * proxy's, so that stream timestamps scale to it exactly and the slot it
 * starts at is a whole number of its ticks.
 */
static int
set_filter_timeline(ProxyRun *run, char *why)
{
	AVRational	in = run->input.video->time_base;
	AVRational	out = av_inv_q(run->frame_rate);
	int64_t		common_num;
	int64_t		common_den;
	int64_t		slot_ticks;

	av_reduce(&in.num, &in.den, in.num, in.den, INT_MAX);
	av_reduce(&out.num, &out.den, out.num, out.den, INT_MAX);
	common_num = av_gcd(in.num, out.num);
	common_den = in.den / av_gcd(in.den, out.den) * (int64_t) out.den;
	/* bwdif halves the time base: leave it room */
	if (common_den > INT_MAX / 4)
		return media_fail(why, EX_DATAERR, "the video's time base %d/%d is too fine to split",
						  in.num, in.den);
	run->filter_time_base = (AVRational)
	{
		(int) common_num, (int) common_den
	};
	run->filter_scale = in.num / common_num * (common_den / in.den);
	slot_ticks = out.num / common_num * (common_den / out.den);
	if (__builtin_mul_overflow(run->origin_slot, slot_ticks, &run->filter_shift))
		return media_fail(why, EX_USAGE, "the segment's first frame is out of range");
	return 0;
}

/*
 * Position the input at a keyframe `margin` seconds before the slot
 * preceding the filter's first (seek.c: where timestamps jumped it reads
 * there, a raw stream starts from the beginning).
 */
static void
seek_before_start(ProxyRun *run, double margin)
{
	AVStream   *video = run->input.video;
	int64_t		target;

	target = av_rescale_q(run->origin_slot - 1, av_inv_q(run->frame_rate), video->time_base);
	target = media_ts_sub(target, llround(margin / av_q2d(video->time_base)));
	target = media_ts_add(target, run->video_offset);
	if (target == AV_NOPTS_VALUE)
		media_seek_start(&run->input);
	else
		media_seek(&run->input, av_rescale_q(target, video->time_base, AV_TIME_BASE_Q));
}

/* The frames written against the plan: every slot of a segment that did not reach the end. */
static int
check_frames(const ProxyRun *run, char *why)
{
	int64_t		planned = run->segment->next_slot - run->segment->first_slot;

	if (run->segment_passed && run->filter_rebuilds == 0 && run->chunk.written != planned)
		return media_fail(why, EX_SOFTWARE, "the segment has %lld frames where its plan has %lld",
						  (long long) run->chunk.written, (long long) planned);
	return 0;
}

/* Describe what the run made. */
static void
describe(const ProxyRun *run, SegmentInfo *info)
{
	double		start = run->segment->first_slot * av_q2d(av_inv_q(run->frame_rate));

	info->frames = run->chunk.written;
	info->reached_end = !run->segment_passed;
	info->preroll_seconds = run->preroll_start == AV_NOPTS_VALUE ? 0.0 :
		fmax(0.0, start - run->preroll_start * av_q2d(run->input.video->time_base));
}

/*
 * One attempt at the segment, decoding from the start margin `attempt`
 * names (or from the video's start, past the last); *retry when it began
 * too late.
 */
static int
run_segment(const char *input, const char *temp_path, const ProxyOptions *options,
			const SegmentSpec *segment, int attempt, const MediaHooks *hooks,
			SegmentInfo *info, bool *retry, char *why)
{
	ProxyRun	run;
	bool		seek = false;
	int			status;

	status = proxy_open_run(&run, input, options, hooks, why);
	run.segment = segment;
	run.preroll_start = AV_NOPTS_VALUE;
	if (status == 0 && run.input.audio != NULL)
	{
		/* the audio is made once for the whole video (audio_unit.c) */
		run.input.audio->discard = AVDISCARD_ALL;
		run.input.audio = NULL;
	}
	if (status == 0)
		status = proxy_video_open(&run, why);
	if (status == 0)
	{
		/* in keyframe intervals, as the encoder was given them */
		int			warmup = run.video_encoder->gop_size;
		int			cooldown = (run.video_encoder->gop_size + 1) / 2;

		run.origin_slot = segment->first_slot > warmup ? segment->first_slot - warmup : 0;
		run.end_slot = segment->next_slot >= 0 ? segment->next_slot + cooldown : -1;
		seek = run.origin_slot > 0 && attempt < SEEK_ATTEMPTS;
		run.segment_started = !seek;
		run.deinterlace = run.deinterlace || segment->interlaced;
		status = set_filter_timeline(&run, why);
	}
	if (status == 0 && seek)
		seek_before_start(&run, seek_margins[attempt]);
	if (status == 0)
		status = chunk_create(&run.chunk, temp_path, run.video_encoder,
							  segment->first_slot, segment->next_slot, why);
	if (status == 0)
		status = proxy_transcode(&run, why);
	if (status == 0 && !run.segment_started && run.clean_before_first < segment_clean_frames_needed(&run))
	{
		run.segment_misaligned = true;
		status = media_fail(why, EX_SOFTWARE, "no frame before the segment's first one decodes");
	}
	if (status == 0)
		status = check_frames(&run, why);
	if (status == 0)
		status = chunk_finish(&run.chunk, !run.segment_passed, why);
	if (status == 0)
		describe(&run, info);
	*retry = run.segment_misaligned;
	proxy_close_run(&run);
	return status;
}

/* Write the segment's video to the chunk `output` (temp name beside it, renamed on success). */
int
media_make_segment(const char *input, const char *output, const ProxyOptions *options,
				   const SegmentSpec *segment, const MediaHooks *hooks,
				   SegmentInfo *info, char *why)
{
	char		temp_path[4096] = "";
	int			status;

	memset(info, 0, sizeof(*info));
	if (segment->first_slot < 0 ||
		(segment->next_slot != -1 && segment->next_slot <= segment->first_slot))
		return media_fail(why, EX_USAGE, "a segment runs from a frame to a later one");
	status = media_temp_path(output, temp_path, sizeof(temp_path), why);
	for (int attempt = 0; status == 0; attempt++)
	{
		bool		retry = false;

		status = run_segment(input, temp_path, options, segment, attempt, hooks, info, &retry, why);
		info->seeks = attempt + 1;
		if (status == 0 || !retry || attempt >= SEEK_ATTEMPTS)
			break;
		status = 0;
	}
	if (status == 0)
		status = media_commit_output(temp_path, output, NULL, why);
	else if (temp_path[0] != '\0')
		unlink(temp_path);
	if (status == 0 && hooks != NULL && hooks->progress != NULL)
		hooks->progress(1.0, hooks->arg);
	return status;
}
