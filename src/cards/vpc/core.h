/* Inside the VPC core: the port's state and the pieces of the pipeline (vpc.c calls
 * arp.c, dhcp.c and geneve.c). Not for the card: it uses vpc.h only.
 */
#ifndef NITRO_CARDS_VPC_CORE_H
#define NITRO_CARDS_VPC_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cards/vpc/allowance.h"
#include "cards/vpc/conntrack.h"
#include "cards/vpc/igw_policy.h"
#include "cards/vpc/pkt.h"
#include "cards/vpc/sg.h"
#include "cards/vpc/verdict.h"
#include "cards/vpc/vpc.h"

#define VPC_DOMAIN_MAX 253

/* Idle timeouts (ns). AWS publishes TCP established, UDP and UDP stream; TCP's other
 * states take Linux's (nf_conntrack_proto_tcp.c tcp_timeouts[]: SYN_SENT 2 min, SYN_RECV
 * 60 s, FIN_WAIT 2 min, CLOSE 10 s); a flow picked up mid-stream waits like SYN_RECV for
 * the other side's answer; ICMP and others are nitro's choice (docs/vpc-sg.md). */
#define S_ 1000000000ull
#define CT_TCP_EST_NS (432000 * S_)
#define CT_TCP_SYN_SENT_NS (120 * S_)
#define CT_TCP_SYN_RECV_NS (60 * S_)
#define CT_TCP_FIN_NS (120 * S_)
#define CT_TCP_CLOSED_NS (10 * S_)
#define CT_UDP_NS (30 * S_)
#define CT_UDP_STREAM_NS (180 * S_)
#define CT_ICMP_NS (30 * S_)
#define CT_OTHER_NS (60 * S_)

struct vpc_port {
	uint32_t p_vni;
	uint8_t p_mac[6];
	uint32_t p_ip, p_mask, p_net, p_gw, p_dns, p_bcast; /* network order */
	unsigned p_prefix, p_mtu;
	uint32_t p_lease_s;
	char p_domain[VPC_DOMAIN_MAX + 1];
	const struct vpc_sg *p_sg; /* never NULL (sg_default_group) */
	vpc_lookup_fn *p_lookup;
	void *p_ctx;
	struct ct_table p_ct;
	struct tbucket p_pps, p_bw_in, p_bw_out;
	struct tbucket p_linklocal; /* VPC_LINKLOCAL_PPS, to 169.254.169.254 */
	struct vpc_stats p_st;
	uint16_t p_ip_id; /* for the replies we make */
	bool p_igw_on;	  /* the VPC has an internet gateway (igw.c) */
	struct igw_policy p_igw;
};

static inline bool in_subnet(const struct vpc_port *p, uint32_t ip)
{
	return (ip & p->p_mask) == p->p_net;
}

/* Marks out as a drop for reason r (counted in p's stats) and returns VPC_DROP. */
static inline enum vpc_action vpc_drop(struct vpc_port *p, struct vpc_out *out, enum vpc_drop r)
{
	p->p_st.st_drops[r]++;
	out->vo_drop = r;
	out->vo_data = NULL;
	out->vo_len = 0;
	return VPC_DROP;
}

/* An ARP frame from the guest (len >= 14, Ethernet source already checked). */
enum vpc_action arp_from_guest(struct vpc_port *p, const uint8_t *frame, size_t len,
			       struct vpc_out *out);
/* A UDP datagram from the guest to port 67 (k parsed, Ethernet source checked). */
enum vpc_action dhcp_from_guest(struct vpc_port *p, const struct pkt *k, struct vpc_out *out);
/* Security group + conntrack (ingress: remote -> us) and the allowances for one packet
 * of a flow with a remote outside the mapping (vpc.c's; igw.c uses them). */
enum vpc_drop vpc_core_filter(struct vpc_port *p, const struct pkt *k, bool ingress, uint64_t now);
enum vpc_drop vpc_core_allowance(struct vpc_port *p, bool ingress, size_t bytes, uint64_t now);
/* A guest packet (k, in frame) for the internet gateway: igw.c. */
enum vpc_action igw_from_guest(struct vpc_port *p, const struct pkt *k, const uint8_t *frame,
			       uint64_t now, struct vpc_out *out);
/* Writes the Geneve header for vni at h (VPC_GENEVE_HLEN bytes). */
void geneve_put(uint8_t *h, uint32_t vni);
/* Checks a Geneve header: 0 with *vni and *hlen (header + options), or the drop reason. */
enum vpc_drop geneve_parse(const uint8_t *p, size_t len, uint32_t *vni, size_t *hlen);

#endif
