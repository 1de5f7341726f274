/*
 * redact.c
 *		The secret must never reach the log, but PostgreSQL itself writes
 *		"parameter ... changed to ..." on reload, and a failing statement may
 *		quote it.  An emit_log_hook replaces the current secret by stars in
 *		every part of every message before it is written.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/memutils.h"

#include "redact.h"
#include "settings.h"

static emit_log_hook_type prev_emit_log_hook = NULL;

/* A copy of text with every occurrence of secret replaced, or text itself. */
static char *
without_secret(char *text, const char *secret)
{
	StringInfoData out;
	const char *from = text;
	const char *hit;
	size_t		secret_len = strlen(secret);

	if (text == NULL || strstr(text, secret) == NULL)
		return text;
	initStringInfo(&out);
	while ((hit = strstr(from, secret)) != NULL)
	{
		appendBinaryStringInfo(&out, from, hit - from);
		appendStringInfoString(&out, "********");
		from = hit + secret_len;
	}
	appendStringInfoString(&out, from);
	return out.data;
}

/* emit_log_hook: blank the secret in the message, its detail, hint and context. */
static void
redact_secret(ErrorData *edata)
{
	const char *secret = vproxy_s3_secret_access_key;

	if (secret != NULL && secret[0] != '\0')
	{
		MemoryContext old = MemoryContextSwitchTo(ErrorContext);

		edata->message = without_secret(edata->message, secret);
		edata->detail = without_secret(edata->detail, secret);
		edata->detail_log = without_secret(edata->detail_log, secret);
		edata->hint = without_secret(edata->hint, secret);
		edata->context = without_secret(edata->context, secret);
		edata->internalquery = without_secret(edata->internalquery, secret);
		if (debug_query_string != NULL && strstr(debug_query_string, secret) != NULL)
			edata->hide_stmt = true;
		MemoryContextSwitchTo(old);
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* Install the emit_log_hook that blanks the secret in every log line. */
void
install_secret_redaction(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_secret;
}
