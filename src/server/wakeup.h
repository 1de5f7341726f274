/*
 * wakeup.h
 *		Wake-ups sent when a transaction commits: an idle worker for each job
 *		queued, the worker of a cancelled job, the launcher.
 */
#ifndef VPROXY_WAKEUP_H
#define VPROXY_WAKEUP_H

/* Register the transaction callback that sends the wake-ups. */
extern void install_wakeup_callback(void);

/* Wake every worker now: a COMMIT PREPARED may have queued or cancelled jobs. */
extern void wake_all_workers_after_commit_prepared(void);

/* Wake one idle worker that no one has woken yet, if there is one. */
extern void wake_idle_worker(void);

/* At commit, wake the launcher. */
extern void wake_launcher_at_commit(void);

/* At commit, wake every worker to look at the extension and its lease. */
extern void wake_all_workers_at_commit(void);

#endif							/* VPROXY_WAKEUP_H */
