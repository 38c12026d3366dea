/* The link-local UDP services of one interface as the guest reaches them: the VPC
 * resolver (dns.h) at the VPC base + 2 and 169.254.169.253 port 53, the time server
 * (ntp.h) at 169.254.169.123 port 123. The IMDS (TCP) is imds_net.h.
 *
 * Contract:
 * - Single-threaded (the card's loop); one instance per interface, owned by the card.
 * - svc_net_input() takes an IPv4 packet the VPC core handed over (VPC_TO_SERVICE: UDP
 *   from the guest's own address to one of those, after the link-local allowance); a bad
 *   UDP checksum is dropped (counted). Replies go to the output callback as Ethernet
 *   frames (gateway MAC -> guest MAC), from the address the guest asked.
 * - Forwarding: the upstream is a connected UDP socket to the host's resolver, made by
 *   the launcher (--dns-fd, the card has no network of its own when jailed) or by the
 *   card before its sandbox (--dns-upstream); -1: none (REFUSED). svc_net_upstream()
 *   reads what it has answered when the socket is readable (never blocks).
 */
#ifndef NITRO_CARDS_VPC_SVC_NET_H
#define NITRO_CARDS_VPC_SVC_NET_H

#include <stddef.h>
#include <stdint.h>

#include "cards/vpc/dns.h"
#include "cards/vpc/vpc.h"

typedef void svc_out_fn(void *ctx, const uint8_t *frame, size_t len);

struct svc_stats {
	uint64_t bad_udp, ntp_requests, ntp_answered, upstream_send_errors;
};

struct svc_net {
	struct dns dns;
	int up_fd;
	uint8_t mac[6];
	uint32_t ip; /* the guest's, network order */
	unsigned mtu;
	svc_out_fn *out;
	void *ctx;
	uint16_t ip_id;
	struct svc_stats st;
	uint8_t msg[DNS_MSG_MAX];
	uint8_t frame[14 + 20 + 8 + DNS_MSG_MAX];
};

/* cfg as the core's port got it (vc_domain set); up_fd: the upstream socket or -1. */
void svc_net_init(struct svc_net *s, const struct vpc_cfg *cfg, vpc_lookup_fn *lookup, void *lctx,
		  int up_fd, svc_out_fn *out, void *octx, uint64_t seed);
void svc_net_input(struct svc_net *s, const uint8_t *ip, size_t len, uint64_t now_ns);
void svc_net_upstream(struct svc_net *s, uint64_t now_ns);

/* The counters as " name=value" words (dns_queries=, ntp_requests=, ...) into buf (len > 0,
 * NUL-terminated, cut at len - 1): the length written. */
size_t svc_net_stats_format(const struct svc_net *s, char *buf, size_t len);

/* A connected, non-blocking UDP socket to A.B.C.D[:PORT] (port 53 by default), or -1 with
 * err. */
int svc_upstream_open(const char *addr, char *err, size_t errlen);

#endif
