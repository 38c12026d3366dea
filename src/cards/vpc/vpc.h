/* The VPC packet-processing core: one `struct vpc_port` per interface (ENI), pure C, no
 * sockets, no allocation per packet. The card feeds it every frame the guest sends and
 * every Geneve datagram the underlay receives; it answers what to do with each.
 *
 * Contract:
 * - Byte order: every IPv4 address and UDP port in this API (cfg, mapping entries,
 *   vpc_out, from_underlay's source) is in network byte order, as in the packet. The VNI
 *   is a host-order number < 2^24.
 * - Single-threaded: a port is used by one thread at a time (the card's loop). now_ns is
 *   a monotonic clock (CLOCK_MONOTONIC) in ns, non-decreasing between calls; conntrack
 *   timeouts and token buckets run on it (tests pass made-up times).
 * - Frames are plain Ethernet (no virtio-net header, no FCS). Every input byte is hostile:
 *   anything malformed is VPC_DROP with out->vo_drop saying why (also counted).
 * - vpc_from_guest: VPC_TO_GUEST (ARP reply, DHCP OFFER/ACK/NAK in vo_data for the
 *   guest's rx queue), VPC_TO_UNDERLAY (vo_data = Geneve header + inner frame, the UDP
 *   payload to send to vo_ul_ip:vo_ul_port), or VPC_DROP.
 *   VPC_TO_IMDS: vo_data is the guest's IPv4 packet (its own source address, TCP to
 *   169.254.169.254:80) for the card's IMDS, after the link-local allowance
 *   (VPC_LINKLOCAL_PPS; linklocal_allowance_exceeded). Other traffic to that address is
 *   dropped (no_route).
 *   VPC_TO_SERVICE: vo_data is the guest's IPv4 packet (its own source address), UDP to
 *   the resolver (169.254.169.253 or the subnet base + 2, port 53) or the time server
 *   (169.254.169.123:123), for the card's svc_net, after the same allowance; other
 *   traffic to those addresses is no_route.
 *   vpc_from_underlay: VPC_TO_GUEST (the inner frame for the guest) or VPC_DROP.
 *   vo_data points into vo_buf, or (from_underlay only) into the input datagram, valid as
 *   long as that is. vo_buf needs VPC_OUT_MIN bytes; less gives VPC_DROP_NO_ROOM.
 * - Forwarding (L3 by destination IP, AWS style): the frame the guest sends to a peer's
 *   MAC (same subnet, from ARP) or to the gateway MAC (routed) goes to the mapping entry
 *   of (vni, dst IP); on the wire the inner frame carries dst MAC = the peer's MAC and
 *   src MAC = the sender's own MAC. The receiver checks the inner source against the
 *   mapping (IP -> MAC, VNI, underlay address:port) and delivers dst MAC = its MAC, src
 *   MAC = the sender's MAC when the sender is in the receiver's subnet, else the gateway
 *   MAC (routed, as AWS shows it). TTL is not decremented (AWS does not either).
 * - ARP (answered here, nothing broadcast): target .1 or .2 -> gateway MAC; target in the
 *   subnet -> the peer's MAC when the mapping has it, no reply when it does not (like an
 *   absent host; counted as arp_unknown); target outside the subnet -> gateway MAC; the
 *   interface's own IP (duplicate-address probes) -> no reply.
 * - DHCP (answered here): DISCOVER -> OFFER, REQUEST for our IP -> ACK, any other
 *   address -> NAK, INFORM -> ACK; options: server id and router = .1, subnet mask,
 *   lease time (T1/T2), DNS = subnet base + 2, domain name, interface MTU (26),
 *   broadcast address, NTP 169.254.169.123.
 * - Security groups and conntrack: see docs/vpc-sg.md. Allowances (token buckets) apply
 *   to forwarded traffic only (ARP/DHCP are answered locally): vc_pps counts packets of
 *   both directions together (one pps_allowance_exceeded counter, as ENA),
 *   vc_bps each direction separately (bw_in / bw_out); bursts of 100 ms are allowed.
 * - Counters are from the guest's view: tx = frames the guest sent, rx = frames it got.
 */
#ifndef NITRO_CARDS_VPC_VPC_H
#define NITRO_CARDS_VPC_VPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cards/vpc/sg.h"
#include "cards/vpc/verdict.h"

#define VPC_GENEVE_PORT 6081	/* IANA port; the card's own choice decides */
#define VPC_GENEVE_HLEN 8	/* the header we send: no options */
#define VPC_GENEVE_PROTO 0x6558 /* Transparent Ethernet Bridging */
#define VPC_VNI_MAX 0xffffffu
#define VPC_MTU_DEFAULT 9001 /* AWS VPC jumbo frames */
#define VPC_MTU_MIN 576
#define VPC_MTU_MAX 9216
#define VPC_PREFIX_DEFAULT 24
#define VPC_CT_DEFAULT 65536 /* conntrack entries when vc_conntrack_max is 0 */
#define VPC_CT_MAX (1u << 22)
#define VPC_LEASE_DEFAULT 3600 /* DHCP lease, seconds */
#define VPC_DOMAIN_DEFAULT "nitro.internal"
#define VPC_IMDS_IP 0xa9fea9feu /* 169.254.169.254, host order */
#define VPC_DNS_IP 0xa9fea9fdu	/* 169.254.169.253, host order (and the VPC base + 2) */
#define VPC_NTP_IP 0xa9fea97bu	/* 169.254.169.123, host order */
#define VPC_LINKLOCAL_PPS 1024	/* AWS: per interface, to the link-local services */
/* The largest result: Geneve header + Ethernet header + the largest MTU. */
#define VPC_OUT_MIN (VPC_GENEVE_HLEN + 14 + VPC_MTU_MAX)

struct vpc_sg; /* a parsed security group (immutable; see vpc_sg_load) */

struct vpc_cfg {
	uint32_t vc_vni;	    /* the VPC (Geneve VNI), 0..VPC_VNI_MAX */
	uint8_t vc_mac[6];	    /* the interface's MAC (unicast, not the gateway's) */
	uint32_t vc_ip;		    /* the interface's private IPv4 address */
	unsigned vc_prefix;	    /* subnet prefix length, 8..30; 0 = VPC_PREFIX_DEFAULT */
	unsigned vc_mtu;	    /* VPC_MTU_MIN..VPC_MTU_MAX; 0 = VPC_MTU_DEFAULT */
	const struct vpc_sg *vc_sg; /* NULL: the VPC's default group; borrowed, must outlive
				       the port (or until vpc_port_set_sg replaces it) */
	uint64_t vc_pps;	    /* packets/s, both directions together; 0 = unlimited */
	uint64_t vc_bps;	    /* bits/s per direction; 0 = unlimited */
	uint32_t vc_conntrack_max;  /* tracked flows; 0 = VPC_CT_DEFAULT, at most VPC_CT_MAX */
	const char *vc_domain;	    /* DHCP domain name; NULL = VPC_DOMAIN_DEFAULT */
	uint32_t vc_lease_s;	    /* DHCP lease; 0 = VPC_LEASE_DEFAULT */
	/* The internet gateway (igw.h): off when false (traffic outside the VPC is dropped);
	 * the VPC's CIDR (network order; prefix 0 = the subnet), which never goes to it. */
	bool vc_igw;
	uint32_t vc_vpc_net;
	unsigned vc_vpc_prefix;
};

/* One record of the mapping service: where (vni, ip) lives. */
struct vpc_map_entry {
	uint32_t vm_vni;
	uint32_t vm_ip;
	uint8_t vm_mac[6];
	uint32_t vm_ul_ip;   /* underlay address of that interface's card */
	uint16_t vm_ul_port; /* and its UDP port */
	bool vm_default_sg;  /* that interface is in its VPC's default group */
};

/* The caller's mapping service: 0 with *out filled when (vni, ip) is known, -1 when not.
 * Called on the per-packet path (keep it a cache hit). */
typedef int vpc_lookup_fn(void *ctx, uint32_t vni, uint32_t ip, struct vpc_map_entry *out);

struct vpc_stats {
	uint64_t st_tx_packets, st_tx_bytes;	   /* every frame the guest sent */
	uint64_t st_rx_packets, st_rx_bytes;	   /* every frame handed to the guest */
	uint64_t st_tx_forwarded, st_rx_forwarded; /* to / from the underlay */
	uint64_t st_arp_replies, st_dhcp_replies;
	uint64_t st_ul_packets; /* datagrams the underlay gave us */
	uint64_t st_bw_in_allowance_exceeded, st_bw_out_allowance_exceeded;
	uint64_t st_pps_allowance_exceeded;
	uint64_t st_conntrack_allowance_exceeded;
	uint64_t st_conntrack_allowance_available; /* free conntrack entries now */
	uint64_t st_conntrack_entries;		   /* tracked flows now */
	uint64_t st_conntrack_evicted; /* unassured flows evicted to make room (SYN floods) */
	uint64_t st_linklocal_allowance_exceeded; /* to the link-local services over 1024/s */
	uint64_t st_imds_packets;		  /* handed to the IMDS */
	uint64_t st_service_packets;		  /* handed to the resolver or time server */
	uint64_t st_igw_tx, st_igw_rx;		  /* to / from the internet gateway */
	uint64_t st_drops[VPC_DROP__COUNT];
};

struct vpc_port;

/* A new port for cfg (copied, except vc_sg). NULL with err naming the bad field. */
struct vpc_port *vpc_port_new(const struct vpc_cfg *cfg, vpc_lookup_fn *lookup, void *ctx,
			      char *err, size_t errlen);
void vpc_port_free(struct vpc_port *p);
/* Replaces the security group (NULL: default group); tracked flows keep going until
 * their idle timeout, as in AWS. */
void vpc_port_set_sg(struct vpc_port *p, const struct vpc_sg *sg);
/* Reaps idle conntrack entries; the card calls it about once a second (the per-packet
 * path also reaps what it meets). */
void vpc_port_tick(struct vpc_port *p, uint64_t now_ns);

enum vpc_action vpc_from_guest(struct vpc_port *p, const uint8_t *frame, size_t len,
			       uint64_t now_ns, struct vpc_out *out);
enum vpc_action vpc_from_underlay(struct vpc_port *p, const uint8_t *udp_payload, size_t len,
				  uint32_t src_ul_ip, uint16_t src_ul_port, uint64_t now_ns,
				  struct vpc_out *out);

/* A frame from the internet gateway's NAT for the guest (igw.h): VPC_TO_GUEST or VPC_DROP. */
enum vpc_action vpc_from_igw(struct vpc_port *p, const uint8_t *frame, size_t len, uint64_t now_ns,
			     struct vpc_out *out);

void vpc_port_stats(const struct vpc_port *p, struct vpc_stats *st);
/* "runt", "sg_in", ... ("?" when out of range). */
const char *vpc_drop_name(enum vpc_drop r);
/* The counters as "name value\n" lines (ENA names: bw_in_allowance_exceeded, ...;
 * tx_packets, rx_bytes, drop_runt, ...). snprintf semantics: the length it needs. */
int vpc_stats_format(const struct vpc_stats *st, char *buf, size_t len);
void vpc_stats_print(const struct vpc_stats *st, FILE *f);

/* Security groups (vpc_sg_load, vpc_sg_parse, vpc_sg_free, vpc_sg_rules): sg.h. */

#endif
