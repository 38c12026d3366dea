/* The VPC pipeline: ports, the guest -> underlay and underlay -> guest paths, security
 * groups with conntrack, allowances and counters (contract in vpc.h). */
#include "cards/vpc/core.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "lib/util.h"

static const char *const drop_names[VPC_DROP__COUNT] = {
    [VPC_DROP_NONE] = "none",
    [VPC_DROP_RUNT] = "runt",
    [VPC_DROP_OVERSIZE] = "oversize",
    [VPC_DROP_VLAN] = "vlan",
    [VPC_DROP_ETHERTYPE] = "ethertype",
    [VPC_DROP_BROADCAST] = "broadcast",
    [VPC_DROP_BAD_IP] = "bad_ip",
    [VPC_DROP_FRAGMENT] = "fragment",
    [VPC_DROP_BAD_L4] = "bad_l4",
    [VPC_DROP_BAD_ARP] = "bad_arp",
    [VPC_DROP_ARP_UNKNOWN] = "arp_unknown",
    [VPC_DROP_BAD_DHCP] = "bad_dhcp",
    [VPC_DROP_SPOOF_OUT] = "spoof_out",
    [VPC_DROP_NO_ROUTE] = "no_route",
    [VPC_DROP_SG_OUT] = "sg_out",
    [VPC_DROP_SG_IN] = "sg_in",
    [VPC_DROP_CONNTRACK] = "conntrack_full",
    [VPC_DROP_PPS] = "pps",
    [VPC_DROP_BW_OUT] = "bw_out",
    [VPC_DROP_BW_IN] = "bw_in",
    [VPC_DROP_BAD_GENEVE] = "bad_geneve",
    [VPC_DROP_WRONG_VNI] = "wrong_vni",
    [VPC_DROP_SPOOF_IN] = "spoof_in",
    [VPC_DROP_NOT_FOR_US] = "not_for_us",
    [VPC_DROP_NO_ROOM] = "no_room",
    [VPC_DROP_LINKLOCAL] = "linklocal",
};

const char *vpc_drop_name(enum vpc_drop r)
{
	return (unsigned)r < VPC_DROP__COUNT ? drop_names[r] : "?";
}

/* ---- ports ---- */

static uint64_t seed64(void)
{
	uint64_t s;
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == sizeof(s))
		return s;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)(uintptr_t)&s;
}

static void ipstr(uint32_t ip, char *buf, size_t len)
{
	struct in_addr a = {.s_addr = ip};
	inet_ntop(AF_INET, &a, buf, (socklen_t)len);
}

struct vpc_port *vpc_port_new(const struct vpc_cfg *c, vpc_lookup_fn *lookup, void *ctx, char *err,
			      size_t errlen)
{
	char a[INET_ADDRSTRLEN];
	unsigned prefix = c->vc_prefix ? c->vc_prefix : VPC_PREFIX_DEFAULT;
	unsigned mtu = c->vc_mtu ? c->vc_mtu : VPC_MTU_DEFAULT;
	uint32_t ctmax = c->vc_conntrack_max ? c->vc_conntrack_max : VPC_CT_DEFAULT;
	const char *domain = c->vc_domain ? c->vc_domain : VPC_DOMAIN_DEFAULT;
	if (!lookup)
		RETURN_ERR(NULL, "vpc: no mapping lookup");
	if (c->vc_vni > VPC_VNI_MAX)
		RETURN_ERR(NULL, "vpc: VPC id %u out of range (0..%u)", c->vc_vni, VPC_VNI_MAX);
	if (prefix < 8 || prefix > 30)
		RETURN_ERR(NULL, "vpc: prefix /%u out of range (/8../30)", prefix);
	if (mtu < VPC_MTU_MIN || mtu > VPC_MTU_MAX)
		RETURN_ERR(NULL, "vpc: MTU %u out of range (%u..%u)", mtu, VPC_MTU_MIN,
			   VPC_MTU_MAX);
	if (ctmax > VPC_CT_MAX)
		RETURN_ERR(NULL, "vpc: conntrack size %u too large (at most %u)", ctmax,
			   VPC_CT_MAX);
	if (mac_is_group(c->vc_mac) || mac_eq(c->vc_mac, vpc_gateway_mac) ||
	    !memcmp(c->vc_mac, "\0\0\0\0\0\0", 6))
		RETURN_ERR(NULL, "vpc: MAC is not a usable unicast address");
	size_t dlen = strlen(domain);
	if (dlen > VPC_DOMAIN_MAX)
		RETURN_ERR(NULL, "vpc: domain name longer than %u bytes", VPC_DOMAIN_MAX);
	for (size_t i = 0; i < dlen; i++)
		if (!((domain[i] >= 'a' && domain[i] <= 'z') ||
		      (domain[i] >= 'A' && domain[i] <= 'Z') ||
		      (domain[i] >= '0' && domain[i] <= '9') || domain[i] == '-' ||
		      domain[i] == '.'))
			RETURN_ERR(NULL, "vpc: domain name '%s' has a bad character", domain);
	uint32_t mask = htonl(~0u << (32 - prefix));
	uint32_t host = ntohl(c->vc_ip & ~mask), last = ntohl(~mask);
	ipstr(c->vc_ip, a, sizeof(a));
	if (host <= 3 || host == last)
		RETURN_ERR(NULL,
			   "vpc: address %s/%u is reserved in its subnet (network, .1 router, .2 "
			   "DNS, .3, broadcast)",
			   a, prefix);
	struct vpc_port *p = calloc(1, sizeof(*p));
	if (!p)
		RETURN_ERR(NULL, "vpc: out of memory");
	if (ct_init(&p->p_ct, ctmax, seed64())) {
		free(p);
		RETURN_ERR(NULL, "vpc: out of memory for %u conntrack entries", ctmax);
	}
	p->p_vni = c->vc_vni;
	memcpy(p->p_mac, c->vc_mac, 6);
	p->p_ip = c->vc_ip;
	p->p_prefix = prefix;
	p->p_mask = mask;
	p->p_net = c->vc_ip & mask;
	p->p_gw = p->p_net | htonl(1);
	p->p_dns = p->p_net | htonl(2);
	p->p_bcast = p->p_net | ~mask;
	p->p_mtu = mtu;
	p->p_lease_s = c->vc_lease_s ? c->vc_lease_s : VPC_LEASE_DEFAULT;
	memcpy(p->p_domain, domain, dlen + 1);
	p->p_sg = c->vc_sg ? c->vc_sg : &sg_default_group;
	p->p_lookup = lookup;
	p->p_ctx = ctx;
	tb_init(&p->p_pps, c->vc_pps, 1, 0);
	tb_init(&p->p_bw_in, c->vc_bps / 8, ETH_HLEN_ + mtu, 0);
	tb_init(&p->p_bw_out, c->vc_bps / 8, ETH_HLEN_ + mtu, 0);
	tb_init(&p->p_linklocal, VPC_LINKLOCAL_PPS, 1, 0);
	p->p_igw_on = c->vc_igw;
	if (igw_policy_init(&p->p_igw, c->vc_ip, prefix, c->vc_vpc_net, c->vc_vpc_prefix) < 0) {
		vpc_port_free(p);
		RETURN_ERR(NULL, "vpc: the VPC's CIDR does not hold the subnet of %s/%u", a,
			   prefix);
	}
	return p;
}

void vpc_port_free(struct vpc_port *p)
{
	if (!p)
		return;
	ct_fini(&p->p_ct);
	free(p);
}

void vpc_port_set_sg(struct vpc_port *p, const struct vpc_sg *sg)
{
	p->p_sg = sg ? sg : &sg_default_group;
}

void vpc_port_tick(struct vpc_port *p, uint64_t now_ns)
{
	ct_sweep(&p->p_ct, now_ns, ct_slots(&p->p_ct));
}

/* ---- security groups + conntrack ---- */

/* The flow key of k from the interface's side. */
static void flow_key(const struct pkt *k, bool ingress, struct ct_key *key)
{
	key->k_proto = k->pk_proto;
	key->k_rip = ingress ? k->pk_src : k->pk_dst;
	key->k_lport = key->k_rport = 0;
	if (k->pk_proto == IPPROTO_TCP_ || k->pk_proto == IPPROTO_UDP_) {
		key->k_lport = ingress ? k->pk_dport : k->pk_sport;
		key->k_rport = ingress ? k->pk_sport : k->pk_dport;
	} else if (k->pk_proto == IPPROTO_ICMP_) {
		if (icmp_is_query(k->pk_icmp_type)) {
			key->k_lport = k->pk_icmp_id;
			key->k_rport = icmp_query_kind(k->pk_icmp_type);
		} else
			key->k_rport = (uint16_t)(k->pk_icmp_type << 8 | k->pk_icmp_code);
	}
}

/* An ICMP error about a flow we track (the packet it quotes went the other way). */
static bool related(struct vpc_port *p, const struct pkt *k, bool ingress, uint64_t now)
{
	const uint8_t *q = k->pk_l4 + 8;
	unsigned n = k->pk_l4len - 8;
	if (n < 20 || q[0] >> 4 != 4)
		return false;
	unsigned ihl = (q[0] & 15u) * 4;
	if (ihl < 20 || n < ihl + 8)
		return false;
	struct ct_key key = {.k_proto = q[9]};
	const uint8_t *l4 = q + ihl;
	/* The quoted packet left the side that now receives the error. */
	uint32_t qsrc = rdip(q + 12), qdst = rdip(q + 16);
	if (ingress ? qsrc != p->p_ip : qdst != p->p_ip)
		return false;
	key.k_rip = ingress ? qdst : qsrc;
	if (key.k_proto == IPPROTO_TCP_ || key.k_proto == IPPROTO_UDP_) {
		key.k_lport = ingress ? rd16(l4) : rd16(l4 + 2);
		key.k_rport = ingress ? rd16(l4 + 2) : rd16(l4);
	} else if (key.k_proto == IPPROTO_ICMP_ && icmp_is_query(l4[0])) {
		key.k_lport = rd16(l4 + 4);
		key.k_rport = icmp_query_kind(l4[0]);
	} else {
		return false;
	}
	return ct_find(&p->p_ct, &key, now) != NULL;
}

static uint64_t timeout_of(const struct ct_entry *e)
{
	switch (e->ce_proto) {
	case IPPROTO_TCP_:
		switch (e->ce_state) {
		case CT_TCP_SYN_SENT:
			return CT_TCP_SYN_SENT_NS;
		case CT_TCP_ESTABLISHED:
			return CT_TCP_EST_NS;
		case CT_TCP_FIN_WAIT:
			return CT_TCP_FIN_NS;
		case CT_TCP_CLOSE:
			return CT_TCP_CLOSED_NS;
		default: /* SYN_RECV, or picked up: waiting for the other side */
			return CT_TCP_SYN_RECV_NS;
		}
	case IPPROTO_UDP_:
		return (e->ce_flags & CT_UDP_STREAM) ? CT_UDP_STREAM_NS : CT_UDP_NS;
	case IPPROTO_ICMP_:
		return CT_ICMP_NS;
	default:
		return CT_OTHER_NS;
	}
}

/* Assured flows are never evicted to make room (Linux's IPS_ASSURED): TCP after a complete
 * handshake until it closes, UDP streams, other protocols once answered. Half-open TCP,
 * closed connections, unanswered flows and ICMP queries may be. */
static bool assured(const struct ct_entry *e)
{
	switch (e->ce_proto) {
	case IPPROTO_TCP_:
		return e->ce_state == CT_TCP_ESTABLISHED || e->ce_state == CT_TCP_FIN_WAIT;
	case IPPROTO_UDP_:
		return e->ce_flags & CT_UDP_STREAM;
	case IPPROTO_ICMP_:
		return false;
	default:
		return e->ce_flags & CT_REPLIED;
	}
}

/* The TCP state after a segment with flags fl, sent by the flow's originator (orig) or the
 * other side. Only the handshake in order establishes: orig's SYN, the other side's
 * SYN+ACK, orig's ACK; a flow picked up mid-stream (first segment without SYN, e.g. after
 * a card restart) is established by the other side's ACK. Any RST closes; FIN from both
 * sides closes; sequence numbers are not checked (the guest's own stack does). */
static uint8_t tcp_next(struct ct_entry *e, uint8_t fl, bool orig, bool out)
{
	uint8_t st = e->ce_state;
	bool syn = fl & TCP_SYN_, ack = fl & TCP_ACK_;
	if (fl & TCP_RST_)
		return CT_TCP_CLOSE;
	switch (st) {
	case CT_TCP_NONE:
		if (orig && syn && !ack)
			return CT_TCP_SYN_SENT;
		if (!orig && ack && !syn)
			st = CT_TCP_ESTABLISHED;
		break;
	case CT_TCP_SYN_SENT:
		if (!orig && syn && ack)
			return CT_TCP_SYN_RECV;
		break;
	case CT_TCP_SYN_RECV:
		if (orig && ack && !syn)
			st = CT_TCP_ESTABLISHED;
		break;
	default:
		break;
	}
	if ((fl & TCP_FIN_) && (st == CT_TCP_ESTABLISHED || st == CT_TCP_FIN_WAIT)) {
		e->ce_flags |= out ? CT_FIN_OUT : CT_FIN_IN;
		st = (e->ce_flags & (CT_FIN_OUT | CT_FIN_IN)) == (CT_FIN_OUT | CT_FIN_IN)
			 ? CT_TCP_CLOSE
			 : CT_TCP_FIN_WAIT;
	}
	return st;
}

static void ct_update(struct ct_table *t, struct ct_entry *e, const struct pkt *k, bool ingress,
		      uint64_t now)
{
	bool out = !ingress;
	bool orig = !!(e->ce_flags & CT_OUT) == out;
	if (!orig) {
		if ((e->ce_flags & CT_REPLIED) && e->ce_proto == IPPROTO_UDP_)
			e->ce_flags |= CT_UDP_STREAM;
		e->ce_flags |= CT_REPLIED;
	} else if ((e->ce_flags & CT_REPLIED) && e->ce_proto == IPPROTO_UDP_) {
		e->ce_flags |= CT_UDP_STREAM;
	}
	if (e->ce_proto == IPPROTO_TCP_)
		e->ce_state = tcp_next(e, k->pk_tcp_flags, orig, out);
	ct_set_assured(t, e, assured(e));
	e->ce_expires = now + timeout_of(e);
}

/* Security group + conntrack for one packet; VPC_DROP_NONE when it passes. */
static enum vpc_drop filter(struct vpc_port *p, const struct pkt *k, bool ingress,
			    bool peer_default, uint64_t now)
{
	const struct vpc_sg *g = p->p_sg;
	if ((k->pk_proto == IPPROTO_TCP_ && g->sg_untracked_tcp) ||
	    (k->pk_proto == IPPROTO_UDP_ && g->sg_untracked_udp))
		return VPC_DROP_NONE;
	bool icmp_err = k->pk_proto == IPPROTO_ICMP_ && icmp_is_error(k->pk_icmp_type);
	if (icmp_err && related(p, k, ingress, now))
		return VPC_DROP_NONE;
	struct ct_key key;
	flow_key(k, ingress, &key);
	struct ct_entry *e = ct_find(&p->p_ct, &key, now);
	uint16_t port = k->pk_proto == IPPROTO_ICMP_ ? k->pk_icmp_type : k->pk_dport;
	uint32_t rip = ingress ? k->pk_src : k->pk_dst;
	if (e) {
		/* A SYN reusing the tuple of a closed connection starts a new one: the rules
		 * decide again, and it gets the timeouts of a new flow. */
		if (e->ce_proto == IPPROTO_TCP_ && e->ce_state == CT_TCP_CLOSE &&
		    (k->pk_tcp_flags & (TCP_SYN_ | TCP_ACK_ | TCP_RST_)) == TCP_SYN_) {
			if (!sg_allows(g, ingress, k->pk_proto, port, rip, peer_default))
				return ingress ? VPC_DROP_SG_IN : VPC_DROP_SG_OUT;
			e->ce_flags = ingress ? 0 : CT_OUT;
			e->ce_state = CT_TCP_NONE;
			ct_requeue(&p->p_ct, e);
		}
		ct_update(&p->p_ct, e, k, ingress, now);
		return VPC_DROP_NONE;
	}
	if (!sg_allows(g, ingress, k->pk_proto, port, rip, peer_default))
		return ingress ? VPC_DROP_SG_IN : VPC_DROP_SG_OUT;
	if (icmp_err) /* allowed by a rule; errors open no flow */
		return VPC_DROP_NONE;
	e = ct_insert(&p->p_ct, &key, now, now + 1);
	if (!e) {
		p->p_st.st_conntrack_allowance_exceeded++;
		return VPC_DROP_CONNTRACK;
	}
	e->ce_flags = ingress ? 0 : CT_OUT;
	ct_update(&p->p_ct, e, k, ingress, now);
	return VPC_DROP_NONE;
}

/* ---- allowances ---- */

static enum vpc_drop allowance(struct vpc_port *p, bool ingress, size_t bytes, uint64_t now)
{
	struct tbucket *bw = ingress ? &p->p_bw_in : &p->p_bw_out;
	if (!tb_check(&p->p_pps, 1, now)) {
		p->p_st.st_pps_allowance_exceeded++;
		return VPC_DROP_PPS;
	}
	if (!tb_check(bw, bytes, now)) {
		if (ingress)
			p->p_st.st_bw_in_allowance_exceeded++;
		else
			p->p_st.st_bw_out_allowance_exceeded++;
		return ingress ? VPC_DROP_BW_IN : VPC_DROP_BW_OUT;
	}
	tb_take(&p->p_pps, 1);
	tb_take(bw, bytes);
	return VPC_DROP_NONE;
}

enum vpc_drop vpc_core_filter(struct vpc_port *p, const struct pkt *k, bool ingress, uint64_t now)
{
	return filter(p, k, ingress, false, now);
}

enum vpc_drop vpc_core_allowance(struct vpc_port *p, bool ingress, size_t bytes, uint64_t now)
{
	return allowance(p, ingress, bytes, now);
}

/* ---- guest -> the link-local services ---- */

static bool is_linklocal(const struct vpc_port *p, uint32_t dst)
{
	return dst == htonl(VPC_IMDS_IP) || dst == htonl(VPC_DNS_IP) || dst == htonl(VPC_NTP_IP) ||
	       dst == p->p_dns;
}

/* A packet to the link-local services (169.254.169.254, .253, .123 and the VPC resolver
 * at base + 2): the link-local allowance (AWS: 1024 packets/s per interface for DNS, IMDS
 * and time together; no security group applies), then TCP to 169.254.169.254:80 goes to
 * the card's IMDS, UDP to the resolver's port 53 or the time server's 123 to its
 * services, the rest is dropped. */
static enum vpc_action to_linklocal(struct vpc_port *p, const struct pkt *k, uint64_t now,
				    struct vpc_out *out)
{
	if (!tb_check(&p->p_linklocal, 1, now)) {
		p->p_st.st_linklocal_allowance_exceeded++;
		return vpc_drop(p, out, VPC_DROP_LINKLOCAL);
	}
	tb_take(&p->p_linklocal, 1);
	enum vpc_action act;
	if (k->pk_dst == htonl(VPC_IMDS_IP) && k->pk_proto == IPPROTO_TCP_ && k->pk_dport == 80) {
		p->p_st.st_imds_packets++;
		act = VPC_TO_IMDS;
	} else if (k->pk_proto == IPPROTO_UDP_ &&
		   (k->pk_dst == htonl(VPC_NTP_IP)
			? k->pk_dport == 123
			: k->pk_dst != htonl(VPC_IMDS_IP) && k->pk_dport == 53)) {
		p->p_st.st_service_packets++;
		act = VPC_TO_SERVICE;
	} else {
		return vpc_drop(p, out, VPC_DROP_NO_ROUTE);
	}
	out->vo_data = k->pk_ip;
	out->vo_len = k->pk_len;
	return act;
}

/* ---- guest -> underlay ---- */

enum vpc_action vpc_from_guest(struct vpc_port *p, const uint8_t *frame, size_t len,
			       uint64_t now_ns, struct vpc_out *out)
{
	p->p_st.st_tx_packets++;
	p->p_st.st_tx_bytes += len;
	if (len < ETH_HLEN_)
		return vpc_drop(p, out, VPC_DROP_RUNT);
	if (len > ETH_HLEN_ + p->p_mtu)
		return vpc_drop(p, out, VPC_DROP_OVERSIZE);
	uint16_t type = rd16(frame + 12);
	if (type == ETHERTYPE_VLAN_ || type == ETHERTYPE_QINQ_ || type == ETHERTYPE_QINQ_OLD_)
		return vpc_drop(p, out, VPC_DROP_VLAN);
	if (!mac_eq(frame + 6, p->p_mac))
		return vpc_drop(p, out, VPC_DROP_SPOOF_OUT);
	enum vpc_action act;
	if (type == ETHERTYPE_ARP_) {
		act = arp_from_guest(p, frame, len, out);
		goto guest;
	}
	if (type != ETHERTYPE_IPV4_)
		return vpc_drop(p, out, VPC_DROP_ETHERTYPE);
	struct pkt k;
	enum vpc_drop r = pkt_parse_ipv4(&k, frame + ETH_HLEN_, len - ETH_HLEN_);
	if (r)
		return vpc_drop(p, out, r);
	bool group = mac_is_group(frame);
	if (k.pk_proto == IPPROTO_UDP_ && k.pk_dport == 67 &&
	    (group || k.pk_dst == p->p_gw || k.pk_dst == 0xffffffffu)) {
		act = dhcp_from_guest(p, &k, out);
		goto guest;
	}
	if (group)
		return vpc_drop(p, out, VPC_DROP_BROADCAST);
	if (k.pk_src != p->p_ip)
		return vpc_drop(p, out, VPC_DROP_SPOOF_OUT);
	if (is_linklocal(p, k.pk_dst))
		return to_linklocal(p, &k, now_ns, out);
	if (p->p_igw_on && (k.pk_dst == p->p_gw || igw_outside(&p->p_igw, k.pk_dst)))
		return igw_from_guest(p, &k, frame, now_ns, out);
	struct vpc_map_entry m;
	if (k.pk_dst == p->p_ip || k.pk_dst == p->p_gw || k.pk_dst == p->p_dns ||
	    p->p_lookup(p->p_ctx, p->p_vni, k.pk_dst, &m) != 0 || m.vm_vni != p->p_vni ||
	    m.vm_ip != k.pk_dst || mac_is_group(m.vm_mac) || !m.vm_ul_ip || !m.vm_ul_port)
		return vpc_drop(p, out, VPC_DROP_NO_ROUTE);
	r = filter(p, &k, false, m.vm_default_sg, now_ns);
	if (r)
		return vpc_drop(p, out, r);
	size_t flen = ETH_HLEN_ + k.pk_len; /* Ethernet padding stays behind */
	r = allowance(p, false, flen, now_ns);
	if (r)
		return vpc_drop(p, out, r);
	if (out->vo_cap < VPC_GENEVE_HLEN + flen)
		return vpc_drop(p, out, VPC_DROP_NO_ROOM);
	uint8_t *o = out->vo_buf;
	geneve_put(o, p->p_vni);
	memcpy(o + VPC_GENEVE_HLEN, frame, flen);
	memcpy(o + VPC_GENEVE_HLEN, m.vm_mac, 6); /* dst: the peer; src stays ours */
	out->vo_data = o;
	out->vo_len = VPC_GENEVE_HLEN + flen;
	out->vo_ul_ip = m.vm_ul_ip;
	out->vo_ul_port = m.vm_ul_port;
	out->vo_drop = VPC_DROP_NONE;
	p->p_st.st_tx_forwarded++;
	return VPC_TO_UNDERLAY;
guest:
	if (act == VPC_TO_GUEST) {
		out->vo_drop = VPC_DROP_NONE;
		p->p_st.st_rx_packets++;
		p->p_st.st_rx_bytes += out->vo_len;
	}
	return act;
}

/* ---- underlay -> guest ---- */

enum vpc_action vpc_from_underlay(struct vpc_port *p, const uint8_t *udp_payload, size_t len,
				  uint32_t src_ul_ip, uint16_t src_ul_port, uint64_t now_ns,
				  struct vpc_out *out)
{
	p->p_st.st_ul_packets++;
	uint32_t vni;
	size_t hlen;
	enum vpc_drop r = geneve_parse(udp_payload, len, &vni, &hlen);
	if (r)
		return vpc_drop(p, out, r);
	if (vni != p->p_vni)
		return vpc_drop(p, out, VPC_DROP_WRONG_VNI);
	const uint8_t *f = udp_payload + hlen;
	size_t flen = len - hlen;
	if (flen < ETH_HLEN_)
		return vpc_drop(p, out, VPC_DROP_RUNT);
	if (flen > ETH_HLEN_ + p->p_mtu)
		return vpc_drop(p, out, VPC_DROP_OVERSIZE);
	uint16_t type = rd16(f + 12);
	if (type == ETHERTYPE_VLAN_ || type == ETHERTYPE_QINQ_ || type == ETHERTYPE_QINQ_OLD_)
		return vpc_drop(p, out, VPC_DROP_VLAN);
	if (type != ETHERTYPE_IPV4_)
		return vpc_drop(p, out, VPC_DROP_ETHERTYPE);
	if (!mac_eq(f, p->p_mac))
		return vpc_drop(p, out, VPC_DROP_NOT_FOR_US);
	struct pkt k;
	r = pkt_parse_ipv4(&k, f + ETH_HLEN_, flen - ETH_HLEN_);
	if (r)
		return vpc_drop(p, out, r);
	if (k.pk_dst != p->p_ip)
		return vpc_drop(p, out, VPC_DROP_NOT_FOR_US);
	struct vpc_map_entry m;
	if (p->p_lookup(p->p_ctx, p->p_vni, k.pk_src, &m) != 0 || m.vm_vni != p->p_vni ||
	    m.vm_ip != k.pk_src || !mac_eq(m.vm_mac, f + 6) || m.vm_ul_ip != src_ul_ip ||
	    m.vm_ul_port != src_ul_port)
		return vpc_drop(p, out, VPC_DROP_SPOOF_IN);
	r = filter(p, &k, true, m.vm_default_sg, now_ns);
	if (r)
		return vpc_drop(p, out, r);
	flen = ETH_HLEN_ + k.pk_len;
	r = allowance(p, true, flen, now_ns);
	if (r)
		return vpc_drop(p, out, r);
	if (in_subnet(p, k.pk_src)) {
		out->vo_data = f; /* as it came: dst is us, src the peer */
	} else {
		if (out->vo_cap < flen)
			return vpc_drop(p, out, VPC_DROP_NO_ROOM);
		memcpy(out->vo_buf, f, flen);
		memcpy(out->vo_buf + 6, vpc_gateway_mac, 6); /* routed: from the gateway */
		out->vo_data = out->vo_buf;
	}
	out->vo_len = flen;
	out->vo_drop = VPC_DROP_NONE;
	p->p_st.st_rx_forwarded++;
	p->p_st.st_rx_packets++;
	p->p_st.st_rx_bytes += flen;
	return VPC_TO_GUEST;
}

/* ---- counters ---- */

void vpc_port_stats(const struct vpc_port *p, struct vpc_stats *st)
{
	*st = p->p_st;
	st->st_conntrack_entries = p->p_ct.ct_count;
	st->st_conntrack_allowance_available = p->p_ct.ct_max - p->p_ct.ct_count;
	st->st_conntrack_evicted = p->p_ct.ct_evicted;
}

int vpc_stats_format(const struct vpc_stats *st, char *buf, size_t len)
{
	const struct {
		const char *name;
		uint64_t v;
	} c[] = {
	    {"tx_packets", st->st_tx_packets},
	    {"tx_bytes", st->st_tx_bytes},
	    {"rx_packets", st->st_rx_packets},
	    {"rx_bytes", st->st_rx_bytes},
	    {"tx_forwarded", st->st_tx_forwarded},
	    {"rx_forwarded", st->st_rx_forwarded},
	    {"underlay_packets", st->st_ul_packets},
	    {"arp_replies", st->st_arp_replies},
	    {"dhcp_replies", st->st_dhcp_replies},
	    {"bw_in_allowance_exceeded", st->st_bw_in_allowance_exceeded},
	    {"bw_out_allowance_exceeded", st->st_bw_out_allowance_exceeded},
	    {"pps_allowance_exceeded", st->st_pps_allowance_exceeded},
	    {"conntrack_allowance_exceeded", st->st_conntrack_allowance_exceeded},
	    {"conntrack_allowance_available", st->st_conntrack_allowance_available},
	    {"conntrack_entries", st->st_conntrack_entries},
	    {"conntrack_evicted", st->st_conntrack_evicted},
	    {"linklocal_allowance_exceeded", st->st_linklocal_allowance_exceeded},
	    {"imds_packets", st->st_imds_packets},
	    {"service_packets", st->st_service_packets},
	    {"igw_tx", st->st_igw_tx},
	    {"igw_rx", st->st_igw_rx},
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		int w = snprintf(buf + (n < len ? n : len), n < len ? len - n : 0, "%s %llu\n",
				 c[i].name, (unsigned long long)c[i].v);
		if (w < 0)
			return -1;
		n += (size_t)w;
	}
	for (int r = 1; r < VPC_DROP__COUNT; r++) {
		int w = snprintf(buf + (n < len ? n : len), n < len ? len - n : 0, "drop_%s %llu\n",
				 drop_names[r], (unsigned long long)st->st_drops[r]);
		if (w < 0)
			return -1;
		n += (size_t)w;
	}
	return (int)n;
}

void vpc_stats_print(const struct vpc_stats *st, FILE *f)
{
	char buf[4096];
	int n = vpc_stats_format(st, buf, sizeof(buf));
	if (n > 0)
		fwrite(buf, 1, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, f);
}
