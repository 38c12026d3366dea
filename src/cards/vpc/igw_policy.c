/* The internet gateway's address policy (contract in igw_policy.h). */
#include "cards/vpc/igw_policy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static uint32_t mask_of(unsigned prefix)
{
	return prefix ? htonl(~0u << (32 - prefix)) : 0;
}

int igw_policy_init(struct igw_policy *pol, uint32_t self, unsigned prefix, uint32_t vpc_net,
		    unsigned vpc_prefix)
{
	memset(pol, 0, sizeof(*pol));
	if (prefix < 8 || prefix > 30 || vpc_prefix > prefix)
		return -1;
	uint32_t m = mask_of(prefix);
	pol->ip_self = self;
	pol->ip_router = (self & m) | htonl(1);
	if (!vpc_prefix) {
		pol->ip_vpc_net = self & m;
		pol->ip_vpc_mask = m;
		return 0;
	}
	uint32_t vm = mask_of(vpc_prefix);
	if ((vpc_net & ~vm) || (self & vm) != vpc_net)
		return -1;
	pol->ip_vpc_net = vpc_net;
	pol->ip_vpc_mask = vm;
	return 0;
}

int igw_policy_deny(struct igw_policy *pol, uint32_t net, unsigned prefix)
{
	if (pol->ip_ndeny >= IGW_DENY_MAX || prefix > 32)
		return -1;
	pol->ip_deny_mask[pol->ip_ndeny] = mask_of(prefix);
	pol->ip_deny_net[pol->ip_ndeny] = net & mask_of(prefix);
	pol->ip_ndeny++;
	return 0;
}

bool igw_outside(const struct igw_policy *pol, uint32_t dst)
{
	uint32_t h = ntohl(dst);
	if ((dst & pol->ip_vpc_mask) == pol->ip_vpc_net)
		return false;
	if ((h >> 24) == 0 || (h >> 24) == 127 || (h >> 16) == 0xa9fe || (h >> 28) >= 14)
		return false; /* 0/8, loopback, link-local, multicast, 240/4 and broadcast */
	for (unsigned i = 0; i < pol->ip_ndeny; i++)
		if ((dst & pol->ip_deny_mask[i]) == pol->ip_deny_net[i])
			return false;
	return true;
}

static bool l4_ok(uint8_t proto)
{
	return proto == 6 || proto == 17; /* TCP, UDP */
}

bool igw_may_leave(const struct igw_policy *pol, uint32_t src, uint32_t dst, uint8_t proto,
		   uint16_t dport)
{
	if (src != pol->ip_self || !l4_ok(proto))
		return false;
	if (dst == pol->ip_router)
		return dport != 67;			      /* DHCP is the card's */
	if (dst == ((pol->ip_router & ~htonl(1)) | htonl(3))) /* the nameserver hook */
		return dport == 53;
	return igw_outside(pol, dst);
}

bool igw_may_enter(const struct igw_policy *pol, uint32_t src, uint32_t dst, uint8_t proto)
{
	if (dst != pol->ip_self || !l4_ok(proto))
		return false;
	return src == pol->ip_router || igw_outside(pol, src);
}

bool igw_frame_may_leave(const struct igw_policy *pol, const uint8_t *f, size_t len)
{
	if (len < 14 + 20 || f[12] != 0x08 || f[13] != 0x00)
		return false;
	const uint8_t *ip = f + 14;
	unsigned ihl = (ip[0] & 15u) * 4, tot = (unsigned)(ip[2] << 8 | ip[3]);
	if (ip[0] >> 4 != 4 || ihl < 20 || tot < ihl + 8 || tot > len - 14)
		return false;
	if ((ip[6] & 0x3f) || ip[7]) /* MF or an offset: fragments stay out */
		return false;
	uint32_t src, dst;
	memcpy(&src, ip + 12, 4);
	memcpy(&dst, ip + 16, 4);
	uint16_t dport = (uint16_t)(ip[ihl + 2] << 8 | ip[ihl + 3]);
	return igw_may_leave(pol, src, dst, ip[9], dport);
}

int igw_parse_cidr(const char *s, uint32_t *net, unsigned *prefix)
{
	char a[20];
	const char *slash = strchr(s, '/');
	if (!slash || (size_t)(slash - s) >= sizeof(a) || !slash[1] || strlen(slash + 1) > 2)
		return -1;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = 0;
	unsigned p = 0;
	for (const char *c = slash + 1; *c; c++) {
		if (*c < '0' || *c > '9')
			return -1;
		p = p * 10 + (unsigned)(*c - '0');
	}
	struct in_addr in;
	if (p > 32 || inet_pton(AF_INET, a, &in) != 1 || (in.s_addr & ~mask_of(p)))
		return -1;
	*net = in.s_addr;
	*prefix = p;
	return 0;
}
