/* nitro-card-nsm: the Nitro Secure Module (virtio device 33) of every enclave of one parent
 * instance, over vhost-user (docs/enclaves.md).
 *
 *   nitro-card-nsm --socket-path PATH --chain-fd N
 *
 * Listens on PATH (bound under a temporary name, renamed into place once it listens) and
 * serves any number of enclave connections at once, each opened by the parent's enclave
 * spawner with one ENW_HELLO (src/lib/enclave_wire.h, checked by hello.c; a connection
 * without a valid hello, or with a CID another connection holds, is answered with an errno
 * value and closed), then carrying the enclave nitro-hv's one ENW_PCRS (the EIF's PCR0, 1,
 * 2, 8; anything else there, a second hello included, is answered EPROTO and closed). The
 * hello's PCR4, module id and debug flag and the ENW_PCRS's PCRs make the connection's NSM
 * state (src/enclave/nsm.c; debug: PCR0-2 zero); the card makes the connection's leaf key and
 * certificate (EC P-384, 3 hours, CN = module id) signed by the host intermediate, whose
 * key and chain come once from fd N (src/enclave/chain_fd.h). The attestation document's
 * cabundle is [root, host intermediate]. Then the connection is a vhost-user device of one
 * queue (queue.c) served by the card library; when it closes, its state and key go.
 *
 * After set-up the card enters its seccomp allow-list ("card-nsm", or NITRO_SECCOMP's
 * value). SIGTERM/SIGINT end it (status 0); SIGUSR1 prints counters on stderr.
 * Single-threaded: everything runs on the event loop.
 */
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cards/lib/cardmain.h"
#include "cards/lib/listen.h"
#include "cards/lib/loop.h"
#include "cards/lib/vhost_user.h"
#include "cards/nsm/hello.h"
#include "cards/nsm/queue.h"
#include "enclave/chain_fd.h"
#include "enclave/pki.h"
#include "lib/util.h"
#include "sandbox/sandbox.h"

#define MAX_CONNS 64		/* enclaves of one parent, with room to spare */
#define LEAF_SECONDS (3 * 3600) /* as AWS's leaves */

static const char usage[] = "usage: nitro-card-nsm --socket-path PATH --chain-fd N\n";

struct conn {
	struct conn *next;
	int fd;		   /* until the PCRs are accepted; then the device owns it */
	bool identified;   /* the hello is accepted: the CID is held, ENW_PCRS comes next */
	bool attached;	   /* a vhost-user device now */
	size_t got;	   /* the message's bytes so far: taken as they come, never waited for */
	uint64_t deadline; /* ms (monotonic): no whole hello by then, the connection goes */
	uint8_t buf[ENW_HELLO_MSG_LEN];
	struct enw_hello hello;
	struct vu_dev dev;
	struct nsm_state st;
	struct nsm_queue q;
	struct pki_cert leaf;
};

static struct {
	struct loop loop;
	int listen_fd;
	char path[108];
	struct pki_cert root, host;
	struct conn *conns;
	unsigned nconns;
	unsigned long accepted, refused, requests;
} g = {.listen_fd = -1};

static int rand_cb(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	size_t got = 0;
	while (got < len) {
		ssize_t r = getrandom(buf + got, len - got, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static uint64_t now_cb(void *ctx)
{
	(void)ctx;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void conn_free(struct conn *c)
{
	for (struct conn **p = &g.conns; *p; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			break;
		}
	g.nconns--;
	g.requests += c->q.nq_requests;
	if (c->attached) {
		vu_dev_fini(&c->dev); /* closes the connection, unmaps guest memory */
	} else if (c->fd >= 0) {
		loop_del(&g.loop, c->fd);
		close(c->fd);
	}
	pki_cert_free(&c->leaf);
	OPENSSL_cleanse(&c->st, sizeof(c->st));
	free(c);
}

static struct conn *of(struct vu_dev *d)
{
	return d->vd_opaque;
}

static void kick(struct vu_dev *d, unsigned q)
{
	nsm_queue_kick(&of(d)->q, d, q);
}

static void stopping(struct vu_dev *d, unsigned q)
{
	nsm_queue_stopping(&of(d)->q, d, q);
}

static void stop(struct vu_dev *d, unsigned q)
{
	(void)q;
	nsm_queue_stop(&of(d)->q);
}

static void disconnected(struct vu_dev *d)
{
	struct conn *c = of(d);
	fprintf(stderr, "nitro-card-nsm: enclave CID %llu (%s) left\n",
		(unsigned long long)c->hello.cid, c->hello.module_id);
	conn_free(c);
}

static const struct vu_ops nsm_ops = {
    .vo_num_queues = 1,
    .vo_shared_loop = true, /* one enclave's half-sent message holds up only itself */
    .vo_queue_kick = kick,
    .vo_queue_stopping = stopping,
    .vo_queue_stop = stop,
    .vo_disconnected = disconnected,
};

static bool cid_taken(uint64_t cid)
{
	for (struct conn *c = g.conns; c; c = c->next)
		if ((c->identified || c->attached) && c->hello.cid == cid)
			return true;
	return false;
}

/* The connection's NSM: boot PCRs from the hello and ENW_PCRS (PCR0-2 zero in debug mode),
 * its leaf. */
static int conn_start(struct conn *c, char *err, size_t errlen)
{
	const struct enw_hello *h = &c->hello;
	if (pki_leaf(&g.host, h->module_id, LEAF_SECONDS, &c->leaf, err, errlen) < 0)
		return -1;
	const uint8_t *boot[NSM_LOCKED_AT_BOOT] = {0};
	for (unsigned i = 0; i < NSM_LOCKED_AT_BOOT; i++)
		boot[i] = (h->flags & ENW_FLAG_DEBUG) && i <= 2 ? NULL : h->pcr[i];
	struct nsm_ops ops = {
	    .sign = pki_es384_sign, .sign_ctx = c->leaf.key, .random = rand_cb, .now_ms = now_cb};
	nsm_init(&c->st, h->module_id, boot, &ops);
	c->st.cert = c->leaf.der;
	c->st.cert_len = c->leaf.der_len;
	c->st.cabundle[0] = g.root.der;
	c->st.cabundle_len[0] = g.root.der_len;
	c->st.cabundle[1] = g.host.der;
	c->st.cabundle_len[1] = g.host.der_len;
	c->st.ncabundle = 2;
	nsm_queue_init(&c->q, &c->st);
	if (vu_dev_init(&c->dev, &nsm_ops, c, &g.loop, err, errlen) < 0)
		return -1;
	loop_del(&g.loop, c->fd);
	c->attached = true;
	int fd = c->fd;
	c->fd = -1;
	return vu_dev_attach(&c->dev, fd, err, errlen); /* owns fd, even on failure */
}

/* Reads the next bytes of the message being collected (need more), without waiting. 1:
 * progress; 0: nothing yet; -1: the connection is gone (hung up, or fds came with it). */
static int take(struct conn *c, int fd, int need)
{
	struct iovec iov = {c->buf + c->got, (size_t)need};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0 || (mh.msg_flags & MSG_CTRUNC))
		return -1;
	c->got += (size_t)n;
	return 1;
}

static void refuse(struct conn *c, int st, bool pcrs)
{
	warnmsg("refused a connection%s: %s", pcrs ? "'s PCRs" : "", strerror(st));
	if (pcrs)
		enw_pcrs_reply(c->fd, (uint64_t)st);
	else
		nsm_hello_reply(c->fd, (uint64_t)st);
	g.refused++;
	conn_free(c);
}

/* The second message: the EIF's PCRs from the enclave's nitro-hv, once; then the
 * connection is the enclave's NSM device. */
static void on_pcrs(struct conn *c, int fd)
{
	char err[256];
	int need = enw_pcrs_parse(c->buf, c->got, NULL);
	int r = need > 0 ? take(c, fd, need) : 0;
	if (r <= 0) {
		if (r < 0 || need < 0) {
			g.refused++;
			conn_free(c);
		}
		return;
	}
	struct enw_pcrs p;
	need = enw_pcrs_parse(c->buf, c->got, &p);
	if (need > 0)
		return;
	int st = need < 0 ? EPROTO : enw_pcrs_check(&p);
	if (st)
		return refuse(c, st, true);
	static const unsigned at[ENW_EIF_PCRS] = ENW_EIF_PCR_INDEX;
	for (unsigned i = 0; i < ENW_EIF_PCRS; i++) /* zeros in the hello: checked */
		memcpy(c->hello.pcr[at[i]], p.pcr[i], ENW_PCR_LEN);
	if (conn_start(c, err, sizeof(err)) < 0) {
		warnmsg("enclave CID %llu: %s", (unsigned long long)c->hello.cid, err);
		if (!c->attached)
			enw_pcrs_reply(c->fd, EIO);
		g.refused++;
		conn_free(c);
		return;
	}
	if (enw_pcrs_reply(c->dev.vd_fd, 0) < 0) {
		g.refused++;
		conn_free(c);
		return;
	}
	g.accepted++;
	fprintf(stderr, "nitro-card-nsm: enclave CID %llu (%s%s) connected\n",
		(unsigned long long)c->hello.cid, c->hello.module_id,
		(c->hello.flags & ENW_FLAG_DEBUG) ? ", debug mode" : "");
}

/* Bytes of a hello, taken as they come (a peer that sends its hello slowly holds up only
 * itself; a silent one makes room when the card is full, on_accept). Exactly the hello's
 * bytes are read: what follows is ENW_PCRS (on_pcrs), then vhost-user. Fds with it are
 * refused. */
static void on_hello(struct loop *l, int fd, uint32_t ev, void *opaque)
{
	(void)l;
	(void)ev;
	struct conn *c = opaque;
	if (c->identified)
		return on_pcrs(c, fd);
	int r = take(c, fd, enw_hello_parse(c->buf, c->got, NULL));
	if (r <= 0) {
		if (r < 0) {
			g.refused++;
			conn_free(c);
		}
		return;
	}
	int need = enw_hello_parse(c->buf, c->got, &c->hello);
	if (need > 0)
		return;
	int st = need < 0 ? EPROTO : nsm_hello_check(&c->hello);
	if (st == 0 && cid_taken(c->hello.cid))
		st = EADDRINUSE;
	if (st)
		return refuse(c, st, false);
	if (nsm_hello_reply(c->fd, 0) < 0) {
		g.refused++;
		conn_free(c);
		return;
	}
	/* Identified: the CID is this connection's now; no deadline for the PCRs (the
	 * enclave's nitro-hv sends them once it measured its image; the connection ends
	 * with that process). */
	c->identified = true;
	c->got = 0;
}

static void on_accept(struct loop *l, int fd, uint32_t ev, void *opaque)
{
	(void)ev;
	(void)opaque;
	int s = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK); /* never waited for */
	if (s < 0)
		return;
	if (g.nconns >= MAX_CONNS) {
		/* Full: a connection that never said hello (a peer that connects and stays
		 * silent is never readable, so its hello timeout never runs) makes room, the
		 * oldest first; otherwise a peer holding MAX_CONNS silent connections would keep
		 * every enclave of the parent from its NSM. */
		struct conn *old = NULL;
		for (struct conn *c = g.conns; c; c = c->next)
			if (!c->attached && !c->identified)
				old = c; /* the list is newest first */
		if (old) {
			warnmsg("%u connections: dropped the oldest one that never said hello",
				g.nconns);
			g.refused++;
			conn_free(old);
		}
	}
	struct conn *c = g.nconns < MAX_CONNS ? calloc(1, sizeof(*c)) : NULL;
	char err[256];
	if (!c) {
		warnmsg("refused a connection: %u connections already", g.nconns);
		close(s);
		g.refused++;
		return;
	}
	c->fd = s;
	c->deadline = mono_ms() + NSM_HELLO_TIMEOUT_MS;
	c->next = g.conns;
	g.conns = c;
	g.nconns++;
	if (loop_add(l, s, on_hello, c, err, sizeof(err)) < 0) {
		warnmsg("%s", err);
		conn_free(c);
	}
}

/* Connections whose hello is not whole by its deadline are closed; returns the epoll
 * timeout until the next deadline (-1: none). */
static int sweep(void)
{
	uint64_t now = mono_ms(), next = UINT64_MAX;
	for (struct conn *c = g.conns, *nx; c; c = nx) {
		nx = c->next;
		if (c->attached || c->identified)
			continue;
		if (now >= c->deadline) {
			warnmsg("refused a connection: no hello in %d ms", NSM_HELLO_TIMEOUT_MS);
			g.refused++;
			conn_free(c);
		} else if (c->deadline < next) {
			next = c->deadline;
		}
	}
	return next == UINT64_MAX ? -1 : (int)(next - now);
}

static void on_usr1(void *opaque)
{
	(void)opaque;
	unsigned long req = g.requests, unpaired = 0;
	for (struct conn *c = g.conns; c; c = c->next) {
		req += c->q.nq_requests;
		unpaired += c->q.nq_unpaired;
	}
	fprintf(stderr,
		"nitro-card-nsm: %u connections, %lu accepted, %lu refused, %lu requests, %lu "
		"unpaired chains\n",
		g.nconns, g.accepted, g.refused, req, unpaired);
}

/* One leaf made and used before the filter: OpenSSL loads what it needs (providers, the
 * DRBG) now, and a chain whose leaves do not verify is found at start-up. */
static void warm_up(void)
{
	struct pki_cert leaf;
	char err[256];
	static const uint8_t tbs[] = "nitro-card-nsm";
	uint8_t sig[COSE_ES384_SIG_LEN];
	if (pki_leaf(&g.host, "start-up", 60, &leaf, err, sizeof(err)) < 0)
		die("%s", err);
	if (pki_es384_sign(leaf.key, tbs, sizeof(tbs), sig) < 0 ||
	    pki_es384_verify(leaf.der, leaf.der_len, tbs, sizeof(tbs), sig) < 0)
		die("a leaf of the host intermediate does not sign");
	pki_cert_free(&leaf);
}

int main(int argc, char **argv)
{
	util_set_prog("nitro-card-nsm");
	const char *sock = NULL, *v;
	int chain_fd = -1;
	for (int i = 1; i < argc; i++) {
		if ((v = card_opt("--socket-path", argc, argv, &i, usage))) {
			sock = v;
		} else if ((v = card_opt("--chain-fd", argc, argv, &i, usage))) {
			uint64_t n;
			if (!parse_u64(v, 3, 1024, &n))
				die_usage("--chain-fd: expected an fd number >= 3, got '%s'", v);
			chain_fd = (int)n;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		} else {
			die_usage("%s: unknown argument\n%s", argv[i], usage);
		}
	}
	if (!sock || chain_fd < 0)
		die_usage("--socket-path and --chain-fd are required\n%s", usage);
	char err[512];
	if (chain_fd_read(chain_fd, &g.root, &g.host, err, sizeof(err)) < 0)
		die("--chain-fd %d: %s", chain_fd, err);
	close(chain_fd);
	warm_up();
	int usr1 = -1;
	if (card_loop_init(&g.loop, &usr1, on_usr1, NULL, err, sizeof(err)) < 0)
		die("%s", err);
	g.listen_fd = listen_renamed(sock, err, sizeof(err));
	if (g.listen_fd < 0)
		die("%s", err);
	snprintf(g.path, sizeof(g.path), "%s", sock);
	if (loop_add(&g.loop, g.listen_fd, on_accept, NULL, err, sizeof(err)) < 0)
		die("%s", err);
	const char *kind = getenv("NITRO_SECCOMP");
	if (sandbox_enter(kind && *kind ? kind : "card-nsm", err, sizeof(err)) < 0)
		die("%s", err);
	int r = 0;
	while (!g.loop.lp_stop) {
		r = loop_run_once(&g.loop, sweep());
		if (r < 0)
			break;
		r = 0;
	}
	unlink(g.path);
	while (g.conns)
		conn_free(g.conns);
	pki_cert_free(&g.host);
	pki_cert_free(&g.root);
	return r < 0 ? 1 : 0;
}
