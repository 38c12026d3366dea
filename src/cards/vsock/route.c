/* The vsock card's routing core: header checks, routing, connection table (route.h). */
#include "cards/vsock/route.h"

#include <string.h>

#include "lib/le.h"

void vsock_hdr_get(const uint8_t b[VSOCK_HDR_LEN], struct vsock_hdr *h)
{
	h->src_cid = le64_get(b);
	h->dst_cid = le64_get(b + 8);
	h->src_port = le32_get(b + 16);
	h->dst_port = le32_get(b + 20);
	h->len = le32_get(b + 24);
	h->type = le16_get(b + 28);
	h->op = le16_get(b + 30);
	h->flags = le32_get(b + 32);
	h->buf_alloc = le32_get(b + 36);
	h->fwd_cnt = le32_get(b + 40);
}

void vsock_hdr_put(uint8_t b[VSOCK_HDR_LEN], const struct vsock_hdr *h)
{
	le64_put(b, h->src_cid);
	le64_put(b + 8, h->dst_cid);
	le32_put(b + 16, h->src_port);
	le32_put(b + 20, h->dst_port);
	le32_put(b + 24, h->len);
	le16_put(b + 28, h->type);
	le16_put(b + 30, h->op);
	le32_put(b + 32, h->flags);
	le32_put(b + 36, h->buf_alloc);
	le32_put(b + 40, h->fwd_cnt);
}

struct vsock_hdr vsock_rst_for(const struct vsock_hdr *h)
{
	return (struct vsock_hdr){.src_cid = h->dst_cid,
				  .dst_cid = h->src_cid,
				  .src_port = h->dst_port,
				  .dst_port = h->src_port,
				  .type = VSOCK_TYPE_STREAM,
				  .op = VSOCK_OP_RST};
}

const char *route_reason_name(enum route_reason r)
{
	static const char *const names[RR_NUM] = {
	    [RR_FORWARDED] = "forwarded",
	    [RR_SHORT] = "short",
	    [RR_LEN] = "bad-len",
	    [RR_SPOOF] = "spoofed-src",
	    [RR_TYPE] = "bad-type",
	    [RR_OP] = "bad-op",
	    [RR_FLAGS] = "bad-flags",
	    [RR_UNROUTABLE] = "unroutable",
	    [RR_TABLE_FULL] = "table-full",
	    [RR_UNROUTED_RST] = "unrouted-rst",
	    [RR_ENCLAVE_FULL] = "enclave-full",
	    [RR_LOCAL] = "to-cid-0",
	};
	return (unsigned)r < RR_NUM ? names[r] : "?";
}

void route_init(struct route_table *t, bool (*vm_up)(void *ctx, uint64_t cid), void *ctx)
{
	memset(t, 0, sizeof(*t));
	t->rt_vm_up = vm_up;
	t->rt_ctx = ctx;
}

/* An enclave CID a hello may claim (enclave_wire.h): above 3, below U32_MAX. */
static bool enclave_cid_ok(uint64_t cid)
{
	return cid > VSOCK_PARENT_CID && cid < UINT32_MAX;
}

/* May a packet from sender reach dst? */
static bool routable(const struct route_table *t, uint64_t sender, uint64_t dst)
{
	if (sender == VSOCK_PARENT_CID)
		return enclave_cid_ok(dst) && t->rt_vm_up(t->rt_ctx, dst);
	return enclave_cid_ok(sender) && dst == VSOCK_PARENT_CID &&
	       t->rt_vm_up(t->rt_ctx, VSOCK_PARENT_CID);
}

/* The connection of h (either direction) as the table keys it. */
static struct route_conn key_of(const struct vsock_hdr *h)
{
	bool from_parent = h->src_cid == VSOCK_PARENT_CID;
	return (struct route_conn){
	    .rc_parent_port = from_parent ? h->src_port : h->dst_port,
	    .rc_enclave_cid = (uint32_t)(from_parent ? h->dst_cid : h->src_cid),
	    .rc_enclave_port = from_parent ? h->dst_port : h->src_port,
	};
}

static int find(const struct route_table *t, const struct route_conn *k)
{
	for (unsigned i = 0; i < t->rt_n; i++)
		if (!memcmp(&t->rt_conns[i], k, sizeof(*k)))
			return (int)i;
	return -1;
}

static void remove_at(struct route_table *t, unsigned i)
{
	t->rt_conns[i] = t->rt_conns[--t->rt_n];
}

static enum route_verdict verdict(struct route_table *t, enum route_reason r,
				  enum route_reason *why)
{
	t->rt_count[r]++;
	*why = r;
	if (r == RR_FORWARDED)
		return ROUTE_FORWARD;
	if (r == RR_LOCAL)
		return ROUTE_LOCAL;
	return r == RR_UNROUTABLE || r == RR_TABLE_FULL || r == RR_ENCLAVE_FULL ? ROUTE_RST
										: ROUTE_DROP;
}

enum route_verdict route_packet(struct route_table *t, uint64_t sender, const uint8_t *hdr,
				uint64_t chain_len, struct vsock_hdr *h, struct vsock_hdr *rst,
				enum route_reason *why)
{
	memset(h, 0, sizeof(*h));
	if (chain_len < VSOCK_HDR_LEN)
		return verdict(t, RR_SHORT, why);
	vsock_hdr_get(hdr, h);
	if (h->len > VSOCK_MAX_PAYLOAD)
		return verdict(t, RR_LEN, why);
	if (h->len > chain_len - VSOCK_HDR_LEN)
		return verdict(t, RR_SHORT, why);
	if (h->src_cid != sender)
		return verdict(t, RR_SPOOF, why);
	if (h->type != VSOCK_TYPE_STREAM)
		return verdict(t, RR_TYPE, why);
	if (h->op < VSOCK_OP_REQUEST || h->op > VSOCK_OP_CREDIT_REQUEST)
		return verdict(t, RR_OP, why);
	if (h->len && h->op != VSOCK_OP_RW)
		return verdict(t, RR_LEN, why);
	uint32_t allowed =
	    h->op == VSOCK_OP_SHUTDOWN ? VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND : 0;
	if (h->flags & ~allowed)
		return verdict(t, RR_FLAGS, why);
	if (sender == VSOCK_PARENT_CID && h->dst_cid == VSOCK_HYPERVISOR_CID)
		return verdict(t, RR_LOCAL, why);
	if (!routable(t, sender, h->dst_cid)) {
		if (h->op == VSOCK_OP_RST)
			return verdict(t, RR_UNROUTED_RST, why);
		*rst = vsock_rst_for(h);
		return verdict(t, RR_UNROUTABLE, why);
	}
	struct route_conn k = key_of(h);
	int at = find(t, &k);
	if (h->op == VSOCK_OP_REQUEST && at < 0) {
		if (t->rt_n >= VSOCK_MAX_CONNS) {
			*rst = vsock_rst_for(h);
			return verdict(t, RR_TABLE_FULL, why);
		}
		unsigned mine = 0;
		for (unsigned i = 0; i < t->rt_n; i++)
			mine += t->rt_conns[i].rc_enclave_cid == k.rc_enclave_cid;
		if (mine >= VSOCK_MAX_CONNS_PER_ENCLAVE) {
			*rst = vsock_rst_for(h);
			return verdict(t, RR_ENCLAVE_FULL, why);
		}
		t->rt_conns[t->rt_n++] = k;
	} else if (h->op == VSOCK_OP_RST && at >= 0) {
		remove_at(t, (unsigned)at);
	}
	return verdict(t, RR_FORWARDED, why);
}

void route_forget(struct route_table *t, const struct vsock_hdr *h)
{
	if (h->src_cid != VSOCK_PARENT_CID && h->dst_cid != VSOCK_PARENT_CID)
		return;
	struct route_conn k = key_of(h);
	int at = find(t, &k);
	if (at >= 0)
		remove_at(t, (unsigned)at);
}

unsigned route_vm_gone(struct route_table *t, uint64_t cid,
		       void (*emit)(void *ctx, const struct vsock_hdr *rst), void *ctx)
{
	unsigned n = 0;
	for (unsigned i = 0; i < t->rt_n;) {
		const struct route_conn *c = &t->rt_conns[i];
		bool parent = cid == VSOCK_PARENT_CID;
		if (!parent && c->rc_enclave_cid != cid) {
			i++;
			continue;
		}
		/* From the VM that went away, to the one that stays. */
		struct vsock_hdr peer = {
		    .src_cid = parent ? c->rc_enclave_cid : VSOCK_PARENT_CID,
		    .dst_cid = parent ? VSOCK_PARENT_CID : c->rc_enclave_cid,
		    .src_port = parent ? c->rc_enclave_port : c->rc_parent_port,
		    .dst_port = parent ? c->rc_parent_port : c->rc_enclave_port};
		struct vsock_hdr rst = vsock_rst_for(&peer);
		emit(ctx, &rst);
		n++;
		remove_at(t, i);
	}
	return n;
}
