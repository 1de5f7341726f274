/*
 * redact.c
 *		The secrets (the S3 secret key and session token) must never reach
 *		the log, but PostgreSQL itself writes
 *		"parameter ... changed to ..." on reload, and a failing statement may
 *		quote it.  An emit_log_hook replaces the current secret by stars in
 *		every part of every message before it is written.  A statement that
 *		names the setting may carry a secret not yet in force (a failing
 *		ALTER SYSTEM or SET): it is left out of the log altogether.
 *
 *		Only the log is changed.  A message also sent to the client goes to
 *		it as it was (the client wrote what it quotes): were it starred,
 *		any user could test guesses of the secret (SELECT 'guess'::int would
 *		answer with stars exactly when the guess is right).  Such a message
 *		is kept from the log, and a starred copy is logged instead.
 */
#include "postgres.h"

#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/elog.h"
#include "utils/memutils.h"

#include "redact.h"
#include "settings.h"

/* a statement naming one of these settings may carry a new secret */
static const char *const secret_settings[] = {"s3_secret_access_key", "s3_session_token"};
/* what is logged instead of such a statement */
#define HIDDEN_STATEMENT "(a statement naming a secret vproxy setting, not shown)"

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

/* Whether text names a secret's setting (so may carry a new secret). */
static bool
names_secret_setting(const char *text)
{
	if (text == NULL)
		return false;
	for (size_t i = 0; i < lengthof(secret_settings); i++)
		if (strcasestr(text, secret_settings[i]) != NULL)
			return true;
	return false;
}

/* Statement text (a function's SQL, an internal query) naming the setting, replaced. */
static char *
without_secret_statement(char *text)
{
	return names_secret_setting(text) ? pstrdup(HIDDEN_STATEMENT) : text;
}

/* A message of the log: the parts that may quote the secret or a statement naming its setting. */
typedef struct LoggedParts
{
	char	   *message;
	char	   *detail;
	char	   *detail_log;
	char	   *hint;
	char	   *context;
	char	   *internalquery;
	bool		hide_stmt;
} LoggedParts;

/* The parts of the log that may quote secret, starred. */
static void
star_secret(LoggedParts *parts, const char *secret)
{
	if (secret == NULL || secret[0] == '\0')
		return;
	parts->message = without_secret(parts->message, secret);
	parts->detail = without_secret(parts->detail, secret);
	parts->detail_log = without_secret(parts->detail_log, secret);
	parts->hint = without_secret(parts->hint, secret);
	parts->context = without_secret(parts->context, secret);
	parts->internalquery = without_secret(parts->internalquery, secret);
	if (debug_query_string != NULL && strstr(debug_query_string, secret) != NULL)
		parts->hide_stmt = true;
}

/* the starred copy being logged: passed through as it is */
static bool logging_copy = false;

/*
 * What the log may show of edata: the secret in force starred everywhere;
 * a statement that names the setting (it may carry a new secret: a failing
 * ALTER SYSTEM or SET, log_statement) left out altogether.  Whether any
 * part changed.
 */
static bool
redacted_parts(ErrorData *edata, LoggedParts *parts)
{
	parts->message = edata->message;
	parts->detail = edata->detail;
	parts->detail_log = edata->detail_log;
	parts->hint = edata->hint;
	parts->context = edata->context;
	parts->internalquery = edata->internalquery;
	parts->hide_stmt = edata->hide_stmt;
	star_secret(parts, vproxy_s3_secret_access_key);
	star_secret(parts, vproxy_s3_session_token);
	if (names_secret_setting(debug_query_string))
	{
		parts->hide_stmt = true;
		/* log_statement and log_min_duration_statement quote it in the message */
		parts->message = replaced(parts->message, debug_query_string, HIDDEN_STATEMENT);
		parts->detail = replaced(parts->detail, debug_query_string, HIDDEN_STATEMENT);
		parts->detail_log = replaced(parts->detail_log, debug_query_string, HIDDEN_STATEMENT);
	}
	parts->context = without_secret_statement(parts->context);
	parts->internalquery = without_secret_statement(parts->internalquery);
	return parts->message != edata->message || parts->detail != edata->detail ||
		parts->detail_log != edata->detail_log || parts->hint != edata->hint ||
		parts->context != edata->context || parts->internalquery != edata->internalquery ||
		parts->hide_stmt != edata->hide_stmt;
}

/*
 * emit_log_hook: keep the secret (and statements naming its setting) out
 * of the log.  A message for the log only is starred in place.  One also
 * sent to the client is left as it is for the client, kept from the log,
 * and a starred copy (server log only) is logged in its place.
 */
static void
redact_secret(ErrorData *edata)
{
	LoggedParts parts;
	MemoryContext old;
	bool		changed;

	if (logging_copy || !edata->output_to_server)
	{
		if (prev_emit_log_hook)
			prev_emit_log_hook(edata);
		return;
	}
	old = MemoryContextSwitchTo(ErrorContext);
	changed = redacted_parts(edata, &parts);
	MemoryContextSwitchTo(old);
	if (!changed || !edata->output_to_client)
	{
		edata->message = parts.message;
		edata->detail = parts.detail;
		edata->detail_log = parts.detail_log;
		edata->hint = parts.hint;
		edata->context = parts.context;
		edata->internalquery = parts.internalquery;
		edata->hide_stmt = parts.hide_stmt;
		if (prev_emit_log_hook)
			prev_emit_log_hook(edata);
		return;
	}

	edata->output_to_server = false;
	logging_copy = true;
	/* no cancel may strike in the middle of reporting another message */
	HOLD_INTERRUPTS();
	PG_TRY();
	{
		ereport(LOG_SERVER_ONLY,
				(errcode(edata->sqlerrcode),
				 errmsg_internal("%s: %s", error_severity(edata->elevel),
								 parts.message ? parts.message : ""),
				 parts.detail_log ? errdetail_internal("%s", parts.detail_log) :
				 parts.detail ? errdetail_internal("%s", parts.detail) : 0,
				 parts.hint ? errhint("%s", parts.hint) : 0,
				 parts.context ? errcontext("%s", parts.context) : 0,
				 errhidestmt(true)));
	}
	PG_FINALLY();
	{
		logging_copy = false;
	}
	PG_END_TRY();
	RESUME_INTERRUPTS();
}

/* Install the emit_log_hook that blanks the secret in every log line. */
void
install_secret_redaction(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_secret;
}
