/* nitro-card-vsock: the vsock device of a parent instance and of each of its enclaves, as
 * one vhost-user virtio-vsock back end (virtio device 19) relaying stream packets between
 * them (docs/vsock.md).
 *
 *   nitro-card-vsock --socket-path PATH | --fd N [--enclave-socket PATH]
 *   nitro-card-vsock --print-capabilities
 *
 * --socket-path/--fd: the parent's nitro-hv (guest CID 3), served one frontend at a time.
 * --enclave-socket: any number of enclave nitro-hv connections; each opens with ENW_HELLO
 * (src/lib/enclave_wire.h) naming the enclave's CID, which becomes its device's guest_cid.
 * Routing is route.h's: parent <-> its enclaves only, RST for the unroutable.
 * Debug consoles (console.h): a hello with ENW_FLAG_CONSOLE is a debug enclave's console
 * feed (feed_hello: only beside its attached debug device, same hello and peer, once); the
 * card keeps each console's newest 64 KiB and serves it to the parent at CID 0, port
 * CID + 10000 (ROUTE_LOCAL packets; con_pump writes into the parent's rx buffers after
 * the relayed packets waiting for them, CON_PUMP_BUDGET a turn).
 *
 * Relay: a packet taken from a VM's tx queue is copied into the card (header and payload,
 * at most 64 KiB) and written into the destination's rx buffers, split over several when
 * they are smaller (as vhost-vsock does). When the destination has no rx buffer the packet
 * waits and the card takes nothing more from that source's tx queue (backpressure), until
 * the destination's driver adds buffers (its rx kick). Credit (buf_alloc, fwd_cnt) is end to
 * end between the two guests. RSTs the card makes itself (unroutable packets, a VM gone)
 * wait in a small per-VM queue for rx buffers. A destination whose rx queue is not running
 * gets nothing: the packet is dropped and its sender gets an RST. A destination that has not
 * taken a packet whole in VSOCK_STALL_MS is stalled: the packet is dropped, its connection
 * reset both ways, and packets for it are not waited for until it takes one whole again (an
 * enclave that never refills its rx queue cannot hold up the parent's other traffic).
 *
 * Runs until SIGTERM/SIGINT (exit 0); SIGUSR1 prints the counters to stderr, as does the
 * exit. Hostile input: guests (headers, chains: the card library's checked vring code) and
 * the enclave frontends (the hello: read without waiting, enw_hello_parse/enw_hello_check,
 * 2 s in all, a CID used once at a time; vhost-user: vo_shared_loop, never waited for).
 * Every attack tests/vsock performs is listed in docs/vsock.md.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_ids.h>

#include "cards/lib/acceptor.h"
#include "cards/lib/backend.h"
#include "cards/lib/cardmain.h"
#include "cards/vsock/console.h"
#include "cards/vsock/route.h"
#include "lib/enclave_wire.h"
#include "lib/le.h"
#include "lib/util.h"
#include "sandbox/sandbox.h"

static const char usage_text[] =
    "usage: nitro-card-vsock --socket-path PATH | --fd N [--enclave-socket PATH]\n"
    "       nitro-card-vsock --print-capabilities\n"
    "  --socket-path PATH     the parent instance's vhost-user socket (guest CID 3)\n"
    "  --enclave-socket PATH  enclave VMs' connections (each opens with ENW_HELLO)\n";

#define Q_RX 0
#define Q_TX 1
#define Q_EVENT 2
#define NQUEUES 3
#define MAX_SEGS 64
/* Card-made packets waiting for one VM's rx buffers: room for an RST for every connection
 * the table can hold (a VM that goes away with them all: each must be told), and CTL_JUNK
 * more; answers to a VM's own unroutable packets take at most CTL_JUNK of it. */
#define CTL_JUNK 512
#define CTL_MAX (VSOCK_MAX_CONNS + CTL_JUNK)
#define MAX_ENCLAVES 64	      /* enclave connections at once (hellos included) */
#define HELLO_TIMEOUT_MS 2000 /* for the whole hello, from the connection on */
/* A packet taken from a VM that its destination has not taken whole within this long: the
 * destination is stalled (no rx buffers, or its rx queue stopped); the packet is dropped
 * and its connection reset on both sides, and until the destination takes a packet whole
 * again, packets for it are not waited for. */
#define VSOCK_STALL_MS 1000
#define TX_BUDGET 256	   /* chains taken from one VM's tx queue before the others' turn */
#define CON_PUMP_BUDGET 64 /* console packets into the parent's rx queue per turn */
#define FEED_READ 16384	   /* console feed bytes read per event (one read a turn) */

struct feed;

struct card;

/* One VM: the parent's or an enclave's device. */
struct vm {
	struct vu_dev v_dev;
	struct card *v_card;
	uint64_t v_cid;
	bool v_parent;
	struct vm *v_next; /* the card's enclave list */
	/* The packet taken from this VM's tx queue that waits for its destination's rx. */
	bool v_pending;
	struct vsock_hdr v_phdr;
	uint32_t v_poff;	  /* payload bytes already delivered */
	uint8_t *v_pbuf;	  /* VSOCK_MAX_PAYLOAD */
	uint64_t v_pending_since; /* ms (monotonic) when the packet first had to wait */
	bool v_waiting;		  /* v_pending_since is set */
	bool v_stalled;		  /* as a destination: see VSOCK_STALL_MS */
	bool v_tx_more;		  /* tx_run stopped at TX_BUDGET with chains left */
	/* Packets the card itself sends to this VM (no payload). */
	struct vsock_hdr v_ctl[CTL_MAX];
	unsigned v_ctl_head, v_ctl_n;
	uint64_t v_tx_pkts, v_rx_pkts, v_tx_bytes, v_ctl_dropped;
	/* An enclave's hello and peer, for its console feed's (feed_hello). */
	bool v_debug, v_feed_taken;
	struct enw_hello v_hello;
	struct ucred v_cred;
	struct feed *v_feed; /* its console feed, while connected */
};

/* A debug-mode enclave's console feed: a connection on the enclave socket whose hello had
 * ENW_FLAG_CONSOLE; after it, raw console bytes (console.h). */
struct feed {
	struct card *f_card;
	int f_fd;
	struct vm *f_vm;
};

/* An enclave connection whose hello is still arriving (read without waiting). */
struct hello_conn {
	struct card *hc_card;
	int hc_fd;
	uint64_t hc_deadline; /* ms (monotonic) */
	size_t hc_got;
	uint8_t hc_buf[ENW_HELLO_MSG_LEN];
	struct hello_conn *hc_next;
};

struct card {
	struct loop c_loop;
	struct backend c_backend;
	struct acceptor c_enc;
	bool c_enc_on;
	struct vm c_parent;
	struct vm *c_enclaves;
	struct route_table c_rt;
	struct hello_conn *c_hellos;
	struct con_table c_con; /* the debug consoles, served at CID 0 */
	bool c_con_more;	/* con_pump stopped at CON_PUMP_BUDGET */
	uint64_t c_hellos_refused, c_undeliverable, c_stalls, c_feeds_refused;
	int c_usr1;
};

static struct card the_card;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static struct vm *vm_of_cid(struct card *c, uint64_t cid)
{
	if (cid == VSOCK_PARENT_CID)
		return c->c_parent.v_dev.vd_fd >= 0 ? &c->c_parent : NULL;
	for (struct vm *v = c->c_enclaves; v; v = v->v_next)
		if (v->v_cid == cid)
			return v;
	return NULL;
}

static bool vm_up(void *ctx, uint64_t cid)
{
	return vm_of_cid(ctx, cid) != NULL;
}

/* Whether v's queue q is running (started, enabled, not failed). */
static bool queue_live(const struct vm *v, unsigned q)
{
	const struct vu_queue *vq = &v->v_dev.vd_queues[q];
	return v->v_dev.vd_fd >= 0 && vq->vq_started && vq->vq_enabled && !vq->vq_failed;
}

/* --- copying between chains and the card --- */

/* Takes one rx buffer of v: 1 with *ch, 0 when none (or the queue is not running). A
 * buffer too small for a header is handed back empty and the next one tried. */
static int rx_take(struct vm *v, struct vr_chain *ch)
{
	for (;;) {
		if (!queue_live(v, Q_RX))
			return 0;
		int r = vu_queue_pop(&v->v_dev, Q_RX, ch);
		if (r <= 0)
			return 0;
		if (ch->ch_write_bytes >= VSOCK_HDR_LEN)
			return 1;
		vu_queue_push(&v->v_dev, Q_RX, ch->ch_head, 0);
	}
}

/* --- card-made packets --- */

static void ctl_flush(struct vm *v)
{
	struct vr_seg segs[MAX_SEGS];
	struct vr_chain ch = {.ch_segs = segs, .ch_max = MAX_SEGS};
	bool pushed = false;
	while (v->v_ctl_n && rx_take(v, &ch) == 1) {
		uint8_t b[VSOCK_HDR_LEN];
		vsock_hdr_put(b, &v->v_ctl[v->v_ctl_head]);
		vr_chain_write(&ch, 0, b, sizeof(b));
		vu_queue_push(&v->v_dev, Q_RX, ch.ch_head, VSOCK_HDR_LEN);
		v->v_ctl_head = (v->v_ctl_head + 1) % CTL_MAX;
		v->v_ctl_n--;
		v->v_rx_pkts++;
		pushed = true;
	}
	if (pushed)
		vu_queue_notify(&v->v_dev, Q_RX);
}

/* junk: an answer to v's own packet (unroutable, table full), not the end of a connection. */
static void ctl_send(struct vm *v, const struct vsock_hdr *h, bool junk)
{
	if (v->v_ctl_n == CTL_MAX || (junk && v->v_ctl_n >= CTL_JUNK)) {
		v->v_ctl_dropped++;
		return;
	}
	v->v_ctl[(v->v_ctl_head + v->v_ctl_n++) % CTL_MAX] = *h;
	ctl_flush(v);
}

/* --- relaying --- */

/* src's pending packet cannot be delivered: dropped, and its connection reset on both
 * sides (the sender at once, dst when it is there: its RST waits for its rx buffers), and
 * forgotten by the table. */
static void drop_pending(struct card *c, struct vm *src, struct vm *dst)
{
	struct vsock_hdr *h = &src->v_phdr;
	if (h->op != VSOCK_OP_RST) {
		struct vsock_hdr rst = vsock_rst_for(h);
		ctl_send(src, &rst, false);
		if (dst) {
			struct vsock_hdr to_dst = *h;
			to_dst.op = VSOCK_OP_RST;
			to_dst.len = to_dst.flags = to_dst.buf_alloc = to_dst.fwd_cnt = 0;
			ctl_send(dst, &to_dst, false);
		}
	}
	route_forget(&c->c_rt, h);
	src->v_pending = false;
	src->v_waiting = false;
}

/* Writes as much of src's pending packet into dst's rx buffers as they take. True when
 * the packet is done (delivered, or dropped because dst cannot take it). */
static bool deliver(struct card *c, struct vm *src)
{
	struct vsock_hdr *h = &src->v_phdr;
	struct vm *dst = vm_of_cid(c, h->dst_cid);
	if (!dst || !queue_live(dst, Q_RX)) {
		c->c_undeliverable++;
		drop_pending(c, src, NULL);
		return true;
	}
	struct vr_seg segs[MAX_SEGS];
	struct vr_chain ch = {.ch_segs = segs, .ch_max = MAX_SEGS};
	bool pushed = false;
	while (src->v_pending && rx_take(dst, &ch) == 1) {
		uint64_t room = ch.ch_write_bytes - VSOCK_HDR_LEN;
		uint32_t left = h->len - src->v_poff;
		uint32_t n = left < room ? left : (uint32_t)room;
		struct vsock_hdr part = *h;
		part.len = n;
		uint8_t b[VSOCK_HDR_LEN];
		vsock_hdr_put(b, &part);
		vr_chain_write(&ch, 0, b, sizeof(b));
		vr_chain_write(&ch, VSOCK_HDR_LEN, src->v_pbuf + src->v_poff, n);
		vu_queue_push(&dst->v_dev, Q_RX, ch.ch_head, VSOCK_HDR_LEN + n);
		dst->v_rx_pkts++;
		pushed = true;
		src->v_poff += n;
		if (src->v_poff >= h->len)
			src->v_pending = false;
	}
	if (pushed)
		vu_queue_notify(&dst->v_dev, Q_RX);
	if (!src->v_pending) {
		src->v_waiting = false;
		dst->v_stalled = false; /* it took a packet whole */
		return true;
	}
	if (dst->v_stalled) { /* not waited for: see VSOCK_STALL_MS */
		c->c_undeliverable++;
		drop_pending(c, src, dst);
		return true;
	}
	if (!src->v_waiting) {
		src->v_waiting = true;
		src->v_pending_since = now_ms();
	}
	return false;
}

static void con_pump(struct card *c);

/* Takes packets from v's tx queue until it is empty or one must wait. */
static void tx_run(struct card *c, struct vm *v)
{
	struct vr_seg segs[MAX_SEGS];
	struct vr_chain ch = {.ch_segs = segs, .ch_max = MAX_SEGS};
	bool pushed = false;
	unsigned budget = TX_BUDGET;
	v->v_tx_more = false;
	while (!v->v_pending && queue_live(v, Q_TX)) {
		if (!budget--) { /* the others' turn: the main loop comes back (sweep) */
			v->v_tx_more = true;
			break;
		}
		int r = vu_queue_pop(&v->v_dev, Q_TX, &ch);
		if (r <= 0)
			break;
		uint8_t b[VSOCK_HDR_LEN] = {0};
		struct vsock_hdr h, rst;
		enum route_reason why;
		if (ch.ch_read_bytes >= VSOCK_HDR_LEN)
			vr_chain_read(&ch, 0, b, sizeof(b));
		enum route_verdict vd =
		    route_packet(&c->c_rt, v->v_cid, b, ch.ch_read_bytes, &h, &rst, &why);
		if (vd == ROUTE_FORWARD) {
			vr_chain_read(&ch, VSOCK_HDR_LEN, v->v_pbuf, h.len);
			v->v_phdr = h;
			v->v_poff = 0;
			v->v_pending = true;
			v->v_tx_pkts++;
			v->v_tx_bytes += h.len;
		}
		vu_queue_push(&v->v_dev, Q_TX, ch.ch_head, 0);
		pushed = true;
		if (vd == ROUTE_RST) {
			ctl_send(v, &rst, true);
		} else if (vd == ROUTE_FORWARD) {
			deliver(c, v);
		} else if (vd == ROUTE_LOCAL) { /* the parent to CID 0: a console's */
			v->v_tx_pkts++;
			con_packet(&c->c_con, &h);
			con_pump(c);
		}
	}
	if (pushed)
		vu_queue_notify(&v->v_dev, Q_TX);
}

/* Every source whose pending packet is for cid tries again (delivered, or dropped when cid
 * is gone or stalled); each that is done takes more from its tx queue. The list is taken
 * first: tx_run may change who is pending. */
static void retry_for(struct card *c, uint64_t cid)
{
	struct vm *srcs[MAX_ENCLAVES + 1];
	unsigned n = 0;
	if (c->c_parent.v_pending)
		srcs[n++] = &c->c_parent;
	for (struct vm *v = c->c_enclaves; v && n < MAX_ENCLAVES + 1; v = v->v_next)
		if (v->v_pending)
			srcs[n++] = v;
	for (unsigned i = 0; i < n; i++)
		if (srcs[i]->v_phdr.dst_cid == cid && deliver(c, srcs[i]))
			tx_run(c, srcs[i]);
}

/* Console packets (console.h) into the parent's rx buffers, as many as they and
 * CON_PUMP_BUDGET take; relayed packets waiting for the parent went first (rx_ready), so a
 * busy console never keeps the enclaves' traffic out. */
static void con_pump(struct card *c)
{
	struct vm *p = &c->c_parent;
	struct vr_seg segs[MAX_SEGS];
	struct vr_chain ch = {.ch_segs = segs, .ch_max = MAX_SEGS};
	bool pushed = false;
	c->c_con_more = false;
	for (unsigned budget = CON_PUMP_BUDGET; con_pending(&c->c_con, VSOCK_MAX_PAYLOAD);) {
		if (!budget--) {
			c->c_con_more = true; /* sweep() comes back */
			break;
		}
		if (rx_take(p, &ch) != 1)
			break;
		uint64_t room = ch.ch_write_bytes - VSOCK_HDR_LEN;
		struct vsock_hdr h;
		const uint8_t *a, *b;
		uint32_t na, nb;
		pushed = true;
		if (!con_next(&c->c_con,
			      room < VSOCK_MAX_PAYLOAD ? (uint32_t)room : VSOCK_MAX_PAYLOAD, &h, &a,
			      &na, &b, &nb)) {
			vu_queue_push(&p->v_dev, Q_RX, ch.ch_head, 0); /* only data left: no room */
			break;
		}
		uint8_t hb[VSOCK_HDR_LEN];
		vsock_hdr_put(hb, &h);
		vr_chain_write(&ch, 0, hb, sizeof(hb));
		vr_chain_write(&ch, VSOCK_HDR_LEN, a, na);
		vr_chain_write(&ch, VSOCK_HDR_LEN + (uint64_t)na, b, nb);
		vu_queue_push(&p->v_dev, Q_RX, ch.ch_head, VSOCK_HDR_LEN + h.len);
		p->v_rx_pkts++;
	}
	if (pushed)
		vu_queue_notify(&p->v_dev, Q_RX);
}

/* dst got rx buffers: its own queue first, then every source waiting for it, then (the
 * parent) the consoles. */
static void rx_ready(struct card *c, struct vm *dst)
{
	ctl_flush(dst);
	retry_for(c, dst->v_cid);
	if (dst->v_parent)
		con_pump(c);
}

/* --- the devices --- */

static struct vm *vm_of(struct vu_dev *d)
{
	return d->vd_opaque;
}

static int config_read(struct vu_dev *d, uint32_t off, void *buf, uint32_t len)
{
	uint8_t cfg[8];
	le64_put(cfg, vm_of(d)->v_cid);
	if (off > sizeof(cfg) || len > sizeof(cfg) - off)
		return -EINVAL;
	memcpy(buf, cfg + off, len);
	return 0;
}

static void on_kick(struct vu_dev *d, unsigned q)
{
	struct vm *v = vm_of(d);
	if (q == Q_RX)
		rx_ready(v->v_card, v);
	else if (q == Q_TX)
		tx_run(v->v_card, v);
	/* Q_EVENT: the driver's event buffers; the card sends no events. */
}

/* Every VM waiting on gone gives up its packet; RSTs for the connections gone had. */
static void emit_rst(void *ctx, const struct vsock_hdr *rst)
{
	struct vm *to = vm_of_cid(&the_card, rst->dst_cid);
	(void)ctx;
	if (to)
		ctl_send(to, rst, false);
}

/* A console's RST for the parent (console.h: refusals and resets; at most one a reader). */
static void con_emit(void *ctx, const struct vsock_hdr *h)
{
	struct card *c = ctx;
	if (c->c_parent.v_dev.vd_fd >= 0)
		ctl_send(&c->c_parent, h, true);
}

static void vm_gone(struct card *c, struct vm *gone)
{
	gone->v_pending = gone->v_waiting = gone->v_stalled = gone->v_tx_more = false;
	gone->v_ctl_n = 0;
	route_vm_gone(&c->c_rt, gone->v_cid, emit_rst, c);
	retry_for(c, gone->v_cid);
}

static void print_stats(void *opaque)
{
	struct card *c = opaque;
	const struct route_table *t = &c->c_rt;
	fprintf(stderr,
		"nitro-card-vsock: %u connections, hellos refused %llu, undeliverable %llu, "
		"stalls %llu, console feeds refused %llu",
		t->rt_n, (unsigned long long)c->c_hellos_refused,
		(unsigned long long)c->c_undeliverable, (unsigned long long)c->c_stalls,
		(unsigned long long)c->c_feeds_refused);
	for (unsigned r = 0; r < RR_NUM; r++)
		fprintf(stderr, ", %s %llu", route_reason_name(r),
			(unsigned long long)t->rt_count[r]);
	fputc('\n', stderr);
	static const char *const cs[CS_NUM] = {"opened",     "refused",	  "reset",
					       "bytes in",   "bytes out", "parent bytes dropped",
					       "bytes lost", "evicted"};
	fprintf(stderr, "nitro-card-vsock: consoles:");
	for (unsigned i = 0; i < CS_NUM; i++)
		fprintf(stderr, "%s %s %llu", i ? "," : "", cs[i],
			(unsigned long long)c->c_con.ct_count[i]);
	fputc('\n', stderr);
	for (struct vm *v = &c->c_parent; v; v = v == &c->c_parent ? c->c_enclaves : v->v_next)
		if (v->v_dev.vd_fd >= 0)
			fprintf(stderr,
				"nitro-card-vsock: cid %llu: tx %llu packets (%llu bytes), rx %llu "
				"packets, card packets dropped %llu\n",
				(unsigned long long)v->v_cid, (unsigned long long)v->v_tx_pkts,
				(unsigned long long)v->v_tx_bytes, (unsigned long long)v->v_rx_pkts,
				(unsigned long long)v->v_ctl_dropped);
}

static void parent_disconnected(struct vu_dev *d);
static void enclave_disconnected(struct vu_dev *d);

static const struct vu_ops parent_ops = {
    .vo_features = 1ull << VIRTIO_F_VERSION_1,
    .vo_num_queues = NQUEUES,
    .vo_config_size = 8,
    .vo_config_read = config_read,
    .vo_queue_kick = on_kick,
    .vo_disconnected = parent_disconnected,
    .vo_shared_loop = true,
};

static const struct vu_ops enclave_ops = {
    .vo_features = 1ull << VIRTIO_F_VERSION_1,
    .vo_num_queues = NQUEUES,
    .vo_config_size = 8,
    .vo_config_read = config_read,
    .vo_queue_kick = on_kick,
    .vo_disconnected = enclave_disconnected,
    .vo_shared_loop = true,
};

static int vm_init(struct vm *v, struct card *c, const struct vu_ops *ops, uint64_t cid, char *err,
		   size_t errlen)
{
	memset(v, 0, sizeof(*v));
	v->v_card = c;
	v->v_cid = cid;
	v->v_parent = cid == VSOCK_PARENT_CID;
	v->v_pbuf = malloc(VSOCK_MAX_PAYLOAD);
	if (!v->v_pbuf)
		RETURN_ERR(-ENOMEM, "out of memory");
	int r = vu_dev_init(&v->v_dev, ops, v, &c->c_loop, err, errlen);
	if (r < 0)
		free(v->v_pbuf);
	return r;
}

static void vm_fini(struct vm *v)
{
	vu_dev_fini(&v->v_dev);
	free(v->v_pbuf);
	v->v_pbuf = NULL;
}

static void parent_disconnected(struct vu_dev *d)
{
	struct card *c = vm_of(d)->v_card;
	vm_gone(c, &c->c_parent);
	con_parent_gone(&c->c_con); /* its console connections; the ended consoles */
	if (backend_next(&c->c_backend) < 0)
		loop_stop(&c->c_loop);
}

static void feed_close(struct feed *f)
{
	struct card *c = f->f_card;
	loop_del(&c->c_loop, f->f_fd);
	close(f->f_fd);
	if (f->f_vm)
		f->f_vm->v_feed = NULL;
	free(f);
	acceptor_closed(&c->c_enc);
}

/* Console bytes: one read a turn (a chatty enclave takes its turn like everyone else); the
 * ring keeps the newest, so an enclave cannot make the card hold more (console.h). */
static void on_feed(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct feed *f = opaque;
	struct card *c = f->f_card;
	static uint8_t buf[FEED_READ];
	(void)l;
	(void)events;
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		feed_close(f);
		return;
	}
	con_feed(&c->c_con, (uint32_t)f->f_vm->v_cid, buf, (size_t)n);
	con_pump(c);
}

/* The enclave is gone: what its feed still holds (written before it ended: up to a ring's
 * worth, never waited for) goes into its console, the feed closes, the console ends. */
static void feed_end(struct card *c, struct vm *v)
{
	static uint8_t buf[FEED_READ];
	if (v->v_feed) {
		ssize_t n;
		for (size_t got = 0;
		     got < 2 * CON_RING &&
		     (n = recv(v->v_feed->f_fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0;
		     got += (size_t)n)
			con_feed(&c->c_con, (uint32_t)v->v_cid, buf, (size_t)n);
		feed_close(v->v_feed);
	}
	if (v->v_debug) {
		con_stop(&c->c_con, (uint32_t)v->v_cid);
		con_pump(c);
	}
}

static void enclave_disconnected(struct vu_dev *d)
{
	struct vm *v = vm_of(d);
	struct card *c = v->v_card;
	warnmsg("enclave cid %llu disconnected", (unsigned long long)v->v_cid);
	for (struct vm **pp = &c->c_enclaves; *pp; pp = &(*pp)->v_next)
		if (*pp == v) {
			*pp = v->v_next;
			break;
		}
	feed_end(c, v);
	vm_gone(c, v);
	vm_fini(v);
	free(v);
	acceptor_closed(&c->c_enc);
}

static void hello_end(struct card *c, struct hello_conn *hc)
{
	for (struct hello_conn **pp = &c->c_hellos; *pp; pp = &(*pp)->hc_next)
		if (*pp == hc) {
			*pp = hc->hc_next;
			break;
		}
	loop_del(&c->c_loop, hc->hc_fd);
	free(hc);
}

/* Refuses a connection in its hello (the reply when status is non-zero), closes it. */
static void hello_refuse(struct card *c, struct hello_conn *hc, uint64_t status, const char *why)
{
	if (status)
		enw_hello_reply(hc->hc_fd, status); /* best effort: the socket is non-blocking */
	warnmsg("enclave hello refused: %s", why);
	c->c_hellos_refused++;
	close(hc->hc_fd);
	hello_end(c, hc);
	acceptor_closed(&c->c_enc);
}

/* A console feed's hello (ENW_FLAG_CONSOLE): accepted only as the second connection of the
 * debug-mode enclave attached with this CID, from the same peer (SO_PEERCRED: pid, uid
 * and gid) and with the same hello, once per attachment. It can neither claim a CID nor
 * reach another enclave's console: the device's hello claimed the CID (EADDRINUSE for any
 * other), and a production enclave has no console to feed. */
static void feed_hello(struct card *c, struct hello_conn *hc, const struct enw_hello *h,
		       const struct ucred *cred)
{
	char err[256];
	struct enw_hello plain = *h;
	plain.flags &= ~ENW_FLAG_CONSOLE;
	uint64_t status = (uint64_t)enw_hello_check(&plain);
	struct vm *v = status ? NULL : vm_of_cid(c, h->cid);
	struct feed *f = NULL;
	if (!status && !(h->flags & ENW_FLAG_DEBUG))
		status = EINVAL;
	else if (!status && !v)
		status = ENOENT;
	else if (!status && (!v->v_debug || !con_running(&c->c_con, (uint32_t)h->cid) ||
			     memcmp(&plain, &v->v_hello, sizeof(plain)) ||
			     memcmp(cred, &v->v_cred, sizeof(*cred))))
		status = EPERM;
	else if (!status && v->v_feed_taken)
		status = EADDRINUSE;
	if (status) {
		c->c_feeds_refused++;
		hello_refuse(c, hc, status, "console feed refused");
		return;
	}
	int fd = hc->hc_fd;
	hello_end(c, hc);
	if (!(f = calloc(1, sizeof(*f))) || enw_hello_reply(fd, 0) < 0 ||
	    loop_add(&c->c_loop, fd, on_feed, f, err, sizeof(err)) < 0) {
		warnmsg("enclave cid %llu: console feed lost", (unsigned long long)h->cid);
		free(f);
		close(fd);
		acceptor_closed(&c->c_enc);
		return;
	}
	*f = (struct feed){.f_card = c, .f_fd = fd, .f_vm = v};
	v->v_feed = f;
	v->v_feed_taken = true;
	warnmsg("enclave cid %llu: console feed connected", (unsigned long long)h->cid);
}

/* The hello is complete: the enclave's device (or console feed), or a refusal. */
static void hello_done(struct card *c, struct hello_conn *hc, const struct enw_hello *h)
{
	char err[256] = "";
	struct ucred cred = {0};
	socklen_t cl = sizeof(cred);
	if (getsockopt(hc->hc_fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0)
		memset(&cred, 0, sizeof(cred));
	if (h->flags & ENW_FLAG_CONSOLE) {
		feed_hello(c, hc, h, &cred);
		return;
	}
	uint64_t status = (uint64_t)enw_hello_check(h);
	if (!status && vm_of_cid(c, h->cid))
		status = EADDRINUSE;
	struct vm *v = NULL;
	if (!status && (!(v = malloc(sizeof(*v))) ||
			vm_init(v, c, &enclave_ops, h->cid, err, sizeof(err)) < 0)) {
		free(v);
		v = NULL;
		status = ENOMEM;
	}
	if (status) {
		hello_refuse(c, hc, status, strerror((int)status));
		return;
	}
	int fd = hc->hc_fd;
	hello_end(c, hc);
	if (enw_hello_reply(fd, 0) < 0) {
		close(fd);
		snprintf(err, sizeof(err), "hello reply: connection lost");
	} else if (vu_dev_attach(&v->v_dev, fd, err, sizeof(err)) == 0) { /* closes fd if not */
		err[0] = 0;
	}
	if (err[0]) {
		warnmsg("enclave cid %llu: %s", (unsigned long long)h->cid, err);
		vm_fini(v);
		free(v);
		acceptor_closed(&c->c_enc);
		return;
	}
	v->v_next = c->c_enclaves;
	c->c_enclaves = v;
	v->v_hello = *h;
	v->v_cred = cred;
	v->v_debug = h->flags & ENW_FLAG_DEBUG;
	/* The CID attaches again: its old console goes; a debug enclave gets a new one. */
	if (!v->v_debug)
		con_drop(&c->c_con, (uint32_t)h->cid);
	else if (con_open(&c->c_con, (uint32_t)h->cid) < 0)
		warnmsg("enclave cid %llu: no room for its console", (unsigned long long)h->cid);
	warnmsg("enclave cid %llu%s connected", (unsigned long long)h->cid,
		h->flags & ENW_FLAG_DEBUG ? " (debug)" : "");
}

/* Bytes of a hello: taken as they come, never waited for (a connection that sends its hello
 * slowly, or not at all, holds up only itself; sweep() ends it at its deadline). Exactly
 * the hello's bytes are read: what follows is vhost-user. Fds are refused. */
static void on_hello(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct hello_conn *hc = opaque;
	struct card *c = hc->hc_card;
	(void)l;
	(void)events;
	int need = enw_hello_parse(hc->hc_buf, hc->hc_got, NULL);
	struct iovec iov = {hc->hc_buf + hc->hc_got, (size_t)need};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n = recvmsg(fd, &mh, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		hello_refuse(c, hc, 0, n < 0 ? strerror(errno) : "connection closed");
		return;
	}
	if (mh.msg_flags & MSG_CTRUNC) { /* fds came with it (the kernel closed them) */
		hello_refuse(c, hc, EPROTO, "a hello with fds");
		return;
	}
	hc->hc_got += (size_t)n;
	struct enw_hello h;
	need = enw_hello_parse(hc->hc_buf, hc->hc_got, &h);
	if (need < 0)
		hello_refuse(c, hc, EPROTO, "not a hello");
	else if (need == 0)
		hello_done(c, hc, &h);
}

static void on_enclave_conn(void *opaque, int fd)
{
	struct card *c = opaque;
	char err[256];
	struct hello_conn *hc = calloc(1, sizeof(*hc));
	if (!hc || loop_add(&c->c_loop, fd, on_hello, hc, err, sizeof(err)) < 0) {
		warnmsg("%s", hc ? err : "out of memory");
		free(hc);
		close(fd);
		acceptor_closed(&c->c_enc);
		return;
	}
	*hc = (struct hello_conn){.hc_card = c,
				  .hc_fd = fd,
				  .hc_deadline = now_ms() + HELLO_TIMEOUT_MS,
				  .hc_next = c->c_hellos};
	c->c_hellos = hc;
}

/* Time-driven work after each turn of the loop: hellos past their deadline are closed,
 * packets that waited VSOCK_STALL_MS for their destination make it stalled (dropped, reset),
 * and VMs that used up their TX_BUDGET get another turn. Returns the epoll timeout until
 * the next deadline (-1: none, 0: work left). */
static int sweep(struct card *c)
{
	uint64_t now = now_ms(), next = UINT64_MAX;
	for (struct hello_conn *hc = c->c_hellos, *nx; hc; hc = nx) {
		nx = hc->hc_next;
		if (now >= hc->hc_deadline)
			hello_refuse(c, hc, 0, "no hello in time");
		else if (hc->hc_deadline < next)
			next = hc->hc_deadline;
	}
	struct vm *vms[MAX_ENCLAVES + 1];
	unsigned n = 0;
	for (struct vm *v = &c->c_parent; v && n < MAX_ENCLAVES + 1;
	     v = v == &c->c_parent ? c->c_enclaves : v->v_next)
		vms[n++] = v;
	bool more = false;
	for (unsigned i = 0; i < n; i++) {
		struct vm *v = vms[i];
		if (v->v_pending && v->v_waiting) {
			if (now - v->v_pending_since >= VSOCK_STALL_MS) {
				struct vm *dst = vm_of_cid(c, v->v_phdr.dst_cid);
				if (dst && !dst->v_stalled) {
					c->c_stalls++;
					warnmsg("cid %llu stalled: took no packet from cid %llu in "
						"%d ms",
						(unsigned long long)dst->v_cid,
						(unsigned long long)v->v_cid, VSOCK_STALL_MS);
					dst->v_stalled = true;
				}
				if (deliver(c, v)) /* dropped: dst is stalled or gone */
					tx_run(c, v);
			} else if (v->v_pending_since + VSOCK_STALL_MS < next) {
				next = v->v_pending_since + VSOCK_STALL_MS;
			}
		}
		if (v->v_tx_more && !v->v_pending)
			tx_run(c, v);
		more |= v->v_tx_more && !v->v_pending;
	}
	if (c->c_con_more)
		con_pump(c);
	if (more || c->c_con_more)
		return 0;
	if (next == UINT64_MAX)
		return -1;
	now = now_ms();
	return next <= now ? 0 : (int)(next - now < 60000 ? next - now : 60000);
}

int main(int argc, char **argv)
{
	struct card *c = &the_card;
	struct backend_opts bo;
	const char *enc_path = NULL, *v;
	char err[512];

	util_set_prog("nitro-card-vsock");
	backend_opts_init(&bo);
	bo.bo_serial = true;
	for (int i = 1; i < argc; i++) {
		if (card_backend_opt(&bo, argc, argv, &i))
			continue;
		if ((v = card_opt("--enclave-socket", argc, argv, &i, usage_text))) {
			if (!*v)
				die_usage("--enclave-socket: empty path\n%s", usage_text);
			enc_path = v;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else {
			die_usage("unknown argument '%s'\n%s", argv[i], usage_text);
		}
	}
	card_backend_opts_done(&bo, "vsock", usage_text);
	if (card_loop_init(&c->c_loop, &c->c_usr1, print_stats, c, err, sizeof(err)) < 0)
		die("%s", err);
	route_init(&c->c_rt, vm_up, c);
	con_init(&c->c_con, con_emit, c);
	if (vm_init(&c->c_parent, c, &parent_ops, VSOCK_PARENT_CID, err, sizeof(err)) < 0)
		die("%s", err);
	/* The enclaves' socket first: once the parent's exists (what a launcher waits for),
	 * both do. */
	if (enc_path) {
		if (acceptor_start(&c->c_enc, &c->c_loop, enc_path, MAX_ENCLAVES, on_enclave_conn,
				   c, err, sizeof(err)) < 0)
			die("%s", err);
		c->c_enc_on = true;
	}
	if (backend_start(&c->c_backend, &c->c_parent.v_dev, &c->c_loop, &bo, err, sizeof(err)) < 0)
		die("%s", err);
	/* Always jailed by its own allow-list from here on (NITRO_SECCOMP may name another). */
	const char *kind = getenv("NITRO_SECCOMP");
	if (sandbox_enter(kind && *kind ? kind : "card-vsock", err, sizeof(err)) < 0)
		die("%s", err);
	int r = 0;
	while (!c->c_loop.lp_stop) {
		r = loop_run_once(&c->c_loop, sweep(c));
		if (r < 0)
			break;
		r = 0;
	}
	if (r < 0)
		warnmsg("event loop: %s", strerror(-r));
	print_stats(c);
	while (c->c_hellos) {
		close(c->c_hellos->hc_fd);
		hello_end(c, c->c_hellos);
	}
	if (c->c_enc_on)
		acceptor_stop(&c->c_enc);
	backend_stop(&c->c_backend);
	while (c->c_enclaves) {
		struct vm *e = c->c_enclaves;
		c->c_enclaves = e->v_next;
		if (e->v_feed)
			feed_close(e->v_feed);
		vm_fini(e);
		free(e);
	}
	vm_fini(&c->c_parent);
	con_fini(&c->c_con);
	loop_fini(&c->c_loop);
	close(c->c_usr1);
	return r < 0 ? 1 : 0;
}
