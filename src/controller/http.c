/* nitrod's HTTP server on a Unix socket (see http.h). */
#include "controller/http.h"

#include <errno.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "controller/api.h"
#include "controller/audit.h"
#include "controller/connpool.h"
#include "controller/ctl.h"
#include "controller/spec.h"
#include "lib/util.h"

/* MHD's own connection limit is ours plus room for refused connections it has accepted
 * but not yet closed (it accepts at most 10 per turn of its loop). */
#define MHD_HEADROOM 64u

struct conn;

struct req {
	uid_t r_uid;
	bool r_answered;
	bool r_refused;	    /* refused at accept (403 sent): its request is read and dropped */
	size_t r_discarded; /* body bytes of a refused request, dropped unread */
	struct conn *r_conn;
	char *r_body;
	size_t r_len, r_cap;
	char r_method[16];
	char r_url[SPEC_MAX_ROUTE + 1]; /* canonical; "" when too long (414) */
};

static struct MHD_Daemon *daemon_;
static int listen_fd = -1;
static char sock_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
static struct http_opts opts;

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

/* The write-ahead line of a call that may change state (docs/security.md, "The state
 * folder's disk"): who, which method and canonical route, and what it asks for (the
 * SHA-256 and length of its body: the body itself may hold what is not for the log),
 * durable before the call does anything. Its outcome line follows. 0, or -1 with errno. */
static int audit_intent(const struct req *r)
{
	unsigned char d[32];
	unsigned dl = 0;
	if (!EVP_Digest(r->r_body ? r->r_body : "", r->r_len, d, &dl, EVP_sha256(), NULL)) {
		errno = ENOMEM;
		return -1;
	}
	char detail[128];
	int n = snprintf(detail, sizeof(detail), "intent,body=%zu,sha256=", r->r_len);
	for (unsigned i = 0; i < dl && n + 3 < (int)sizeof(detail); i++)
		n += snprintf(detail + n, sizeof(detail) - (size_t)n, "%02x", d[i]);
	if (audit_append_sync(g_ctl.c_audit, AUDIT_SYNC_EACH, r->r_uid, r->r_method, r->r_url,
			      AUDIT_INTENT_STATUS, detail) < 0) {
		int e = errno;
		warnmsg("audit log: %s", strerror(e));
		errno = e; /* for the 503's message */
		return -1;
	}
	return 0;
}

/* A line about a connection rather than a request (refusals, deadlines): changes nothing,
 * so not waited for. */
static void audit_conn(uid_t uid, const char *method, int status, const char *detail)
{
	if (g_ctl.c_audit && audit_append_sync(g_ctl.c_audit, AUDIT_SYNC_BACKGROUND, uid, method,
					       NULL, status, detail) < 0)
		warnmsg("audit log: %s", strerror(errno));
}

static bool uid_allowed(uid_t uid)
{
	if (uid == 0 || uid == geteuid())
		return true;
	for (unsigned i = 0; i < g_ctl.c_nallow; i++)
		if (g_ctl.c_allow[i] == uid)
			return true;
	for (unsigned i = 0; i < g_ctl.c_nadmin; i++)
		if (g_ctl.c_admin[i] == uid)
			return true;
	return false;
}

/* --- connections: admission at accept, per-uid caps, the request deadline --- */

/* An admitted connection (MHD's socket context). Linked in `conns` from MHD's STARTED
 * notification to its CLOSED one, which MHD sends before it closes the fd: while linked,
 * c_fd is this connection's socket, so the reaper may shut it down. */
struct conn {
	struct conn *c_prev, *c_next;
	struct cp_link c_link; /* in `pool` (not privileged, not evicted) */
	int c_fd;
	uid_t c_uid;
	bool c_privileged;   /* root or nitrod's own uid: no per-uid cap, reserved slots */
	bool c_refused;	     /* a uid not allowed, answered 403 at accept: read and dropped */
	bool c_reading;	     /* a request is being read: the deadline runs */
	bool c_deadline_hit; /* the reaper closed it */
	bool c_evicted;	     /* closed to make room for a uid below its fair share */
	bool c_req_audited;  /* the request it cut was audited by on_done */
	int64_t c_since;     /* CLOCK_MONOTONIC ms: start, or the previous answer */
};

/* The socket context of a refused connection: MHD still reads what the client sent before
 * it sees the shutdown; nothing of it is served. */
static struct conn refused_conn;

static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reaper_cv;
static struct conn *conns;
static unsigned nconns;	      /* linked and not evicted */
static struct connpool *pool; /* the connections not privileged, by uid (connpool.h) */
static pthread_t reaper;
static bool reaper_on, reaper_stop;

static void unlink_conn(struct conn *c)
{
	if (c->c_prev)
		c->c_prev->c_next = c->c_next;
	else
		conns = c->c_next;
	if (c->c_next)
		c->c_next->c_prev = c->c_prev;
	if (!c->c_evicted) {
		nconns--;
		if (!c->c_privileged)
			cp_del(pool, &c->c_link);
	}
}

/* Of key's connections, the one reading a request for the longest (never one whose request
 * is being served), or NULL: at most ho_max_per_uid to look at. */
static struct conn *oldest_reading(uint64_t key)
{
	struct conn *best = NULL;
	for (struct cp_link *l = cp_oldest(pool, key); l; l = l->cl_next) {
		struct conn *c = (struct conn *)((char *)l - offsetof(struct conn, c_link));
		if (c->c_reading && !c->c_deadline_hit && (!best || c->c_since < best->c_since))
			best = c;
	}
	return best;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 403:
		return "Forbidden";
	case 429:
		return "Too Many Requests";
	default:
		return "Service Unavailable";
	}
}

/* Refusals at accept (method ACCEPT, "refused") and evictions (method EVICT, "evicted") are
 * audited at most once a second per uid, with the count of those not logged in between
 * (audit_refusal_admit, one count for both): a refused caller cannot grow the log at will. */
static void audit_refusal(uid_t uid, const char *method, int status, const char *msg,
			  const char *what)
{
	unsigned long suppressed = 0;
	if (!g_ctl.c_audit || !audit_refusal_admit(g_ctl.c_audit, uid, &suppressed))
		return;
	char d[400];
	if (suppressed)
		sfmt(d, sizeof(d), "%s: %s (%lu more refusals not logged)", msg, what, suppressed);
	else
		sfmt(d, sizeof(d), "%s: %s", msg, what);
	audit_conn(uid, method, status, d);
}

/* Answers a refused connection with a short HTTP error, before anything the client sent is
 * read, and shuts it down: how = SHUT_RDWR closes it now (MHD reads EOF and closes it);
 * SHUT_WR lets MHD read and drop the request the client may be sending, so that the client
 * reads the answer rather than a broken pipe (a conn with c_refused, under the caps and the
 * deadline like any other). Audited, rate-limited. */
static void send_refusal(int fd, int status, const char *msg, int how)
{
	char buf[512];
	int body = (int)strlen(msg) + 12;
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
			 "%d\r\nConnection: close\r\n\r\n{\"error\":\"%s\"}",
			 status, reason_phrase(status), body, msg);
	if (n > 0 && (size_t)n < sizeof(buf))
		(void)!send(fd, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	shutdown(fd, how);
}

static void refuse(int fd, uid_t uid, int status, const char *msg, int how)
{
	send_refusal(fd, status, msg, how);
	audit_refusal(uid, "ACCEPT", status, msg, "refused");
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	(void)cls;
	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct conn *c = *socket_context;
		*socket_context = NULL;
		if (!c || c == &refused_conn)
			return;
		pthread_mutex_lock(&conns_lock);
		unlink_conn(c);
		bool cut = c->c_deadline_hit && !c->c_req_audited && !c->c_refused;
		pthread_mutex_unlock(&conns_lock);
		if (cut) {
			char d[128];
			sfmt(d, sizeof(d),
			     "no complete request within %u s (request deadline): closed",
			     opts.ho_deadline_s);
			audit_conn(c->c_uid, NULL, 408, d);
		}
		free(c);
		return;
	}
	if (toe != MHD_CONNECTION_NOTIFY_STARTED)
		return;
	*socket_context = NULL;
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!ci)
		return; /* cannot happen; on_request refuses a connection without a context */
	int fd = ci->connect_fd;
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cred.uid == (uid_t)-1) {
		*socket_context = &refused_conn;
		refuse(fd, (uid_t)-1, 403, "the caller's uid is unknown", SHUT_RDWR);
		return;
	}
	uid_t uid = cred.uid;
	bool allowed = uid_allowed(uid);
	bool priv = uid == 0 || uid == geteuid();
	/* Uids not allowed share one uid's worth of kept connections: a user with a subordinate
	 * uid range has thousands of uids, which together would hold every slot but root's. */
	uint64_t key = allowed ? (uint64_t)uid : CP_KEY_NOT_ALLOWED;
	unsigned slots = opts.ho_max_conns - HTTP_RESERVED;
	char msg[200] = "", evmsg[200] = "";
	int status = 0;
	uid_t evicted_uid = 0;
	struct conn *c = calloc(1, sizeof(*c));
	pthread_mutex_lock(&conns_lock);
	unsigned mine = priv ? 0 : cp_count(pool, key);
	uint64_t vkey;
	unsigned fair;
	struct conn *v;
	if (!c) {
		status = 503;
		sfmt(msg, sizeof(msg), "out of memory");
	} else if (nconns >= opts.ho_max_conns) {
		status = 503;
		sfmt(msg, sizeof(msg), "nitrod has %u connections open, its limit", nconns);
	} else if (!priv && nconns >= slots && allowed && mine < opts.ho_max_per_uid &&
		   cp_evict_for(pool, key, slots, &vkey, &fair) && (v = oldest_reading(vkey))) {
		/* The slots that are not root's are full and this uid holds less than its fair
		 * share: the uid holding the most gives up the connection that has been reading
		 * a request the longest (never one being served). */
		char who[48];
		if (vkey == CP_KEY_NOT_ALLOWED)
			sfmt(who, sizeof(who), "uids not allowed");
		else
			sfmt(who, sizeof(who), "uid %u", (unsigned)v->c_uid);
		sfmt(evmsg, sizeof(evmsg),
		     "closed (%s held %u connections, the most) for uid %u (%u held, its fair "
		     "share %u of %u slots among %u uids)",
		     who, cp_count(pool, vkey), (unsigned)uid, mine, fair, slots,
		     cp_keys(pool) + !mine);
		send_refusal(v->c_fd, 503, evmsg, SHUT_RDWR);
		evicted_uid = v->c_uid;
		cp_del(pool, &v->c_link);
		v->c_evicted = true;
		nconns--;
	} else if (!priv && nconns >= slots) {
		status = 503;
		sfmt(msg, sizeof(msg),
		     "nitrod has %u connections open (the last %u of %u are kept for root)", nconns,
		     HTTP_RESERVED, opts.ho_max_conns);
	} else if (!allowed && mine >= opts.ho_max_per_uid) {
		status = 403; /* closed at once (the 403 is sent, maybe not read) */
	} else if (!priv && mine >= opts.ho_max_per_uid) {
		status = 429;
		sfmt(msg, sizeof(msg), "uid %u has %u connections open (at most %u per uid)",
		     (unsigned)uid, mine, opts.ho_max_per_uid);
	}
	if (!status) {
		/* Admitted; a uid not allowed only to have its request read and dropped. */
		*c = (struct conn){.c_next = conns,
				   .c_fd = fd,
				   .c_uid = uid,
				   .c_privileged = priv,
				   .c_refused = !allowed,
				   .c_reading = true,
				   .c_since = now_ms()};
		if (!priv)
			(void)cp_add(pool, key, &c->c_link); /* room: nconns < ho_max_conns */
		if (conns)
			conns->c_prev = c;
		conns = c;
		nconns++;
		*socket_context = c;
	}
	pthread_mutex_unlock(&conns_lock);
	if (evmsg[0])
		audit_refusal(evicted_uid, "EVICT", 503, evmsg, "evicted");
	if (status) {
		free(c);
		*socket_context = &refused_conn;
		/* A uid not allowed hears that first, whatever the limits. */
		if (!allowed)
			refuse(fd, uid, 403, "this uid may not use nitrod", SHUT_RDWR);
		else
			refuse(fd, uid, status, msg, SHUT_RDWR);
	} else if (!allowed) {
		refuse(fd, uid, 403, "this uid may not use nitrod", SHUT_WR);
	}
}

static struct conn *conn_of(struct MHD_Connection *conn)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	return ci ? ci->socket_context : NULL;
}

/* The request on c is complete: true when it is to be served (its answer is under way, the
 * deadline stops, it may no longer be evicted); false when it was cut just before (deadline,
 * eviction): then nothing of it is done. */
static bool conn_answered(struct conn *c)
{
	pthread_mutex_lock(&conns_lock);
	bool serve = !c->c_deadline_hit && !c->c_evicted;
	if (serve)
		c->c_reading = false;
	pthread_mutex_unlock(&conns_lock);
	return serve;
}

/* Closes connections past the request deadline (shutdown: MHD sees EOF and closes them). */
static void *reaper_main(void *arg)
{
	(void)arg;
	int64_t deadline = (int64_t)opts.ho_deadline_s * 1000;
	pthread_mutex_lock(&conns_lock);
	while (!reaper_stop) {
		int64_t now = now_ms();
		for (struct conn *c = conns; c; c = c->c_next)
			if (c->c_reading && !c->c_deadline_hit && !c->c_evicted &&
			    now - c->c_since >= deadline) {
				c->c_deadline_hit = true;
				shutdown(c->c_fd, SHUT_RDWR);
			}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		if (!reaper_stop)
			pthread_cond_timedwait(&reaper_cv, &conns_lock, &ts);
	}
	pthread_mutex_unlock(&conns_lock);
	return NULL;
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
	/* The deadline keeps running: a body may still be on its way. */
	r->r_answered = true;
	audit_call(r, status, msg, true);
	return send_json_error(conn, status, msg);
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
		struct conn *c = conn_of(conn);
		if (!c || c == &refused_conn)
			return MHD_NO; /* refused at accept: nothing it sent is served */
		r = calloc(1, sizeof(*r));
		if (!r)
			return MHD_NO;
		*con_cls = r;
		r->r_conn = c;
		r->r_uid = c->c_uid;
		snprintf(r->r_method, sizeof(r->r_method), "%s", method);
		if (c->c_refused) {
			/* Answered 403 at accept (and audited): what it sends is read and dropped,
			 * up to the body limit, so that it reads that answer, not a broken pipe. */
			r->r_refused = r->r_answered = true;
			return MHD_YES;
		}
		size_t n = spec_route_canon(url, r->r_url);
		if (n > SPEC_MAX_ROUTE) {
			char msg[96];
			sfmt(msg, sizeof(msg), "route too long (%zu bytes, at most %d)", n,
			     SPEC_MAX_ROUTE);
			return send_error(conn, r, 414, msg);
		}
		if (!uid_allowed(r->r_uid))
			return send_error(conn, r, 403, "this uid may not use nitrod");
		const char *len = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
							      MHD_HTTP_HEADER_CONTENT_LENGTH);
		uint64_t n64;
		if (len && (!parse_u64(len, 0, UINT64_MAX, &n64) || n64 > API_MAX_BODY))
			return send_error(conn, r, 413,
					  "request body too large (at most 65536 bytes)");
		return MHD_YES;
	}
	if (r->r_refused) {
		r->r_discarded += *upload_data_size;
		bool more = *upload_data_size && r->r_discarded <= API_MAX_BODY;
		*upload_data_size = 0;
		return more ? MHD_YES : MHD_NO; /* then closed */
	}
	if (r->r_answered) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
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
	struct api_req rq = {
	    .ar_method = method,
	    .ar_url = r->r_url,
	    .ar_nonce = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "nonce"),
	    .ar_key_type = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "key_type"),
	    .ar_body = r->r_body ? r->r_body : "",
	    .ar_len = r->r_len,
	    .ar_uid = r->r_uid,
	};
	if (!conn_answered(r->r_conn))
		return MHD_NO; /* closed; on_done audits it */
	/* A call is served only when its audit line has room (audit.h, audit_reserve). */
	if (g_ctl.c_audit && audit_reserve(g_ctl.c_audit) < 0)
		return refuse_unauditable(conn, r);
	/* A call that may change state first makes its intent durable: if it cannot, it is
	 * refused and nothing is done. */
	bool read = !strcmp(r->r_method, "GET") || !strcmp(r->r_method, "HEAD");
	if (g_ctl.c_audit && !read && audit_intent(r) < 0)
		return refuse_unauditable(conn, r);
	struct api_resp rs;
	api_handle(&rq, &rs);
	r->r_answered = true;
	if (audit_call(r, rs.rs_status, rs.rs_detail, true) < 0) {
		/* Not answered as done without its audit line (a read fails too). */
		char msg[240];
		snprintf(msg, sizeof(msg), "the audit log could not record this call (%s)%s",
			 strerror(errno),
			 read ? ""
			      : ": its effect may stand (the line of its intent was recorded "
				"before it acted)");
		free(rs.rs_body);
		return send_json_error(conn, 503, msg);
	}
	return send_body(conn, rs.rs_status, rs.rs_type, rs.rs_body, rs.rs_len, rs.rs_allow);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	struct req *r = *con_cls;
	struct conn *c = conn_of(conn);
	bool cut = false, evicted = false;
	if (c && c != &refused_conn) {
		/* The next request on this connection has the deadline from now. */
		pthread_mutex_lock(&conns_lock);
		cut = c->c_deadline_hit;
		evicted = c->c_evicted && !cut;
		if (cut && r && !r->r_answered)
			c->c_req_audited = true;
		c->c_reading = true;
		c->c_since = now_ms();
		pthread_mutex_unlock(&conns_lock);
	}
	if (!r)
		return;
	if (!r->r_answered) {
		char d[128];
		if (cut)
			sfmt(d, sizeof(d),
			     "request not complete within %u s (request deadline): closed",
			     opts.ho_deadline_s);
		audit_call(r,
			   cut || toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED ? 408
			   : evicted						? 503
										: 499,
			   cut ? d
			   : evicted
			       ? "request not complete when its connection was evicted for a uid "
				 "below its fair share: closed"
			   : toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED
			       ? "client timed out"
			       : "connection closed before the request was complete",
			   false);
	}
	free(r->r_body);
	free(r);
	*con_cls = NULL;
}

int http_start(const char *path, const struct http_opts *o, char *err, size_t errlen)
{
	opts = *o;
	if (opts.ho_max_conns < HTTP_MIN_CONNS)
		opts.ho_max_conns = HTTP_MIN_CONNS;
	if (!opts.ho_max_per_uid)
		opts.ho_max_per_uid = 1;
	if (!opts.ho_deadline_s)
		opts.ho_deadline_s = HTTP_DEADLINE_S;
	pool = cp_new(opts.ho_max_conns);
	if (!pool)
		RETURN_ERR(-1, "socket %s: out of memory", path);
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
	if (chmod(path, g_ctl.c_nallow || g_ctl.c_nadmin ? 0666 : 0600) < 0 ||
	    listen(listen_fd, 256) < 0)
		RETURN_ERR(-1, "socket %s: %s", path, strerror(errno));
	/* One epoll thread by default: every route runs under g_ctl.c_lock anyway, so more
	 * threads only contend for it (and for the two cores a small host has). The pool
	 * holds headers and the read buffer only: bodies are copied out as they arrive, and
	 * MHD clears the pool for each request of a keep-alive connection. */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO;
	daemon_ = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, NULL, MHD_OPTION_LISTEN_SOCKET, listen_fd,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
	    NULL, MHD_OPTION_CONNECTION_TIMEOUT, opts.ho_timeout_s, MHD_OPTION_THREAD_POOL_SIZE,
	    opts.ho_threads > 1 ? opts.ho_threads : 0u, MHD_OPTION_CONNECTION_LIMIT,
	    opts.ho_max_conns + MHD_HEADROOM, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
	    MHD_OPTION_END);
	if (!daemon_) {
		unlink(path);
		RETURN_ERR(-1, "socket %s: libmicrohttpd did not start", path);
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&reaper_cv, &ca);
	pthread_condattr_destroy(&ca);
	reaper_stop = false;
	int rc = pthread_create(&reaper, NULL, reaper_main, NULL);
	if (rc) {
		http_stop();
		RETURN_ERR(-1, "socket %s: reaper thread: %s", path, strerror(rc));
	}
	reaper_on = true;
	return 0;
}

void http_stop(void)
{
	if (reaper_on) {
		pthread_mutex_lock(&conns_lock);
		reaper_stop = true;
		pthread_cond_signal(&reaper_cv);
		pthread_mutex_unlock(&conns_lock);
		pthread_join(reaper, NULL);
		reaper_on = false;
	}
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
	cp_free(pool);
	pool = NULL;
	if (listen_fd >= 0)
		close(listen_fd);
	listen_fd = -1;
	unlink(sock_path);
}
