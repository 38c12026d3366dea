/* The internet gateway's address policy (issue 15 item 5): which destinations a guest's
 * packet may have when it leaves its VPC through the gateway's NAT (src/igw), and which
 * sources a packet coming back may have. Pure, no state, no allocation; used twice, by the
 * VPC core before it hands a frame to the gateway (igw.c) and again by the NAT process
 * before libslirp sees it (defence in depth: the NAT is the process that has sockets).
 *
 * Contract: addresses in network byte order, ports in host order; every input is
 * hostile. Allowed out: TCP or UDP from the interface's own address to
 *   - the VPC router (subnet base + 1): the host's loopback, as slirp's host alias;
 *   - any other address except the VPC's CIDR (those go through the mapping or nowhere),
 *     0/8, 127/8 (the host's loopback directly), 169.254/16 (link-local: the card's own
 *     services), 224/4 and 240/4 (multicast, reserved, broadcast) and the deny list (the
 *     host's own addresses, the underlay: filled by the NAT at start).
 * ICMP and every other protocol never pass (slirp would need ICMP sockets). The
 * nameserver hook (subnet base + 3, UDP/TCP port 53, slirp's vnameserver: the host's
 * resolver) is open to packets the card itself makes (a resolver), never to the guest:
 * the core only sends the gateway what is outside the VPC or to the router.
 */
#ifndef NITRO_CARDS_VPC_IGW_POLICY_H
#define NITRO_CARDS_VPC_IGW_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IGW_DENY_MAX 64

struct igw_policy {
	uint32_t ip_self;		  /* the interface's address */
	uint32_t ip_router;		  /* subnet base + 1 */
	uint32_t ip_vpc_net, ip_vpc_mask; /* the VPC's CIDR (at least the subnet) */
	unsigned ip_ndeny;
	uint32_t ip_deny_net[IGW_DENY_MAX], ip_deny_mask[IGW_DENY_MAX];
};

/* Fills pol for an interface at self/prefix in a VPC of vpc_net/vpc_prefix (vpc_prefix 0:
 * the subnet is the VPC). -1 when the VPC's CIDR does not hold the subnet. */
int igw_policy_init(struct igw_policy *pol, uint32_t self, unsigned prefix, uint32_t vpc_net,
		    unsigned vpc_prefix);
/* Adds net/prefix to the deny list; -1 when full. */
int igw_policy_deny(struct igw_policy *pol, uint32_t net, unsigned prefix);
/* Whether dst lies outside the VPC and is no special address (the router aside). */
bool igw_outside(const struct igw_policy *pol, uint32_t dst);
/* Whether a packet src -> dst (proto, dport) may leave through the gateway. */
bool igw_may_leave(const struct igw_policy *pol, uint32_t src, uint32_t dst, uint8_t proto,
		   uint16_t dport);
/* Whether a packet src -> dst (proto, sport) coming back from the gateway may reach the
 * interface: to its own address, from the router or an outside address, TCP or UDP. */
bool igw_may_enter(const struct igw_policy *pol, uint32_t src, uint32_t dst, uint8_t proto);
/* The NAT's check of a whole Ethernet frame from the card (hostile bytes): IPv4 with a
 * sane header and total length inside len, no fragment, and igw_may_leave. */
bool igw_frame_may_leave(const struct igw_policy *pol, const uint8_t *f, size_t len);
/* "A.B.C.D/N" -> net, prefix (0..32, host bits must be zero). -1 when malformed. */
int igw_parse_cidr(const char *s, uint32_t *net, unsigned *prefix);

#endif
