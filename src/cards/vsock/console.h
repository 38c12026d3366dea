/* The debug consoles the vsock card serves to the parent (nitro-card-vsock; docs/enclaves.md
 * "Debug console"), as AWS's hypervisor does for nitro-cli: the parent (CID 3) connects to
 * vsock CID 0 (VMADDR_CID_HYPERVISOR), port enclave CID + 10000, and reads the enclave's
 * serial console: the kept bytes first, then live output, then end of stream once the
 * enclave is gone. Pure: no I/O, no guest memory; the card moves the bytes (main.c).
 *
 * A console exists only for a debug-mode enclave (con_open when its device attaches with
 * the debug flag); its output arrives on the enclave's console feed (con_feed). The newest
 * CON_RING bytes are kept, also after the enclave ended (con_stop), until its CID attaches
 * again (con_open or con_drop) or the parent goes (con_parent_gone). At most CON_MAX
 * consoles are kept: a new one evicts the oldest ended one.
 *
 * Policy towards a hostile or slow parent (the whole of it):
 *  - No per-reader buffer: a reader is a position in its console's ring. Bytes go out only
 *    when the parent's rx queue has a buffer and the reader's credit allows (end to end,
 *    the parent's buf_alloc/fwd_cnt); a reader that does not read gets nothing more and
 *    holds up nobody. A reader that falls more than CON_RING behind loses the bytes in
 *    between (counted in cs_lost) and goes on from the oldest kept byte.
 *  - Data from the parent is dropped (the console is read-only) and counted as consumed
 *    at once (fwd_cnt), so the parent never blocks on it; a CREDIT_UPDATE is owed only once
 *    half of CON_BUF_ALLOC has been dropped since the last one, or on CREDIT_REQUEST.
 *  - Readers are bounded: CON_MAX_READERS in all, CON_MAX_READERS_PER per console; a
 *    REQUEST beyond either, to a port that is not CID + 10000 of a debug enclave's console,
 *    or to anything else at CID 0 is answered with an RST; a second REQUEST on a port
 *    already connected resets the old connection.
 *  - Replies a reader is owed (RESPONSE, CREDIT_UPDATE, SHUTDOWN) are flags, at most one of
 *    each outstanding: a parent cannot make the card queue packets.
 *  - con_next serves readers round robin, one packet each per turn.
 * Not thread-safe: the card's loop thread.
 */
#ifndef NITRO_CARDS_VSOCK_CONSOLE_H
#define NITRO_CARDS_VSOCK_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cards/vsock/route.h"

#define CON_PORT_BASE 10000u
#define CON_RING (64u << 10)	  /* kept bytes per console */
#define CON_MAX 64		  /* consoles kept (running and ended) */
#define CON_MAX_READERS 64	  /* parent connections to consoles, all together */
#define CON_MAX_READERS_PER 8	  /* to one console */
#define CON_BUF_ALLOC (64u << 10) /* the receive buffer the card announces (data dropped) */

struct console {
	bool c_used, c_running;
	uint32_t c_cid;
	uint64_t c_seq;	  /* creation order, for eviction */
	uint64_t c_total; /* bytes ever written; the ring holds the newest CON_RING */
	uint8_t *c_ring;  /* CON_RING bytes */
};

struct con_reader {
	bool r_used;
	bool r_need_response, r_need_credit;
	uint32_t r_port; /* the parent's port */
	unsigned r_con;	 /* index in ct_cons */
	uint64_t r_pos;	 /* the next byte to send (absolute offset in the console) */
	uint32_t r_peer_buf_alloc, r_peer_fwd_cnt;
	uint32_t r_tx_cnt;	       /* payload bytes sent to the parent */
	uint32_t r_rx_cnt, r_fwd_sent; /* payload bytes from the parent (dropped); told */
};

enum {
	CS_OPENED,
	CS_REFUSED,    /* REQUESTs answered with an RST */
	CS_RESET,      /* packets for no connection answered with an RST */
	CS_BYTES_IN,   /* console bytes written by enclaves */
	CS_BYTES_OUT,  /* console bytes sent to the parent */
	CS_DROPPED_IN, /* bytes the parent wrote to a console (dropped) */
	CS_LOST,       /* bytes a slow reader missed (overwritten before it took them) */
	CS_EVICTED,    /* ended consoles dropped to make room */
	CS_NUM,
};

struct con_table {
	struct console ct_cons[CON_MAX];
	struct con_reader ct_rd[CON_MAX_READERS];
	unsigned ct_next; /* round robin over ct_rd */
	uint64_t ct_seq;
	uint64_t ct_count[CS_NUM];
	/* A packet the card must send the parent now (an RST; no payload). */
	void (*ct_emit)(void *ctx, const struct vsock_hdr *h);
	void *ct_ctx;
};

void con_init(struct con_table *t, void (*emit)(void *ctx, const struct vsock_hdr *h), void *ctx);
void con_fini(struct con_table *t);
/* A debug-mode enclave with this CID attached: its console, empty (an older one of the CID
 * is dropped, its readers reset). 0, -ENOSPC (CON_MAX running), -ENOMEM. */
int con_open(struct con_table *t, uint32_t cid);
/* A production enclave with this CID attached: any kept console of the CID is dropped. */
void con_drop(struct con_table *t, uint32_t cid);
/* Whether a running console of this CID exists. */
bool con_running(const struct con_table *t, uint32_t cid);
/* Output of the enclave with this CID (nothing when it has no running console). */
void con_feed(struct con_table *t, uint32_t cid, const uint8_t *p, size_t n);
/* The enclave ended: its readers get what is left, then end of stream. */
void con_stop(struct con_table *t, uint32_t cid);
/* The parent went away: every reader forgotten (no packet), ended consoles dropped. */
void con_parent_gone(struct con_table *t);

/* A packet from the parent to CID 0 (h passed route_packet's checks: STREAM, a known op,
 * len only on RW). May call ct_emit. */
void con_packet(struct con_table *t, const struct vsock_hdr *h);
/* Whether con_next has a packet (for a buffer with room payload bytes). */
bool con_pending(const struct con_table *t, uint32_t room);
/* The next packet for the parent, for an rx buffer with room payload bytes: 1 with *h and
 * its payload in up to two pieces (the ring wraps; *n2 may be 0), pointing into the ring and
 * valid until the next call that changes t; 0 when none. The reader's state moves on. */
int con_next(struct con_table *t, uint32_t room, struct vsock_hdr *h, const uint8_t **p1,
	     uint32_t *n1, const uint8_t **p2, uint32_t *n2);

#endif
