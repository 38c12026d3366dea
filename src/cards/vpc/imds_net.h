/* The IMDS's TCP: 169.254.169.254:80 terminated inside the card by lwIP (Debian's
 * liblwip, raw API, no tcpip thread), one instance per process (lwIP's state is global;
 * a card is one interface).
 *
 * Contract:
 * - Single-threaded: every call from the card's loop. imds_net_poll() runs lwIP's timers
 *   (retransmits, TIME_WAIT): call it at least every IMDS_NET_TICK_MS.
 * - imds_net_input() takes an IPv4 packet the VPC core has checked (VPC_TO_IMDS: from the
 *   guest's own address to 169.254.169.254); lwIP verifies the TCP checksum and drops
 *   anything else. Replies go to the output callback as Ethernet frames (gateway MAC ->
 *   guest MAC), the token reply with IP TTL 1.
 * - At most IMDS_NET_CONNS connections: a new one makes the least recently active one
 *   end (RST); a connection idle for IMDS_NET_IDLE_MS ends too. A request head or body
 *   over the parser's limits gets its error status and the connection is closed.
 */
#ifndef NITRO_CARDS_VPC_IMDS_NET_H
#define NITRO_CARDS_VPC_IMDS_NET_H

#include <stddef.h>
#include <stdint.h>

#include "cards/vpc/imds.h"

#define IMDS_NET_CONNS 64
#define IMDS_NET_TICK_MS 100
#define IMDS_NET_IDLE_MS 60000

typedef void imds_out_fn(void *ctx, const uint8_t *frame, size_t len);

struct imds_net_stats {
	uint64_t in_packets, out_packets, requests, conns_refused, conns_evicted, conns_idle_closed;
};

/* 0, or -1 with err. m is borrowed (must outlive the instance); guest_mac is the
 * interface's MAC. */
int imds_net_init(struct imds *m, const uint8_t guest_mac[6], imds_out_fn *out, void *ctx,
		  char *err, size_t errlen);
void imds_net_input(const uint8_t *ip, size_t len);
void imds_net_poll(void);
void imds_net_stats(struct imds_net_stats *st);

#endif
