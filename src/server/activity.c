/*
 * activity.c
 *		worker_activity(): what each worker slot is doing, read from shared
 *		memory (the view vproxy.workers joins it with the videos).
 */
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"

#include "state.h"

PG_FUNCTION_INFO_V1(vproxy_worker_activity);

/* The name of a worker state as the view shows it. */
static const char *
state_name(WorkerState state)
{
	switch (state)
	{
		case WORKER_STOPPED:
			return "stopped";
		case WORKER_STARTING:
			return "starting";
		case WORKER_IDLE:
			return "idle";
		case WORKER_RUNNING:
			return "running";
		case WORKER_WAITING:
			return "waiting for vproxy-transcode";
		case WORKER_STOPPING:
			return "stopping";
	}
	return "unknown";
}

/* A copy of a uuid as a Datum. */
static Datum
uuid_datum(const pg_uuid_t *uuid)
{
	pg_uuid_t  *copy = palloc(sizeof(pg_uuid_t));

	memcpy(copy, uuid, sizeof(pg_uuid_t));
	return UUIDPGetDatum(copy);
}

/* worker_activity(): one row per worker slot. */
Datum
vproxy_worker_activity(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (vproxy_state == NULL)
		return (Datum) 0;

	for (int i = 0; i < vproxy_state->nslots; i++)
	{
		WorkerSlot	slot;
		Datum		values[11];
		bool		nulls[11] = {false};

		SpinLockAcquire(&vproxy_state->mutex);
		slot = vproxy_state->slots[i];
		SpinLockRelease(&vproxy_state->mutex);

		values[0] = Int32GetDatum(i + 1);
		values[1] = Int32GetDatum(slot.pid);
		nulls[1] = slot.pid == 0;
		values[2] = CStringGetTextDatum(state_name(slot.state));
		values[3] = uuid_datum(&slot.job_id);
		values[4] = uuid_datum(&slot.video_id);
		values[5] = CStringGetTextDatum(slot.job_type);
		values[6] = Int32GetDatum(slot.attempt);
		values[7] = Float4GetDatum(slot.progress);
		values[8] = CStringGetTextDatum(slot.stage);
		values[10] = TimestampTzGetDatum(slot.job_started_at);
		for (int n = 3; n <= 8; n++)
			nulls[n] = !slot.has_job;
		nulls[10] = !slot.has_job;
		values[9] = TimestampTzGetDatum(slot.state_since);
		nulls[9] = slot.state_since == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
