/*
 * storage_reader.c
 *		Ranged reads of one object over either backend (storage.h): the
 *		object's size from the backend's open, a read-ahead window for reads
 *		shorter than the caller's read-ahead, and the counts of what was
 *		fetched.  The backends read exact ranges; this file decides which.
 */
#include <stdlib.h>
#include <string.h>

#include "storage/storage_internal.h"

struct StorageReader
{
	Storage    *storage;
	void	   *object;			/* the backend's open object */
	int64_t		size;
	int64_t		readahead;
	char	   *window;			/* readahead bytes, or NULL */
	int64_t		window_start;
	int64_t		window_length;	/* 0: empty */
	StorageReadCounts counts;
};

/* Open an object for ranged reads. */
int
storage_reader_open(Storage *storage, const char *key, int64_t readahead_bytes,
					const StorageHooks *hooks, StorageReader **reader, char *why)
{
	StorageReader *opened;
	int			status;

	*reader = NULL;
	status = storage_check_key(key, why);
	if (status != 0)
		return status;
	if (readahead_bytes < 0 || readahead_bytes > INT32_MAX)
		return storage_fail(why, EX_USAGE, "a read-ahead is 0 to 2 GiB, not %lld bytes",
							(long long) readahead_bytes);
	opened = calloc(1, sizeof(StorageReader));
	if (opened == NULL || (readahead_bytes > 0 && (opened->window = malloc(readahead_bytes)) == NULL))
	{
		free(opened);
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	}
	opened->storage = storage;
	opened->readahead = readahead_bytes;
	status = storage->backend->reader_open(storage->state, key, hooks, &opened->object,
										   &opened->size, why);
	if (status != 0)
	{
		free(opened->window);
		free(opened);
		return status;
	}
	*reader = opened;
	return 0;
}

/* The object's size in bytes. */
int64_t
storage_reader_size(const StorageReader *reader)
{
	return reader->size;
}

/* Fetch an exact range from the backend, counting it. */
static int
fetch(StorageReader *reader, int64_t offset, int64_t length, void *buffer, char *why)
{
	int			status = reader->storage->backend->reader_read(reader->storage->state,
															   reader->object, offset,
															   (size_t) length, buffer, why);

	if (status == 0)
	{
		reader->counts.bytes += length;
		reader->counts.requests++;
	}
	return status;
}

/* Read up to length bytes at offset; short only at the object's end. */
int
storage_reader_read(StorageReader *reader, int64_t offset, void *buffer, size_t length,
					size_t *got, char *why)
{
	char	   *out = buffer;
	int64_t		want;

	*got = 0;
	if (offset < 0)
		return storage_fail(why, EX_USAGE, "a read starts at a byte offset of 0 or more");
	if (offset >= reader->size || length == 0)
		return 0;
	want = reader->size - offset < (int64_t) length ? reader->size - offset : (int64_t) length;
	while (want > 0)
	{
		int64_t		in_window = reader->window_start + reader->window_length - offset;
		int64_t		take;
		int			status;

		if (reader->window_length > 0 && offset >= reader->window_start && in_window > 0)
		{
			take = in_window < want ? in_window : want;
			memcpy(out, reader->window + (offset - reader->window_start), take);
		}
		else if (want >= reader->readahead)
		{
			take = want;
			status = fetch(reader, offset, take, out, why);
			if (status != 0)
				return status;
		}
		else
		{
			reader->window_length = 0;
			reader->window_start = offset;
			take = reader->size - offset < reader->readahead ? reader->size - offset :
				reader->readahead;
			status = fetch(reader, offset, take, reader->window, why);
			if (status != 0)
				return status;
			reader->window_length = take;
			continue;
		}
		out += take;
		offset += take;
		want -= take;
		*got += take;
	}
	return 0;
}

/* What the reader fetched from storage. */
StorageReadCounts
storage_reader_counts(const StorageReader *reader)
{
	return reader->counts;
}

/* Close a reader; NULL is fine. */
void
storage_reader_close(StorageReader *reader)
{
	if (reader == NULL)
		return;
	reader->storage->backend->reader_close(reader->storage->state, reader->object);
	free(reader->window);
	free(reader);
}
