/*
 * state.h
 *		What the launcher, the workers and ordinary backends share in memory:
 *		one slot per worker (who it is, what it runs, its latch) and the
 *		launcher's latch and pause requests.  A spinlock guards it all; it is
 *		held only to copy a few fields.
 */
#ifndef VPROXY_STATE_H
#define VPROXY_STATE_H

#include "storage/latch.h"
#include "storage/spin.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

typedef enum WorkerState
{
	WORKER_STOPPED = 0,			/* no process in this slot */
	WORKER_STARTING,			/* connecting, checking the extension */
	WORKER_IDLE,				/* looking for work or sleeping */
	WORKER_RUNNING,				/* supervising a child */
	WORKER_WAITING,				/* cannot run jobs now (program missing) */
	WORKER_STOPPING				/* handing its job back, exiting */
} WorkerState;

typedef struct WorkerSlot
{
	pid_t		pid;
	Latch	   *latch;
	WorkerState state;
	TimestampTz state_since;
	bool		woken;			/* a waker set the latch; cleared by the worker */
	bool		check_lease;	/* the job may be cancelled: heartbeat now */
	bool		has_job;
	pg_uuid_t	job_id;
	pg_uuid_t	video_id;
	char		job_type[32];
	int			attempt;
	float4		progress;
	char		stage[32];
	TimestampTz job_started_at;
} WorkerSlot;

typedef struct VproxyState
{
	slock_t		mutex;
	uint64		life_id;		/* random, new at each (crash-)restart */
	pid_t		launcher_pid;
	Latch	   *launcher_latch;
	bool		extension_missing;	/* a worker found no extension: wait */
	bool		recheck_requested;	/* a commit may have made the extension */
	int			pause_requests; /* backends about to drop/rename the database */
	bool		workers_paused; /* the launcher stopped every worker for them */
	int			nslots;
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} VproxyState;

extern VproxyState *vproxy_state;

/* Ask for the shared memory (shmem_request_hook) and attach to it. */
extern void install_state_hooks(void);

/* Set the launcher's latch, if it runs. */
extern void wake_launcher(void);

/* Wake the launcher to look again for the database and the extension. */
extern void request_launcher_recheck(void);

#endif							/* VPROXY_STATE_H */
