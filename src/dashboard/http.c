/*
 * http.c
 *		The HTTP side: one libmicrohttpd thread (epoll on Linux) serves
 *		every connection without blocking; a request that needs a fresher
 *		snapshot is suspended, not waited for.  Every answer carries the
 *		same security headers: a Content-Security-Policy that allows only
 *		this origin's script and style (none inline), no framing, no
 *		sniffing, no referrer.  With a token, everything but the login form
 *		and the files it uses answers 401 without it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dashboard/dashboard.h"

/* the most connections at once (each /events client holds one) */
#define CONNECTION_LIMIT 1000
/* an idle keep-alive or stalled connection is closed after this */
#define CONNECTION_TIMEOUT_S 30
#define LOGIN_FIELD_MAX 4096


/* What a request keeps between the calls of the access handler. */
typedef struct Request
{
	Waiter		waiter;			/* while suspended for views */
	struct MHD_PostProcessor *post; /* POST /login */
	char		token[LOGIN_FIELD_MAX + 1];
	size_t		token_len;
	bool		token_too_long;
} Request;

/*
 * Set the content type and the security headers every answer carries.  The
 * CSP lets images and media come from the S3 storage too (its presigned
 * URLs), and everything else from this origin only.
 */
void
http_add_headers(struct MHD_Response *response, const char *content_type)
{
	char		origin[S3_ORIGIN_MAX];
	char		csp[512 + 2 * S3_ORIGIN_MAX];

	media_origin(origin, sizeof(origin));
	snprintf(csp, sizeof(csp),
			 "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'%s%s; "
			 "media-src 'self'%s%s; connect-src 'self'; form-action 'self'; "
			 "frame-ancestors 'none'; base-uri 'none'",
			 origin[0] ? " " : "", origin, origin[0] ? " " : "", origin);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_SECURITY_POLICY, csp);
	MHD_add_response_header(response, MHD_HTTP_HEADER_X_CONTENT_TYPE_OPTIONS, "nosniff");
	MHD_add_response_header(response, MHD_HTTP_HEADER_X_FRAME_OPTIONS, "DENY");
	MHD_add_response_header(response, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(response, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(response, "Cross-Origin-Resource-Policy", "same-origin");
}

/* A response holding a copy of text, headers set. */
struct MHD_Response *
http_text_response(const char *content_type, const char *text)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(strlen(text), (void *) text, MHD_RESPMEM_MUST_COPY);

	http_add_headers(response, content_type);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	return response;
}

/* Queue a text answer. */
enum MHD_Result
http_send(struct MHD_Connection *connection, unsigned int status, const char *content_type,
		  const char *text)
{
	struct MHD_Response *response = http_text_response(content_type, text);
	enum MHD_Result ret = MHD_queue_response(connection, status, response);

	MHD_destroy_response(response);
	return ret;
}

/* Queue an embedded file. */
static enum MHD_Result
send_asset(struct MHD_Connection *connection, unsigned int status, const Asset *asset)
{
	struct MHD_Response *response =
		MHD_create_response_from_buffer(asset->len, (void *) asset->data, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	http_add_headers(response, asset->content_type);
	MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
								"Bearer realm=\"vproxy-dashboard\"");
	ret = MHD_queue_response(connection, status, response);
	MHD_destroy_response(response);
	return ret;
}

/* A 303 to location, setting a cookie when given. */
static enum MHD_Result
send_redirect(struct MHD_Connection *connection, const char *location, const char *cookie)
{
	struct MHD_Response *response = http_text_response("text/plain; charset=utf-8", "");
	enum MHD_Result ret;

	MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, location);
	if (cookie != NULL)
		MHD_add_response_header(response, MHD_HTTP_HEADER_SET_COOKIE, cookie);
	ret = MHD_queue_response(connection, MHD_HTTP_SEE_OTHER, response);
	MHD_destroy_response(response);
	return ret;
}

/* 401: the login page for a browser, a line for anything else. */
static enum MHD_Result
send_unauthorized(struct MHD_Connection *connection)
{
	const char *accept = MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
													 MHD_HTTP_HEADER_ACCEPT);
	struct MHD_Response *response;
	enum MHD_Result ret;

	if (accept != NULL && strstr(accept, "text/html") != NULL)
		return send_asset(connection, MHD_HTTP_UNAUTHORIZED, assets_login_page());
	response = http_text_response("text/plain; charset=utf-8",
								  "401: this dashboard needs Authorization: Bearer TOKEN\n");
	MHD_add_response_header(response, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
							"Bearer realm=\"vproxy-dashboard\"");
	ret = MHD_queue_response(connection, MHD_HTTP_UNAUTHORIZED, response);
	MHD_destroy_response(response);
	return ret;
}

/* Collect the login form's "token" field. */
static enum MHD_Result
login_field(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
			const char *content_type, const char *transfer_encoding, const char *data,
			uint64_t off, size_t size)
{
	Request    *req = cls;

	if (strcmp(key, "token") != 0)
		return MHD_YES;
	if (req->token_len + size > LOGIN_FIELD_MAX)
	{
		req->token_too_long = true;
		return MHD_YES;
	}
	memcpy(req->token + req->token_len, data, size);
	req->token_len += size;
	req->token[req->token_len] = '\0';
	return MHD_YES;
}

/* POST /login and /logout. */
static enum MHD_Result
handle_post(struct MHD_Connection *connection, const char *url, Request *req,
			const char *upload_data, size_t *upload_data_size)
{
	char		cookie[256];

	if (strcmp(url, "/logout") == 0)
	{
		if (*upload_data_size != 0)
		{
			*upload_data_size = 0;
			return MHD_YES;
		}
		return send_redirect(connection, "/", auth_logout_cookie());
	}
	if (strcmp(url, "/login") != 0 || !auth_enabled())
		return http_send(connection, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "not found\n");
	if (req->post == NULL)
	{
		req->post = MHD_create_post_processor(connection, 4096, login_field, req);
		if (req->post == NULL)
			return http_send(connection, MHD_HTTP_BAD_REQUEST, "text/plain; charset=utf-8",
							 "the login form posts application/x-www-form-urlencoded\n");
	}
	if (*upload_data_size != 0)
	{
		MHD_post_process(req->post, upload_data, *upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!req->token_too_long && auth_login(req->token, req->token_len, cookie, sizeof(cookie)))
	{
		logfmt_event("info", "login", NULL);
		return send_redirect(connection, "/", cookie);
	}
	logfmt_event("warning", "login_refused", NULL);
	return send_redirect(connection, "/#wrong-token", NULL);
}

/* The access handler: every request comes through here (again after a resume). */
static enum MHD_Result
handle(void *cls, struct MHD_Connection *connection, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	Request    *req = *con_cls;
	const Asset *asset;

	if (req == NULL)
	{
		req = calloc(1, sizeof(Request));
		if (req == NULL)
			return MHD_NO;
		req->waiter.connection = connection;
		*con_cls = req;
		/* answer from the next call: one queued now would close the connection */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_POST) == 0)
		return handle_post(connection, url, req, upload_data, upload_data_size);
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return http_send(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain; charset=utf-8",
						 "only GET, HEAD and the login form's POST\n");
	/* what the login page itself needs is public: no data in it */
	if ((strncmp(url, "/assets/", 8) == 0 || strncmp(url, "/favicon.", 9) == 0) &&
		(asset = assets_find(url)) != NULL)
		return send_asset(connection, MHD_HTTP_OK, asset);
	if (!auth_check(connection))
		return send_unauthorized(connection);
	if (strcmp(url, "/") == 0)
		return send_asset(connection, MHD_HTTP_OK, assets_find("/"));
	if (strcmp(url, "/events") == 0)
	{
		struct MHD_Response *response =
			events_response(connection, MHD_lookup_connection_value(connection, MHD_HEADER_KIND,
																	"Last-Event-ID"));
		enum MHD_Result ret;

		if (response == NULL)
			return MHD_NO;
		ret = MHD_queue_response(connection, MHD_HTTP_OK, response);
		MHD_destroy_response(response);
		return ret;
	}
	if (strcmp(url, "/media") == 0)
		return media_serve(connection);
	if (strcmp(url, "/metrics") == 0 || strncmp(url, "/api/", 5) == 0)
		return api_handle(connection, url, &req->waiter);
	return http_send(connection, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8", "not found\n");
}

/* A request has ended: free what it kept. */
static void
request_done(void *cls, struct MHD_Connection *connection, void **con_cls,
			 enum MHD_RequestTerminationCode code)
{
	Request    *req = *con_cls;

	if (req == NULL)
		return;
	if (req->post != NULL)
		MHD_destroy_post_processor(req->post);
	free(req);
	*con_cls = NULL;
}

/* libmicrohttpd's own messages, as log lines. */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	char		message[512];
	char		quoted[600];
	size_t		len;

	vsnprintf(message, sizeof(message), fmt, ap);
	len = strlen(message);
	while (len > 0 && message[len - 1] == '\n')
		message[--len] = '\0';
	logfmt_event("warning", "http", "message=%s", logfmt_quote(message, quoted, sizeof(quoted)));
}

/* Start serving on the --listen address; NULL (logged) if it cannot be bound. */
struct MHD_Daemon *
http_start(const Options *options)
{
	unsigned int flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *daemon;
	char		quoted[200];

	if (options->listen_addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	daemon = MHD_start_daemon(flags, 0, NULL, NULL, handle, NULL,
							  MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
							  MHD_OPTION_SOCK_ADDR, &options->listen_addr,
							  MHD_OPTION_CONNECTION_LIMIT, (unsigned int) CONNECTION_LIMIT,
							  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) CONNECTION_TIMEOUT_S,
							  MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
							  MHD_OPTION_END);
	if (daemon == NULL)
	{
		logfmt_event("error", "listen_failed", "address=%s",
				 logfmt_quote(options->listen_text, quoted, sizeof(quoted)));
		return NULL;
	}
	return daemon;
}
