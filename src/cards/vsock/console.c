/* The debug consoles served at vsock CID 0 (console.h). */
#include "cards/vsock/console.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void con_init(struct con_table *t, void (*emit)(void *ctx, const struct vsock_hdr *h), void *ctx)
{
	memset(t, 0, sizeof(*t));
	t->ct_emit = emit;
	t->ct_ctx = ctx;
}

static int find_con(const struct con_table *t, uint32_t cid)
{
	for (unsigned i = 0; i < CON_MAX; i++)
		if (t->ct_cons[i].c_used && t->ct_cons[i].c_cid == cid)
			return (int)i;
	return -1;
}

/* The packet from the console's side of reader r, without payload. */
static struct vsock_hdr from_con(const struct con_table *t, const struct con_reader *r, uint16_t op)
{
	return (struct vsock_hdr){.src_cid = VSOCK_HYPERVISOR_CID,
				  .dst_cid = VSOCK_PARENT_CID,
				  .src_port = t->ct_cons[r->r_con].c_cid + CON_PORT_BASE,
				  .dst_port = r->r_port,
				  .type = VSOCK_TYPE_STREAM,
				  .op = op,
				  .buf_alloc = CON_BUF_ALLOC,
				  .fwd_cnt = r->r_rx_cnt};
}

static void reader_reset(struct con_table *t, struct con_reader *r)
{
	struct vsock_hdr h = from_con(t, r, VSOCK_OP_RST);
	h.buf_alloc = h.fwd_cnt = 0;
	t->ct_emit(t->ct_ctx, &h);
	r->r_used = false;
}

static void drop_at(struct con_table *t, unsigned i, bool tell)
{
	for (unsigned k = 0; k < CON_MAX_READERS; k++) {
		struct con_reader *r = &t->ct_rd[k];
		if (r->r_used && r->r_con == i) {
			if (tell)
				reader_reset(t, r);
			r->r_used = false;
		}
	}
	free(t->ct_cons[i].c_ring);
	memset(&t->ct_cons[i], 0, sizeof(t->ct_cons[i]));
}

void con_fini(struct con_table *t)
{
	for (unsigned i = 0; i < CON_MAX; i++)
		if (t->ct_cons[i].c_used)
			drop_at(t, i, false);
}

int con_open(struct con_table *t, uint32_t cid)
{
	con_drop(t, cid);
	int at = -1;
	for (unsigned i = 0; i < CON_MAX && at < 0; i++)
		if (!t->ct_cons[i].c_used)
			at = (int)i;
	if (at < 0) { /* evict the oldest ended console */
		for (unsigned i = 0; i < CON_MAX; i++)
			if (!t->ct_cons[i].c_running &&
			    (at < 0 || t->ct_cons[i].c_seq < t->ct_cons[at].c_seq))
				at = (int)i;
		if (at < 0)
			return -ENOSPC;
		drop_at(t, (unsigned)at, true);
		t->ct_count[CS_EVICTED]++;
	}
	uint8_t *ring = malloc(CON_RING);
	if (!ring)
		return -ENOMEM;
	t->ct_cons[at] = (struct console){
	    .c_used = true, .c_running = true, .c_cid = cid, .c_seq = ++t->ct_seq, .c_ring = ring};
	return 0;
}

void con_drop(struct con_table *t, uint32_t cid)
{
	int i = find_con(t, cid);
	if (i >= 0)
		drop_at(t, (unsigned)i, true);
}

bool con_running(const struct con_table *t, uint32_t cid)
{
	int i = find_con(t, cid);
	return i >= 0 && t->ct_cons[i].c_running;
}

void con_feed(struct con_table *t, uint32_t cid, const uint8_t *p, size_t n)
{
	int i = find_con(t, cid);
	if (i < 0 || !t->ct_cons[i].c_running)
		return;
	struct console *c = &t->ct_cons[i];
	t->ct_count[CS_BYTES_IN] += n;
	if (n > CON_RING) { /* only the newest CON_RING bytes can be kept */
		c->c_total += n - CON_RING;
		p += n - CON_RING;
		n = CON_RING;
	}
	while (n) {
		size_t off = (size_t)(c->c_total % CON_RING), k = CON_RING - off;
		k = k < n ? k : n;
		memcpy(c->c_ring + off, p, k);
		c->c_total += k;
		p += k;
		n -= k;
	}
}

void con_stop(struct con_table *t, uint32_t cid)
{
	int i = find_con(t, cid);
	if (i >= 0)
		t->ct_cons[i].c_running = false;
}

void con_parent_gone(struct con_table *t)
{
	for (unsigned k = 0; k < CON_MAX_READERS; k++)
		t->ct_rd[k].r_used = false;
	for (unsigned i = 0; i < CON_MAX; i++)
		if (t->ct_cons[i].c_used && !t->ct_cons[i].c_running)
			drop_at(t, i, false);
}

static struct con_reader *find_reader(struct con_table *t, const struct vsock_hdr *h)
{
	for (unsigned k = 0; k < CON_MAX_READERS; k++) {
		struct con_reader *r = &t->ct_rd[k];
		if (r->r_used && r->r_port == h->src_port &&
		    t->ct_cons[r->r_con].c_cid + CON_PORT_BASE == h->dst_port)
			return r;
	}
	return NULL;
}

static void refuse(struct con_table *t, const struct vsock_hdr *h, unsigned what)
{
	struct vsock_hdr rst = vsock_rst_for(h);
	t->ct_count[what]++;
	t->ct_emit(t->ct_ctx, &rst);
}

static void connect_req(struct con_table *t, const struct vsock_hdr *h)
{
	int ci = h->dst_port >= CON_PORT_BASE ? find_con(t, h->dst_port - CON_PORT_BASE) : -1;
	if (ci < 0) {
		refuse(t, h, CS_REFUSED);
		return;
	}
	unsigned mine = 0;
	int free_at = -1;
	for (unsigned k = 0; k < CON_MAX_READERS; k++) {
		if (!t->ct_rd[k].r_used)
			free_at = free_at < 0 ? (int)k : free_at;
		else if (t->ct_rd[k].r_con == (unsigned)ci)
			mine++;
	}
	if (free_at < 0 || mine >= CON_MAX_READERS_PER) {
		refuse(t, h, CS_REFUSED);
		return;
	}
	const struct console *c = &t->ct_cons[ci];
	t->ct_rd[free_at] = (struct con_reader){
	    .r_used = true,
	    .r_need_response = true,
	    .r_port = h->src_port,
	    .r_con = (unsigned)ci,
	    .r_pos = c->c_total > CON_RING ? c->c_total - CON_RING : 0,
	    .r_peer_buf_alloc = h->buf_alloc,
	    .r_peer_fwd_cnt = h->fwd_cnt,
	};
	t->ct_count[CS_OPENED]++;
}

void con_packet(struct con_table *t, const struct vsock_hdr *h)
{
	struct con_reader *r = find_reader(t, h);
	if (h->op == VSOCK_OP_REQUEST) {
		if (r) /* a port reused without an RST between: the old one ends */
			reader_reset(t, r);
		connect_req(t, h);
		return;
	}
	if (!r) {
		if (h->op != VSOCK_OP_RST)
			refuse(t, h, CS_RESET);
		return;
	}
	r->r_peer_buf_alloc = h->buf_alloc;
	r->r_peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case VSOCK_OP_RST:
		r->r_used = false;
		break;
	case VSOCK_OP_SHUTDOWN:
		if (h->flags & VSOCK_SHUTDOWN_RCV) /* it reads no more: the connection ends */
			reader_reset(t, r);
		break;
	case VSOCK_OP_RW:
		r->r_rx_cnt += h->len; /* dropped: the console is read-only */
		t->ct_count[CS_DROPPED_IN] += h->len;
		if (r->r_rx_cnt - r->r_fwd_sent >= CON_BUF_ALLOC / 2)
			r->r_need_credit = true;
		break;
	case VSOCK_OP_CREDIT_REQUEST:
		r->r_need_credit = true;
		break;
	default: /* RESPONSE (a console never connects), CREDIT_UPDATE (taken above) */
		break;
	}
}

/* The parent's room for more payload on r (its buf_alloc less what it has not taken). */
static uint32_t credit(const struct con_reader *r)
{
	uint32_t in_flight = r->r_tx_cnt - r->r_peer_fwd_cnt;
	return in_flight >= r->r_peer_buf_alloc ? 0 : r->r_peer_buf_alloc - in_flight;
}

/* What reader r would send next: an op, or 0. */
static uint16_t next_op(const struct con_table *t, const struct con_reader *r, uint32_t room)
{
	if (!r->r_used)
		return 0;
	if (r->r_need_response)
		return VSOCK_OP_RESPONSE;
	if (r->r_need_credit)
		return VSOCK_OP_CREDIT_UPDATE;
	const struct console *c = &t->ct_cons[r->r_con];
	if (r->r_pos < c->c_total)
		return room && credit(r) ? VSOCK_OP_RW : 0;
	return c->c_running ? 0 : VSOCK_OP_SHUTDOWN;
}

bool con_pending(const struct con_table *t, uint32_t room)
{
	for (unsigned k = 0; k < CON_MAX_READERS; k++)
		if (next_op(t, &t->ct_rd[k], room))
			return true;
	return false;
}

int con_next(struct con_table *t, uint32_t room, struct vsock_hdr *h, const uint8_t **p1,
	     uint32_t *n1, const uint8_t **p2, uint32_t *n2)
{
	*n1 = *n2 = 0;
	*p1 = *p2 = NULL;
	for (unsigned i = 0; i < CON_MAX_READERS; i++) {
		unsigned k = (t->ct_next + i) % CON_MAX_READERS;
		struct con_reader *r = &t->ct_rd[k];
		uint16_t op = next_op(t, r, room);
		if (!op)
			continue;
		t->ct_next = (k + 1) % CON_MAX_READERS;
		*h = from_con(t, r, op);
		r->r_fwd_sent = r->r_rx_cnt;
		switch (op) {
		case VSOCK_OP_RESPONSE:
			r->r_need_response = false;
			break;
		case VSOCK_OP_CREDIT_UPDATE:
			r->r_need_credit = false;
			break;
		case VSOCK_OP_SHUTDOWN:
			h->flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
			r->r_used = false; /* the parent's RST that follows finds nothing */
			break;
		default: { /* RW */
			const struct console *c = &t->ct_cons[r->r_con];
			uint64_t oldest = c->c_total > CON_RING ? c->c_total - CON_RING : 0;
			if (r->r_pos < oldest) {
				t->ct_count[CS_LOST] += oldest - r->r_pos;
				r->r_pos = oldest;
			}
			uint64_t n = c->c_total - r->r_pos;
			uint32_t cr = credit(r);
			n = n < room ? n : room;
			n = n < cr ? n : cr;
			size_t off = (size_t)(r->r_pos % CON_RING);
			*p1 = c->c_ring + off;
			*n1 = (uint32_t)(n < CON_RING - off ? n : CON_RING - off);
			*p2 = c->c_ring;
			*n2 = (uint32_t)n - *n1;
			h->len = (uint32_t)n;
			r->r_pos += n;
			r->r_tx_cnt += (uint32_t)n;
			t->ct_count[CS_BYTES_OUT] += n;
			break;
		}
		}
		return 1;
	}
	return 0;
}
