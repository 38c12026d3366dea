/* The DHCP server of one interface (RFC 2131/2132): it only ever leases the interface's
 * own address. DISCOVER -> OFFER, REQUEST for our address -> ACK, for another -> NAK,
 * INFORM -> ACK without an address; RELEASE/DECLINE and requests to another server are
 * dropped (counted as bad_dhcp). Replies come from the gateway (.1, gateway MAC, port
 * 67 -> 68) and go where RFC 2131 4.1 says: ciaddr when the client has one, broadcast
 * when it asked (flags bit 15) or for a NAK, else the offered address at chaddr.
 */
#include "cards/vpc/core.h"
#include "cards/vpc/verdict.h"

#define BOOTP_LEN 236 /* fixed part, up to the magic cookie */
#define DHCP_MIN 300  /* the smallest BOOTP message clients accept */

enum {
	DHCPDISCOVER = 1,
	DHCPOFFER = 2,
	DHCPREQUEST = 3,
	DHCPDECLINE = 4,
	DHCPACK = 5,
	DHCPNAK = 6,
	DHCPRELEASE = 7,
	DHCPINFORM = 8,
};

static const uint8_t cookie[4] = {99, 130, 83, 99};

struct dhcp_req {
	uint8_t type;
	bool have_req_ip, have_server;
	uint32_t req_ip, server;
};

/* Options of the request (only the main area: overload is not needed for requests). */
static int parse_options(const uint8_t *o, size_t n, struct dhcp_req *q)
{
	size_t i = 0;
	while (i < n) {
		uint8_t code = o[i];
		if (code == 0) {
			i++;
			continue;
		}
		if (code == 255)
			return 0;
		if (i + 2 > n || i + 2 + o[i + 1] > n)
			return -1;
		uint8_t l = o[i + 1];
		const uint8_t *v = o + i + 2;
		if (code == 53 && l == 1)
			q->type = v[0];
		else if (code == 50 && l == 4)
			q->have_req_ip = true, q->req_ip = rdip(v);
		else if (code == 54 && l == 4)
			q->have_server = true, q->server = rdip(v);
		else if (code == 53 || code == 50 || code == 54)
			return -1;
		i += 2 + l;
	}
	return 0; /* no END: tolerated */
}

static uint8_t *opt(uint8_t *o, uint8_t code, uint8_t len, const void *v)
{
	o[0] = code;
	o[1] = len;
	memcpy(o + 2, v, len);
	return o + 2 + len;
}

static uint8_t *opt32(uint8_t *o, uint8_t code, uint32_t host_order)
{
	uint8_t b[4];
	wr32(b, host_order);
	return opt(o, code, 4, b);
}

static uint8_t *optip(uint8_t *o, uint8_t code, uint32_t net_order)
{
	return opt(o, code, 4, &net_order);
}

enum vpc_action dhcp_from_guest(struct vpc_port *p, const struct pkt *k, struct vpc_out *out)
{
	const uint8_t *u = k->pk_l4;
	if (k->pk_l4len < 8 + BOOTP_LEN + 4)
		return vpc_drop(p, out, VPC_DROP_BAD_DHCP);
	const uint8_t *b = u + 8;
	size_t blen = k->pk_l4len - 8;
	if (b[0] != 1 || b[1] != 1 || b[2] != 6 || memcmp(b + BOOTP_LEN, cookie, 4))
		return vpc_drop(p, out, VPC_DROP_BAD_DHCP);
	if (!mac_eq(b + 28, p->p_mac))
		return vpc_drop(p, out, VPC_DROP_SPOOF_OUT);
	if (rdip(b + 24) != 0) /* giaddr: there is no relay in a VPC */
		return vpc_drop(p, out, VPC_DROP_BAD_DHCP);
	struct dhcp_req q = {0};
	if (parse_options(b + BOOTP_LEN + 4, blen - BOOTP_LEN - 4, &q))
		return vpc_drop(p, out, VPC_DROP_BAD_DHCP);
	uint32_t ciaddr = rdip(b + 12);
	if (ciaddr != 0 && ciaddr != p->p_ip)
		return vpc_drop(p, out, VPC_DROP_SPOOF_OUT);
	if (k->pk_src != 0 && k->pk_src != p->p_ip)
		return vpc_drop(p, out, VPC_DROP_SPOOF_OUT);
	uint8_t rtype;
	switch (q.type) {
	case DHCPDISCOVER:
		rtype = DHCPOFFER;
		break;
	case DHCPREQUEST: {
		if (q.have_server && q.server != p->p_gw)
			return vpc_drop(p, out, VPC_DROP_BAD_DHCP); /* chose another server */
		uint32_t want = q.have_req_ip ? q.req_ip : ciaddr;
		rtype = want == p->p_ip ? DHCPACK : DHCPNAK;
		break;
	}
	case DHCPINFORM:
		rtype = DHCPACK;
		break;
	default:
		return vpc_drop(p, out, VPC_DROP_BAD_DHCP);
	}

	size_t dlen = strlen(p->p_domain);
	size_t need = ETH_HLEN_ + 20 + 8 + DHCP_MIN + 64 + dlen;
	if (out->vo_cap < need)
		return vpc_drop(p, out, VPC_DROP_NO_ROOM);
	uint8_t *f = out->vo_buf;
	memset(f, 0, need);
	uint8_t *ip = f + ETH_HLEN_, *ud = ip + 20, *r = ud + 8;
	/* BOOTP */
	r[0] = 2;
	r[1] = 1;
	r[2] = 6;
	memcpy(r + 4, b + 4, 4);   /* xid */
	memcpy(r + 10, b + 10, 2); /* flags */
	if (rtype != DHCPNAK && q.type != DHCPINFORM)
		wrip(r + 16, p->p_ip); /* yiaddr */
	if (rtype == DHCPACK)
		memcpy(r + 12, b + 12, 4); /* ciaddr */
	memcpy(r + 28, b + 28, 16);	   /* chaddr */
	memcpy(r + BOOTP_LEN, cookie, 4);
	uint8_t *o = r + BOOTP_LEN + 4;
	o = opt(o, 53, 1, &rtype);
	o = optip(o, 54, p->p_gw);
	if (rtype != DHCPNAK) {
		if (q.type != DHCPINFORM) {
			o = opt32(o, 51, p->p_lease_s);
			o = opt32(o, 58, p->p_lease_s / 2);
			o = opt32(o, 59, p->p_lease_s / 8 * 7);
		}
		o = optip(o, 1, p->p_mask);
		o = optip(o, 28, p->p_bcast);
		o = optip(o, 3, p->p_gw);
		o = optip(o, 6, p->p_dns);
		if (dlen)
			o = opt(o, 15, (uint8_t)dlen, p->p_domain);
		uint8_t mtu[2];
		wr16(mtu, (uint16_t)p->p_mtu);
		o = opt(o, 26, 2, mtu);
		o = opt32(o, 42, VPC_NTP_IP);
	}
	*o++ = 255;
	size_t blen_out = (size_t)(o - r);
	if (blen_out < DHCP_MIN)
		blen_out = DHCP_MIN;
	/* UDP */
	wr16(ud, 67);
	wr16(ud + 2, 68);
	wr16(ud + 4, (uint16_t)(8 + blen_out));
	/* where it goes */
	bool bcast = rtype == DHCPNAK || (ciaddr == 0 && (rd16(b + 10) & 0x8000));
	uint32_t dst = ciaddr ? ciaddr : bcast ? 0xffffffffu : p->p_ip;
	if (rtype == DHCPNAK)
		dst = 0xffffffffu;
	static const uint8_t bmac[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	memcpy(f, dst == 0xffffffffu ? bmac : p->p_mac, 6);
	memcpy(f + 6, vpc_gateway_mac, 6);
	wr16(f + 12, ETHERTYPE_IPV4_);
	/* IPv4 */
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)(20 + 8 + blen_out));
	wr16(ip + 4, p->p_ip_id++);
	ip[8] = 64;
	ip[9] = IPPROTO_UDP_;
	wrip(ip + 12, p->p_gw);
	wrip(ip + 16, dst);
	ip_set_csum(ip, 20);
	wr16(ud + 6, udp_csum(p->p_gw, dst, ud, (unsigned)(8 + blen_out)));
	out->vo_data = f;
	out->vo_len = ETH_HLEN_ + 20 + 8 + blen_out;
	p->p_st.st_dhcp_replies++;
	return VPC_TO_GUEST;
}
