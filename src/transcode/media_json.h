/*
 * media_json.h
 *		The JSON objects describing a video (probe, proxy), a thumbnail and a
 *		split proxy's plan, as printed by the commands and stored in
 *		result_data.
 */
#ifndef VPROXY_TRANSCODE_MEDIA_JSON_H
#define VPROXY_TRANSCODE_MEDIA_JSON_H

#include <jansson.h>

#include "media/media.h"

/* width, height, fps, duration_seconds, codec, bitrate, file_size_bytes and more. */
extern json_t *media_info_json(const MediaInfo *info);

/* width, height, file_size_bytes, timestamp_seconds. */
extern json_t *thumbnail_info_json(const ThumbnailInfo *info);

/* fps_num, fps_den, slots, segment_slots, interlaced, segments [{first_slot, next_slot}]. */
extern json_t *split_plan_json(const SplitPlan *plan);

#endif							/* VPROXY_TRANSCODE_MEDIA_JSON_H */
