/* VPC CIDRs and subnets, strictly parsed (see launch.h): `nitro vpc` and nitrod's
 * /v1/vpcs check them the same way. */
#include <arpa/inet.h>
#include <string.h>

#include "launch/launch.h"

bool launch_cidr_parse(const char *s, unsigned lo, unsigned hi, bool host_bits_ok, uint32_t *net,
		       unsigned *prefix)
{
	char a[16];
	const char *slash = strchr(s, '/');
	if (!slash || slash == s || (size_t)(slash - s) >= sizeof(a))
		return false;
	memcpy(a, s, (size_t)(slash - s));
	a[slash - s] = 0;
	/* the prefix: 1 or 2 digits, no sign, no leading zero, nothing after */
	const char *p = slash + 1;
	size_t pl = strlen(p);
	if (pl < 1 || pl > 2 || (pl == 2 && p[0] == '0'))
		return false;
	unsigned v = 0;
	for (size_t i = 0; i < pl; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	if (v < lo || v > hi || v < 1 || v > 32)
		return false;
	struct in_addr in; /* dotted quad only (glibc refuses leading zeros, short forms) */
	if (inet_pton(AF_INET, a, &in) != 1)
		return false;
	uint32_t m = v == 32 ? ~0u : ~(~0u >> v);
	uint32_t ip = ntohl(in.s_addr);
	if (!host_bits_ok && (ip & ~m))
		return false;
	*net = ip;
	*prefix = v;
	return true;
}

bool launch_subnet_in(const char *subnet, const char *cidr)
{
	uint32_t ip, net;
	unsigned ip_p, net_p;
	if (!launch_cidr_parse(subnet, 1, 32, true, &ip, &ip_p) ||
	    !launch_cidr_parse(cidr, 1, 32, false, &net, &net_p))
		return false;
	uint32_t m = net_p == 32 ? ~0u : ~(~0u >> net_p);
	return ip_p >= net_p && (ip & m) == net;
}

bool launch_region_ok(const char *r)
{
	size_t n = strlen(r);
	if (n < 1 || n > LAUNCH_REGION_MAX || r[0] == '-' || r[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return false;
	return true;
}
