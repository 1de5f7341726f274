/*
 * work_queue.h
 *		A short bounded queue handing the proxy's video frames and audio packets
 *		from the decoding thread to the encoding thread of a proxy run, in
 *		file order.  Short, so memory stays a few frames whatever the file.
 */
#ifndef VPROXY_WORK_QUEUE_H
#define VPROXY_WORK_QUEUE_H

#include <pthread.h>
#include <stdbool.h>

#include <libavcodec/packet.h>
#include <libavutil/frame.h>

typedef enum WorkKind
{
	WORK_VIDEO_FRAME,
	WORK_AUDIO_PACKET,
	WORK_END					/* the input is exhausted, decoders flushed */
} WorkKind;

typedef struct WorkItem
{
	WorkKind	kind;
	AVFrame    *frame;			/* WORK_VIDEO_FRAME */
	AVPacket   *packet;			/* WORK_AUDIO_PACKET */
} WorkItem;

typedef struct WorkQueue
{
	pthread_mutex_t lock;
	pthread_cond_t ready;		/* an item came into an empty queue */
	pthread_cond_t room;		/* a full queue is down to half */
	WorkItem   *items;
	int			capacity;
	int			head;
	int			count;
	bool		aborted;
} WorkQueue;

extern int	work_queue_init(WorkQueue *queue, int capacity);
extern bool work_queue_push(WorkQueue *queue, WorkItem item);
extern bool work_queue_pop(WorkQueue *queue, WorkItem *item);
extern void work_queue_abort(WorkQueue *queue);
extern void work_item_free(WorkItem *item);
extern void work_queue_destroy(WorkQueue *queue);

#endif							/* VPROXY_WORK_QUEUE_H */
