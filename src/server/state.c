/*
 * state.c
 *		The shared memory of vproxy: reserved at postmaster start, found by
 *		every process that loaded the library.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "settings.h"
#include "state.h"

VproxyState *vproxy_state = NULL;

static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* Bytes needed for the state with one slot per configured worker. */
static Size
state_size(void)
{
	return add_size(offsetof(VproxyState, slots),
					mul_size(Max(vproxy_workers, 1), sizeof(WorkerSlot)));
}

/* shmem_request_hook: reserve the state. */
static void
request_state(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(state_size());
}

/* shmem_startup_hook: create or attach to the state. */
static void
attach_state(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	vproxy_state = ShmemInitStruct("vproxy", state_size(), &found);
	if (!found)
	{
		memset(vproxy_state, 0, state_size());
		SpinLockInit(&vproxy_state->mutex);
		/* shared memory is made again after a crash: a new life of the server */
		if (!pg_strong_random(&vproxy_state->life_id, sizeof(vproxy_state->life_id)))
			ereport(FATAL, (errmsg("vproxy: could not generate a random server life id")));
		vproxy_state->nslots = vproxy_workers;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* Ask for the shared memory and attach to it once it exists. */
void
install_state_hooks(void)
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = request_state;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = attach_state;
}

/* Set the launcher's latch, if it runs. */
void
wake_launcher(void)
{
	Latch	   *latch;

	if (vproxy_state == NULL)
		return;
	SpinLockAcquire(&vproxy_state->mutex);
	latch = vproxy_state->launcher_latch;
	SpinLockRelease(&vproxy_state->mutex);
	if (latch)
		SetLatch(latch);
}

/* Wake the launcher to look again for the database and the extension. */
void
request_launcher_recheck(void)
{
	if (vproxy_state == NULL)
		return;
	SpinLockAcquire(&vproxy_state->mutex);
	vproxy_state->recheck_requested = true;
	SpinLockRelease(&vproxy_state->mutex);
	wake_launcher();
}
