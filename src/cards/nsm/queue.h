/* The NSM virtqueue (virtio device 33, one queue) of one enclave connection: requests in,
 * src/enclave/nsm.c's answers out.
 *
 * The Linux driver (drivers/misc/nsm.c) posts each request as TWO chains, added back to
 * back before one kick: a device-readable buffer with the CBOR request (at most 0x1000
 * bytes), then a device-writable buffer of 0x3000 bytes for the reply; it then expects the
 * request chain back first (virtqueue_get_buf) and the reply chain second, with the reply's
 * length. It sends a GetRandom as soon as it loads (hwrng), and waits 2 minutes for each
 * answer with its lock held: every request must be answered.
 * A chain that holds both a readable and a writable part is served as one request too.
 *
 * Hostile input (the guest writes the rings and the buffers at any time): the request is
 * copied out of guest memory once (at most NSM_REQUEST_MAX + 1 bytes; longer ones get
 * InputTooLarge), the reply is built in the card and then copied into the writable
 * buffers. Chains out of order get a clean answer, never a crash: a request chain followed
 * by another request chain is handed back unanswered (0 bytes) and the second one waits; a
 * reply chain with no request before it is handed back with 0 bytes; a reply buffer too
 * small gets BufferTooSmall (or 0 bytes when not even that fits); a chain with no bytes at
 * all is handed back. Broken rings (loops, addresses outside guest memory...) fail the
 * queue through the card library (vu_queue_fail: NEEDS_RESET for the driver); the
 * connection and every other enclave go on.
 * Single-threaded: called on the card's loop.
 */
#ifndef NITRO_CARDS_NSM_QUEUE_H
#define NITRO_CARDS_NSM_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cards/lib/vhost_user.h"
#include "enclave/nsm.h"

#define NSM_QUEUE_MAX_SEGS 64 /* descriptors per chain (the driver uses one) */
/* Chains taken per kick: one card serves every enclave of the parent on one thread, and a
 * hostile enclave refills its ring as fast as the card answers (an Attestation is an ECDSA
 * signature); after this many the kick ends and re-arms itself through the queue's kick fd,
 * so that every other enclave's kick is served in between. */
#define NSM_QUEUE_BUDGET 32

struct nsm_queue {
	struct nsm_state *nq_state;
	bool nq_pending; /* a request chain was taken; its reply chain is still to come */
	uint16_t nq_req_head;
	size_t nq_req_len; /* bytes in nq_req; NSM_REQUEST_MAX + 1 means "too large" */
	uint8_t nq_req[NSM_REQUEST_MAX + 1];
	uint8_t nq_resp[NSM_RESPONSE_MAX];
	/* counters */
	unsigned long nq_requests; /* answered */
	unsigned long nq_unpaired; /* chains handed back unanswered (out of order, empty) */
	unsigned long nq_yields;   /* kicks ended by NSM_QUEUE_BUDGET with chains left */
};

void nsm_queue_init(struct nsm_queue *q, struct nsm_state *s);
/* The device's vo_queue_kick: serves every chain available on queue qi of d. */
void nsm_queue_kick(struct nsm_queue *q, struct vu_dev *d, unsigned qi);
/* vo_queue_stopping: a request chain taken without its reply chain is handed back
 * unanswered, so that the ring's base covers no chain in flight. */
void nsm_queue_stopping(struct nsm_queue *q, struct vu_dev *d, unsigned qi);
/* vo_queue_stop: forgets a pending request. */
void nsm_queue_stop(struct nsm_queue *q);

#endif
