/* Geneve (RFC 8926) headers: what we send and the checks on what we receive. */
#include "cards/vpc/core.h"

void geneve_put(uint8_t *h, uint32_t vni)
{
	h[0] = 0; /* version 0, no options */
	h[1] = 0; /* not OAM, no critical options */
	wr16(h + 2, VPC_GENEVE_PROTO);
	wr32(h + 4, vni << 8);
}

enum vpc_drop geneve_parse(const uint8_t *p, size_t len, uint32_t *vni, size_t *hlen)
{
	if (len < VPC_GENEVE_HLEN)
		return VPC_DROP_BAD_GENEVE;
	if (p[0] >> 6 != 0) /* version */
		return VPC_DROP_BAD_GENEVE;
	size_t opt = (size_t)(p[0] & 0x3f) * 4;
	if (p[1] & 0x80) /* OAM: control traffic, never for a guest */
		return VPC_DROP_BAD_GENEVE;
	if (p[1] & 0x40) /* a critical option we cannot know */
		return VPC_DROP_BAD_GENEVE;
	if (rd16(p + 2) != VPC_GENEVE_PROTO)
		return VPC_DROP_BAD_GENEVE;
	if (VPC_GENEVE_HLEN + opt > len)
		return VPC_DROP_BAD_GENEVE;
	/* Options: each must fit exactly inside the option area. */
	size_t o = VPC_GENEVE_HLEN;
	while (o < VPC_GENEVE_HLEN + opt) {
		if (VPC_GENEVE_HLEN + opt - o < 4)
			return VPC_DROP_BAD_GENEVE;
		size_t ol = 4 + (size_t)(p[o + 3] & 0x1f) * 4;
		if (ol > VPC_GENEVE_HLEN + opt - o)
			return VPC_DROP_BAD_GENEVE;
		if (p[o + 2] & 0x80) /* critical bit of the option type */
			return VPC_DROP_BAD_GENEVE;
		o += ol;
	}
	*vni = rd32(p + 4) >> 8;
	*hlen = VPC_GENEVE_HLEN + opt;
	return VPC_DROP_NONE;
}
