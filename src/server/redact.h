/*
 * redact.h
 *		Keep the S3 secret out of the server log.
 */
#ifndef VPROXY_REDACT_H
#define VPROXY_REDACT_H

/* Install the emit_log_hook that blanks the secret in every log line. */
extern void install_secret_redaction(void);

#endif							/* VPROXY_REDACT_H */
