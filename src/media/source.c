/*
 * source.c
 *		An input read through the caller's ranged reads instead of a file: a
 *		segment of a split proxy reads only what it needs of an original in
 *		S3 (its index, and the bytes from its keyframe on).  The caller
 *		registers a MediaSource under a path (media_set_source); every media
 *		call opening that path then reads through an AVIOContext over it.
 *
 * Reads are fetched in blocks that grow while reading goes on where the
 * last one ended (64 KiB, doubling up to 4 MiB) and start small again after
 * a seek: the header, the index and the first packets cost a few small
 * reads, a segment's run of packets few large ones, and what is fetched
 * past the last byte used stays below the last block.
 */
#include <stdio.h>
#include <string.h>

#include <libavutil/mem.h>

#include "media/media_internal.h"

/* libav's buffer, and the smallest and largest block fetched */
#define SOURCE_BUFFER_BYTES (64 * 1024)
#define SOURCE_BLOCK_MIN (64 * 1024)
#define SOURCE_BLOCK_MAX (4 * 1024 * 1024)

/* The one source and the path it stands in for. */
static const MediaSource *registered_source;
static char registered_path[4096];

/* An opened source: where the AVIOContext reads next, and the last block fetched. */
typedef struct SourceReader
{
	const MediaSource *source;
	int64_t		position;
	uint8_t    *block;
	int64_t		block_offset;
	int			block_length;
	int			next_block;		/* bytes the next fetch asks for */
} SourceReader;

/* Let `source` stand in for `path` in the media calls that follow; NULL: none. */
void
media_set_source(const char *path, const MediaSource *source)
{
	registered_source = source != NULL && path != NULL &&
		strlen(path) < sizeof(registered_path) ? source : NULL;
	snprintf(registered_path, sizeof(registered_path), "%s", registered_source != NULL ? path : "");
}

/* The source registered for `path`, or NULL: a file. */
const MediaSource *
media_source_for(const char *path)
{
	return registered_source != NULL && strcmp(path, registered_path) == 0 ? registered_source : NULL;
}

/* Fetch the block holding `position`: larger if it follows the last one. */
static int
fetch_block(SourceReader *reader, int size)
{
	int			want;
	int			got = 0;

	if (reader->block_length > 0 && reader->position == reader->block_offset + reader->block_length)
		reader->next_block = FFMIN(reader->next_block * 2, SOURCE_BLOCK_MAX);
	else
		reader->next_block = SOURCE_BLOCK_MIN;
	want = FFMAX(reader->next_block, FFMIN(size, SOURCE_BLOCK_MAX));
	reader->block_offset = reader->position;
	reader->block_length = 0;
	while (got < want)
	{
		int			n = reader->source->read_at(reader->source->arg, reader->position + got,
												reader->block + got, want - got);

		if (n < 0)
			return n;
		if (n == 0)
			break;
		got += n;
	}
	reader->block_length = got;
	return got;
}

/* libav's read callback: bytes read, AVERROR_EOF at the end, or the failure as an errno. */
static int
read_source(void *opaque, uint8_t *buffer, int size)
{
	SourceReader *reader = opaque;
	int64_t		from = reader->position - reader->block_offset;
	int			got;

	if (from < 0 || from >= reader->block_length)
	{
		int			fetched = fetch_block(reader, size);

		if (fetched < 0)
			return AVERROR(fetched == -EX_NOPERM ? EACCES : EIO);
		from = 0;
	}
	got = FFMIN(size, reader->block_length - (int) from);
	if (got <= 0)
		return AVERROR_EOF;
	memcpy(buffer, reader->block + from, got);
	reader->position += got;
	return got;
}

/* libav's seek callback. */
static int64_t
seek_source(void *opaque, int64_t offset, int whence)
{
	SourceReader *reader = opaque;
	int64_t		size = reader->source->size;

	switch (whence & ~AVSEEK_FORCE)
	{
		case AVSEEK_SIZE:
			return size;
		case SEEK_SET:
			break;
		case SEEK_CUR:
			offset += reader->position;
			break;
		case SEEK_END:
			offset += size;
			break;
		default:
			return AVERROR(EINVAL);
	}
	if (offset < 0)
		return AVERROR(EINVAL);
	reader->position = offset;
	return offset;
}

/* An AVIOContext reading `source`; 0 or a libav error. */
int
media_source_open_io(const MediaSource *source, AVIOContext **pb)
{
	SourceReader *reader = av_mallocz(sizeof(SourceReader));
	uint8_t    *buffer = av_malloc(SOURCE_BUFFER_BYTES);

	*pb = NULL;
	if (reader != NULL && buffer != NULL && (reader->block = av_malloc(SOURCE_BLOCK_MAX)) != NULL)
	{
		reader->source = source;
		reader->next_block = SOURCE_BLOCK_MIN;
		*pb = avio_alloc_context(buffer, SOURCE_BUFFER_BYTES, 0, reader, read_source, NULL, seek_source);
	}
	if (*pb == NULL)
	{
		if (reader != NULL)
			av_free(reader->block);
		av_free(reader);
		av_free(buffer);
		return AVERROR(ENOMEM);
	}
	return 0;
}

/* Close an input's I/O context, a source's or a file's. */
void
media_close_io(AVIOContext **pb)
{
	if (*pb == NULL)
		return;
	if ((*pb)->read_packet != read_source)
	{
		avio_closep(pb);
		return;
	}
	av_freep(&((SourceReader *) (*pb)->opaque)->block);
	av_freep(&(*pb)->opaque);
	av_freep(&(*pb)->buffer);
	avio_context_free(pb);
}
