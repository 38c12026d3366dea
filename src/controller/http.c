/* nitrod's HTTP server on a Unix socket (see http.h). */
#include "controller/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "controller/api.h"
#include "controller/audit.h"
#include "controller/ctl.h"
#include "lib/util.h"

struct req {
	uid_t r_uid;
	bool r_answered;
	bool r_refused;	    /* a uid that may not use nitrod: answered 403 after its body */
	size_t r_discarded; /* body bytes of a refused request, dropped unread */
	char *r_body;
	size_t r_len, r_cap;
	char r_method[16];
	char r_url[256];
};

static struct MHD_Daemon *daemon_;
static int listen_fd = -1;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* The durability of a call's audit line (docs/security.md, "Audit log"): a call that may
 * change state (any method but GET and HEAD) is answered only once its line is durable;
 * a read's line, and the line of a request that ends unanswered (timed out, abandoned),
 * is written before the answer and made durable by the group-commit flusher within
 * AUDIT_BACKGROUND_MS. */
static int audit_call(const struct req *r, int status, const char *detail, bool answered)
{
	bool read = !strcmp(r->r_method, "GET") || !strcmp(r->r_method, "HEAD");
	enum audit_sync sync = read || !answered ? AUDIT_SYNC_BACKGROUND : AUDIT_SYNC_EACH;
	if (g_ctl.c_audit && audit_append_sync(g_ctl.c_audit, sync, r->r_uid, r->r_method, r->r_url,
					       status, detail) < 0) {
		warnmsg("audit log: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The peer's uid is read once per connection (SO_PEERCRED holds the credentials of the
 * connect() and never changes) and kept as the connection's socket context: uid + 1, so
 * that 0 means "unknown". */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	*socket_context = NULL;
	if (ci && getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0 &&
	    cred.uid != (uid_t)-1)
		*socket_context = (void *)((uintptr_t)cred.uid + 1);
}

static uid_t conn_uid(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	uintptr_t v = ci ? (uintptr_t)ci->socket_context : 0;
	return v ? (uid_t)(v - 1) : (uid_t)-1;
}

static bool uid_allowed(uid_t uid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	for (unsigned i = 0; i < g_ctl.c_nallow; i++)
		if (g_ctl.c_allow[i] == uid)
			return true;
	return false;
}

static enum MHD_Result send_body(struct MHD_Connection *conn, int status, const char *type,
				 char *body, size_t len, const char *allow)
{
	struct MHD_Response *resp =
	    MHD_create_response_from_buffer_with_free_callback(len, body, free);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", type);
	if (allow)
		MHD_add_response_header(resp, "Allow", allow);
	enum MHD_Result r = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return r;
}

/* An error answer, not audited. msg is ours (no quotes or backslashes). */
static enum MHD_Result send_json_error(struct MHD_Connection *conn, int status, const char *msg)
{
	size_t n = strlen(msg) + 32;
	char *body = malloc(n);
	if (!body)
		return MHD_NO;
	snprintf(body, n, "{\"error\":\"%s\"}", msg);
	return send_body(conn, status, "application/json", body, strlen(body), NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *conn, struct req *r, int status,
				  const char *msg)
{
	r->r_answered = true;
	audit_call(r, status, msg, true);
	return send_json_error(conn, status, msg);
}

/* A uid that may not use nitrod: audited at most once a second per uid, with the count of
 * refusals not logged in between (audit_refusal_admit), so a refused caller cannot grow
 * the log at will. */
static enum MHD_Result refuse_uid(struct MHD_Connection *conn, struct req *r)
{
	static const char msg[] = "this uid may not use nitrod";
	unsigned long suppressed = 0;
	r->r_answered = true;
	if (g_ctl.c_audit && audit_refusal_admit(g_ctl.c_audit, r->r_uid, &suppressed)) {
		char detail[160];
		if (suppressed)
			snprintf(detail, sizeof(detail), "%s (%lu more refusals not logged)", msg,
				 suppressed);
		else
			snprintf(detail, sizeof(detail), "%s", msg);
		audit_call(r, 403, detail, true);
	}
	return send_json_error(conn, 403, msg);
}

/* The audit log has no room for this call's line: refused before anything is done. */
static enum MHD_Result refuse_unauditable(struct MHD_Connection *conn, struct req *r)
{
	char msg[200];
	snprintf(msg, sizeof(msg),
		 "the audit log cannot be written (%s): the call was refused, nothing was done",
		 strerror(errno));
	return send_error(conn, r, 503, msg);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **con_cls)
{
	(void)cls;
	(void)version;
	struct req *r = *con_cls;
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		snprintf(r->r_method, sizeof(r->r_method), "%s", method);
		snprintf(r->r_url, sizeof(r->r_url), "%s", url);
		r->r_uid = conn_uid(conn);
		/* Refused: its body is dropped unread (up to the body limit) and then answered,
		 * so the client can read its 403 (an answer while it still sends breaks its
		 * pipe now that most refusals are answered at once, without an audit line). */
		if (r->r_uid == (uid_t)-1 || !uid_allowed(r->r_uid)) {
			r->r_refused = true;
			return MHD_YES;
		}
		const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							      MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t n;
		if (len && (!parse_u64(len, 0, UINT64_MAX, &n) || n > API_MAX_BODY))
			return send_error(conn, r, 413,
					  "request body too large (at most 65536 bytes)");
		return MHD_YES;
	}
	if (r->r_answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (r->r_refused) {
			r->r_discarded += n;
			return r->r_discarded > API_MAX_BODY ? refuse_uid(conn, r) : MHD_YES;
		}
		if (r->r_len + n > API_MAX_BODY)
			return send_error(conn, r, 413,
					  "request body too large (at most 65536 bytes)");
		if (r->r_len + n > r->r_cap) {
			size_t cap = r->r_cap ? r->r_cap * 2 : 1024;
			while (cap < r->r_len + n)
				cap *= 2;
			char *b = realloc(r->r_body, cap);
			if (!b)
				return MHD_NO;
			r->r_body = b;
			r->r_cap = cap;
		}
		memcpy(r->r_body + r->r_len, upload_data, n);
		r->r_len += n;
		return MHD_YES;
	}
	if (r->r_refused)
		return refuse_uid(conn, r);
	struct api_req rq = {
	    .ar_method = method,
	    .ar_url = url,
	    .ar_nonce = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "nonce"),
	    .ar_body = r->r_body ? r->r_body : "",
	    .ar_len = r->r_len,
	    .ar_uid = r->r_uid,
	};
	/* A call is served only when its audit line has room (audit.h, audit_reserve). */
	if (g_ctl.c_audit && audit_reserve(g_ctl.c_audit) < 0)
		return refuse_unauditable(conn, r);
	struct api_resp rs;
	api_handle(&rq, &rs);
	r->r_answered = true;
	if (audit_call(r, rs.rs_status, rs.rs_detail, true) < 0) {
		/* Not answered as done without its audit line (a read fails too). */
		char msg[200];
		snprintf(msg, sizeof(msg), "the audit log could not record this call (%s)%s",
			 strerror(errno),
			 strcmp(r->r_method, "GET") && strcmp(r->r_method, "HEAD")
			     ? ": its effect may stand"
			     : "");
		free(rs.rs_body);
		return send_json_error(conn, 503, msg);
	}
	return send_body(conn, rs.rs_status, rs.rs_type, rs.rs_body, rs.rs_len, rs.rs_allow);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	struct req *r = *con_cls;
	if (!r)
		return;
	if (!r->r_answered)
		audit_call(r, toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499,
			   toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
			       ? "client timed out"
			       : "connection closed before the request was complete",
			   false);
	free(r->r_body);
	free(r);
	*con_cls = NULL;
}

int http_start(const char *path, unsigned timeout_s, unsigned threads, char *err, size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		RETURN_ERR(-1, "socket %s: path longer than %zu bytes", path,
			   sizeof(sa.sun_path) - 1);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	snprintf(sock_path, sizeof(sock_path), "%s", path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (listen_fd < 0)
		RETURN_ERR(-1, "socket: %s", strerror(errno));
	/* A socket file nobody answers on is stale; one that answers is another nitrod's. */
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		close(probe);
		RETURN_ERR(-1, "socket %s: another nitrod is serving it", path);
	}
	if (probe >= 0)
		close(probe);
	unlink(path);
	mode_t old = umask(0177);
	int r = bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (r < 0)
		RETURN_ERR(-1, "socket %s: bind: %s", path, strerror(errno));
	if (chmod(path, g_ctl.c_nallow ? 0666 : 0600) < 0 || listen(listen_fd, 256) < 0)
		RETURN_ERR(-1, "socket %s: %s", path, strerror(errno));
	/* One epoll thread by default: every route runs under g_ctl.c_lock anyway, so more
	 * threads only contend for it (and for the two cores a small host has). The pool
	 * holds headers and the read buffer only: bodies are copied out as they arrive, and
	 * MHD clears the pool for each request of a keep-alive connection. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;
	daemon_ = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, listen_fd,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
	    NULL, MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_THREAD_POOL_SIZE,
	    threads > 1 ? threads : 0u, MHD_OPTION_CONNECTION_LIMIT, 512u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384, MHD_OPTION_END);
	if (!daemon_) {
		unlink(path);
		RETURN_ERR(-1, "socket %s: libmicrohttpd did not start", path);
	}
	return 0;
}

void http_stop(void)
{
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	unlink(sock_path);
}
