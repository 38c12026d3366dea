/* libFuzzer target for the vsock card's routing core (src/cards/vsock/route.c), its debug
 * consoles (src/cards/vsock/console.c) and the enclave hello's checks
 * (src/lib/enclave_wire.c). The input is a run of records, each
 * u8 op, u16 chain length, then 44 header bytes: op % 8 < 6 routes the packet from the
 * sender op % 4 (0: the parent, 1..3: enclaves 16..18, of which 18 is not attached);
 * 6 and 7 make VM (op >> 3) % 4 go away; op % 16 == 13 makes the card forget the header's
 * connection (route_forget); op % 16 == 14 writes the header's bytes into enclave 16's
 * console (debug), op % 32 == 30 ends it and op % 64 == 46 opens it again. The parent's
 * packets to CID 0 go to the consoles, and every packet they have then comes out for an rx
 * buffer of (chain length % 5000) bytes. The first bytes are also parsed as a hello arriving a byte
 * at a time (enw_hello_parse) and checked as one. Invariants: a forwarded packet's source is its
 * sender, its destination is the other side of parent <-> enclave and attached, its length fits the
 * chain and the maximum; an RST goes back to the sender about its own packet; the table stays
 * within its bounds (each enclave's share too) and holds only parent <-> attached-at-the-time
 * enclave connections; every RST a VM's departure emits goes to the other side of one of its
 * connections. A console packet is from CID 0, port CID + 10000 of a console, to the parent; never
 * longer than the buffer, the bytes kept or the reader's credit; its payload lies in the ring.
 */
// fuzz-extra: src/cards/vsock/route.c src/cards/vsock/console.c
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vsock/console.h"
#include "cards/vsock/route.h"
#include "fuzz.h"
#include "lib/enclave_wire.h"

#define REC (3 + VSOCK_HDR_LEN)

static bool up(void *ctx, uint64_t cid)
{
	(void)ctx;
	return cid == VSOCK_PARENT_CID || cid == 16 || cid == 17;
}

static const uint64_t senders[4] = {VSOCK_PARENT_CID, 16, 17, 18};
static uint64_t gone_cid;

static void emit(void *ctx, const struct vsock_hdr *rst)
{
	(void)ctx;
	CHECK(rst->op == VSOCK_OP_RST && rst->len == 0);
	CHECK(rst->src_cid == gone_cid);
	if (gone_cid == VSOCK_PARENT_CID)
		CHECK(rst->dst_cid > VSOCK_PARENT_CID && rst->dst_cid < UINT32_MAX);
	else
		CHECK(rst->dst_cid == VSOCK_PARENT_CID);
}

static void con_rst(void *ctx, const struct vsock_hdr *h)
{
	(void)ctx;
	CHECK(h->op == VSOCK_OP_RST && h->len == 0 && h->dst_cid == VSOCK_PARENT_CID &&
	      h->src_cid == VSOCK_HYPERVISOR_CID);
}

/* Every packet the consoles have, for buffers of room bytes. */
static void con_drain(struct con_table *ct, uint32_t room)
{
	struct vsock_hdr h;
	const uint8_t *a, *b;
	uint32_t na, nb;
	for (unsigned k = 0;
	     k < 4 * CON_MAX_READERS + 1024 && con_next(ct, room, &h, &a, &na, &b, &nb); k++) {
		CHECK(h.src_cid == VSOCK_HYPERVISOR_CID && h.dst_cid == VSOCK_PARENT_CID);
		CHECK(h.src_port == 16 + CON_PORT_BASE && h.type == VSOCK_TYPE_STREAM);
		CHECK(h.len <= room && h.len <= CON_RING && na + nb == h.len);
		CHECK(h.len == 0 || h.op == VSOCK_OP_RW);
		const uint8_t *ring = ct->ct_cons[0].c_ring;
		CHECK(!na || (a >= ring && a + na <= ring + CON_RING));
		CHECK(!nb || (b == ring && nb <= CON_RING));
		if (h.len)
			(void)*(volatile const uint8_t *)a; /* the bytes are there (ASan) */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct route_table t;
	static struct con_table ct;
	route_init(&t, up, NULL);
	con_init(&ct, con_rst, NULL);
	CHECK(con_open(&ct, 16) == 0);
	/* The hello's bytes as they arrive: the answer only ever moves from "need more" to
	 * complete or refused, and the bytes needed are exactly what is missing. */
	bool refused = false;
	for (size_t got = 0; got <= size && got <= ENW_HELLO_MSG_LEN; got++) {
		struct enw_hello h;
		int need = enw_hello_parse(data, got, &h);
		CHECK(!refused || need == -EPROTO);
		refused = need == -EPROTO;
		CHECK(need == -EPROTO || need == (int)(ENW_HELLO_MSG_LEN - got));
		if (need == 0)
			CHECK(!memcmp(&h, data + 12, sizeof(h)));
		if (need == -EPROTO)
			CHECK(got >= 12);
	}
	if (size >= sizeof(struct enw_hello)) {
		struct enw_hello h;
		memcpy(&h, data, sizeof(h));
		if (enw_hello_check(&h) == 0)
			CHECK(h.cid > 3 && h.cid < UINT32_MAX &&
			      memchr(h.module_id, 0, ENW_ID_LEN));
	}
	for (size_t off = 0; off + REC <= size; off += REC) {
		const uint8_t *r = data + off;
		uint8_t op = r[0];
		uint64_t chain = (uint64_t)(r[1] | r[2] << 8) * 2; /* up to 128 KiB */
		if (op % 8 >= 6) {
			gone_cid = senders[(op >> 3) % 4];
			unsigned before = t.rt_n;
			unsigned n = route_vm_gone(&t, gone_cid, emit, NULL);
			CHECK(n <= before && t.rt_n == before - n);
			continue;
		}
		if (op % 64 == 46) {
			CHECK(con_open(&ct, 16) == 0);
			continue;
		}
		if (op % 32 == 30) {
			con_stop(&ct, 16);
			con_drain(&ct, (uint32_t)(chain % 5000));
			continue;
		}
		if (op % 16 == 14) {
			con_feed(&ct, 16, r + 3, chain % (VSOCK_HDR_LEN + 1));
			con_drain(&ct, (uint32_t)(chain % 5000));
			continue;
		}
		if (op % 16 == 13) { /* the card resets the connection of this header itself */
			struct vsock_hdr f;
			vsock_hdr_get(r + 3, &f);
			unsigned before = t.rt_n;
			route_forget(&t, &f);
			CHECK(t.rt_n == before || t.rt_n == before - 1);
			continue;
		}
		uint64_t sender = senders[op % 4];
		struct vsock_hdr h, rst;
		enum route_reason why;
		enum route_verdict v = route_packet(&t, sender, r + 3, chain, &h, &rst, &why);
		CHECK(why < RR_NUM && t.rt_n <= VSOCK_MAX_CONNS);
		if (v == ROUTE_FORWARD) {
			CHECK(why == RR_FORWARDED);
			CHECK(h.src_cid == sender && h.type == VSOCK_TYPE_STREAM);
			CHECK(h.len <= VSOCK_MAX_PAYLOAD &&
			      VSOCK_HDR_LEN + (uint64_t)h.len <= chain);
			CHECK(h.len == 0 || h.op == VSOCK_OP_RW);
			if (sender == VSOCK_PARENT_CID)
				CHECK(h.dst_cid == 16 || h.dst_cid == 17);
			else
				CHECK(h.dst_cid == VSOCK_PARENT_CID && sender != 18);
		} else if (v == ROUTE_LOCAL) {
			CHECK(why == RR_LOCAL && sender == VSOCK_PARENT_CID);
			CHECK(h.dst_cid == VSOCK_HYPERVISOR_CID);
			con_packet(&ct, &h);
			con_drain(&ct, (uint32_t)(chain % 5000));
		} else if (v == ROUTE_RST) {
			CHECK(why == RR_UNROUTABLE || why == RR_TABLE_FULL ||
			      why == RR_ENCLAVE_FULL);
			CHECK(rst.dst_cid == sender && rst.src_cid == h.dst_cid);
			CHECK(rst.dst_port == h.src_port && rst.src_port == h.dst_port);
			CHECK(rst.op == VSOCK_OP_RST && rst.len == 0 && h.op != VSOCK_OP_RST);
		} else {
			CHECK(v == ROUTE_DROP && why != RR_FORWARDED);
		}
		unsigned per[2] = {0, 0};
		for (unsigned i = 0; i < t.rt_n; i++) {
			CHECK(t.rt_conns[i].rc_enclave_cid == 16 ||
			      t.rt_conns[i].rc_enclave_cid == 17);
			per[t.rt_conns[i].rc_enclave_cid - 16]++;
		}
		CHECK(per[0] <= VSOCK_MAX_CONNS_PER_ENCLAVE &&
		      per[1] <= VSOCK_MAX_CONNS_PER_ENCLAVE);
	}
	con_fini(&ct);
	return 0;
}
