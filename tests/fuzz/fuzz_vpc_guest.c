/* libFuzzer target for the VPC core's guest side (vpc_from_guest: Ethernet, ARP, DHCP,
 * IPv4/L4 parsing, anti-spoofing, security groups, conntrack): frames the guest sends,
 * raw or mutated from templates (input format in vpc_frames.h). Every result must be
 * inside the output buffer and say what the contract says; counters must add up.
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
	static uint8_t f[VF_BUF], buf[VPC_OUT_MIN];
	uint64_t now = 0, sent = 0, local = 0, fwd = 0, dropped = 0, imds = 0, svc = 0;
	unsigned kind;
	long n;
	while ((n = vf_next(&in, f, false, &now, &kind)) >= 0) {
		struct vpc_out o = {.vo_buf = buf, .vo_cap = kind == 7 ? 64 : sizeof(buf)};
		enum vpc_action a = vpc_from_guest(p, f, (size_t)n, now, &o);
		sent++;
		switch (a) {
		case VPC_DROP:
			CHECK(o.vo_drop > VPC_DROP_NONE && o.vo_drop < VPC_DROP__COUNT);
			dropped++;
			break;
		case VPC_TO_GUEST:
			local++;
			CHECK(o.vo_data == buf && o.vo_len >= 42 && o.vo_len <= o.vo_cap);
			CHECK(!memcmp(buf, vf_mac_a, 6) || buf[0] == 0xff);
			CHECK(!memcmp(buf + 6, vpc_gateway_mac, 6) ||
			      !memcmp(buf + 6, vf_mac_b, 6));
			break;
		case VPC_TO_UNDERLAY:
			fwd++;
			CHECK(o.vo_data == buf && o.vo_len >= 8 + 34 && o.vo_len <= o.vo_cap);
			CHECK(o.vo_len - 8 <= (size_t)n);
			CHECK(buf[0] == 0 && buf[1] == 0 && buf[2] == 0x65 && buf[3] == 0x58);
			CHECK(buf[4] == 0 && buf[5] == 0 && buf[6] == 7);
			CHECK(!memcmp(buf + 8 + 6, vf_mac_a, 6)); /* our source, always */
			CHECK(!memcmp(buf + 8 + 26, "\x0a\x00\x00\x05", 4));
			CHECK((o.vo_ul_ip == vf_map[0].vm_ul_ip && !memcmp(buf + 8, vf_mac_b, 6)) ||
			      (o.vo_ul_ip == vf_map[1].vm_ul_ip && !memcmp(buf + 8, vf_mac_r, 6)));
			break;
		case VPC_TO_IMDS: /* the guest's own TCP to 169.254.169.254:80, in the input */
			imds++;
			CHECK(o.vo_data == f + 14 && o.vo_len >= 40 && o.vo_len <= (size_t)n - 14);
			CHECK(!memcmp(f + 14 + 12, "\x0a\x00\x00\x05", 4));
			CHECK(!memcmp(f + 14 + 16, "\xa9\xfe\xa9\xfe", 4) && f[14 + 9] == 6);
			break;
		case VPC_TO_SERVICE: { /* UDP to the resolver (port 53) or the time server (123) */
			svc++;
			CHECK(o.vo_data == f + 14 && o.vo_len >= 28 && o.vo_len <= (size_t)n - 14);
			CHECK(!memcmp(f + 14 + 12, "\x0a\x00\x00\x05", 4) && f[14 + 9] == 17);
			const uint8_t *udp = f + 14 + (f[14] & 15) * 4;
			CHECK(udp + 8 <= f + 14 + o.vo_len);
			unsigned dport = (unsigned)udp[2] << 8 | udp[3];
			const uint8_t *dst = f + 14 + 16;
			if (!memcmp(dst, "\xa9\xfe\xa9\x7b", 4))
				CHECK(dport == 123);
			else
				CHECK(dport == 53 && memcmp(dst, "\xa9\xfe\xa9\xfe", 4));
			break;
		}
		default:
			CHECK(0);
		}
	}
	struct vpc_stats st;
	vpc_port_stats(p, &st);
	CHECK(st.st_tx_packets == sent && st.st_tx_forwarded == fwd && st.st_imds_packets == imds);
	CHECK(st.st_service_packets == svc);
	CHECK(st.st_arp_replies + st.st_dhcp_replies == local);
	uint64_t d = 0;
	for (int r = 0; r < VPC_DROP__COUNT; r++)
		d += st.st_drops[r];
	CHECK(d == dropped);
	CHECK(st.st_conntrack_entries + st.st_conntrack_allowance_available <= 32);
	char text[4096];
	CHECK(vpc_stats_format(&st, text, sizeof(text)) < (int)sizeof(text));
	vpc_port_free(p);
	vpc_sg_free(sg);
	return 0;
}
