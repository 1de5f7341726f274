/*
 * redact.c
 *		The secrets (the S3 secret key and session token) must never reach
 *		the log, but PostgreSQL itself writes
 *		"parameter ... changed to ..." on reload, and a statement may quote
 *		one.  An emit_log_hook replaces the secrets in force by stars in
 *		every part of every message before it is written.  A statement that
 *		names a secret setting may carry a value not yet in force (ALTER
 *		SYSTEM SET, SET, set_config): the value that follows the name is
 *		starred, the statement is logged.  Only the value is hidden, never
 *		the statement: a statement that merely names the setting (in a
 *		comment, say) is logged as it was, and the statements of a role that
 *		cannot set a secret (not a superuser, no ALTER SYSTEM on it) are
 *		logged as they were, whatever follows the name.
 *
 *		Only the log is changed (and pg_stat_activity, for the statements of
 *		roles that may set a secret).  A message also sent to the client goes to
 *		it as it was (the client wrote what it quotes): were it starred,
 *		any user could test guesses of the secret (SELECT 'guess'::int would
 *		answer with stars exactly when the guess is right).  Such a message
 *		is kept from the log, and a starred copy is logged instead, with the
 *		starred statement when the original would have shown it.
 */
#include "postgres.h"

#include <ctype.h>

#include "access/xact.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "redact.h"
#include "settings.h"

/* a token holding one of these names is followed by a value that may be a new secret */
static const char *const secret_settings[] = {"s3_secret_access_key", "s3_session_token"};
#define STARS "********"

static emit_log_hook_type prev_emit_log_hook = NULL;
static ProcessUtility_hook_type prev_process_utility = NULL;

/* A copy of text with every occurrence of needle replaced, or text itself. */
static char *
replaced(char *text, const char *needle, const char *replacement)
{
	StringInfoData out;
	const char *from = text;
	const char *hit;
	size_t		needle_len;

	if (text == NULL || needle == NULL || needle[0] == '\0' || strstr(text, needle) == NULL)
		return text;
	needle_len = strlen(needle);
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

/* What a token of SQL text is, as far as finding a setting's value goes. */
typedef enum TokenKind
{
	TOKEN_WORD,					/* identifier, keyword, number, parameter */
	TOKEN_STRING,				/* '…', E'…', $tag$…$tag$, "…" */
	TOKEN_OTHER					/* one character of punctuation or operator */
} TokenKind;

typedef struct Token
{
	const char *start;
	const char *end;
	TokenKind	kind;
} Token;

/* The end of a quoted run starting at text (on its quote); backslash escapes if asked. */
static const char *
quoted_end(const char *text, char quote, bool backslashes)
{
	const char *c = text + 1;

	while (*c)
	{
		if (backslashes && *c == '\\' && c[1] != '\0')
			c += 2;
		else if (*c == quote && c[1] == quote)
			c += 2;
		else if (*c == quote)
			return c + 1;
		else
			c++;
	}
	return c;
}

/* The end of the dollar-quoted string starting at text, or NULL if text starts none. */
static const char *
dollar_quoted_end(const char *text)
{
	const char *tag_end = text + 1;
	const char *close;

	if (isdigit((unsigned char) *tag_end))
		return NULL;			/* a parameter, $1 */
	while (isalnum((unsigned char) *tag_end) || *tag_end == '_')
		tag_end++;
	if (*tag_end != '$')
		return NULL;
	tag_end++;
	for (close = tag_end; *close; close++)
		if (strncmp(close, text, tag_end - text) == 0)
			return close + (tag_end - text);
	return close;
}

/* The next token of text after comments and white space; false at the end. */
static bool
next_token(const char **text, Token *token)
{
	const char *c = *text;

	for (;;)
	{
		while (isspace((unsigned char) *c))
			c++;
		if (c[0] == '-' && c[1] == '-')
			c += strcspn(c, "\n");
		else if (c[0] == '/' && c[1] == '*')
		{
			int			depth = 0;

			do
			{
				if (c[0] == '/' && c[1] == '*')
					depth++, c += 2;
				else if (c[0] == '*' && c[1] == '/')
					depth--, c += 2;
				else
					c++;
			} while (depth > 0 && *c);
		}
		else
			break;
	}
	if (*c == '\0')
		return false;
	token->start = c;
	token->kind = TOKEN_STRING;
	if (*c == '\'' || *c == '"')
		token->end = quoted_end(c, *c, false);
	else if ((*c == 'E' || *c == 'e') && c[1] == '\'')
		token->end = quoted_end(c + 1, '\'', true);
	else if (strchr("BbXxNn", *c) && c[1] == '\'')
		token->end = quoted_end(c + 1, '\'', false);
	else if ((*c == 'U' || *c == 'u') && c[1] == '&' && (c[2] == '\'' || c[2] == '"'))
		token->end = quoted_end(c + 2, c[2], false);
	else if (*c == '$' && (token->end = dollar_quoted_end(c)) != NULL)
		;
	else if (isalnum((unsigned char) *c) || *c == '_' || *c == '$' || *c == '.' || (unsigned char) *c >= 0x80)
	{
		token->kind = TOKEN_WORD;
		while (isalnum((unsigned char) *c) || *c == '_' || *c == '$' || *c == '.' || (unsigned char) *c >= 0x80)
			c++;
		token->end = c;
	}
	else
	{
		token->kind = TOKEN_OTHER;
		token->end = c + 1;
	}
	*text = token->end;
	return true;
}

/* Whether a word or string token holds the name of a secret setting. */
static bool
names_secret_setting(const Token *token)
{
	size_t		length = token->end - token->start;

	if (token->kind == TOKEN_OTHER)
		return false;
	for (size_t i = 0; i < lengthof(secret_settings); i++)
	{
		size_t		name_length = strlen(secret_settings[i]);

		for (size_t at = 0; at + name_length <= length; at++)
			if (pg_strncasecmp(token->start + at, secret_settings[i], name_length) == 0)
				return true;
	}
	return false;
}

/* Whether a token sets a value: "=", ",", or the keyword TO. */
static bool
sets_a_value(const Token *token)
{
	size_t		length = token->end - token->start;

	if (token->kind == TOKEN_OTHER)
		return *token->start == '=' || *token->start == ',';
	return token->kind == TOKEN_WORD && length == 2 && pg_strncasecmp(token->start, "to", 2) == 0;
}

/* how deep string literals inside string literals are searched (EXECUTE '…' in a DO block) */
#define MAX_NESTING 4

static char *values_starred(char *text, int depth);

/* A copy of text with every quote doubled (as inside a literal quoted by it), or with doubles undone. */
static char *
requoted(const char *text, size_t length, char quote, bool doubled)
{
	StringInfoData out;

	initStringInfo(&out);
	for (size_t i = 0; i < length; i++)
	{
		appendStringInfoChar(&out, text[i]);
		if (text[i] == quote && doubled)
			appendStringInfoChar(&out, quote);
		else if (text[i] == quote && i + 1 < length && text[i + 1] == quote)
			i++;
	}
	return out.data;
}

/*
 * A string token that names a secret setting may hold SQL that sets it (an
 * EXECUTE of ALTER SYSTEM SET in a DO block; the CONTEXT line quoting a
 * statement): the same starring inside it, its quotes undone and done
 * again.  NULL if nothing changed.
 */
static char *
string_starred(const Token *token, int depth)
{
	const char *open = token->start;
	const char *content;
	const char *close;
	char		quote;
	char	   *inner;
	char	   *starred;

	while (*open != '\'' && *open != '"' && *open != '$')
		open++;					/* past E, B, X, N or U& */
	if (*open == '$')
	{
		size_t		tag_length = strchr(open + 1, '$') + 1 - open;

		content = open + tag_length;
		close = token->end;
		if (token->end - tag_length >= content && strncmp(token->end - tag_length, open, tag_length) == 0)
			close = token->end - tag_length;
		inner = pnstrdup(content, close - content);
		starred = values_starred(inner, depth + 1);
		if (starred == inner)
			return NULL;
		return psprintf("%.*s%s%.*s", (int) (content - token->start), token->start, starred,
						(int) (token->end - close), close);
	}
	quote = *open;
	content = open + 1;
	close = token->end > content && token->end[-1] == quote ? token->end - 1 : token->end;
	inner = requoted(content, close - content, quote, false);
	starred = values_starred(inner, depth + 1);
	if (starred == inner)
		return NULL;
	return psprintf("%.*s%s%.*s", (int) (content - token->start), token->start,
					requoted(starred, strlen(starred), quote, true), (int) (token->end - close), close);
}

/*
 * SQL text with the value that follows each mention of a secret setting
 * (the token after "=", "TO" or ",", as in SET, ALTER SYSTEM SET and
 * set_config) starred, inside string literals too, or text itself.
 * Comments are skipped, so a mention there hides nothing.
 */
static char *
values_starred(char *text, int depth)
{
	StringInfoData out;
	const char *scan = text;
	const char *copied = text;
	Token		previous[2] = {{NULL, NULL, TOKEN_OTHER}, {NULL, NULL, TOKEN_OTHER}};
	Token		token;
	bool		changed = false;

	initStringInfo(&out);
	while (next_token(&scan, &token))
	{
		char	   *replacement = NULL;

		if (previous[0].start != NULL && names_secret_setting(&previous[0]) && sets_a_value(&previous[1]))
			replacement = token.kind == TOKEN_STRING ? "'" STARS "'" : STARS;
		else if (token.kind == TOKEN_STRING && depth < MAX_NESTING && names_secret_setting(&token))
			replacement = string_starred(&token, depth);
		if (replacement != NULL)
		{
			appendBinaryStringInfo(&out, copied, token.start - copied);
			appendStringInfoString(&out, replacement);
			copied = token.end;
			changed = true;
		}
		previous[0] = previous[1];
		previous[1] = token;
	}
	if (!changed)
		return text;
	appendStringInfoString(&out, copied);
	return out.data;
}

/* Whether text names a secret setting anywhere (a cheap test before the tokens). */
static bool
mentions_secret_setting(const char *text)
{
	for (size_t i = 0; i < lengthof(secret_settings); i++)
		if (strcasestr(text, secret_settings[i]) != NULL)
			return true;
	return false;
}

/*
 * Whether the current role could give a secret setting a value: a
 * superuser (the session's, or the role set), or a role granted ALTER
 * SYSTEM on one.  Only such a role's statement may carry a new secret.
 * Outside a transaction (an aborted one runs no statement; the postmaster
 * and other processes without a session user) the catalogs cannot be
 * read: true, to be safe.
 */
static bool
may_set_secrets(void)
{
	if (!IsTransactionState() || GetSessionUserIsSuperuser() || superuser())
		return true;
	for (size_t i = 0; i < lengthof(secret_settings); i++)
		if (pg_parameter_aclcheck(psprintf("vproxy.%s", secret_settings[i]), GetUserId(),
								  ACL_ALTER_SYSTEM) == ACLCHECK_OK)
			return true;
	return false;
}

/*
 * SQL text with the values given to secret settings starred, or text
 * itself.  Only for a role that may set them: anybody else's statement
 * carries no secret, and naming the setting hides nothing of it.
 */
static char *
without_secret_values(char *text)
{
	char	   *starred;

	if (text == NULL || !mentions_secret_setting(text))
		return text;
	starred = values_starred(text, 0);
	if (starred != text && !may_set_secrets())
		return text;
	return starred;
}

/* A copy of text with the secrets in force starred, or text itself. */
static char *
without_secrets(char *text)
{
	text = replaced(text, vproxy_s3_secret_access_key, STARS);
	return replaced(text, vproxy_s3_session_token, STARS);
}

/* SQL text with the secrets in force and the values set for secret settings starred, or text. */
static char *
redacted_sql(char *text)
{
	return without_secret_values(without_secrets(text));
}

/* A message of the log: the parts that may quote a secret or a statement carrying one. */
typedef struct LoggedParts
{
	char	   *message;
	char	   *detail;
	char	   *detail_log;
	char	   *hint;
	char	   *context;
	char	   *internalquery;
	char	   *statement;		/* debug_query_string as the log may show it */
} LoggedParts;

/*
 * What the log may show of edata and of the statement (log_statement and
 * log_min_duration_statement quote it in the message too).  Whether any
 * part of the message changed.
 */
static bool
redacted_parts(ErrorData *edata, LoggedParts *parts)
{
	parts->statement = redacted_sql(unconstify(char *, debug_query_string));
	parts->message = edata->message;
	parts->detail = edata->detail;
	parts->detail_log = edata->detail_log;
	if (parts->statement != debug_query_string)
	{
		parts->message = replaced(parts->message, debug_query_string, parts->statement);
		parts->detail = replaced(parts->detail, debug_query_string, parts->statement);
		parts->detail_log = replaced(parts->detail_log, debug_query_string, parts->statement);
	}
	parts->message = without_secrets(parts->message);
	parts->detail = without_secrets(parts->detail);
	parts->detail_log = without_secrets(parts->detail_log);
	parts->hint = without_secrets(edata->hint);
	parts->context = redacted_sql(edata->context);
	parts->internalquery = redacted_sql(edata->internalquery);
	return parts->message != edata->message || parts->detail != edata->detail ||
		parts->detail_log != edata->detail_log || parts->hint != edata->hint ||
		parts->context != edata->context || parts->internalquery != edata->internalquery;
}

/* Whether the log shows the statement of a message of this level (elog.c's is_log_level_output). */
static bool
statement_logged(int elevel)
{
	if (elevel == LOG || elevel == LOG_SERVER_ONLY)
		return log_min_error_statement == LOG || log_min_error_statement <= ERROR;
	if (elevel == WARNING_CLIENT_ONLY)
		return false;
	if (log_min_error_statement == LOG)
		return elevel >= FATAL;
	return elevel >= log_min_error_statement;
}

/* the starred copy being logged: passed through as it is */
static bool logging_copy = false;

/*
 * Log a starred copy of edata (which is kept from the log), with the starred
 * statement in place of the real one if the original would have shown it.
 */
static void
log_starred_copy(ErrorData *edata, const LoggedParts *parts, bool show_statement)
{
	const char *save_statement = debug_query_string;
	int			save_min_error_statement = log_min_error_statement;

	edata->output_to_server = false;
	logging_copy = true;
	/* no cancel may strike in the middle of reporting another message */
	HOLD_INTERRUPTS();
	PG_TRY();
	{
		if (show_statement)
		{
			debug_query_string = parts->statement;
			log_min_error_statement = LOG;
		}
		ereport(LOG_SERVER_ONLY,
				(errcode(edata->sqlerrcode),
				 edata->elevel == LOG ? errmsg_internal("%s", parts->message ? parts->message : "") :
				 errmsg_internal("%s: %s", error_severity(edata->elevel),
								 parts->message ? parts->message : ""),
				 parts->detail_log ? errdetail_internal("%s", parts->detail_log) :
				 parts->detail ? errdetail_internal("%s", parts->detail) : 0,
				 parts->hint ? errhint("%s", parts->hint) : 0,
				 parts->context ? errcontext("%s", parts->context) : 0,
				 errhidestmt(!show_statement)));
	}
	PG_FINALLY();
	{
		debug_query_string = save_statement;
		log_min_error_statement = save_min_error_statement;
		logging_copy = false;
	}
	PG_END_TRY();
	RESUME_INTERRUPTS();
}

/*
 * emit_log_hook: keep the secrets (and the values of statements setting
 * them) out of the log.  A message for the log only is starred in place.
 * One also sent to the client, or whose statement line must be starred, is
 * kept from the log and a starred copy logged in its place.
 */
static void
redact_secret(ErrorData *edata)
{
	LoggedParts parts;
	MemoryContext old;
	bool		changed;
	bool		show_statement;

	if (logging_copy || !edata->output_to_server)
	{
		if (prev_emit_log_hook)
			prev_emit_log_hook(edata);
		return;
	}
	old = MemoryContextSwitchTo(ErrorContext);
	changed = redacted_parts(edata, &parts);
	MemoryContextSwitchTo(old);
	show_statement = parts.statement != debug_query_string && !edata->hide_stmt &&
		statement_logged(edata->elevel);
	if (!show_statement && (!changed || !edata->output_to_client))
	{
		edata->message = parts.message;
		edata->detail = parts.detail;
		edata->detail_log = parts.detail_log;
		edata->hint = parts.hint;
		edata->context = parts.context;
		edata->internalquery = parts.internalquery;
		if (prev_emit_log_hook)
			prev_emit_log_hook(edata);
		return;
	}
	log_starred_copy(edata, &parts, show_statement);
}

/*
 * ProcessUtility hook: pg_stat_activity shows the statement of a role that
 * may set a secret as the log does.  Members of pg_read_all_stats (the
 * monitor role) read every session's statement there, and a session that
 * ran ALTER SYSTEM SET of a secret setting shows it until its next
 * statement: starred from here on (PostgreSQL showed it as written while
 * it was parsed).  Other roles' statements stay as written.
 */
static void
redact_activity(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
				ProcessUtilityContext context, ParamListInfo params,
				QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (context == PROCESS_UTILITY_TOPLEVEL && queryString != NULL)
	{
		char	   *starred = redacted_sql(unconstify(char *, queryString));

		/* anybody else would see its own guesses of the secret starred there */
		if (starred != queryString && may_set_secrets())
			pgstat_report_activity(STATE_RUNNING, starred);
	}
	if (prev_process_utility)
		prev_process_utility(pstmt, queryString, readOnlyTree, context, params,
							 queryEnv, dest, qc);
	else
		standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params,
								queryEnv, dest, qc);
}

/*
 * Install the emit_log_hook that blanks the secret in every log line, and
 * the ProcessUtility hook that does it in pg_stat_activity.
 */
void
install_secret_redaction(void)
{
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = redact_secret;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = redact_activity;
}
