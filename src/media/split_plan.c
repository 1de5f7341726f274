/*
 * split_plan.c
 *		media_plan_split: where the segments of a split proxy begin.
 *
 * Boundaries lie on the proxy's own frame grid, every `segment_seconds`
 * rounded to whole keyframe intervals, so that a segment's first frame (an
 * IDR picture) falls where the single pass puts a keyframe anyway, scene
 * cuts aside.  The proxy's frame count is what the durations say: the fps
 * filter's rounding of the video's end.  The last segment runs to the real
 * end whatever it is, and a segment planned past it comes out empty.
 * Whether to deinterlace is the single pass's choice, made on the video's
 * first frame, which a segment starting later cannot see.
 */
#include <math.h>
#include <string.h>

#include "media/proxy_internal.h"

/* The end of the video stream, seconds from the file's start. */
static double
video_end_seconds(const MediaInput *input)
{
	const AVStream *video = input->video;
	double		start;

	if (video->duration <= 0 || video->duration == AV_NOPTS_VALUE)
		return media_duration_seconds(input);
	start = video->start_time != AV_NOPTS_VALUE ? video->start_time * av_q2d(video->time_base) : 0.0;
	return start + video->duration * av_q2d(video->time_base) - input->start_time / (double) AV_TIME_BASE;
}

/* Whether the first frame the decoder gives is flagged interlaced. */
static int
first_frame_interlaced(MediaInput *input, bool *interlaced, char *why)
{
	AVCodecContext *decoder = NULL;
	AVPacket   *packet = av_packet_alloc();
	AVFrame    *frame = av_frame_alloc();
	int			status = packet == NULL || frame == NULL ?
		media_fail(why, EX_TEMPFAIL, "out of memory") :
		media_open_decoder(input->video, 1, &decoder, why);

	while (status == 0)
	{
		if (avcodec_receive_frame(decoder, frame) == 0)
		{
			*interlaced = frame->interlaced_frame;
			break;
		}
		status = media_read_packet(input, packet, why);
		if (status == 0 && packet->stream_index == input->video->index)
			avcodec_send_packet(decoder, packet);
		av_packet_unref(packet);
	}
	if (status == 1)
		status = 0;
	avcodec_free_context(&decoder);
	av_packet_free(&packet);
	av_frame_free(&frame);
	return status;
}

/* Plan the segments of `input`'s proxy, about `segment_seconds` each. */
int
media_plan_split(const char *input, const ProxyOptions *options, double segment_seconds,
				 const MediaHooks *hooks, SplitPlan *plan, char *why)
{
	MediaInput	in;
	AVRational	rate;
	int64_t		keyframe_slots;
	int			status;

	memset(plan, 0, sizeof(*plan));
	if (!(segment_seconds > 0))
		return media_fail(why, EX_USAGE, "a segment lasts more than 0 seconds");
	status = media_input_open(input, hooks, &in, why);
	if (status == 0)
	{
		rate = proxy_video_rate(&in, options);
		plan->fps_num = rate.num;
		plan->fps_den = rate.den;
		/* the keyframe interval the proxy's encoder is given */
		keyframe_slots = lround(options->keyframe_seconds * av_q2d(rate));
		if (keyframe_slots < 1)
			keyframe_slots = 1;
		plan->segment_slots = llround(segment_seconds * av_q2d(rate) / keyframe_slots) * keyframe_slots;
		if (plan->segment_slots < keyframe_slots)
			plan->segment_slots = keyframe_slots;
		plan->slots = llround(video_end_seconds(&in) * av_q2d(rate));
		if (plan->slots < 1)
			plan->slots = 1;
		plan->segments = (int) ((plan->slots + plan->segment_slots - 1) / plan->segment_slots);
		plan->interlaced = in.video->codecpar->field_order == AV_FIELD_TT ||
			in.video->codecpar->field_order == AV_FIELD_BB ||
			in.video->codecpar->field_order == AV_FIELD_TB ||
			in.video->codecpar->field_order == AV_FIELD_BT;
		if (!plan->interlaced)
			status = first_frame_interlaced(&in, &plan->interlaced, why);
	}
	media_input_close(&in);
	return status;
}
