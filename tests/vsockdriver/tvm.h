/* The vsock attack driver's VMs (tests/vsockdriver): this process plays the parent's and the
 * enclaves' nitro-hv and their guests' virtio-vsock drivers against a real nitro-card-vsock,
 * without booting anything. Each tvm is one vhost-user connection (tests/driver/vu_front.h:
 * one memfd of guest memory) with the three vsock queues (rx, tx, event) set up the simple
 * way: split rings, no event idx, no indirect descriptors; rx and tx buffers are fixed
 * slots, one per descriptor. The helpers fail loudly (exit 1 with a message): a test
 * driver, not a library.
 */
#ifndef NITRO_TESTS_VSOCKDRIVER_TVM_H
#define NITRO_TESTS_VSOCKDRIVER_TVM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "../driver/vu_front.h"
#include "cards/lib/vring.h"
#include "cards/vsock/route.h"
#include "lib/enclave_wire.h"

#define Q_RX 0
#define Q_TX 1
#define Q_EVENT 2
#define SLOT (VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD + 4052) /* 68 KiB: one buffer a descriptor */

struct tring {
	unsigned num;
	uint64_t desc, avail, used, bufs; /* guest addresses */
	uint16_t avail_idx, used_seen;
	struct vu_vring vr;
};

struct tvm {
	struct vu_front f;
	uint64_t cid;
	unsigned num;
	struct tring q[3];
};

#define FAIL(...)                                                                                  \
	do {                                                                                       \
		fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
		fprintf(stderr, __VA_ARGS__);                                                      \
		fputc('\n', stderr);                                                               \
		exit(1);                                                                           \
	} while (0)
#define EXPECT(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "(expected %s)\n", #cond);                                 \
			FAIL(__VA_ARGS__);                                                         \
		}                                                                                  \
	} while (0)

uint64_t now_ms(void);

/* Connects to path; an enclave (cid > 3) sends the hello first and must be accepted. num
 * is the ring size (power of two, <= 256). */
void tvm_open(struct tvm *v, const char *path, uint64_t cid, unsigned num);
/* The same with hello flags (ENW_FLAG_DEBUG: a debug-mode enclave). */
void tvm_open_flags(struct tvm *v, const char *path, uint64_t cid, unsigned num, uint32_t flags);
/* The same with a hello of our own: returns the card's status (0 accepted) and leaves the
 * connection open for the caller (rings not set up). */
int tvm_hello(struct tvm *v, const char *path, uint64_t cid, uint64_t mem);
int tvm_hello_flags(struct tvm *v, const char *path, uint64_t cid, uint64_t mem, uint32_t flags);
/* The hello this driver sends for cid (slot 1, module id i-attack-enc<cid>). */
void tvm_hello_fill(struct enw_hello *h, uint64_t cid, uint32_t flags);
/* vu_init + the three rings (after an accepted tvm_hello, or for the parent). */
void tvm_setup(struct tvm *v, unsigned num);
void tvm_close(struct tvm *v);

/* Adds n rx buffers of len device-writable bytes each. */
void rx_post(struct tvm *v, unsigned n, uint32_t len);
/* The next packet the card wrote into v's rx ring within timeout_ms: 1 (header, payload
 * into p when non-NULL, at most VSOCK_MAX_PAYLOAD bytes) or 0. */
int rx_get(struct tvm *v, struct vsock_hdr *h, uint8_t *p, int timeout_ms);
/* Waits for rx packets until one matches op/dst_port... helpers below. */
/* Sends one packet (header + len payload bytes in one descriptor); waits up to
 * timeout_ms for a free tx slot: false when the card took nothing. */
bool tx_send(struct tvm *v, const struct vsock_hdr *h, const void *p, uint32_t len, int timeout_ms);
/* Raw tx: puts the given descriptors (table indexes 0..n-1 are overwritten) as one chain
 * of head 0 and publishes it. */
void tx_raw(struct tvm *v, const struct virtq_desc *d, unsigned n);
/* Whether the card handed back every tx chain within timeout_ms. */
bool tx_drained(struct tvm *v, int timeout_ms);
void kick(struct tvm *v, unsigned q);

struct vsock_hdr hdr(uint64_t src, uint32_t sport, uint64_t dst, uint32_t dport, uint16_t op,
		     uint32_t len);
/* Receives packets on v until one with this op and dst_port arrives (others are skipped and
 * counted in *skipped when non-NULL): 1, or 0 after timeout_ms. */
int rx_wait(struct tvm *v, uint16_t op, uint32_t dport, struct vsock_hdr *h, uint8_t *p,
	    int timeout_ms, unsigned *skipped);

#endif
