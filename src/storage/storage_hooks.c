/*
 * storage_hooks.c
 *		Calling the optional hooks of a transfer, and the process's write gate.
 */
#include "storage/storage_internal.h"

static StorageWriteGate write_gate = NULL;

/* Set the gate every write passes before it starts (NULL: none). */
void
storage_set_write_gate(StorageWriteGate gate)
{
	write_gate = gate;
}

/* Whether a write may start: 0, or the gate's status with why. */
int
storage_may_write(const char *operation, const char *key, char *why)
{
	return write_gate != NULL ? write_gate(operation, key, why) : 0;
}

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
