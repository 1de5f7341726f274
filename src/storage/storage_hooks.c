/*
 * storage_hooks.c
 *		Calling the optional hooks of a transfer.
 */
#include "storage/storage_internal.h"

/* Whether the caller asked to stop; hooks may be NULL. */
bool
storage_should_stop(const StorageHooks *hooks)
{
	return hooks != NULL && hooks->should_stop != NULL && hooks->should_stop(hooks->arg);
}

/* Report progress through the hooks, if any. */
void
storage_progress(const StorageHooks *hooks, int64_t done, int64_t total)
{
	if (hooks != NULL && hooks->progress != NULL)
		hooks->progress(done, total, hooks->arg);
}
