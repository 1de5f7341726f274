/*
 * chunk_file.h
 *		The intermediate files of a split proxy: one encoded stream (a
 *		segment's H.264, or the whole video's AAC) with its codec parameters
 *		and every packet's exact timestamps, for the stitch to mux as the
 *		single pass would have.  Little-endian, so a chunk made on one worker
 *		reads the same on another.
 */
#ifndef VPROXY_CHUNK_FILE_H
#define VPROXY_CHUNK_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <libavcodec/avcodec.h>

/* What a chunk says of itself besides its packets. */
typedef struct ChunkHeader
{
	int64_t		first_slot;		/* video: the segment's first proxy frame */
	int64_t		next_slot;		/* the next segment's, -1: to the end; audio: 0, -1 */
	AVRational	time_base;		/* of the packets' timestamps */
	int64_t		packets;		/* from the trailer */
	bool		reached_end;	/* the input ended within this chunk */
} ChunkHeader;

typedef struct ChunkFile
{
	FILE	   *file;
	const char *path;
	ChunkHeader header;
	int64_t		written;		/* packets written or read so far */
} ChunkFile;

/* Create `path` with the encoder's parameters; 0 or a status. */
extern int	chunk_create(ChunkFile *chunk, const char *path, const AVCodecContext *encoder,
						 int64_t first_slot, int64_t next_slot, char *why);
extern int	chunk_write_packet(ChunkFile *chunk, const AVPacket *packet, char *why);

/* Write the trailer and close; 0 or a status (the file is the caller's). */
extern int	chunk_finish(ChunkFile *chunk, bool reached_end, char *why);

/*
 * Open `path`, read its parameters into `par` and its header and trailer
 * into chunk->header; 0 or a status.
 */
extern int	chunk_open(ChunkFile *chunk, const char *path, AVCodecParameters *par, char *why);

/* The next packet: 0, 1 after the last one, or a status. */
extern int	chunk_read_packet(ChunkFile *chunk, AVPacket *packet, char *why);
extern void chunk_close(ChunkFile *chunk);

#endif							/* VPROXY_CHUNK_FILE_H */
