/*
 * chunk_file.c
 *		Write and read the chunk files of a split proxy (chunk_file.h):
 *
 *		"VPXCHNK1"  first_slot next_slot time_base(num den)
 *		            codec parameters (CHUNK_PAR_FIELDS)  extradata size, bytes
 *		packets:    size pts dts duration flags  bytes
 *		trailer:    -1 packet_count reached_end
 *
 * every number a little-endian int64.  No libav muxer is involved, so the
 * timestamps come back exactly as the encoder gave them (a muxer would
 * shift, round or refuse the AAC priming's negative ones).  A file without
 * its trailer is truncated and refused.
 */
#include <errno.h>
#include <string.h>

#include "media/chunk_file.h"
#include "media/media_internal.h"

#define CHUNK_MAGIC "VPXCHNK1"
#define CHUNK_MAX_EXTRADATA (1 << 20)
#define CHUNK_MAX_PACKET (64 << 20)
#define CHUNK_TRAILER_BYTES 24

/* The codec parameters kept, in file order. */
#define CHUNK_PAR_FIELDS(X) \
	X(codec_type) X(codec_id) X(format) X(bit_rate) X(bits_per_coded_sample) \
	X(bits_per_raw_sample) X(profile) X(level) X(width) X(height) \
	X(sample_aspect_ratio.num) X(sample_aspect_ratio.den) X(field_order) \
	X(color_range) X(color_primaries) X(color_trc) X(color_space) \
	X(chroma_location) X(video_delay) X(ch_layout.order) \
	X(ch_layout.nb_channels) X(ch_layout.u.mask) X(sample_rate) \
	X(block_align) X(frame_size) X(initial_padding) X(trailing_padding) \
	X(seek_preroll)

#define CHUNK_COUNT_FIELD(field) + 1
#define CHUNK_PAR_COUNT (0 CHUNK_PAR_FIELDS(CHUNK_COUNT_FIELD))

/* Write one number. */
static bool
put_int(FILE *file, int64_t value)
{
	uint8_t		bytes[8];

	for (int i = 0; i < 8; i++)
		bytes[i] = (uint8_t) ((uint64_t) value >> (8 * i));
	return fwrite(bytes, 1, 8, file) == 8;
}

/* Read one number. */
static bool
get_int(FILE *file, int64_t *value)
{
	uint8_t		bytes[8];
	uint64_t	v = 0;

	if (fread(bytes, 1, 8, file) != 8)
		return false;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t) bytes[i] << (8 * i);
	*value = (int64_t) v;
	return true;
}

/* The failure of a write to the chunk. */
static int
write_failed(const ChunkFile *chunk, char *why)
{
	int			error = errno;

	return media_fail(why, media_errno_status(error, EX_SOFTWARE), "cannot write %s: %s",
					  chunk->path, strerror(error));
}

/* The failure of a chunk that does not read as one. */
static int
unreadable(const ChunkFile *chunk, char *why)
{
	return media_fail(why, EX_SOFTWARE, "%s is not a whole chunk of a split proxy", chunk->path);
}

/* Create `path` with the encoder's parameters. */
int
chunk_create(ChunkFile *chunk, const char *path, const AVCodecContext *encoder,
			 int64_t first_slot, int64_t next_slot, char *why)
{
	AVCodecParameters *par = avcodec_parameters_alloc();
	bool		ok;

	memset(chunk, 0, sizeof(*chunk));
	chunk->path = path;
	if (par == NULL || avcodec_parameters_from_context(par, encoder) < 0)
	{
		avcodec_parameters_free(&par);
		return media_fail(why, EX_TEMPFAIL, "out of memory");
	}
	chunk->file = fopen(path, "wb");
	if (chunk->file == NULL)
	{
		avcodec_parameters_free(&par);
		return write_failed(chunk, why);
	}
	{
#define CHUNK_VALUE(field) (int64_t) par->field,
		int64_t		values[] = {first_slot, next_slot, encoder->time_base.num,
			encoder->time_base.den, CHUNK_PAR_FIELDS(CHUNK_VALUE) par->extradata_size};
#undef CHUNK_VALUE

		ok = fwrite(CHUNK_MAGIC, 1, 8, chunk->file) == 8;
		for (size_t i = 0; ok && i < sizeof(values) / sizeof(values[0]); i++)
			ok = put_int(chunk->file, values[i]);
		ok = ok && fwrite(par->extradata, 1, par->extradata_size, chunk->file) ==
			(size_t) par->extradata_size;
	}
	avcodec_parameters_free(&par);
	return ok ? 0 : write_failed(chunk, why);
}

/* Append one packet. */
int
chunk_write_packet(ChunkFile *chunk, const AVPacket *packet, char *why)
{
	if (!put_int(chunk->file, packet->size) || !put_int(chunk->file, packet->pts) ||
		!put_int(chunk->file, packet->dts) || !put_int(chunk->file, packet->duration) ||
		!put_int(chunk->file, packet->flags) ||
		fwrite(packet->data, 1, packet->size, chunk->file) != (size_t) packet->size)
		return write_failed(chunk, why);
	chunk->written++;
	return 0;
}

/* Write the trailer and close the file. */
int
chunk_finish(ChunkFile *chunk, bool reached_end, char *why)
{
	bool		ok = put_int(chunk->file, -1) && put_int(chunk->file, chunk->written) &&
		put_int(chunk->file, reached_end);

	ok = fclose(chunk->file) == 0 && ok;
	chunk->file = NULL;
	return ok ? 0 : write_failed(chunk, why);
}

/* Read the header (parameters into par) and the trailer. */
static int
read_header(ChunkFile *chunk, AVCodecParameters *par, char *why)
{
	char		magic[8];
	int64_t		values[4 + CHUNK_PAR_COUNT];
	int64_t		extradata_size;
	int64_t		trailer[3];
	long		body;
	int			n = 0;

	if (fread(magic, 1, 8, chunk->file) != 8 || memcmp(magic, CHUNK_MAGIC, 8) != 0)
		return unreadable(chunk, why);
	for (int i = 0; i < 4 + CHUNK_PAR_COUNT; i++)
		if (!get_int(chunk->file, &values[i]))
			return unreadable(chunk, why);
	if (!get_int(chunk->file, &extradata_size) || extradata_size < 0 ||
		extradata_size > CHUNK_MAX_EXTRADATA || values[2] <= 0 || values[3] <= 0 ||
		values[2] > INT32_MAX || values[3] > INT32_MAX)
		return unreadable(chunk, why);
	chunk->header.first_slot = values[n++];
	chunk->header.next_slot = values[n++];
	chunk->header.time_base.num = (int) values[n++];
	chunk->header.time_base.den = (int) values[n++];
#define CHUNK_SET_FIELD(field) par->field = values[n++];
	CHUNK_PAR_FIELDS(CHUNK_SET_FIELD);
#undef CHUNK_SET_FIELD
	par->codec_tag = 0;
	if (extradata_size > 0)
	{
		par->extradata = av_mallocz(extradata_size + AV_INPUT_BUFFER_PADDING_SIZE);
		if (par->extradata == NULL)
			return media_fail(why, EX_TEMPFAIL, "out of memory");
		par->extradata_size = (int) extradata_size;
		if (fread(par->extradata, 1, extradata_size, chunk->file) != (size_t) extradata_size)
			return unreadable(chunk, why);
	}
	body = ftell(chunk->file);
	if (body < 0 || fseek(chunk->file, -CHUNK_TRAILER_BYTES, SEEK_END) != 0 ||
		!get_int(chunk->file, &trailer[0]) || !get_int(chunk->file, &trailer[1]) ||
		!get_int(chunk->file, &trailer[2]) || trailer[0] != -1 || trailer[1] < 0 ||
		fseek(chunk->file, body, SEEK_SET) != 0)
		return unreadable(chunk, why);
	chunk->header.packets = trailer[1];
	chunk->header.reached_end = trailer[2] != 0;
	return 0;
}

/* Open a chunk for reading. */
int
chunk_open(ChunkFile *chunk, const char *path, AVCodecParameters *par, char *why)
{
	int			status;

	memset(chunk, 0, sizeof(*chunk));
	chunk->path = path;
	chunk->file = fopen(path, "rb");
	if (chunk->file == NULL)
	{
		int			error = errno;

		return media_fail(why, error == ENOENT ? EX_NOINPUT : media_errno_status(error, EX_SOFTWARE),
						  "cannot read %s: %s", path, strerror(error));
	}
	status = read_header(chunk, par, why);
	if (status != 0)
		chunk_close(chunk);
	return status;
}

/* Read the next packet into `packet` (unreferenced by the caller before). */
int
chunk_read_packet(ChunkFile *chunk, AVPacket *packet, char *why)
{
	int64_t		size;
	int64_t		flags;

	if (!get_int(chunk->file, &size))
		return unreadable(chunk, why);
	if (size == -1)
		return chunk->written == chunk->header.packets ? 1 : unreadable(chunk, why);
	if (size < 0 || size > CHUNK_MAX_PACKET || av_new_packet(packet, (int) size) < 0)
		return size < 0 || size > CHUNK_MAX_PACKET ? unreadable(chunk, why) :
			media_fail(why, EX_TEMPFAIL, "out of memory");
	if (!get_int(chunk->file, &packet->pts) || !get_int(chunk->file, &packet->dts) ||
		!get_int(chunk->file, &packet->duration) || !get_int(chunk->file, &flags) ||
		fread(packet->data, 1, size, chunk->file) != (size_t) size)
	{
		av_packet_unref(packet);
		return unreadable(chunk, why);
	}
	packet->flags = (int) flags;
	chunk->written++;
	return 0;
}

/* Close a chunk opened for reading (or one abandoned while written). */
void
chunk_close(ChunkFile *chunk)
{
	if (chunk->file != NULL)
		fclose(chunk->file);
	chunk->file = NULL;
}
