/*
 * call_policy.h
 *		What a worker does when one of its calls (claim_job, heartbeat_job,
 *		finish_job, fail_job, release_job, expire_leases_of_earlier_lives)
 *		fails with an SQLSTATE.  Plain C, no PostgreSQL header: the in-server
 *		worker (jobs.c, from ErrorData.sqlerrcode through unpack_sql_state)
 *		and the libpq worker (from PG_DIAG_SQLSTATE) decide alike.
 *
 *	CALL_POLICY_RETRY: the database or the application is in the way for
 *		now (a lock held past lock_timeout, a deadlock, a serialization
 *		failure, a cancel, a lost connection, a shutdown, resources): the
 *		worker keeps its lease (heartbeats) and tries the same call again,
 *		for as long as it takes.  Nothing the application does to its rows
 *		costs a job an attempt or a worker its life.
 *	CALL_POLICY_BAD_DATA: the input of the call cannot be stored (a data
 *		exception, a constraint, a trigger of the application that raised):
 *		a result is recorded as a failure of the job, at once.
 *	CALL_POLICY_GIVE_UP: anything else (a bug, a broken installation):
 *		trying again cannot help; the worker gives the call up, says so in
 *		the log, and the lease runs out as if it were lost.
 */
#ifndef VPROXY_CALL_POLICY_H
#define VPROXY_CALL_POLICY_H

#include <string.h>

typedef enum CallPolicy
{
	CALL_POLICY_RETRY,
	CALL_POLICY_BAD_DATA,
	CALL_POLICY_GIVE_UP
} CallPolicy;

/* What to do after a call failed with sqlstate (five characters; NULL: no SQLSTATE, the connection broke). */
static inline CallPolicy
call_policy(const char *sqlstate)
{
	static const char *const retry_classes[] = {
		"08",					/* connection exception */
		"40",					/* transaction rollback: serialization, deadlock */
		"53",					/* insufficient resources: memory, disk, connections */
		"58",					/* system error: I/O */
	};
	static const char *const retry_states[] = {
		"55P03",				/* lock_not_available: lock_timeout, NOWAIT */
		"57014",				/* query_canceled: pg_cancel_backend, statement_timeout */
		"57P01",				/* admin_shutdown (libpq: reconnect) */
		"57P02",				/* crash_shutdown */
		"57P03",				/* cannot_connect_now: starting up, recovering */
		"25006",				/* read_only_sql_transaction: a failover in progress */
		"55006",				/* object_in_use */
		"54000",				/* program_limit_exceeded: the NOTIFY queue is full */
	};
	size_t		i;

	if (sqlstate == NULL || strlen(sqlstate) != 5)
		return CALL_POLICY_RETRY;
	for (i = 0; i < sizeof(retry_classes) / sizeof(retry_classes[0]); i++)
		if (strncmp(sqlstate, retry_classes[i], 2) == 0)
			return CALL_POLICY_RETRY;
	for (i = 0; i < sizeof(retry_states) / sizeof(retry_states[0]); i++)
		if (strcmp(sqlstate, retry_states[i]) == 0)
			return CALL_POLICY_RETRY;
	/* data exception, integrity constraint, raise_exception (a trigger) */
	if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
		strcmp(sqlstate, "P0001") == 0)
		return CALL_POLICY_BAD_DATA;
	return CALL_POLICY_GIVE_UP;
}

#endif							/* VPROXY_CALL_POLICY_H */
