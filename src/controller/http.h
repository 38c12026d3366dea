/* nitrod's HTTP/1.1 server on a Unix socket (libmicrohttpd), issue 5.
 *
 * The socket is created 0600 (0666 when other uids are allowed: then SO_PEERCRED decides).
 * Every connection's peer uid is read (SO_PEERCRED) as it is accepted, before a byte of it
 * is read, and the connection is refused right there with a short HTTP answer when
 * (issue 10 item 3):
 *   - the uid already has ho_max_per_uid connections open (429; root and nitrod's own uid
 *     are not counted per uid);
 *   - ho_max_conns - HTTP_RESERVED connections are open and the uid is not root or
 *     nitrod's own (503): the last HTTP_RESERVED slots are root's, so root always gets in;
 *     root itself is refused only at ho_max_conns. Unless the uid is allowed and holds
 *     less than its fair share of those slots (connpool.h): then the uid holding the most
 *     loses its connection that has been reading a request the longest (never one being
 *     served): 503 sent to it, shut down, audited (method EVICT, rate-limited as below).
 * Those are shut down at once. A uid that may not use nitrod gets its 403 at accept too;
 * its connection then only reads and drops the request the client may be sending (so that
 * the client reads the 403, not a broken pipe), counted under the same caps and deadline,
 * and all uids not allowed together keep at most ho_max_per_uid of those (a subordinate
 * uid range has thousands of uids); past that they are shut down at once.
 * Refusals are audited (method ACCEPT) through audit_refusal_admit: at most one line per
 * uid per second and AUDIT_REFUSAL_UIDS a second in all, the next line counting those
 * not logged.
 * A request must arrive whole (head and body) within ho_deadline_s of the connection's
 * start or of the previous answer on it, however it trickles: a connection past that
 * deadline is closed and audited (408). A client silent for ho_timeout_s is dropped too
 * (MHD's idle timeout). Bodies over API_MAX_BODY get 413 (from the Content-Length before
 * reading, else as soon as the limit is passed); a route whose canonical form is longer
 * than SPEC_MAX_ROUTE gets 414. Every request, answered or not, leaves one audit line
 * with its canonical route (spec_route_canon).
 *
 * Threads: MHD's (one epoll loop, or a pool) and a reaper thread that enforces the
 * deadline; they share one mutex over the table of open connections.
 */
#ifndef NITRO_CONTROLLER_HTTP_H
#define NITRO_CONTROLLER_HTTP_H

#include <stddef.h>

#define HTTP_MAX_CONNS 512  /* default of ho_max_conns (--max-connections) */
#define HTTP_MAX_PER_UID 16 /* default of ho_max_per_uid (--max-conn-per-uid) */
#define HTTP_DEADLINE_S 10  /* default of ho_deadline_s (--request-deadline) */
#define HTTP_RESERVED 32    /* of ho_max_conns, kept for root and nitrod's own uid */
#define HTTP_MIN_CONNS 64   /* smallest ho_max_conns */

struct http_opts {
	unsigned ho_timeout_s;	 /* idle timeout */
	unsigned ho_deadline_s;	 /* a whole request */
	unsigned ho_threads;	 /* MHD worker threads */
	unsigned ho_max_conns;	 /* >= HTTP_MIN_CONNS */
	unsigned ho_max_per_uid; /* >= 1 */
};

/* Binds path and starts serving; 0, or -1 with err set. */
int http_start(const char *path, const struct http_opts *o, char *err, size_t errlen);
void http_stop(void);

#endif
