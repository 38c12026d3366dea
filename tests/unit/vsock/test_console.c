/* Unit tests for the vsock card's debug consoles (src/cards/vsock/console.c): the ring's
 * bound and wrap, a reader's RESPONSE first, the kept bytes then live ones, credit, a reader
 * that falls behind the ring, read-only consoles and their CREDIT_UPDATEs, end of stream,
 * refusals and the bounds on readers and consoles, eviction and CID reuse.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cards/vsock/console.h"

static struct vsock_hdr rsts[256];
static unsigned nrst;

static void emit(void *ctx, const struct vsock_hdr *h)
{
	(void)ctx;
	assert_int_equal(h->op, VSOCK_OP_RST);
	assert_int_equal(h->dst_cid, VSOCK_PARENT_CID);
	assert_int_equal(h->src_cid, VSOCK_HYPERVISOR_CID);
	assert_true(nrst < 256);
	rsts[nrst++] = *h;
}

static struct con_table *table(void)
{
	static struct con_table t;
	con_init(&t, emit, NULL);
	nrst = 0;
	return &t;
}

static void from_parent(struct con_table *t, uint32_t port, uint32_t dport, uint16_t op,
			uint32_t len, uint32_t buf_alloc, uint32_t fwd_cnt)
{
	struct vsock_hdr h = {.src_cid = 3,
			      .dst_cid = 0,
			      .src_port = port,
			      .dst_port = dport,
			      .len = len,
			      .type = VSOCK_TYPE_STREAM,
			      .op = op,
			      .buf_alloc = buf_alloc,
			      .fwd_cnt = fwd_cnt};
	con_packet(t, &h);
}

/* The next packet for a buffer of room bytes; its payload copied to out. */
static int next(struct con_table *t, uint32_t room, struct vsock_hdr *h, uint8_t *out)
{
	const uint8_t *a, *b;
	uint32_t na, nb;
	int r = con_next(t, room, h, &a, &na, &b, &nb);
	if (r && out) {
		memcpy(out, a, na);
		memcpy(out + na, b, nb);
	}
	if (r)
		assert_int_equal(na + nb, h->len);
	return r;
}

static void test_history_live_and_end(void **state)
{
	(void)state;
	struct con_table *t = table();
	assert_int_equal(con_open(t, 16), 0);
	assert_true(con_running(t, 16));
	con_feed(t, 16, (const uint8_t *)"boot\n", 5);
	from_parent(t, 1000, 10016, VSOCK_OP_REQUEST, 0, 262144, 0);
	struct vsock_hdr h;
	uint8_t b[100];
	assert_int_equal(next(t, 4096, &h, NULL), 1);
	assert_int_equal(h.op, VSOCK_OP_RESPONSE);
	assert_int_equal(h.src_port, 10016);
	assert_int_equal(h.dst_port, 1000);
	assert_int_equal(h.buf_alloc, CON_BUF_ALLOC);
	assert_int_equal(next(t, 4096, &h, b), 1);
	assert_int_equal(h.op, VSOCK_OP_RW);
	assert_int_equal(h.len, 5);
	assert_memory_equal(b, "boot\n", 5);
	assert_int_equal(next(t, 4096, &h, NULL), 0);
	assert_false(con_pending(t, 4096));
	con_feed(t, 16, (const uint8_t *)"live", 4);
	assert_int_equal(next(t, 3, &h, b), 1); /* a small buffer: split */
	assert_int_equal(h.len, 3);
	assert_int_equal(next(t, 3, &h, b + 3), 1);
	assert_int_equal(h.len, 1);
	assert_memory_equal(b, "live", 4);
	con_feed(t, 99, (const uint8_t *)"x", 1); /* no such console */
	con_feed(t, 16, (const uint8_t *)"bye", 3);
	con_stop(t, 16);
	con_feed(t, 16, (const uint8_t *)"after", 5); /* ended: not taken */
	assert_int_equal(next(t, 4096, &h, b), 1);
	assert_int_equal(h.len, 3);
	assert_int_equal(next(t, 4096, &h, NULL), 1);
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	assert_int_equal(h.flags, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
	assert_int_equal(next(t, 4096, &h, NULL), 0);
	/* its RST afterwards finds nothing and is not answered */
	from_parent(t, 1000, 10016, VSOCK_OP_RST, 0, 0, 0);
	assert_int_equal(nrst, 0);
	/* kept after the end: a new reader gets it all, then the end */
	from_parent(t, 1001, 10016, VSOCK_OP_REQUEST, 0, 262144, 0);
	assert_int_equal(next(t, 4096, &h, NULL), 1);
	assert_int_equal(next(t, 4096, &h, b), 1);
	assert_int_equal(h.len, 12);
	assert_memory_equal(b, "boot\nlivebye", 12);
	assert_int_equal(next(t, 4096, &h, NULL), 1);
	assert_int_equal(h.op, VSOCK_OP_SHUTDOWN);
	con_fini(t);
}

static void test_ring_bound_and_slow_reader(void **state)
{
	(void)state;
	struct con_table *t = table();
	assert_int_equal(con_open(t, 16), 0);
	static uint8_t big[3 * CON_RING + 123], got[CON_RING];
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 13 + i / 251);
	con_feed(t, 16, big, 1000);
	con_feed(t, 16, big + 1000, sizeof(big) - 1000);
	assert_int_equal(t->ct_cons[0].c_total, sizeof(big));
	from_parent(t, 1, 10016, VSOCK_OP_REQUEST, 0, 1u << 20, 0);
	struct vsock_hdr h;
	assert_int_equal(next(t, 0, &h, NULL), 1); /* RESPONSE fits any buffer */
	uint32_t n = 0;
	while (next(t, 4000, &h, got + n))
		n += h.len;
	assert_int_equal(n, CON_RING); /* exactly the newest CON_RING bytes */
	assert_memory_equal(got, big + sizeof(big) - CON_RING, CON_RING);
	from_parent(t, 1, 10016, VSOCK_OP_RST, 0, 0, 0); /* that reader leaves */
	/* credit: a reader with 100 bytes of room takes 100 and waits */
	from_parent(t, 2, 10016, VSOCK_OP_REQUEST, 0, 100, 0);
	assert_int_equal(next(t, 4000, &h, NULL), 1);
	assert_int_equal(next(t, 4000, &h, NULL), 1);
	assert_int_equal(h.len, 100);
	assert_int_equal(next(t, 4000, &h, NULL), 0);
	/* it falls behind by more than the ring: the bytes in between are lost */
	con_feed(t, 16, big, sizeof(big));
	from_parent(t, 2, 10016, VSOCK_OP_CREDIT_UPDATE, 0, 100, 100);
	assert_int_equal(next(t, 4000, &h, got), 1);
	assert_int_equal(h.len, 100);
	assert_memory_equal(got, big + sizeof(big) - CON_RING, 100);
	assert_true(t->ct_count[CS_LOST] > 0);
	con_fini(t);
}

static void test_parent_writes_are_dropped(void **state)
{
	(void)state;
	struct con_table *t = table();
	assert_int_equal(con_open(t, 16), 0);
	from_parent(t, 5, 10016, VSOCK_OP_REQUEST, 0, 4096, 0);
	struct vsock_hdr h;
	assert_int_equal(next(t, 4096, &h, NULL), 1);
	for (unsigned i = 0; i < 20; i++)
		from_parent(t, 5, 10016, VSOCK_OP_RW, 4000, 4096, 0);
	unsigned updates = 0;
	while (next(t, 4096, &h, NULL)) {
		assert_int_equal(h.op, VSOCK_OP_CREDIT_UPDATE);
		updates++;
	}
	assert_int_equal(updates, 1); /* one owed at most, with the latest count */
	assert_int_equal(h.fwd_cnt, 80000);
	assert_int_equal(t->ct_cons[0].c_total, 0);
	from_parent(t, 5, 10016, VSOCK_OP_CREDIT_REQUEST, 0, 4096, 0);
	assert_int_equal(next(t, 4096, &h, NULL), 1);
	assert_int_equal(h.op, VSOCK_OP_CREDIT_UPDATE);
	/* the parent stops reading: reset */
	from_parent(t, 5, 10016, VSOCK_OP_SHUTDOWN, 0, 4096, 0);
	assert_int_equal(nrst, 0); /* SEND only would not; RCV does */
	struct vsock_hdr s = {.src_cid = 3,
			      .dst_cid = 0,
			      .src_port = 5,
			      .dst_port = 10016,
			      .type = VSOCK_TYPE_STREAM,
			      .op = VSOCK_OP_SHUTDOWN,
			      .flags = VSOCK_SHUTDOWN_RCV};
	con_packet(t, &s);
	assert_int_equal(nrst, 1);
	assert_int_equal(rsts[0].dst_port, 5);
	assert_false(con_pending(t, 4096));
	con_fini(t);
}

static void test_refusals_and_bounds(void **state)
{
	(void)state;
	struct con_table *t = table();
	assert_int_equal(con_open(t, 16), 0);
	static const uint32_t bad[] = {10017, 61, 0, 9999, 10016 + 65536, UINT32_MAX};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		from_parent(t, 100 + i, bad[i], VSOCK_OP_REQUEST, 0, 4096, 0);
	assert_int_equal(nrst, 6);
	assert_int_equal(rsts[0].src_port, 10017);
	assert_int_equal(rsts[0].dst_port, 100);
	from_parent(t, 200, 10016, VSOCK_OP_RW, 10, 4096, 0); /* no such connection */
	from_parent(t, 201, 10016, VSOCK_OP_RST, 0, 0, 0);    /* not answered */
	assert_int_equal(nrst, 7);
	nrst = 0;
	for (unsigned i = 0; i < CON_MAX_READERS_PER + 2; i++)
		from_parent(t, 300 + i, 10016, VSOCK_OP_REQUEST, 0, 4096, 0);
	assert_int_equal(nrst, 2);
	/* a REQUEST again on a connected port resets the old connection */
	nrst = 0;
	from_parent(t, 300, 10016, VSOCK_OP_REQUEST, 0, 4096, 0);
	assert_int_equal(nrst, 1);
	/* CID reuse: the old console's readers are reset, the new console is empty */
	nrst = 0;
	con_feed(t, 16, (const uint8_t *)"old", 3);
	assert_int_equal(con_open(t, 16), 0);
	assert_int_equal(nrst, CON_MAX_READERS_PER);
	assert_int_equal(t->ct_cons[0].c_total, 0);
	nrst = 0;
	con_drop(t, 16); /* a production enclave takes the CID */
	from_parent(t, 400, 10016, VSOCK_OP_REQUEST, 0, 4096, 0);
	assert_int_equal(nrst, 1);
	con_fini(t);
}

static void test_eviction_and_parent_gone(void **state)
{
	(void)state;
	struct con_table *t = table();
	for (uint32_t i = 0; i < CON_MAX; i++)
		assert_int_equal(con_open(t, 100 + i), 0);
	assert_int_equal(con_open(t, 1000), -ENOSPC); /* all running */
	con_stop(t, 105);
	con_stop(t, 103);
	assert_int_equal(con_open(t, 1000), 0); /* evicts the oldest ended: 103 */
	assert_false(con_running(t, 103));
	from_parent(t, 1, 10103, VSOCK_OP_REQUEST, 0, 4096, 0);
	assert_int_equal(nrst, 1);
	from_parent(t, 2, 10105, VSOCK_OP_REQUEST, 0, 4096, 0); /* kept, ended */
	assert_int_equal(nrst, 1);
	con_parent_gone(t); /* readers forgotten, ended consoles dropped */
	assert_false(con_pending(t, 4096));
	from_parent(t, 3, 10105, VSOCK_OP_REQUEST, 0, 4096, 0);
	assert_int_equal(nrst, 2);
	assert_true(con_running(t, 104));
	con_fini(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_history_live_and_end),
	    cmocka_unit_test(test_ring_bound_and_slow_reader),
	    cmocka_unit_test(test_parent_writes_are_dropped),
	    cmocka_unit_test(test_refusals_and_bounds),
	    cmocka_unit_test(test_eviction_and_parent_gone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
