/*
 * work_queue.c
 *		The bounded hand-over queue between the decoding and encoding threads.
 *
 * One thread pushes and one pops.  Each side is woken only when waiting
 * could end: the consumer when an item comes into an empty queue, the
 * producer when a full queue is down to half.  So a producer faster than
 * the consumer runs in bursts of half a queue instead of sleeping and
 * waking at every item (a long fill of one still picture hands over
 * hundreds of thousands of frames).
 */
#include <errno.h>

#include <libavutil/mem.h>

#include "media/work_queue.h"

/* Set up an empty queue of `capacity` items; 0 or an errno. */
int
work_queue_init(WorkQueue *queue, int capacity)
{
	queue->items = av_calloc(capacity, sizeof(WorkItem));
	if (queue->items == NULL)
		return ENOMEM;
	queue->capacity = capacity;
	queue->head = 0;
	queue->count = 0;
	queue->aborted = false;
	pthread_mutex_init(&queue->lock, NULL);
	pthread_cond_init(&queue->ready, NULL);
	pthread_cond_init(&queue->room, NULL);
	return 0;
}

/* Append an item, waiting for room; false (item not taken) once aborted. */
bool
work_queue_push(WorkQueue *queue, WorkItem item)
{
	bool		taken;

	pthread_mutex_lock(&queue->lock);
	if (queue->count == queue->capacity)
	{
		while (queue->count > queue->capacity / 2 && !queue->aborted)
			pthread_cond_wait(&queue->room, &queue->lock);
	}
	taken = !queue->aborted;
	if (taken)
	{
		queue->items[(queue->head + queue->count) % queue->capacity] = item;
		queue->count++;
		if (queue->count == 1)
			pthread_cond_signal(&queue->ready);
	}
	pthread_mutex_unlock(&queue->lock);
	return taken;
}

/* Take the oldest item, waiting for one; false once aborted. */
bool
work_queue_pop(WorkQueue *queue, WorkItem *item)
{
	bool		taken;

	pthread_mutex_lock(&queue->lock);
	while (queue->count == 0 && !queue->aborted)
		pthread_cond_wait(&queue->ready, &queue->lock);
	taken = !queue->aborted;
	if (taken)
	{
		*item = queue->items[queue->head];
		queue->head = (queue->head + 1) % queue->capacity;
		queue->count--;
		if (queue->count == queue->capacity / 2)
			pthread_cond_signal(&queue->room);
	}
	pthread_mutex_unlock(&queue->lock);
	return taken;
}

/* Wake and refuse both sides from now on (a failure on either side). */
void
work_queue_abort(WorkQueue *queue)
{
	pthread_mutex_lock(&queue->lock);
	queue->aborted = true;
	pthread_cond_broadcast(&queue->ready);
	pthread_cond_broadcast(&queue->room);
	pthread_mutex_unlock(&queue->lock);
}

/* Free what an item holds. */
void
work_item_free(WorkItem *item)
{
	av_frame_free(&item->frame);
	av_packet_free(&item->packet);
}

/* Free the items left and the queue itself. */
void
work_queue_destroy(WorkQueue *queue)
{
	if (queue->items == NULL)
		return;
	while (queue->count > 0)
	{
		work_item_free(&queue->items[queue->head]);
		queue->head = (queue->head + 1) % queue->capacity;
		queue->count--;
	}
	av_free(queue->items);
	queue->items = NULL;
	pthread_mutex_destroy(&queue->lock);
	pthread_cond_destroy(&queue->ready);
	pthread_cond_destroy(&queue->room);
}
