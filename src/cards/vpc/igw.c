/* The internet gateway in the VPC core: guest -> NAT and NAT -> guest (contract in igw.h
 * and igw_policy.h). */
#include <string.h>

#include "cards/vpc/core.h"
#include "cards/vpc/igw.h"

enum vpc_action igw_from_guest(struct vpc_port *p, const struct pkt *k, const uint8_t *frame,
			       uint64_t now, struct vpc_out *out)
{
	if (!igw_may_leave(&p->p_igw, k->pk_src, k->pk_dst, k->pk_proto, k->pk_dport))
		return vpc_drop(p, out, VPC_DROP_NO_ROUTE);
	enum vpc_drop r = vpc_core_filter(p, k, false, now);
	if (r)
		return vpc_drop(p, out, r);
	size_t flen = ETH_HLEN_ + k->pk_len; /* Ethernet padding stays behind */
	r = vpc_core_allowance(p, false, flen, now);
	if (r)
		return vpc_drop(p, out, r);
	out->vo_data = frame;
	out->vo_len = flen;
	out->vo_drop = VPC_DROP_NONE;
	p->p_st.st_igw_tx++;
	return VPC_TO_IGW;
}

enum vpc_action vpc_from_igw(struct vpc_port *p, const uint8_t *f, size_t len, uint64_t now_ns,
			     struct vpc_out *out)
{
	if (!p->p_igw_on)
		return vpc_drop(p, out, VPC_DROP_NO_ROUTE);
	if (len < ETH_HLEN_)
		return vpc_drop(p, out, VPC_DROP_RUNT);
	if (len > ETH_HLEN_ + p->p_mtu)
		return vpc_drop(p, out, VPC_DROP_OVERSIZE);
	if (rd16(f + 12) != ETHERTYPE_IPV4_)
		return vpc_drop(p, out, VPC_DROP_ETHERTYPE);
	struct pkt k;
	enum vpc_drop r = pkt_parse_ipv4(&k, f + ETH_HLEN_, len - ETH_HLEN_);
	if (r)
		return vpc_drop(p, out, r);
	if (!igw_may_enter(&p->p_igw, k.pk_src, k.pk_dst, k.pk_proto))
		return vpc_drop(p, out, VPC_DROP_SPOOF_IN);
	r = vpc_core_filter(p, &k, true, now_ns);
	if (r)
		return vpc_drop(p, out, r);
	size_t flen = ETH_HLEN_ + k.pk_len;
	r = vpc_core_allowance(p, true, flen, now_ns);
	if (r)
		return vpc_drop(p, out, r);
	if (out->vo_cap < flen)
		return vpc_drop(p, out, VPC_DROP_NO_ROOM);
	memcpy(out->vo_buf, f, flen);
	memcpy(out->vo_buf, p->p_mac, 6);
	memcpy(out->vo_buf + 6, vpc_gateway_mac, 6); /* routed: from the gateway */
	out->vo_data = out->vo_buf;
	out->vo_len = flen;
	out->vo_drop = VPC_DROP_NONE;
	p->p_st.st_igw_rx++;
	p->p_st.st_rx_packets++;
	p->p_st.st_rx_bytes += flen;
	return VPC_TO_GUEST;
}
