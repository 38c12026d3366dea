/* Forwarding in the VPC core: encapsulation toward the mapping's underlay address,
 * delivery and the routed-source rewrite, isolation between VPCs with the same private
 * addresses, anti-spoofing both ways, and malformed frames and Geneve packets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "vpctest.h"

static const uint8_t geneve7[8] = {0x00, 0x00, 0x65, 0x58, 0x00, 0x00, 0x07, 0x00};

static void egress_to_peer(void **state)
{
	struct vt *t = *state;
	/* to the peer's MAC (learned by ARP) and to the gateway MAC: the same result */
	const uint8_t *dsts[2] = {MAC_B, MAC_GW};
	for (int i = 0; i < 2; i++) {
		size_t n = vt_udp(t->frame, dsts[i], MAC_A, "10.0.0.5", "10.0.0.6", 5000, 6000, 18);
		assert_int_equal(n, 60);
		assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_UNDERLAY);
		assert_int_equal(t->out.vo_len, 8 + n);
		assert_memory_equal(t->out.vo_data, geneve7, 8);
		assert_memory_equal(t->out.vo_data + 8, MAC_B, 6);
		assert_memory_equal(t->out.vo_data + 8 + 6, MAC_A, 6);
		assert_memory_equal(t->out.vo_data + 8 + 12, t->frame + 12, n - 12);
		assert_int_equal(t->out.vo_ul_ip, vt_ip("192.0.2.6"));
		assert_int_equal(t->out.vo_ul_port, vt_port(40006));
	}
	/* another subnet of the VPC: the same path, to that interface */
	size_t n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.1.9", 40000, 22, 0x02);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_UNDERLAY);
	assert_memory_equal(t->out.vo_data + 8, MAC_R, 6);
	assert_int_equal(t->out.vo_ul_ip, vt_ip("192.0.2.9"));
	assert_int_equal(t->out.vo_ul_port, vt_port(40109));
	/* Ethernet padding does not travel */
	n = vt_icmp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 8, 0, 77);
	memset(t->frame + n, 0xee, 20);
	assert_int_equal(vt_guest(t, t->frame, n + 20, 0), VPC_TO_UNDERLAY);
	assert_int_equal(t->out.vo_len, 8 + n);
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	assert_int_equal(st.st_tx_forwarded, 4);
	assert_int_equal(st.st_tx_packets, 4);
}

static void no_route(void **state)
{
	struct vt *t = *state;
	const char *dst[] = {"10.0.0.77", "10.0.0.1", "10.0.0.2",
			     "10.0.0.5",  "8.8.8.8",  "169.254.169.254"};
	for (unsigned i = 0; i < sizeof(dst) / sizeof(dst[0]); i++) {
		/* (port 53 of .2 is the resolver: test_vpc_dns.c) */
		size_t n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.5", dst[i], 5000, 54, 10);
		assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
		assert_int_equal(t->out.vo_drop, VPC_DROP_NO_ROUTE);
	}
	assert_int_equal(vt_drops(t, VPC_DROP_NO_ROUTE), 6);
	/* a mapping entry with no underlay address or port is no route either */
	vt_add(&t->map, 7, "10.0.0.40", MAC_B, "0.0.0.0", 40006, true);
	vt_add(&t->map, 7, "10.0.0.41", MAC_B, "192.0.2.6", 0, true);
	size_t n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.40", 5000, 53, 10);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.41", 5000, 53, 10);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(vt_drops(t, VPC_DROP_NO_ROUTE), 8);
}

static void ingress_delivery(void **state)
{
	struct vt *t = *state;
	size_t n = vt_udp(t->frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", 6000, 5000, 18);
	size_t m = vt_geneve(t->ul, 7, t->frame, n);
	assert_int_equal(vt_under(t, t->ul, m, "192.0.2.6", 40006, 0), VPC_TO_GUEST);
	assert_int_equal(t->out.vo_len, n);
	assert_memory_equal(t->out.vo_data, t->frame, n);
	assert_ptr_equal(t->out.vo_data, t->ul + 8); /* same subnet: no copy */
	/* Geneve options are skipped */
	uint8_t opt[8 + 8 + 100];
	memcpy(opt, t->ul, 8);
	opt[0] = 2; /* two words of options */
	const uint8_t o[8] = {0x01, 0x02, 0x03, 0x01, 0xaa, 0xbb, 0xcc, 0xdd};
	memcpy(opt + 8, o, 8);
	memcpy(opt + 16, t->frame, n);
	assert_int_equal(vt_under(t, opt, 16 + n, "192.0.2.6", 40006, 0), VPC_TO_GUEST);
	assert_memory_equal(t->out.vo_data, t->frame, n);
}

static void routed_source_is_gateway(void **state)
{
	(void)state;
	struct vt t;
	char err[256];
	struct vpc_sg *sg =
	    vpc_sg_parse("ingress all all 10.0.0.0/16\n", 28, "t", err, sizeof(err));
	assert_non_null(sg);
	struct vpc_cfg c = vt_cfg();
	c.vc_sg = sg;
	vt_setup(&t, &c);
	size_t n = vt_udp(t.frame, MAC_A, MAC_R, "10.0.1.9", "10.0.0.5", 6000, 5000, 18);
	size_t m = vt_geneve(t.ul, 7, t.frame, n);
	assert_int_equal(vt_under(&t, t.ul, m, "192.0.2.9", 40109, 0), VPC_TO_GUEST);
	assert_int_equal(t.out.vo_len, n);
	assert_memory_equal(t.out.vo_data, MAC_A, 6);
	assert_memory_equal(t.out.vo_data + 6, MAC_GW, 6);
	assert_memory_equal(t.out.vo_data + 12, t.frame + 12, n - 12);
	vt_teardown(&t);
	vpc_sg_free(sg);
}

static void isolation_between_vpcs(void **state)
{
	(void)state;
	/* A in VPC 7 and A8 in VPC 8 both are 10.0.0.5; both VPCs have a 10.0.0.6 */
	struct vt a, a8;
	vt_setup(&a, NULL);
	struct vpc_cfg c = vt_cfg();
	c.vc_vni = 8;
	vt_setup(&a8, &c);
	/* the same packet from each guest goes to its own VPC's 10.0.0.6 */
	size_t n = vt_udp(a.frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 5000, 6000, 18);
	assert_int_equal(vt_guest(&a, a.frame, n, 0), VPC_TO_UNDERLAY);
	assert_int_equal(a.out.vo_ul_ip, vt_ip("192.0.2.6"));
	assert_int_equal(a.out.vo_data[6], 7);
	assert_int_equal(vt_guest(&a8, a.frame, n, 0), VPC_TO_UNDERLAY);
	assert_int_equal(a8.out.vo_ul_ip, vt_ip("192.0.2.66"));
	assert_int_equal(a8.out.vo_ul_port, vt_port(40066));
	assert_memory_equal(a8.out.vo_data + 8, MAC_X, 6);
	assert_int_equal(a8.out.vo_data[6], 8);
	/* B's packet (VPC 7) never reaches A8, X's (VPC 8) never reaches A */
	n = vt_udp(a.frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", 6000, 5000, 18);
	size_t m = vt_geneve(a.ul, 7, a.frame, n);
	assert_int_equal(vt_under(&a8, a.ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(a8.out.vo_drop, VPC_DROP_WRONG_VNI);
	assert_int_equal(vt_under(&a, a.ul, m, "192.0.2.6", 40006, 0), VPC_TO_GUEST);
	n = vt_udp(a.frame, MAC_A, MAC_X, "10.0.0.6", "10.0.0.5", 6000, 5000, 18);
	m = vt_geneve(a.ul, 8, a.frame, n);
	assert_int_equal(vt_under(&a, a.ul, m, "192.0.2.66", 40066, 0), VPC_DROP);
	assert_int_equal(a.out.vo_drop, VPC_DROP_WRONG_VNI);
	assert_int_equal(vt_under(&a8, a.ul, m, "192.0.2.66", 40066, 0), VPC_TO_GUEST);
	/* X relabelling its packet as VPC 7: its address is not where 7's 10.0.0.6 lives */
	m = vt_geneve(a.ul, 7, a.frame, n);
	assert_int_equal(vt_under(&a, a.ul, m, "192.0.2.66", 40066, 0), VPC_DROP);
	assert_int_equal(a.out.vo_drop, VPC_DROP_SPOOF_IN);
	/* and with B's MAC too, still from the wrong underlay address */
	memcpy(a.ul + 8 + 6, MAC_B, 6);
	assert_int_equal(vt_under(&a, a.ul, m, "192.0.2.66", 40066, 0), VPC_DROP);
	assert_int_equal(a.out.vo_drop, VPC_DROP_SPOOF_IN);
	vt_teardown(&a);
	vt_teardown(&a8);
}

static void antispoof_egress(void **state)
{
	struct vt *t = *state;
	size_t n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.9", "10.0.0.6", 5000, 6000, 18);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
	n = vt_udp(t->frame, MAC_GW, MAC_B, "10.0.0.5", "10.0.0.6", 5000, 6000, 18);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
	n = vt_udp(t->frame, MAC_GW, MAC_A, "0.0.0.0", "10.0.0.6", 68, 67, 18);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
	assert_int_equal(vt_drops(t, VPC_DROP_SPOOF_OUT), 3);
}

static void antispoof_ingress(void **state)
{
	struct vt *t = *state;
	size_t n = vt_udp(t->frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", 6000, 5000, 18);
	size_t m = vt_geneve(t->ul, 7, t->frame, n);
	/* wrong underlay address, wrong port */
	assert_int_equal(vt_under(t, t->ul, m, "192.0.2.7", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_IN);
	assert_int_equal(vt_under(t, t->ul, m, "192.0.2.6", 40007, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_IN);
	/* the right host, a MAC that is not 10.0.0.6's */
	t->ul[8 + 11] ^= 0x40;
	assert_int_equal(vt_under(t, t->ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_IN);
	/* a source address nobody has */
	n = vt_udp(t->frame, MAC_A, MAC_B, "10.0.0.99", "10.0.0.5", 6000, 5000, 18);
	m = vt_geneve(t->ul, 7, t->frame, n);
	assert_int_equal(vt_under(t, t->ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_IN);
	/* B claiming to be R (another subnet) from B's host */
	n = vt_udp(t->frame, MAC_A, MAC_R, "10.0.1.9", "10.0.0.5", 6000, 5000, 18);
	m = vt_geneve(t->ul, 7, t->frame, n);
	assert_int_equal(vt_under(t, t->ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_IN);
	/* not for us: another destination MAC or IP */
	n = vt_udp(t->frame, MAC_B, MAC_B, "10.0.0.6", "10.0.0.5", 6000, 5000, 18);
	m = vt_geneve(t->ul, 7, t->frame, n);
	assert_int_equal(vt_under(t, t->ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_NOT_FOR_US);
	n = vt_udp(t->frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.7", 6000, 5000, 18);
	m = vt_geneve(t->ul, 7, t->frame, n);
	assert_int_equal(vt_under(t, t->ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_NOT_FOR_US);
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	assert_int_equal(st.st_rx_packets, 0);
	assert_int_equal(st.st_drops[VPC_DROP_SPOOF_IN], 5);
}

/* Makes frame invalid in one way (i) and says which drop it expects. */
static enum vpc_drop break_frame(uint8_t *f, size_t *n, int i)
{
	uint8_t *ip = f + 14;
	switch (i) {
	case 0:
		*n = 13;
		return VPC_DROP_RUNT;
	case 1:
		*n = 14 + 9001 + 1;
		return VPC_DROP_OVERSIZE;
	case 2:
		f[12] = 0x81, f[13] = 0x00;
		return VPC_DROP_VLAN;
	case 3:
		f[12] = 0x86, f[13] = 0xdd;
		return VPC_DROP_ETHERTYPE;
	case 4:
		ip[0] = 0x65;
		return VPC_DROP_BAD_IP;
	case 5:
		ip[0] = 0x44; /* ihl 16 bytes */
		return VPC_DROP_BAD_IP;
	case 6:
		ip[11] ^= 1; /* checksum */
		return VPC_DROP_BAD_IP;
	case 7:
		ip[3] += 1; /* total length past the frame (checksum fixed below) */
		return VPC_DROP_BAD_IP;
	case 8:
		ip[6] = 0x20; /* MF */
		return VPC_DROP_FRAGMENT;
	case 9:
		ip[7] = 0x10; /* offset */
		return VPC_DROP_FRAGMENT;
	case 10:
		ip[4 + 20] = 0x00, ip[5 + 20] = 9; /* UDP length 9 != 26 */
		return VPC_DROP_BAD_L4;
	case 11:
		*n = 14 + 20 + 4;
		ip[3] = 24;
		return VPC_DROP_BAD_L4; /* 4 bytes of UDP header */
	case 12:
		ip[0] = 0x4f; /* ihl 60 > total length 46 */
		return VPC_DROP_BAD_IP;
	default:
		return VPC_DROP__COUNT;
	}
}

static void fix_csum(uint8_t *f)
{
	uint8_t *ip = f + 14;
	unsigned ihl = (ip[0] & 15u) * 4;
	if (ihl < 20 || ihl > 60)
		ihl = 20;
	ip[10] = ip[11] = 0;
	uint16_t c = vt_csum(ip, ihl, 0);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
}

static void malformed_from_guest(void **state)
{
	struct vt *t = *state;
	for (int i = 0;; i++) {
		size_t n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 5000, 6000, 18);
		enum vpc_drop want = break_frame(t->frame, &n, i);
		if (want == VPC_DROP__COUNT)
			break;
		if (i != 6)
			fix_csum(t->frame);
		assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
		assert_int_equal(t->out.vo_drop, want);
	}
	/* TCP with a data offset past the packet, ICMP of 4 bytes */
	size_t n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 4000, 80, 0x02);
	t->frame[34 + 12] = 0xf0;
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_L4);
	n = vt_ipv4(t->frame, MAC_GW, MAC_A, vt_ip("10.0.0.5"), vt_ip("10.0.0.6"), 1, 4);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_L4);
	/* every truncation of a good frame is dropped */
	n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 4000, 80, 0x02);
	for (size_t l = 0; l < n; l++)
		assert_int_equal(vt_guest(t, t->frame, l, 0), VPC_DROP);
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	assert_int_equal(st.st_tx_forwarded, 0);
}

static void malformed_from_underlay(void **state)
{
	struct vt *t = *state;
	size_t n = vt_udp(t->frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", 6000, 5000, 18);
	size_t m = vt_geneve(t->ul, 7, t->frame, n);
	uint8_t g[200];
	struct {
		int off;
		uint8_t val;
	} bad[] = {
	    {0, 0x40}, /* version 1 */
	    {0, 0x3f}, /* 252 bytes of options in a 68-byte packet */
	    {1, 0x40}, /* critical options */
	    {1, 0x80}, /* OAM */
	    {2, 0x08}, /* protocol 0x0858 */
	};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memcpy(g, t->ul, m);
		g[bad[i].off] = bad[i].val;
		assert_int_equal(vt_under(t, g, m, "192.0.2.6", 40006, 0), VPC_DROP);
		assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_GENEVE);
	}
	/* an option whose length runs past the option area; a critical option */
	memcpy(g, t->ul, 8);
	g[0] = 1;
	const uint8_t o1[4] = {0x01, 0x02, 0x03, 0x02};
	memcpy(g + 8, o1, 4);
	memcpy(g + 12, t->frame, n);
	assert_int_equal(vt_under(t, g, 12 + n, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_GENEVE);
	g[8 + 2] = 0x83;
	g[8 + 3] = 0;
	assert_int_equal(vt_under(t, g, 12 + n, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_GENEVE);
	/* every truncation */
	for (size_t l = 0; l < m; l++)
		assert_int_equal(vt_under(t, t->ul, l, "192.0.2.6", 40006, 0), VPC_DROP);
	/* broken inner frames */
	for (int i = 0;; i++) {
		n = vt_udp(t->frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", 6000, 5000, 18);
		enum vpc_drop want = break_frame(t->frame, &n, i);
		if (want == VPC_DROP__COUNT)
			break;
		if (i != 6)
			fix_csum(t->frame);
		if (i == 1)
			continue; /* the frame buffer of vt is big enough, but skip the oversize
				     one here: covered below */
		m = vt_geneve(t->ul, 7, t->frame, n);
		assert_int_equal(vt_under(t, t->ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
		assert_int_equal(t->out.vo_drop, want);
	}
	memset(t->ul, 0, sizeof(t->ul));
	vt_geneve(t->ul, 7, t->frame, 14);
	assert_int_equal(vt_under(t, t->ul, 8 + 14 + 9002, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_OVERSIZE);
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	assert_int_equal(st.st_rx_packets, 0);
}

static void stats_lines(void **state)
{
	struct vt *t = *state;
	size_t n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 5000, 6000, 18);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_guest(t, t->frame, 10, 0), VPC_DROP);
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	char buf[4096];
	int len = vpc_stats_format(&st, buf, sizeof(buf));
	assert_true(len > 0 && (size_t)len < sizeof(buf));
	assert_non_null(strstr(buf, "tx_packets 2\n"));
	assert_non_null(strstr(buf, "tx_forwarded 1\n"));
	assert_non_null(strstr(buf, "drop_runt 1\n"));
	assert_non_null(strstr(buf, "bw_in_allowance_exceeded 0\n"));
	assert_non_null(strstr(buf, "bw_out_allowance_exceeded 0\n"));
	assert_non_null(strstr(buf, "pps_allowance_exceeded 0\n"));
	assert_non_null(strstr(buf, "conntrack_allowance_exceeded 0\n"));
	assert_non_null(strstr(buf, "conntrack_allowance_available 65535\n"));
	/* snprintf semantics */
	char small[10];
	assert_int_equal(vpc_stats_format(&st, small, sizeof(small)), len);
	assert_int_equal(strlen(small), 9);
	assert_string_equal(vpc_drop_name(VPC_DROP_SPOOF_IN), "spoof_in");
	assert_string_equal(vpc_drop_name((enum vpc_drop)999), "?");
}

static void bad_config(void **state)
{
	(void)state;
	struct vt_map map = {0};
	char err[256];
	struct vpc_cfg c = vt_cfg();
	c.vc_ip = vt_ip("10.0.0.1");
	assert_null(vpc_port_new(&c, vt_lookup, &map, err, sizeof(err)));
	assert_non_null(strstr(err, "10.0.0.1/24 is reserved"));
	c = vt_cfg();
	c.vc_ip = vt_ip("10.0.0.255");
	assert_null(vpc_port_new(&c, vt_lookup, &map, err, sizeof(err)));
	c = vt_cfg();
	c.vc_vni = 1u << 24;
	assert_null(vpc_port_new(&c, vt_lookup, &map, err, sizeof(err)));
	assert_non_null(strstr(err, "VPC id"));
	c = vt_cfg();
	c.vc_mtu = 100000;
	assert_null(vpc_port_new(&c, vt_lookup, &map, err, sizeof(err)));
	assert_non_null(strstr(err, "MTU"));
	c = vt_cfg();
	c.vc_prefix = 31;
	assert_null(vpc_port_new(&c, vt_lookup, &map, err, sizeof(err)));
	c = vt_cfg();
	c.vc_mac[0] = 1;
	assert_null(vpc_port_new(&c, vt_lookup, &map, err, sizeof(err)));
	assert_non_null(strstr(err, "MAC"));
	c = vt_cfg();
	c.vc_domain = "a b";
	assert_null(vpc_port_new(&c, vt_lookup, &map, err, sizeof(err)));
	c = vt_cfg();
	struct vpc_port *p = vpc_port_new(&c, vt_lookup, &map, err, sizeof(err));
	assert_non_null(p);
	vpc_port_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(egress_to_peer, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(no_route, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(ingress_delivery, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test(routed_source_is_gateway),
	    cmocka_unit_test(isolation_between_vpcs),
	    cmocka_unit_test_setup_teardown(antispoof_egress, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(antispoof_ingress, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(malformed_from_guest, vt_state_setup,
					    vt_state_teardown),
	    cmocka_unit_test_setup_teardown(malformed_from_underlay, vt_state_setup,
					    vt_state_teardown),
	    cmocka_unit_test_setup_teardown(stats_lines, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test(bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
