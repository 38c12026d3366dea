/* IPv4 and L4 header validation and checksums. */
#include "cards/vpc/pkt.h"

uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;
	while (len >= 8) { /* the ones'-complement sum is byte-order independent per word */
		uint32_t a, b;
		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		s += (uint64_t)__builtin_bswap32(a) + __builtin_bswap32(b);
		p += 8;
		len -= 8;
	}
	while (len >= 2) {
		s += (uint32_t)(p[0] << 8 | p[1]);
		p += 2;
		len -= 2;
	}
	if (len)
		s += (uint32_t)p[0] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

void ip_set_csum(uint8_t *ip, unsigned ihl)
{
	ip[10] = ip[11] = 0;
	wr16(ip + 10, csum_fold(csum_add(0, ip, ihl)));
}

uint16_t udp_csum(uint32_t src, uint32_t dst, const uint8_t *udp, unsigned len)
{
	uint8_t ph[12];
	wrip(ph, src);
	wrip(ph + 4, dst);
	ph[8] = 0;
	ph[9] = IPPROTO_UDP_;
	wr16(ph + 10, (uint16_t)len);
	uint16_t c = csum_fold(csum_add(csum_add(0, ph, 12), udp, len));
	return c ? c : 0xffff;
}

bool icmp_is_error(uint8_t type)
{
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12;
}

bool icmp_is_query(uint8_t type)
{
	switch (type) {
	case 0:
	case 8:
	case 13:
	case 14:
	case 15:
	case 16:
	case 17:
	case 18:
		return true;
	default:
		return false;
	}
}

enum vpc_drop pkt_parse_ipv4(struct pkt *k, const uint8_t *ip, size_t len)
{
	if (len < 20)
		return VPC_DROP_RUNT;
	if (ip[0] >> 4 != 4)
		return VPC_DROP_BAD_IP;
	unsigned ihl = (ip[0] & 15u) * 4;
	unsigned tot = rd16(ip + 2);
	if (ihl < 20 || ihl > len || tot < ihl || tot > len)
		return VPC_DROP_BAD_IP;
	if (csum_fold(csum_add(0, ip, ihl)) != 0)
		return VPC_DROP_BAD_IP;
	uint16_t frag = rd16(ip + 6);
	if (frag & 0x8000) /* the reserved ("evil") bit */
		return VPC_DROP_BAD_IP;
	if (frag & 0x3fff) /* MF or an offset */
		return VPC_DROP_FRAGMENT;
	k->pk_ip = ip;
	k->pk_ihl = ihl;
	k->pk_len = tot;
	k->pk_ttl = ip[8];
	k->pk_proto = ip[9];
	k->pk_src = rdip(ip + 12);
	k->pk_dst = rdip(ip + 16);
	k->pk_l4 = ip + ihl;
	k->pk_l4len = tot - ihl;
	k->pk_sport = k->pk_dport = 0;
	k->pk_tcp_flags = 0;
	k->pk_icmp_type = k->pk_icmp_code = 0;
	k->pk_icmp_id = 0;
	const uint8_t *l4 = k->pk_l4;
	unsigned n = k->pk_l4len;
	switch (k->pk_proto) {
	case IPPROTO_TCP_:
		if (n < 20)
			return VPC_DROP_BAD_L4;
		if ((l4[12] >> 4) * 4u < 20 || (l4[12] >> 4) * 4u > n)
			return VPC_DROP_BAD_L4;
		k->pk_sport = rd16(l4);
		k->pk_dport = rd16(l4 + 2);
		k->pk_tcp_flags = l4[13];
		if (!k->pk_sport || !k->pk_dport)
			return VPC_DROP_BAD_L4;
		break;
	case IPPROTO_UDP_:
		if (n < 8 || rd16(l4 + 4) != n)
			return VPC_DROP_BAD_L4;
		k->pk_sport = rd16(l4);
		k->pk_dport = rd16(l4 + 2);
		if (!k->pk_dport)
			return VPC_DROP_BAD_L4;
		break;
	case IPPROTO_ICMP_:
		if (n < 8)
			return VPC_DROP_BAD_L4;
		k->pk_icmp_type = l4[0];
		k->pk_icmp_code = l4[1];
		if (icmp_is_query(l4[0]))
			k->pk_icmp_id = rd16(l4 + 4);
		break;
	default:
		break;
	}
	return VPC_DROP_NONE;
}
