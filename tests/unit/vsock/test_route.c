/* Unit tests for the vsock card's routing core (src/cards/vsock/route.c) and the hello's
 * checks (src/lib/enclave_wire.c): the header's wire layout, each check on a packet from a
 * guest (short chains, lengths, spoofed source, type, op, flags), the routing policy
 * (parent <-> its enclaves only; RST for the unroutable, nothing for an RST to nowhere),
 * the connection table (REQUEST adds, RST removes, full table refuses) and the RSTs when a
 * VM goes away.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vsock/route.h"
#include "lib/enclave_wire.h"

/* The VMs attached in these tests: the parent and enclaves 16 and 17. */
static bool up(void *ctx, uint64_t cid)
{
	(void)ctx;
	return cid == VSOCK_PARENT_CID || cid == 16 || cid == 17;
}

static struct route_table *table(void)
{
	static struct route_table t;
	route_init(&t, up, NULL);
	return &t;
}

static struct vsock_hdr pkt(uint64_t src, uint32_t sport, uint64_t dst, uint32_t dport, uint16_t op)
{
	return (struct vsock_hdr){.src_cid = src,
				  .dst_cid = dst,
				  .src_port = sport,
				  .dst_port = dport,
				  .type = VSOCK_TYPE_STREAM,
				  .op = op,
				  .buf_alloc = 262144,
				  .fwd_cnt = 7};
}

/* Routes h from sender with chain_len readable bytes (default: header + len). */
static enum route_verdict go(struct route_table *t, uint64_t sender, const struct vsock_hdr *h,
			     uint64_t chain_len, struct vsock_hdr *rst, enum route_reason *why)
{
	uint8_t b[VSOCK_HDR_LEN];
	struct vsock_hdr got;
	vsock_hdr_put(b, h);
	if (!chain_len)
		chain_len = VSOCK_HDR_LEN + h->len;
	return route_packet(t, sender, b, chain_len, &got, rst, why);
}

static void test_header_layout(void **state)
{
	(void)state;
	struct vsock_hdr h = {0x0102030405060708ull,
			      0x1112131415161718ull,
			      0x21222324,
			      0x31323334,
			      0x41424344,
			      0x5152,
			      0x6162,
			      0x71727374,
			      0x81828384,
			      0x91929394};
	uint8_t b[VSOCK_HDR_LEN];
	vsock_hdr_put(b, &h);
	static const uint8_t want[VSOCK_HDR_LEN] = {
	    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, 0x18, 0x17, 0x16,
	    0x15, 0x14, 0x13, 0x12, 0x11, 0x24, 0x23, 0x22, 0x21, 0x34, 0x33,
	    0x32, 0x31, 0x44, 0x43, 0x42, 0x41, 0x52, 0x51, 0x62, 0x61, 0x74,
	    0x73, 0x72, 0x71, 0x84, 0x83, 0x82, 0x81, 0x94, 0x93, 0x92, 0x91};
	assert_memory_equal(b, want, sizeof(want));
	struct vsock_hdr back;
	vsock_hdr_get(b, &back);
	assert_int_equal(back.src_cid, h.src_cid);
	assert_int_equal(back.dst_cid, h.dst_cid);
	assert_int_equal(back.src_port, h.src_port);
	assert_int_equal(back.dst_port, h.dst_port);
	assert_int_equal(back.len, h.len);
	assert_int_equal(back.type, h.type);
	assert_int_equal(back.op, h.op);
	assert_int_equal(back.flags, h.flags);
	assert_int_equal(back.buf_alloc, h.buf_alloc);
	assert_int_equal(back.fwd_cnt, h.fwd_cnt);
}

static void test_forward_both_ways(void **state)
{
	(void)state;
	struct route_table *t = table();
	struct vsock_hdr rst;
	enum route_reason why;
	struct vsock_hdr h = pkt(16, 1025, 3, 9000, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 16, &h, 0, &rst, &why), ROUTE_FORWARD);
	assert_int_equal(why, RR_FORWARDED);
	assert_int_equal(t->rt_n, 1);
	h = pkt(3, 9000, 16, 1025, VSOCK_OP_RESPONSE);
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_FORWARD);
	h = pkt(3, 9000, 16, 1025, VSOCK_OP_RW);
	h.len = VSOCK_MAX_PAYLOAD;
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_FORWARD);
	/* a chain longer than the packet is fine (the rest is ignored) */
	h.len = 10;
	assert_int_equal(go(t, 3, &h, 4096, &rst, &why), ROUTE_FORWARD);
	h = pkt(16, 1025, 3, 9000, VSOCK_OP_SHUTDOWN);
	h.flags = VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND;
	assert_int_equal(go(t, 16, &h, 0, &rst, &why), ROUTE_FORWARD);
	assert_int_equal(t->rt_n, 1);
	h = pkt(3, 9000, 16, 1025, VSOCK_OP_RST);
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_FORWARD);
	assert_int_equal(t->rt_n, 0);
	assert_int_equal(t->rt_count[RR_FORWARDED], 6);
}

static void test_unroutable_gets_rst(void **state)
{
	(void)state;
	struct route_table *t = table();
	struct vsock_hdr rst;
	enum route_reason why;
	/* enclave -> enclave, enclave -> host, enclave -> absent, parent -> host, parent ->
	 * itself, parent -> absent enclave, parent -> reserved and 64-bit CIDs */
	const uint64_t cases[][2] = {{16, 17},
				     {16, 2},
				     {16, 99},
				     {3, 2},
				     {3, 3},
				     {3, 18},
				     {3, 0xffffffffu},
				     {3, (1ull << 32) | 16},
				     {16, 16},
				     {16, 0},
				     {3, 1}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct vsock_hdr h = pkt(cases[i][0], 5000, cases[i][1], 6000, VSOCK_OP_REQUEST);
		memset(&rst, 0xa5, sizeof(rst));
		assert_int_equal(go(t, cases[i][0], &h, 0, &rst, &why), ROUTE_RST);
		assert_int_equal(why, RR_UNROUTABLE);
		assert_int_equal(rst.src_cid, cases[i][1]);
		assert_int_equal(rst.dst_cid, cases[i][0]);
		assert_int_equal(rst.src_port, 6000);
		assert_int_equal(rst.dst_port, 5000);
		assert_int_equal(rst.op, VSOCK_OP_RST);
		assert_int_equal(rst.type, VSOCK_TYPE_STREAM);
		assert_int_equal(rst.len, 0);
		assert_int_equal(rst.flags, 0);
		assert_int_equal(rst.buf_alloc, 0);
		/* an RST to nowhere is not answered */
		h.op = VSOCK_OP_RST;
		assert_int_equal(go(t, cases[i][0], &h, 0, &rst, &why), ROUTE_DROP);
		assert_int_equal(why, RR_UNROUTED_RST);
	}
	/* the parent's packets to CID 0 are the card's own (its consoles), whatever the op;
	 * not a connection of the table */
	for (uint16_t op = VSOCK_OP_REQUEST; op <= VSOCK_OP_CREDIT_REQUEST; op++) {
		struct vsock_hdr h = pkt(3, 5000, 0, 10016, op);
		assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_LOCAL);
		assert_int_equal(why, RR_LOCAL);
	}
	assert_int_equal(t->rt_n, 0);
}

static void test_hostile_headers_dropped(void **state)
{
	(void)state;
	struct route_table *t = table();
	struct vsock_hdr rst;
	enum route_reason why;
	struct vsock_hdr h = pkt(16, 1, 3, 9000, VSOCK_OP_RW);
	/* shorter than a header */
	for (uint64_t n = 0; n < VSOCK_HDR_LEN; n++) {
		assert_int_equal(go(t, 16, &h, n, &rst, &why), n == 0 ? ROUTE_FORWARD : ROUTE_DROP);
		if (n)
			assert_int_equal(why, RR_SHORT);
	}
	/* len beyond the chain, beyond the maximum, with wrap-around sizes */
	h.len = 100;
	assert_int_equal(go(t, 16, &h, VSOCK_HDR_LEN + 99, &rst, &why), ROUTE_DROP);
	assert_int_equal(why, RR_SHORT);
	h.len = VSOCK_MAX_PAYLOAD + 1;
	assert_int_equal(go(t, 16, &h, UINT64_MAX, &rst, &why), ROUTE_DROP);
	assert_int_equal(why, RR_LEN);
	h.len = UINT32_MAX;
	assert_int_equal(go(t, 16, &h, UINT64_MAX, &rst, &why), ROUTE_DROP);
	assert_int_equal(why, RR_LEN);
	/* spoofed source: another enclave's CID, the parent's, the host's */
	const uint64_t spoof[] = {17, 3, 2, 16 | (1ull << 32)};
	for (size_t i = 0; i < 4; i++) {
		h = pkt(spoof[i], 1, 3, 9000, VSOCK_OP_REQUEST);
		assert_int_equal(go(t, 16, &h, 0, &rst, &why), ROUTE_DROP);
		assert_int_equal(why, RR_SPOOF);
	}
	h = pkt(16, 1, 17, 9000, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_DROP); /* parent posing as 16 */
	assert_int_equal(why, RR_SPOOF);
	/* type */
	h = pkt(16, 1, 3, 9000, VSOCK_OP_REQUEST);
	for (uint16_t ty = 0; ty < 4; ty++) {
		h.type = ty;
		assert_int_equal(go(t, 16, &h, 0, &rst, &why),
				 ty == VSOCK_TYPE_STREAM ? ROUTE_FORWARD : ROUTE_DROP);
		if (ty != VSOCK_TYPE_STREAM)
			assert_int_equal(why, RR_TYPE);
	}
	/* op */
	const uint16_t bad_ops[] = {VSOCK_OP_INVALID, 8, 0xffff};
	for (size_t i = 0; i < 3; i++) {
		h = pkt(16, 1, 3, 9000, bad_ops[i]);
		assert_int_equal(go(t, 16, &h, 0, &rst, &why), ROUTE_DROP);
		assert_int_equal(why, RR_OP);
	}
	/* payload only on RW */
	for (uint16_t op = VSOCK_OP_REQUEST; op <= VSOCK_OP_CREDIT_REQUEST; op++) {
		h = pkt(16, 1, 3, 9000, op);
		h.len = 1;
		assert_int_equal(go(t, 16, &h, 0, &rst, &why),
				 op == VSOCK_OP_RW ? ROUTE_FORWARD : ROUTE_DROP);
		if (op != VSOCK_OP_RW)
			assert_int_equal(why, RR_LEN);
	}
	/* flags: SHUTDOWN's two bits only */
	for (uint16_t op = VSOCK_OP_REQUEST; op <= VSOCK_OP_CREDIT_REQUEST; op++) {
		h = pkt(16, 1, 3, 9000, op);
		h.flags = op == VSOCK_OP_SHUTDOWN ? 4 : 1;
		assert_int_equal(go(t, 16, &h, 0, &rst, &why), ROUTE_DROP);
		assert_int_equal(why, RR_FLAGS);
	}
}

/* Enclaves 16..23 and the parent, for the table's bounds. */
static bool up_many(void *ctx, uint64_t cid)
{
	(void)ctx;
	return cid == VSOCK_PARENT_CID || (cid >= 16 && cid < 24);
}

static void test_table_bounded(void **state)
{
	(void)state;
	static struct route_table t_;
	struct route_table *t = &t_;
	route_init(t, up_many, NULL);
	struct vsock_hdr rst;
	enum route_reason why;
	unsigned per = VSOCK_MAX_CONNS / VSOCK_MAX_CONNS_PER_ENCLAVE;
	for (uint32_t p = 0; p < VSOCK_MAX_CONNS; p++) {
		uint64_t e = 16 + p % per;
		struct vsock_hdr h = pkt(e, 2000 + p, 3, 9000, VSOCK_OP_REQUEST);
		assert_int_equal(go(t, e, &h, 0, &rst, &why), ROUTE_FORWARD);
		/* a repeated REQUEST is not a second entry */
		assert_int_equal(go(t, e, &h, 0, &rst, &why), ROUTE_FORWARD);
	}
	assert_int_equal(t->rt_n, VSOCK_MAX_CONNS);
	struct vsock_hdr h = pkt(3, 7, 23, 8, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_RST);
	assert_int_equal(why, RR_TABLE_FULL);
	assert_int_equal(rst.dst_cid, 3);
	assert_int_equal(rst.dst_port, 7);
	/* data on a known connection still flows */
	h = pkt(3, 9000, 16, 2000, VSOCK_OP_RW);
	h.len = 5;
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_FORWARD);
	/* an RST frees an entry */
	h = pkt(3, 9000, 16, 2000, VSOCK_OP_RST);
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_FORWARD);
	assert_int_equal(t->rt_n, VSOCK_MAX_CONNS - 1);
	h = pkt(3, 7, 23, 8, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_FORWARD);
}

/* One enclave cannot take the whole table: its connections (whoever opened them) stop at
 * VSOCK_MAX_CONNS_PER_ENCLAVE; the parent and the other enclaves go on connecting. */
static void test_enclave_share(void **state)
{
	(void)state;
	struct route_table *t = table();
	struct vsock_hdr rst, h;
	enum route_reason why;
	for (uint32_t p = 0; p < VSOCK_MAX_CONNS_PER_ENCLAVE; p++) {
		h = p % 2 ? pkt(16, 2000 + p, 3, 9000, VSOCK_OP_REQUEST)
			  : pkt(3, 2000 + p, 16, 9000, VSOCK_OP_REQUEST);
		assert_int_equal(go(t, h.src_cid, &h, 0, &rst, &why), ROUTE_FORWARD);
	}
	h = pkt(16, 1, 3, 9000, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 16, &h, 0, &rst, &why), ROUTE_RST);
	assert_int_equal(why, RR_ENCLAVE_FULL);
	assert_int_equal(rst.dst_cid, 16);
	assert_int_equal(rst.dst_port, 1);
	h = pkt(3, 1, 16, 9000, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_RST);
	assert_int_equal(why, RR_ENCLAVE_FULL);
	h = pkt(17, 1, 3, 9000, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 17, &h, 0, &rst, &why), ROUTE_FORWARD);
	h = pkt(3, 5, 17, 6, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 3, &h, 0, &rst, &why), ROUTE_FORWARD);
	/* 16 closes one: room for one more */
	h = pkt(16, 2001, 3, 9000, VSOCK_OP_RST);
	assert_int_equal(go(t, 16, &h, 0, &rst, &why), ROUTE_FORWARD);
	h = pkt(16, 1, 3, 9000, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 16, &h, 0, &rst, &why), ROUTE_FORWARD);
	assert_int_equal(t->rt_count[RR_ENCLAVE_FULL], 2);
}

/* route_forget: the card reset a connection itself (its packet could not be delivered). */
static void test_forget(void **state)
{
	(void)state;
	struct route_table *t = table();
	struct vsock_hdr rst;
	enum route_reason why;
	struct vsock_hdr a = pkt(3, 10, 16, 20, VSOCK_OP_REQUEST);
	struct vsock_hdr b = pkt(17, 30, 3, 40, VSOCK_OP_REQUEST);
	assert_int_equal(go(t, 3, &a, 0, &rst, &why), ROUTE_FORWARD);
	assert_int_equal(go(t, 17, &b, 0, &rst, &why), ROUTE_FORWARD);
	struct vsock_hdr other = pkt(3, 10, 17, 20, VSOCK_OP_RW); /* no such connection */
	route_forget(t, &other);
	assert_int_equal(t->rt_n, 2);
	struct vsock_hdr rw = pkt(16, 20, 3, 10, VSOCK_OP_RW); /* a's, other direction */
	route_forget(t, &rw);
	assert_int_equal(t->rt_n, 1);
	route_forget(t, &b);
	assert_int_equal(t->rt_n, 0);
	route_forget(t, &b);
	assert_int_equal(t->rt_n, 0);
}

struct emitted {
	unsigned n;
	struct vsock_hdr h[8];
};

static void emit(void *ctx, const struct vsock_hdr *rst)
{
	struct emitted *e = ctx;
	assert_true(e->n < 8);
	e->h[e->n++] = *rst;
}

static void test_vm_gone(void **state)
{
	(void)state;
	struct route_table *t = table();
	struct vsock_hdr rst;
	enum route_reason why;
	struct vsock_hdr reqs[] = {pkt(16, 100, 3, 9000, VSOCK_OP_REQUEST),
				   pkt(3, 200, 16, 5000, VSOCK_OP_REQUEST),
				   pkt(17, 300, 3, 9000, VSOCK_OP_REQUEST)};
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(go(t, reqs[i].src_cid, &reqs[i], 0, &rst, &why), ROUTE_FORWARD);
	struct emitted e = {0};
	assert_int_equal(route_vm_gone(t, 16, emit, &e), 2);
	assert_int_equal(e.n, 2);
	assert_int_equal(t->rt_n, 1);
	for (unsigned i = 0; i < 2; i++) {
		/* to the parent, from the enclave's side of each connection */
		assert_int_equal(e.h[i].dst_cid, 3);
		assert_int_equal(e.h[i].src_cid, 16);
		assert_int_equal(e.h[i].op, VSOCK_OP_RST);
		bool first = e.h[i].dst_port == 9000;
		assert_int_equal(e.h[i].src_port, first ? 100 : 5000);
		if (!first)
			assert_int_equal(e.h[i].dst_port, 200);
	}
	/* the parent gone: RSTs to the remaining enclave */
	e.n = 0;
	assert_int_equal(route_vm_gone(t, 3, emit, &e), 1);
	assert_int_equal(e.h[0].src_cid, 3);
	assert_int_equal(e.h[0].src_port, 9000);
	assert_int_equal(e.h[0].dst_cid, 17);
	assert_int_equal(e.h[0].dst_port, 300);
	assert_int_equal(t->rt_n, 0);
	assert_int_equal(route_vm_gone(t, 17, emit, &e), 0);
}

static struct enw_hello good_hello(void)
{
	struct enw_hello h;
	memset(&h, 0, sizeof(h));
	h.version = ENW_VERSION;
	h.cid = 16;
	strcpy(h.module_id, "i-0123456789abcdef0-enc0123456789abcdef");
	return h;
}

static void test_hello_check(void **state)
{
	(void)state;
	struct enw_hello h = good_hello();
	assert_int_equal(enw_hello_check(&h), 0);
	h.flags = ENW_FLAG_DEBUG;
	assert_int_equal(enw_hello_check(&h), 0);
	h.flags = 2;
	assert_int_equal(enw_hello_check(&h), EINVAL);
	h = good_hello();
	h.version = 2;
	assert_int_equal(enw_hello_check(&h), EPROTONOSUPPORT);
	const uint64_t bad_cids[] = {0, 1, 2, 3, 0xffffffffull, 1ull << 32, UINT64_MAX};
	for (size_t i = 0; i < 7; i++) {
		h = good_hello();
		h.cid = bad_cids[i];
		assert_int_equal(enw_hello_check(&h), EINVAL);
	}
	h = good_hello();
	h.cid = 0xfffffffeull;
	assert_int_equal(enw_hello_check(&h), 0);
	memset(h.module_id, 'x', sizeof(h.module_id));
	assert_int_equal(enw_hello_check(&h), EINVAL);
}

/* enw_hello_parse: the hello taken a byte at a time, and what is not a hello refused as
 * soon as its header shows it. */
static void test_hello_parse(void **state)
{
	(void)state;
	uint8_t m[ENW_HELLO_MSG_LEN + 1];
	struct enw_hello h = good_hello(), got;
	uint32_t hdr[3] = {ENW_HELLO, 1, sizeof(h)};
	memcpy(m, hdr, 12);
	memcpy(m + 12, &h, sizeof(h));
	for (size_t n = 0; n < ENW_HELLO_MSG_LEN; n++)
		assert_int_equal(enw_hello_parse(m, n, &got), ENW_HELLO_MSG_LEN - n);
	memset(&got, 0, sizeof(got));
	assert_int_equal(enw_hello_parse(m, ENW_HELLO_MSG_LEN, &got), 0);
	assert_memory_equal(&got, &h, sizeof(h));
	assert_int_equal(enw_hello_parse(m, ENW_HELLO_MSG_LEN, NULL), 0);
	assert_int_equal(enw_hello_parse(m, ENW_HELLO_MSG_LEN + 1, &got), -EPROTO);
	const uint32_t bad[][3] = {
	    {3, 1, sizeof(h)},		 {ENW_HELLO, 1, sizeof(h) - 1},
	    {ENW_HELLO, 1, 0xffffffffu}, {ENW_HELLO, 2, sizeof(h)},
	    {ENW_HELLO, 5, sizeof(h)},	 {ENW_HELLO | 1u << 16, 1, sizeof(h)}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(m, bad[i], 12);
		assert_int_equal(enw_hello_parse(m, 12, &got), -EPROTO);
		assert_int_equal(enw_hello_parse(m, ENW_HELLO_MSG_LEN, &got), -EPROTO);
	}
	/* NEED_REPLY and other high flags are ignored, like vhost-user's */
	uint32_t ok[3] = {ENW_HELLO, 1 | 8, sizeof(h)};
	memcpy(m, ok, 12);
	assert_int_equal(enw_hello_parse(m, ENW_HELLO_MSG_LEN, &got), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_header_layout),
	    cmocka_unit_test(test_forward_both_ways),
	    cmocka_unit_test(test_unroutable_gets_rst),
	    cmocka_unit_test(test_hostile_headers_dropped),
	    cmocka_unit_test(test_table_bounded),
	    cmocka_unit_test(test_enclave_share),
	    cmocka_unit_test(test_forget),
	    cmocka_unit_test(test_vm_gone),
	    cmocka_unit_test(test_hello_check),
	    cmocka_unit_test(test_hello_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
