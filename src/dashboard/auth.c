/*
 * auth.c
 *		--token-file: every request but the login page and its stylesheet
 *		needs "Authorization: Bearer TOKEN" (Prometheus, curl) or the
 *		session cookie a browser gets from the login form.  The cookie
 *		holds HMAC-SHA256(token, "vproxy-dashboard session"), not the token:
 *		it opens the dashboard and nothing else that trusts the token.  It
 *		is HttpOnly (no script reads it) and SameSite=Strict (no other site
 *		sends it).  Every comparison takes the same time whatever matches.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "dashboard/dashboard.h"

#define TOKEN_MAX 4096
#define COOKIE_NAME "vproxy_dashboard_session"
/* a browser stays logged in for 30 days */
#define COOKIE_MAX_AGE "2592000"

static char token[TOKEN_MAX + 2];
static size_t token_len;
static char session[65];		/* hex HMAC of the token: the cookie's value */

/*
 * Read the token: the file's content without trailing blanks and line
 * ends.  0, or an exit status after one log line.
 */
int
auth_load(const char *token_file)
{
	FILE	   *in = fopen(token_file, "r");
	unsigned char mac[32];
	unsigned int mac_len = sizeof(mac);
	static const char purpose[] = "vproxy-dashboard session";
	char		quoted[600];

	if (in == NULL)
	{
		logfmt_event("error", "token_file", "file=%s error=%s",
				 logfmt_quote(token_file, quoted, sizeof(quoted)), strerror(errno));
		return EX_NOINPUT;
	}
	token_len = fread(token, 1, TOKEN_MAX + 1, in);
	fclose(in);
	while (token_len > 0 && (token[token_len - 1] == '\n' || token[token_len - 1] == '\r' ||
							 token[token_len - 1] == ' ' || token[token_len - 1] == '\t'))
		token_len--;
	token[token_len] = '\0';
	if (token_len == 0 || token_len > TOKEN_MAX || strlen(token) != token_len)
	{
		logfmt_event("error", "token_file", "file=%s error=\"the token must be 1 to 4096 bytes of text\"",
				 logfmt_quote(token_file, quoted, sizeof(quoted)));
		return EX_DATAERR;
	}
	HMAC(EVP_sha256(), token, (int) token_len, (const unsigned char *) purpose, strlen(purpose),
		 mac, &mac_len);
	for (unsigned int i = 0; i < mac_len; i++)
		sprintf(session + 2 * i, "%02x", mac[i]);
	return 0;
}

/* Whether a token is required. */
bool
auth_enabled(void)
{
	return token_len > 0;
}

/* Whether given (len bytes) equals expected (expected_len), in constant time. */
static bool
same_secret(const char *given, size_t len, const char *expected, size_t expected_len)
{
	unsigned char given_mac[32];
	unsigned char expected_mac[32];
	unsigned int mac_len = sizeof(given_mac);
	static const unsigned char salt[] = "compare";

	/* compare digests: the time depends on neither content nor length */
	HMAC(EVP_sha256(), salt, sizeof(salt), (const unsigned char *) given, len, given_mac, &mac_len);
	HMAC(EVP_sha256(), salt, sizeof(salt), (const unsigned char *) expected, expected_len,
		 expected_mac, &mac_len);
	return CRYPTO_memcmp(given_mac, expected_mac, sizeof(given_mac)) == 0;
}

/* Whether the request carries the bearer token or the session cookie. */
bool
auth_check(struct MHD_Connection *connection)
{
	const char *authorization;
	const char *cookie;

	if (!auth_enabled())
		return true;
	authorization = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
												MHD_HTTP_HEADER_AUTHORIZATION);
	if (authorization != NULL && strncasecmp(authorization, "Bearer ", 7) == 0)
	{
		const char *given = authorization + 7;

		while (*given == ' ')
			given++;
		return same_secret(given, strlen(given), token, token_len);
	}
	cookie = MHD_lookup_connection_value(connection, MHD_COOKIE_KIND, COOKIE_NAME);
	return cookie != NULL && same_secret(cookie, strlen(cookie), session, strlen(session));
}

/*
 * The login form's token: when it is right, the Set-Cookie value that logs
 * the browser in (in cookie) and true.
 */
bool
auth_login(const char *given, size_t len, char *cookie, size_t cookie_size)
{
	if (!auth_enabled() || !same_secret(given, len, token, token_len))
		return false;
	snprintf(cookie, cookie_size, COOKIE_NAME "=%s; Path=/; Max-Age=" COOKIE_MAX_AGE
			 "; HttpOnly; SameSite=Strict", session);
	return true;
}

/* The Set-Cookie value that logs a browser out. */
const char *
auth_logout_cookie(void)
{
	return COOKIE_NAME "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict";
}
