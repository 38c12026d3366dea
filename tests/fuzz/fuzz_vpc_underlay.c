/* libFuzzer target for the VPC core's decapsulation path (vpc_from_underlay: Geneve
 * header and options, VNI, inner frame checks, ingress anti-spoofing, security groups,
 * conntrack). Records as in vpc_frames.h; a template frame is wrapped in a Geneve header
 * whose VNI and sender the input chooses (one more byte after the record header: bit 0
 * VNI 8 instead of 7, bit 1 the wrong sender port, bit 2 two words of options); raw
 * records are the whole datagram. Every delivered frame must be for this interface,
 * from a sender the mapping vouches for, and lie inside the input or the buffer.
 */
// clang-format off
// fuzz-extra: src/cards/vpc/pkt.c src/cards/vpc/arp.c src/cards/vpc/dhcp.c src/cards/vpc/geneve.c src/cards/vpc/sg.c src/cards/vpc/conntrack.c src/cards/vpc/allowance.c src/cards/vpc/verdict.c src/cards/vpc/vpc.c src/cards/vpc/igw.c src/cards/vpc/igw_policy.c
// clang-format on
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "vpc_frames.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vf_in in = {data, size};
	struct vpc_sg *sg;
	struct vpc_port *p = vf_port(&in, &sg);
	static uint8_t f[VF_BUF], dg[VF_BUF + 16], buf[VPC_OUT_MIN];
	uint64_t now = 0, got = 0, delivered = 0;
	unsigned kind;
	long n;
	while ((n = vf_next(&in, f, true, &now, &kind)) >= 0) {
		size_t len = (size_t)n;
		uint32_t ul_ip = vf_map[0].vm_ul_ip;
		uint16_t ul_port = vf_map[0].vm_ul_port;
		const uint8_t *d = f;
		if (kind != 0 && kind != 7) {
			uint8_t how = 0;
			vf_take(&in, &how, 1);
			size_t opt = (how & 4) ? 8 : 0;
			memset(dg, 0, 8 + opt);
			dg[0] = (uint8_t)(opt / 4);
			dg[2] = 0x65, dg[3] = 0x58;
			dg[6] = (how & 1) ? 8 : 7;
			if (opt)
				dg[8 + 3] = 1;
			memcpy(dg + 8 + opt, f, len);
			len += 8 + opt;
			d = dg;
			if (kind == 6)
				ul_ip = vf_map[1].vm_ul_ip, ul_port = vf_map[1].vm_ul_port;
			if (how & 2)
				ul_port ^= 0x100;
		}
		struct vpc_out o = {.vo_buf = buf, .vo_cap = kind == 7 ? 64 : sizeof(buf)};
		enum vpc_action a = vpc_from_underlay(p, d, len, ul_ip, ul_port, now, &o);
		got++;
		if (a == VPC_DROP) {
			CHECK(o.vo_drop > VPC_DROP_NONE && o.vo_drop < VPC_DROP__COUNT);
			continue;
		}
		CHECK(a == VPC_TO_GUEST);
		delivered++;
		CHECK(o.vo_len >= 34 && o.vo_len <= len);
		CHECK((o.vo_data >= d && o.vo_data + o.vo_len <= d + len) ||
		      (o.vo_data == buf && o.vo_len <= o.vo_cap));
		CHECK(!memcmp(o.vo_data, vf_mac_a, 6));
		CHECK(!memcmp(o.vo_data + 30, "\x0a\x00\x00\x05", 4));
		/* from B (same subnet: its MAC) or R (routed: the gateway's) */
		CHECK((!memcmp(o.vo_data + 26, "\x0a\x00\x00\x06", 4) &&
		       !memcmp(o.vo_data + 6, vf_mac_b, 6) && ul_ip == vf_map[0].vm_ul_ip &&
		       ul_port == vf_map[0].vm_ul_port) ||
		      (!memcmp(o.vo_data + 26, "\x0a\x00\x01\x09", 4) &&
		       !memcmp(o.vo_data + 6, vpc_gateway_mac, 6) && ul_ip == vf_map[1].vm_ul_ip &&
		       ul_port == vf_map[1].vm_ul_port));
	}
	struct vpc_stats st;
	vpc_port_stats(p, &st);
	CHECK(st.st_ul_packets == got && st.st_rx_packets == delivered);
	vpc_port_free(p);
	vpc_sg_free(sg);
	return 0;
}
