/*
 * redact.c
 *		The secret must never reach the log, but PostgreSQL itself writes
 *		"parameter ... changed to ..." on reload, and a failing statement may
 *		quote it.  An emit_log_hook replaces the current secret by stars in
 *		every part of every message before it is written.  A statement that
 *		names the setting may carry a secret not yet in force (a failing
 *		ALTER SYSTEM or SET): it is left out of the log altogether.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/memutils.h"

#include "redact.h"
#include "settings.h"

/* a statement naming this setting may carry a new secret */
#define SECRET_SETTING "s3_secret_access_key"
/* what is logged instead of such a statement */
#define HIDDEN_STATEMENT "(a statement naming vproxy." SECRET_SETTING ", not shown)"

static emit_log_hook_type prev_emit_log_hook = NULL;

/* A copy of text with every occurrence of needle replaced, or text itself. */
static char *
replaced(char *text, const char *needle, const char *replacement)
{
	StringInfoData out;
	const char *from = text;
	const char *hit;
	size_t		needle_len = strlen(needle);

	if (text == NULL || strstr(text, needle) == NULL)
		return text;
	initStringInfo(&out);
	while ((hit = strstr(from, needle)) != NULL)
	{
		appendBinaryStringInfo(&out, from, hit - from);
		appendStringInfoString(&out, replacement);
		from = hit + needle_len;
	}
	appendStringInfoString(&out, from);
	return out.data;
}

/* A copy of text with every occurrence of secret starred, or text itself. */
static char *
without_secret(char *text, const char *secret)
{
	return replaced(text, secret, "********");
}

/* Whether text names the secret's setting (so may carry a new secret). */
static bool
names_secret_setting(const char *text)
{
	return text != NULL && strcasestr(text, SECRET_SETTING) != NULL;
}

/* Statement text (a function's SQL, an internal query) naming the setting, replaced. */
static char *
without_secret_statement(char *text)
{
	return names_secret_setting(text) ? pstrdup(HIDDEN_STATEMENT) : text;
}

/*
 * emit_log_hook: blank the secret in force in the message, its detail, hint
 * and context; a statement that names the setting may carry a new secret
 * (a failing ALTER SYSTEM or SET, log_statement): keep it out altogether.
 */
static void
redact_secret(ErrorData *edata)
{
	const char *secret = vproxy_s3_secret_access_key;
	MemoryContext old = MemoryContextSwitchTo(ErrorContext);

	if (secret != NULL && secret[0] != '\0')
	{
		edata->message = without_secret(edata->message, secret);
		edata->detail = without_secret(edata->detail, secret);
		edata->detail_log = without_secret(edata->detail_log, secret);
		edata->hint = without_secret(edata->hint, secret);
		edata->context = without_secret(edata->context, secret);
		edata->internalquery = without_secret(edata->internalquery, secret);
		if (debug_query_string != NULL && strstr(debug_query_string, secret) != NULL)
			edata->hide_stmt = true;
	}
	if (names_secret_setting(debug_query_string))
	{
		edata->hide_stmt = true;
		/* log_statement and log_min_duration_statement quote it in the message */
		edata->message = replaced(edata->message, debug_query_string, HIDDEN_STATEMENT);
		edata->detail = replaced(edata->detail, debug_query_string, HIDDEN_STATEMENT);
		edata->detail_log = replaced(edata->detail_log, debug_query_string, HIDDEN_STATEMENT);
	}
	edata->context = without_secret_statement(edata->context);
	edata->internalquery = without_secret_statement(edata->internalquery);
	MemoryContextSwitchTo(old);

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
