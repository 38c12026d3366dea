/* The internet gateway in the VPC core (igw.c) and its address policy (igw_policy.c):
 * what a guest may send to the NAT (outside the VPC's CIDR, the router alias; never the
 * host's loopback, link-local, multicast, the VPC's own addresses, ICMP), that security
 * groups, conntrack and allowances apply both ways, and what a (hostile) NAT may send
 * back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "cards/vpc/igw_policy.h"
#include "vpctest.h"

static const uint8_t MAC_NAT[6] = {0x52, 0x55, 0x0a, 0x00, 0x00, 0x01};

static void policy(void **state)
{
	(void)state;
	uint32_t net;
	unsigned p;
	assert_int_equal(igw_parse_cidr("10.0.0.0/16", &net, &p), 0);
	assert_int_equal(net, vt_ip("10.0.0.0"));
	assert_int_equal(p, 16);
	const char *bad[] = {"10.0.0.1/16", "10.0.0.0",	    "10.0.0.0/33", "10.0.0.0/", "x/8",
			     "10.0.0.0/1a", "10.0.0.0/016", "1.2.3.4.5/8", ""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(igw_parse_cidr(bad[i], &net, &p), -1);
	struct igw_policy pol;
	/* the CIDR must hold the subnet */
	assert_int_equal(igw_policy_init(&pol, vt_ip("10.1.0.5"), 24, vt_ip("10.0.0.0"), 16), -1);
	assert_int_equal(igw_policy_init(&pol, vt_ip("10.0.0.5"), 24, vt_ip("10.0.0.0"), 28), -1);
	assert_int_equal(igw_policy_init(&pol, vt_ip("10.0.0.5"), 24, vt_ip("10.0.0.0"), 16), 0);
	assert_int_equal(igw_policy_deny(&pol, vt_ip("192.0.2.0"), 24), 0);
	const char *out[] = {"8.8.8.8", "1.1.1.1", "10.1.0.1", "172.16.0.1", "223.255.255.254"};
	const char *in[] = {"10.0.0.6",	 "10.0.200.1",	    "127.0.0.1",       "127.9.9.9",
			    "0.0.0.0",	 "0.1.2.3",	    "169.254.169.254", "169.254.0.1",
			    "224.0.0.1", "239.255.255.250", "240.0.0.1",       "255.255.255.255",
			    "192.0.2.77"};
	for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++) {
		assert_true(igw_outside(&pol, vt_ip(out[i])));
		assert_true(igw_may_leave(&pol, vt_ip("10.0.0.5"), vt_ip(out[i]), 6, 443));
		assert_true(igw_may_enter(&pol, vt_ip(out[i]), vt_ip("10.0.0.5"), 17));
	}
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++) {
		assert_false(igw_outside(&pol, vt_ip(in[i])));
		assert_false(igw_may_leave(&pol, vt_ip("10.0.0.5"), vt_ip(in[i]), 6, 443));
		assert_false(igw_may_enter(&pol, vt_ip(in[i]), vt_ip("10.0.0.5"), 6));
	}
	/* the router alias: any TCP/UDP port but DHCP's */
	assert_true(igw_may_leave(&pol, vt_ip("10.0.0.5"), vt_ip("10.0.0.1"), 6, 8000));
	assert_false(igw_may_leave(&pol, vt_ip("10.0.0.5"), vt_ip("10.0.0.1"), 17, 67));
	assert_true(igw_may_enter(&pol, vt_ip("10.0.0.1"), vt_ip("10.0.0.5"), 6));
	/* the nameserver hook: port 53 only */
	assert_true(igw_may_leave(&pol, vt_ip("10.0.0.5"), vt_ip("10.0.0.3"), 17, 53));
	assert_false(igw_may_leave(&pol, vt_ip("10.0.0.5"), vt_ip("10.0.0.3"), 6, 22));
	/* ICMP and others never; another source never; to another address never */
	assert_false(igw_may_leave(&pol, vt_ip("10.0.0.5"), vt_ip("8.8.8.8"), 1, 0));
	assert_false(igw_may_leave(&pol, vt_ip("10.0.0.5"), vt_ip("8.8.8.8"), 47, 0));
	assert_false(igw_may_leave(&pol, vt_ip("10.0.0.6"), vt_ip("8.8.8.8"), 6, 443));
	assert_false(igw_may_enter(&pol, vt_ip("8.8.8.8"), vt_ip("10.0.0.6"), 6));
	assert_false(igw_may_enter(&pol, vt_ip("8.8.8.8"), vt_ip("10.0.0.5"), 1));
	/* the deny list is bounded */
	for (int i = 1; i < IGW_DENY_MAX; i++)
		assert_int_equal(igw_policy_deny(&pol, vt_ip("192.0.2.1"), 32), 0);
	assert_int_equal(igw_policy_deny(&pol, vt_ip("192.0.2.1"), 32), -1);
}

static struct vpc_cfg igw_cfg(void)
{
	struct vpc_cfg c = vt_cfg();
	c.vc_igw = true;
	c.vc_vpc_net = vt_ip("10.0.0.0");
	c.vc_vpc_prefix = 16;
	return c;
}

static int setup(void **state)
{
	static struct vt t;
	struct vpc_cfg c = igw_cfg();
	vt_setup(&t, &c);
	*state = &t;
	return 0;
}

static uint64_t igw_count(struct vt *t, bool rx)
{
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	return rx ? st.st_igw_rx : st.st_igw_tx;
}

static enum vpc_action from_nat(struct vt *t, const uint8_t *f, size_t n, uint64_t now)
{
	vt_out_reset(t);
	return vpc_from_igw(t->p, f, n, now, &t->out);
}

static void to_the_gateway(void **state)
{
	struct vt *t = *state;
	size_t n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "8.8.8.8", 40000, 443, 0x02);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_IGW);
	assert_int_equal(t->out.vo_len, n);
	assert_memory_equal(t->out.vo_data, t->frame, n);
	n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.1", 5000, 8000, 10);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_IGW); /* the router alias */
	assert_int_equal(igw_count(t, false), 2);
	/* another subnet of the VPC still goes by the mapping */
	n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.1.9", 40000, 22, 0x02);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_UNDERLAY);
	/* never to the gateway: the VPC's own unmapped addresses, loopback, link-local,
	 * multicast, ICMP, DHCP to the router */
	uint64_t before = vt_drops(t, VPC_DROP_NO_ROUTE);
	const char *never[] = {"10.0.77.7",   "127.0.0.1", "169.254.169.123",
			       "224.0.0.251", "0.0.0.1",   "10.0.0.3"};
	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
		n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.5", never[i], 40000, 80, 0x02);
		assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	}
	n = vt_icmp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "8.8.8.8", 8, 0, 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(vt_drops(t, VPC_DROP_NO_ROUTE), before + 7);
	assert_int_equal(igw_count(t, false), 2);
	/* a spoofed source never leaves */
	n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.99", "8.8.8.8", 40000, 443, 0x02);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
}

static void replies_come_back(void **state)
{
	struct vt *t = *state;
	size_t n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "8.8.8.8", 40000, 443, 0x02);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_IGW);
	uint8_t f[128];
	n = vt_tcp(f, MAC_A, MAC_NAT, "8.8.8.8", "10.0.0.5", 443, 40000, 0x12);
	assert_int_equal(from_nat(t, f, n, 1), VPC_TO_GUEST);
	assert_int_equal(t->out.vo_len, n);
	assert_memory_equal(t->out.vo_data, MAC_A, 6);
	assert_memory_equal(t->out.vo_data + 6, MAC_GW, 6); /* routed: from the gateway */
	assert_memory_equal(t->out.vo_data + 12, f + 12, n - 12);
	assert_int_equal(igw_count(t, true), 1);
	/* unsolicited from outside: the default group lets nothing in */
	n = vt_tcp(f, MAC_A, MAC_NAT, "8.8.8.8", "10.0.0.5", 443, 22, 0x02);
	assert_int_equal(from_nat(t, f, n, 2), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SG_IN);
	/* a NAT posing as a VPC peer, as the host's loopback, or sending to another
	 * address: refused */
	const char *src[] = {"10.0.0.6", "127.0.0.1", "169.254.169.254", "8.8.8.8"};
	const char *dst[] = {"10.0.0.5", "10.0.0.5", "10.0.0.5", "10.0.0.6"};
	for (int i = 0; i < 4; i++) {
		n = vt_tcp(f, MAC_A, MAC_NAT, src[i], dst[i], 443, 40000, 0x12);
		assert_int_equal(from_nat(t, f, n, 3), VPC_DROP);
		assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_IN);
	}
	/* malformed */
	assert_int_equal(from_nat(t, f, 10, 3), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_RUNT);
	n = vt_tcp(f, MAC_A, MAC_NAT, "8.8.8.8", "10.0.0.5", 443, 40000, 0x12);
	f[12] = 0x08, f[13] = 0x06; /* ARP */
	assert_int_equal(from_nat(t, f, n, 3), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_ETHERTYPE);
	n = vt_tcp(f, MAC_A, MAC_NAT, "8.8.8.8", "10.0.0.5", 443, 40000, 0x12);
	f[14 + 10] ^= 0xff; /* IPv4 header checksum */
	assert_int_equal(from_nat(t, f, n, 3), VPC_DROP);
	assert_int_equal(igw_count(t, true), 1);
}

static void security_group_and_allowance(void **state)
{
	(void)state;
	static struct vt t;
	struct vpc_sg *g = vt_sg("egress tcp 443 1.1.1.1/32\n");
	struct vpc_cfg c = igw_cfg();
	c.vc_sg = g;
	c.vc_pps = 10;
	vt_setup(&t, &c);
	size_t n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "8.8.8.8", 40000, 443, 0x02);
	assert_int_equal(vt_guest(&t, t.frame, n, 0), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_OUT);
	n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.1", 40000, 8000, 0x02);
	assert_int_equal(vt_guest(&t, t.frame, n, 0), VPC_DROP); /* the alias too */
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_OUT);
	n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "1.1.1.1", 40000, 443, 0x02);
	assert_int_equal(vt_guest(&t, t.frame, n, 0), VPC_TO_IGW);
	/* the pps allowance (10/s, both directions) counts gateway traffic */
	int passed = 1;
	for (int i = 0; i < 40; i++)
		passed += vt_guest(&t, t.frame, n, 0) == VPC_TO_IGW;
	assert_true(passed <= 12);
	assert_true(vt_drops(&t, VPC_DROP_PPS) > 0);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void without_gateway(void **state)
{
	(void)state;
	static struct vt t;
	vt_setup(&t, NULL);
	size_t n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "8.8.8.8", 40000, 443, 0x02);
	assert_int_equal(vt_guest(&t, t.frame, n, 0), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_NO_ROUTE);
	n = vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.1", 40000, 80, 0x02);
	assert_int_equal(vt_guest(&t, t.frame, n, 0), VPC_DROP);
	uint8_t f[128];
	n = vt_tcp(f, MAC_A, MAC_NAT, "8.8.8.8", "10.0.0.5", 443, 40000, 0x12);
	assert_int_equal(from_nat(&t, f, n, 1), VPC_DROP);
	vt_teardown(&t);
	/* a CIDR that does not hold the subnet is refused */
	struct vpc_cfg c = igw_cfg();
	c.vc_vpc_net = vt_ip("10.9.0.0");
	struct vt_map map = {0};
	char err[256];
	assert_null(vpc_port_new(&c, vt_lookup, &map, err, sizeof(err)));
	assert_non_null(strstr(err, "CIDR"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(policy),
	    cmocka_unit_test_setup_teardown(to_the_gateway, setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(replies_come_back, setup, vt_state_teardown),
	    cmocka_unit_test(security_group_and_allowance),
	    cmocka_unit_test(without_gateway),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
