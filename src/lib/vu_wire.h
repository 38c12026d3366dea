/* vhost-user message framing over a Unix stream socket (QEMU docs/interop/vhost-user.rst):
 * a 12-byte header (request, flags, payload size; little-endian), the payload, and file
 * descriptors passed by SCM_RIGHTS with the message's first bytes. The one framing pair
 * of nitro-hv's frontend (src/hv/vhost_front.c), the cards' back end (src/cards/lib/
 * vu_conn.c) and the test drivers (tests/driver/vu_front.c).
 *
 * Hostile input: the peer is a card or a guest-controlled party. vu_wire_recv() never
 * reads past the message it was asked for, bounds the payload by the caller's buffer and
 * the fds by the caller's count, and fails cleanly (a negative errno value, every fd it
 * received closed) on a truncated message, an oversized size field, more fds than the
 * caller accepts (also when the kernel had to truncate them: MSG_CTRUNC) or a peer that
 * hangs up mid-message. After a failure the stream is out of step: close the connection.
 * Received fds are close-on-exec and owned by the caller. Thread-safety: none of its own;
 * one thread per socket at a time.
 */
#ifndef NITRO_LIB_VU_WIRE_H
#define NITRO_LIB_VU_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/vhost_user_wire.h"

/* The most fds one message may carry (SET_MEM_TABLE: one per region). */
#define VU_WIRE_MAX_FDS VU_MAX_REGIONS

/* A header in host order. */
struct vu_wire_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size; /* payload bytes */
};

/* The header's 12 bytes on the wire, and back. */
void vu_wire_hdr_put(uint8_t *b, const struct vu_wire_hdr *h);
void vu_wire_hdr_get(const uint8_t *b, struct vu_wire_hdr *h);

/* Sends one message: header {request, flags (sent as given), size}, size bytes of payload
 * and nfds (<= VU_WIRE_MAX_FDS) fds with its first bytes. Short sends are continued,
 * EINTR retried; no SIGPIPE. 0, or a negative errno value (-ETIMEDOUT when a send timeout
 * on the socket expired, -EINVAL for too many fds). */
int vu_wire_send(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
		 const int *fds, unsigned nfds);

/* The fds that came by SCM_RIGHTS with a received message mh, appended to fds (*nfds of
 * max_fds used): those beyond max_fds are closed. True when any were (or the kernel had
 * truncated them: MSG_CTRUNC), false when every fd was kept. */
struct msghdr;
bool vu_wire_take_fds(struct msghdr *mh, int *fds, unsigned *nfds, unsigned max_fds);

/* Receives one message: the header into *h, its payload (at most max_size bytes) into
 * payload, and up to max_fds (<= VU_WIRE_MAX_FDS) fds into fds (*nfds of them). With
 * timeout_ms >= 0 it waits at most that long for each piece (poll); with -1 it relies on
 * the socket (blocking, or SO_RCVTIMEO: EAGAIN is a timeout).
 * Returns 1 when a message was read, 0 at end of file before its first byte, or:
 *   -EPIPE         the peer closed the connection mid-message (truncated header/payload)
 *   -EMSGSIZE      the size field is larger than max_size (*h holds the header)
 *   -ETOOMANYREFS  more fds than max_fds came with it (or the kernel truncated them)
 *   -ETIMEDOUT     the peer stalled
 *   other          -errno of poll/recvmsg
 * On any result but 1, *nfds is 0 and every fd received has been closed. */
int vu_wire_recv(int sock, struct vu_wire_hdr *h, void *payload, uint32_t max_size, int *fds,
		 unsigned max_fds, unsigned *nfds, int timeout_ms);

#endif
