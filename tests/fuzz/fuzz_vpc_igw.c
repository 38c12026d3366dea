/* libFuzzer target for the internet gateway (igw.c, igw_policy.c): the guest's frames
 * through vpc_from_guest on a port whose VPC (10.0.0.0/16) has a gateway, the NAT's
 * frames through vpc_from_igw, and the NAT's own check (igw_frame_may_leave) of what the
 * card hands it. Records as in vpc_frames.h; one more byte per record picks the
 * direction (bit 0: from the NAT) and, for the NAT, rewrites the addresses to an
 * outside one (bit 1) or the router (bit 2). Invariants: whatever reaches the NAT has the
 * interface's source and a destination outside the VPC or its router (and passes the
 * NAT's check); whatever reaches the guest from the NAT is for the interface, from an
 * outside address or the router, with the gateway's MAC.
 */
// clang-format off
// fuzz-extra: src/cards/vpc/pkt.c src/cards/vpc/arp.c src/cards/vpc/dhcp.c src/cards/vpc/geneve.c src/cards/vpc/sg.c src/cards/vpc/conntrack.c src/cards/vpc/allowance.c src/cards/vpc/verdict.c src/cards/vpc/vpc.c src/cards/vpc/igw.c src/cards/vpc/igw_policy.c
// clang-format on
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vpc/igw_policy.h"
#include "fuzz.h"
#include "vpc_frames.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vf_in in = {data, size};
	(void)vf_port; /* the shared port set-up has no gateway: this one is built below */
	uint8_t b = 0;
	vf_take(&in, &b, 1);
	char err[256];
	static const char text[] = "egress tcp 1-1000 0.0.0.0/0\negress udp all 0.0.0.0/0\n"
				   "ingress tcp 22 0.0.0.0/0\n";
	struct vpc_sg *sg = NULL;
	if (b & 1) {
		sg = vpc_sg_parse(text, sizeof(text) - 1, "fuzz", err, sizeof(err));
		CHECK(sg);
	}
	struct vpc_cfg c = {.vc_vni = 7,
			    .vc_ip = 0x0500000a,
			    .vc_sg = sg,
			    .vc_igw = true,
			    .vc_vpc_net = 0x0000000a,
			    .vc_vpc_prefix = 16};
	memcpy(c.vc_mac, vf_mac_a, 6);
	c.vc_conntrack_max = 4u << ((b >> 1) & 3);
	struct vpc_port *p = vpc_port_new(&c, vf_lookup, NULL, err, sizeof(err));
	CHECK(p);
	struct igw_policy pol;
	CHECK(igw_policy_init(&pol, c.vc_ip, 24, c.vc_vpc_net, 16) == 0);
	static uint8_t f[VF_BUF], buf[VPC_OUT_MIN];
	uint64_t now = 0;
	unsigned kind;
	long n;
	while ((n = vf_next(&in, f, false, &now, &kind)) >= 0) {
		uint8_t how = 0;
		vf_take(&in, &how, 1);
		size_t len = (size_t)n;
		struct vpc_out o = {.vo_buf = buf, .vo_cap = sizeof(buf)};
		if (!(how & 1)) {
			enum vpc_action a = vpc_from_guest(p, f, len, now, &o);
			if (a != VPC_TO_IGW)
				continue;
			CHECK(o.vo_data == f && o.vo_len <= len && o.vo_len >= 34);
			uint32_t src, dst;
			memcpy(&src, f + 26, 4);
			memcpy(&dst, f + 30, 4);
			CHECK(src == c.vc_ip);
			CHECK(dst == 0x0100000a || igw_outside(&pol, dst));
			CHECK(igw_frame_may_leave(&pol, o.vo_data, o.vo_len));
			continue;
		}
		if (len >= 34 && (how & 6)) { /* replies: to A, from outside or the router */
			memcpy(f + 26, (how & 2) ? "\x08\x08\x08\x08" : "\x0a\x00\x00\x01", 4);
			memcpy(f + 30, "\x0a\x00\x00\x05", 4);
		}
		(void)igw_frame_may_leave(&pol, f, len);
		enum vpc_action a = vpc_from_igw(p, f, len, now, &o);
		if (a == VPC_DROP) {
			CHECK(o.vo_drop > VPC_DROP_NONE && o.vo_drop < VPC_DROP__COUNT);
			continue;
		}
		CHECK(a == VPC_TO_GUEST && o.vo_data == buf && o.vo_len <= len);
		CHECK(!memcmp(o.vo_data, vf_mac_a, 6) &&
		      !memcmp(o.vo_data + 6, vpc_gateway_mac, 6));
		uint32_t src;
		memcpy(&src, o.vo_data + 26, 4);
		CHECK(!memcmp(o.vo_data + 30, "\x0a\x00\x00\x05", 4));
		CHECK(src == 0x0100000a || igw_outside(&pol, src));
	}
	vpc_port_free(p);
	vpc_sg_free(sg);
	return 0;
}
