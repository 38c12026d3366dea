/* The vsock card's routing core (nitro-card-vsock, docs/vsock.md): the virtio-vsock packet
 * header, the checks every packet from a VM passes and the decision where it goes, and the
 * table of the connections the parent has with its enclaves. Pure: no I/O, no guest memory
 * (the card copies the header out of the descriptor chain first).
 *
 * Routing (the whole policy): a packet is forwarded only between the parent (CID 3) and one
 * of this parent's enclaves, by dst_cid; never enclave <-> enclave, never to the host (2),
 * never to anyone else. The parent's packets to CID 0 (the hypervisor) are the card's own
 * (ROUTE_LOCAL: the debug consoles, console.h); an enclave's are unroutable. A packet that fails a
 * check is dropped and counted; a well-formed packet (other than RST) that cannot be routed is
 * answered with an RST from the card, so a connect() to any other CID fails at once with
 * ECONNRESET.
 *
 * Hostile input: every header field comes from a guest. Checked: the chain holds at least
 * the 44-byte header and the len bytes it announces, len <= VSOCK_MAX_PAYLOAD, src_cid is
 * the sender's own CID, type is STREAM (SEQPACKET is not offered), op is one of the seven,
 * only RW carries payload, flags are zero except SHUTDOWN's two bits, and dst_cid names a
 * routable VM. buf_alloc and fwd_cnt are end-to-end credit between the two guests, passed
 * through unchanged (the card is a relay, not an endpoint). The connection table is bounded
 * (VSOCK_MAX_CONNS, and VSOCK_MAX_CONNS_PER_ENCLAVE for each enclave): a connection
 * request beyond either bound is refused with an RST.
 * Not thread-safe: one table per card, used from its event loop.
 */
#ifndef NITRO_CARDS_VSOCK_ROUTE_H
#define NITRO_CARDS_VSOCK_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VSOCK_HDR_LEN 44
#define VSOCK_MAX_PAYLOAD (64u << 10) /* Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE */
#define VSOCK_HYPERVISOR_CID 0	      /* the card itself, for the parent: console.h */
#define VSOCK_HOST_CID 2
#define VSOCK_PARENT_CID 3
#define VSOCK_MAX_CONNS 4096
/* One enclave's share of the table (its connections with the parent, whoever opened them):
 * an enclave that opens connections and never closes them leaves 3072 to the others. */
#define VSOCK_MAX_CONNS_PER_ENCLAVE 1024

/* virtio spec 5.10.6 (also <linux/virtio_vsock.h>) */
enum {
	VSOCK_TYPE_STREAM = 1,
	VSOCK_TYPE_SEQPACKET = 2,
};
enum {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};
#define VSOCK_SHUTDOWN_RCV 1u
#define VSOCK_SHUTDOWN_SEND 2u

/* The header in host order (little-endian, packed, on the wire). */
struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

void vsock_hdr_get(const uint8_t b[VSOCK_HDR_LEN], struct vsock_hdr *h);
void vsock_hdr_put(uint8_t b[VSOCK_HDR_LEN], const struct vsock_hdr *h);
/* The RST answering h: addresses swapped, STREAM, no payload, no credit. */
struct vsock_hdr vsock_rst_for(const struct vsock_hdr *h);

enum route_verdict {
	ROUTE_FORWARD, /* to the VM of h->dst_cid */
	ROUTE_RST,     /* send *rst back to the sender */
	ROUTE_DROP,
	ROUTE_LOCAL, /* from the parent to CID 0: for the card's console service (console.h) */
};

/* Why: one counter each. */
enum route_reason {
	RR_FORWARDED,
	RR_SHORT,	 /* the chain is shorter than the header or than len */
	RR_LEN,		 /* len above VSOCK_MAX_PAYLOAD, or payload on an op that has none */
	RR_SPOOF,	 /* src_cid is not the sender's */
	RR_TYPE,	 /* not STREAM */
	RR_OP,		 /* unknown op */
	RR_FLAGS,	 /* flags on an op that has none, or unknown SHUTDOWN bits */
	RR_UNROUTABLE,	 /* no such destination for this sender (answered with RST) */
	RR_TABLE_FULL,	 /* a new connection beyond VSOCK_MAX_CONNS (answered with RST) */
	RR_ENCLAVE_FULL, /* beyond the enclave's VSOCK_MAX_CONNS_PER_ENCLAVE (RST) */
	RR_UNROUTED_RST, /* an RST to nowhere (dropped) */
	RR_LOCAL,	 /* from the parent to CID 0 (ROUTE_LOCAL) */
	RR_NUM,
};
const char *route_reason_name(enum route_reason r);

/* One connection between the parent and an enclave, seen from its REQUEST on. */
struct route_conn {
	uint32_t rc_parent_port;
	uint32_t rc_enclave_cid;
	uint32_t rc_enclave_port;
};

struct route_table {
	/* Whether the VM with this CID (the parent's or an enclave's) is attached now. */
	bool (*rt_vm_up)(void *ctx, uint64_t cid);
	void *rt_ctx;
	unsigned rt_n;
	struct route_conn rt_conns[VSOCK_MAX_CONNS];
	uint64_t rt_count[RR_NUM];
};

void route_init(struct route_table *t, bool (*vm_up)(void *ctx, uint64_t cid), void *ctx);

/* One packet from the VM whose CID is sender: hdr are the chain's first bytes (at least
 * VSOCK_HDR_LEN of them when chain_len allows), chain_len the chain's device-readable
 * bytes. Fills *h (when the header was there) and, for ROUTE_RST, *rst; counts the reason
 * (*why). Tracks connections: a forwarded REQUEST adds one, a forwarded RST removes it. */
enum route_verdict route_packet(struct route_table *t, uint64_t sender, const uint8_t *hdr,
				uint64_t chain_len, struct vsock_hdr *h, struct vsock_hdr *rst,
				enum route_reason *why);

/* The card dropped h (forwarded earlier, then undeliverable) and reset its connection:
 * the table forgets it. */
void route_forget(struct route_table *t, const struct vsock_hdr *h);

/* A VM went away: for every connection it had, the RST the other side gets (emit), and
 * the connection is forgotten. Enclave cid gone: RSTs to the parent; the parent gone
 * (cid VSOCK_PARENT_CID): RSTs to each enclave. Returns the number of RSTs. */
unsigned route_vm_gone(struct route_table *t, uint64_t cid,
		       void (*emit)(void *ctx, const struct vsock_hdr *rst), void *ctx);

#endif
