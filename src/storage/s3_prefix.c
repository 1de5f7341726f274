/*
 * s3_prefix.c
 *		Removal of every object below a prefix of an S3 storage: pages of
 *		ListObjectsV2 (read with libexpat, keys url-encoded by the store when
 *		it says so), then one DeleteObject per listed key, a few in flight.
 *		DeleteObject rather than DeleteObjects because every S3-compatible
 *		store has the first and not all have the second.  A listed key outside
 *		the prefix (a store ignoring the parameter) stops everything before
 *		any deletion.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/percent_encode.h"
#include "storage/s3_client.h"

/* Keys asked for per page: small enough for the kept answer (S3_RESPONSE_KEEP_BYTES). */
#define LIST_PAGE_KEYS 50

/* One page of a listing. */
typedef struct ListPage
{
	char	   *keys[LIST_PAGE_KEYS];
	int			count;
	bool		truncated;
	bool		url_encoded;
	char	   *next_token;
	bool		out_of_memory;
	bool		too_many;
} ListPage;

/* Visitor: the page's keys, whether it is the last, the next token. */
static bool
take_listing(const char *path, const char *text, void *arg)
{
	ListPage   *page = arg;

	if (strcmp(path, "ListBucketResult/Contents/Key") == 0)
	{
		if (page->count == LIST_PAGE_KEYS)
		{
			page->too_many = true;
			return false;
		}
		page->keys[page->count] = strdup(text);
		page->out_of_memory |= page->keys[page->count++] == NULL;
	}
	else if (strcmp(path, "ListBucketResult/IsTruncated") == 0)
		page->truncated = strcmp(text, "true") == 0;
	else if (strcmp(path, "ListBucketResult/EncodingType") == 0)
		page->url_encoded = strcmp(text, "url") == 0;
	else if (strcmp(path, "ListBucketResult/NextContinuationToken") == 0)
	{
		free(page->next_token);
		page->next_token = strdup(text);
		page->out_of_memory |= page->next_token == NULL;
	}
	return !page->out_of_memory;
}

/* Release a page's strings. */
static void
free_page(ListPage *page)
{
	for (int i = 0; i < page->count; i++)
		free(page->keys[i]);
	free(page->next_token);
	memset(page, 0, sizeof(*page));
}

/* The query of a ListObjectsV2 page, its parameters in canonical order. */
static char *
list_query(const char *full_prefix, const char *token)
{
	char	   *prefix = storage_percent_encode(full_prefix, false);
	char	   *encoded_token = token ? storage_percent_encode(token, false) : NULL;
	char	   *query = NULL;

	if (prefix != NULL && (token == NULL || encoded_token != NULL))
		query = storage_format("%s%s%sencoding-type=url&list-type=2&max-keys=%d&prefix=%s",
							   token ? "continuation-token=" : "", token ? encoded_token : "",
							   token ? "&" : "", LIST_PAGE_KEYS, prefix);
	free(prefix);
	free(encoded_token);
	return query;
}

/* List one page of the keys below full_prefix, checked to lie below it. */
static int
list_page(S3Client *client, const char *full_prefix, const char *token,
		  const StorageHooks *hooks, ListPage *page, char *why)
{
	char		quoted[STORAGE_WHY_MAX / 2];
	char	   *query = list_query(full_prefix, token);
	const char *problem;
	S3Request	list;
	int			status;

	memset(page, 0, sizeof(*page));
	if (query == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	status = s3_request_init(client, &list, "ListObjectsV2", "GET", "", query, why);
	free(query);
	list.object_key = full_prefix;	/* for messages */
	if (status == 0)
		status = s3_run_one(client, &list, hooks, why);
	if (status == 0)
	{
		problem = s3_xml_parse(list.response, list.response_length, take_listing, page);
		if (page->out_of_memory)
			status = storage_fail(why, EX_SOFTWARE, "out of memory");
		else if (problem != NULL || page->too_many)
			status = storage_fail(why, EX_SOFTWARE,
								  "ListObjectsV2 of prefix %s in bucket %s: unreadable answer (%s)",
								  storage_quote(full_prefix, quoted, sizeof(quoted)),
								  client->location.bucket,
								  page->too_many ? "more keys than asked for" : problem);
	}
	for (int i = 0; status == 0 && i < page->count; i++)
	{
		if (page->url_encoded && !percent_decode(page->keys[i], page->keys[i], true))
			status = storage_fail(why, EX_SOFTWARE,
								  "ListObjectsV2 of prefix %s in bucket %s: a key is badly url-encoded",
								  storage_quote(full_prefix, quoted, sizeof(quoted)),
								  client->location.bucket);
		else if (strncmp(page->keys[i], full_prefix, strlen(full_prefix)) != 0)
			status = storage_fail(why, EX_SOFTWARE,
								  "ListObjectsV2 of prefix %s in bucket %s listed a key outside it: nothing removed",
								  storage_quote(full_prefix, quoted, sizeof(quoted)),
								  client->location.bucket);
	}
	if (status == 0 && page->truncated && (page->next_token == NULL || page->count == 0))
		status = storage_fail(why, EX_SOFTWARE,
							  "ListObjectsV2 of prefix %s in bucket %s: a truncated page without a continuation",
							  storage_quote(full_prefix, quoted, sizeof(quoted)),
							  client->location.bucket);
	s3_request_free(&list);
	return status;
}

/* DeleteObject of every key of a page, a few in flight. */
static int
delete_page(S3Client *client, ListPage *page, const StorageHooks *hooks, char *why)
{
	S3Request	requests[LIST_PAGE_KEYS];
	S3Request  *pointers[LIST_PAGE_KEYS];
	int			made = 0;
	int			status = 0;

	for (; status == 0 && made < page->count; made++)
	{
		status = s3_request_init(client, &requests[made], "DeleteObject", "DELETE",
								 page->keys[made], NULL, why);
		pointers[made] = &requests[made];
	}
	if (status == 0)
		status = s3_run(client, pointers, page->count, S3_PARALLEL_TRANSFERS, hooks, 0, why);
	for (int i = 0; i < made; i++)
		s3_request_free(&requests[i]);
	return status;
}

/* Remove every object whose key starts with prefix (ending in '/'). */
int
s3_delete_prefix(void *state, const char *prefix, const StorageHooks *hooks,
				 int64_t *removed, char *why)
{
	S3Client   *client = state;
	char	   *full_prefix = storage_format("%s%s", client->location.prefix, prefix);
	char	   *token = NULL;
	ListPage	page;
	int			status = 0;

	*removed = 0;
	if (full_prefix == NULL)
		return storage_fail(why, EX_SOFTWARE, "out of memory");
	do
	{
		status = list_page(client, full_prefix, token, hooks, &page, why);
		free(token);
		token = NULL;
		if (status == 0 && page.count > 0)
			status = delete_page(client, &page, hooks, why);
		if (status == 0)
		{
			*removed += page.count;
			token = page.truncated ? page.next_token : NULL;
			page.next_token = NULL;
		}
		free_page(&page);
	} while (status == 0 && token != NULL);
	free(token);
	free(full_prefix);
	return status;
}
