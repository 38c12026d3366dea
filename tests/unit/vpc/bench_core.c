/* Microbenchmark of the VPC core (not a test): ns per 64-byte UDP frame through the whole
 * pipeline, vpc_from_guest on the sending interface then vpc_from_underlay on the
 * receiving one (encapsulation, anti-spoofing, security group + conntrack, allowances
 * on with rates high enough never to drop), for one flow and for 4096 flows, in the
 * default group and with a rule-based group. `make vpc-core-bench`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cards/vpc/vpc.h"

struct peer {
	uint32_t ip;
	struct vpc_map_entry e;
};

static struct vpc_map_entry map[2];

static int lookup(void *ctx, uint32_t vni, uint32_t ip, struct vpc_map_entry *out)
{
	(void)ctx;
	for (int i = 0; i < 2; i++)
		if (map[i].vm_vni == vni && map[i].vm_ip == ip) {
			*out = map[i];
			return 0;
		}
	return -1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static size_t frame64(uint8_t *f, const uint8_t *dmac, const uint8_t *smac, uint32_t sip,
		      uint32_t dip, uint16_t sport)
{
	memset(f, 0, 64);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *u = ip + 20;
	ip[0] = 0x45;
	ip[3] = 50;
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &sip, 4);
	memcpy(ip + 16, &dip, 4);
	uint16_t c = csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	u[0] = (uint8_t)(sport >> 8);
	u[1] = (uint8_t)sport;
	u[2] = 0x13;
	u[3] = 0x89;
	u[5] = 30;
	return 64;
}

static double run(const char *sgtext, unsigned flows, unsigned n)
{
	const uint8_t ma[6] = {2, 0, 10, 0, 0, 5}, mb[6] = {2, 0, 10, 0, 0, 6};
	const uint8_t gw[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x01};
	uint32_t ia = 0x0500000a, ib = 0x0600000a;
	map[0] = (struct vpc_map_entry){7, ia, {2, 0, 10, 0, 0, 5}, 0x0100007f, 0x1111, true};
	map[1] = (struct vpc_map_entry){7, ib, {2, 0, 10, 0, 0, 6}, 0x0100007f, 0x2222, true};
	char err[256];
	struct vpc_sg *sg = NULL;
	if (sgtext && !(sg = vpc_sg_parse(sgtext, strlen(sgtext), "bench", err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	struct vpc_cfg ca = {.vc_vni = 7,
			     .vc_ip = ia,
			     .vc_sg = sg,
			     .vc_pps = 100000000000ull,
			     .vc_bps = 800000000000ull};
	struct vpc_cfg cb = ca;
	cb.vc_ip = ib;
	memcpy(ca.vc_mac, ma, 6);
	memcpy(cb.vc_mac, mb, 6);
	struct vpc_port *a = vpc_port_new(&ca, lookup, NULL, err, sizeof(err));
	struct vpc_port *b = vpc_port_new(&cb, lookup, NULL, err, sizeof(err));
	if (!a || !b) {
		fprintf(stderr, "%s\n", err);
		exit(1);
	}
	static uint8_t frames[4096][64], ul[VPC_OUT_MIN], rx[VPC_OUT_MIN];
	for (unsigned i = 0; i < flows; i++)
		frame64(frames[i], gw, ma, ia, ib, (uint16_t)(10000 + i));
	struct vpc_out o1 = {.vo_buf = ul, .vo_cap = sizeof(ul)};
	struct vpc_out o2 = {.vo_buf = rx, .vo_cap = sizeof(rx)};
	uint64_t t0 = now_ns(), ok = 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t now = t0 + i; /* a clock that moves without a syscall per packet */
		if (vpc_from_guest(a, frames[i % flows], 64, now, &o1) != VPC_TO_UNDERLAY)
			continue;
		ok += vpc_from_underlay(b, o1.vo_data, o1.vo_len, 0x0100007f, 0x1111, now, &o2) ==
		      VPC_TO_GUEST;
	}
	uint64_t t1 = now_ns();
	if (ok != n) {
		struct vpc_stats st;
		vpc_port_stats(b, &st);
		vpc_stats_print(&st, stderr);
		fprintf(stderr, "vpc-core-bench: only %llu of %u frames got through\n",
			(unsigned long long)ok, n);
		exit(1);
	}
	vpc_port_free(a);
	vpc_port_free(b);
	vpc_sg_free(sg);
	return (double)(t1 - t0) / n;
}

int main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)atoi(argv[1]) : 4000000;
	const char *sg = "ingress udp 5000-5010 10.0.0.0/24\ningress tcp 22 0.0.0.0/0\n"
			 "egress udp all 10.0.0.0/16\n";
	struct {
		const char *name, *sg;
		unsigned flows;
	} cases[] = {
	    {"default group, 1 flow", NULL, 1},
	    {"default group, 4096 flows", NULL, 4096},
	    {"rules, 1 flow", sg, 1},
	    {"rules, 4096 flows", sg, 4096},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run(cases[i].sg, cases[i].flows, n / 10); /* warm up */
		double ns = run(cases[i].sg, cases[i].flows, n);
		printf(
		    "vpc core 64B UDP from_guest+from_underlay (%s): %.1f ns/packet, %.2f Mpps\n",
		    cases[i].name, ns, 1000.0 / ns);
	}
	return 0;
}
