/*
 * redact.h
 *		Keep the S3 secret out of the server log and pg_stat_activity.
 */
#ifndef VPROXY_REDACT_H
#define VPROXY_REDACT_H

/* Install the hooks that blank the secret in the log and in pg_stat_activity. */
extern void install_secret_redaction(void);

#endif							/* VPROXY_REDACT_H */
