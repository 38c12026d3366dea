/* ARP, answered by the card: nothing is broadcast. The reply goes back to the guest as a
 * 42-byte frame (no padding: virtio-net needs none). Rules in vpc.h. */
#include "cards/vpc/core.h"
#include "cards/vpc/verdict.h"

#define ARP_LEN 28

enum vpc_action arp_from_guest(struct vpc_port *p, const uint8_t *frame, size_t len,
			       struct vpc_out *out)
{
	if (len < ETH_HLEN_ + ARP_LEN)
		return vpc_drop(p, out, VPC_DROP_RUNT);
	const uint8_t *a = frame + ETH_HLEN_;
	if (rd16(a) != 1 || rd16(a + 2) != ETHERTYPE_IPV4_ || a[4] != 6 || a[5] != 4)
		return vpc_drop(p, out, VPC_DROP_BAD_ARP);
	if (rd16(a + 6) != 1) /* replies and anything else from the guest: nobody to tell */
		return vpc_drop(p, out, VPC_DROP_BAD_ARP);
	uint32_t sip = rdip(a + 14), tip = rdip(a + 24);
	if (!mac_eq(a + 8, p->p_mac) || (sip != p->p_ip && sip != 0))
		return vpc_drop(p, out, VPC_DROP_SPOOF_OUT);
	const uint8_t *mac;
	struct vpc_map_entry m;
	if (tip == p->p_ip) /* a duplicate-address probe or announcement: no conflict */
		return vpc_drop(p, out, VPC_DROP_ARP_UNKNOWN);
	if (tip == p->p_gw || tip == p->p_dns || !in_subnet(p, tip)) {
		mac = vpc_gateway_mac;
	} else {
		if (p->p_lookup(p->p_ctx, p->p_vni, tip, &m) != 0 || m.vm_vni != p->p_vni ||
		    m.vm_ip != tip || mac_is_group(m.vm_mac))
			return vpc_drop(p, out, VPC_DROP_ARP_UNKNOWN);
		mac = m.vm_mac;
	}
	if (out->vo_cap < ETH_HLEN_ + ARP_LEN)
		return vpc_drop(p, out, VPC_DROP_NO_ROOM);
	uint8_t *f = out->vo_buf, *r = f + ETH_HLEN_;
	memcpy(f, p->p_mac, 6);
	memcpy(f + 6, mac, 6);
	wr16(f + 12, ETHERTYPE_ARP_);
	wr16(r, 1);
	wr16(r + 2, ETHERTYPE_IPV4_);
	r[4] = 6;
	r[5] = 4;
	wr16(r + 6, 2);
	memcpy(r + 8, mac, 6);
	wrip(r + 14, tip);
	memcpy(r + 18, p->p_mac, 6);
	wrip(r + 24, sip);
	out->vo_data = f;
	out->vo_len = ETH_HLEN_ + ARP_LEN;
	p->p_st.st_arp_replies++;
	return VPC_TO_GUEST;
}
