/* Security groups in the VPC core: the file parser and its errors, allow rules in both
 * directions, the default group, stateful replies, ICMP errors of tracked flows, idle
 * timeouts driven by now_ns, the bounded table, untracked flows, rule changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vpctest.h"

static void parse_error(const char *text, const char *want)
{
	char err[256] = "";
	struct vpc_sg *g = vpc_sg_parse(text, strlen(text), "groups/web.sg", err, sizeof(err));
	if (g || !strstr(err, want))
		fail_msg("for %s: got '%s', want '%s'", text, g ? "(parsed)" : err, want);
}

static void parser(void **state)
{
	(void)state;
	struct vpc_sg *g = vt_sg("# web servers\n"
				 "\n"
				 "ingress tcp 22 10.0.0.0/16   # ssh from the VPC\n"
				 "ingress tcp 80-443 0.0.0.0/0\n"
				 "  ingress\ticmp all 10.0.0.7\r\n"
				 "ingress all all default\n"
				 "ingress 47 all 10.0.0.0/8\n"
				 "egress udp 53 10.0.0.2/32\n"
				 "egress tcp all 0.0.0.0/0");
	assert_int_equal(vpc_sg_rules(g, true), 5);
	assert_int_equal(vpc_sg_rules(g, false), 2);
	vpc_sg_free(g);
	g = vt_sg("");
	assert_int_equal(vpc_sg_rules(g, true), 0);
	assert_int_equal(vpc_sg_rules(g, false), 0);
	vpc_sg_free(g);
}

static void parser_errors(void **state)
{
	(void)state;
	parse_error("ingress tcp 22\n",
		    "groups/web.sg:1: expected 'DIRECTION PROTOCOL PORTS PEER'");
	parse_error("\n\ningress tcp 22 0.0.0.0/0 extra\n", "groups/web.sg:3: expected");
	parse_error("inbound tcp 22 0.0.0.0/0\n", "sg:1: unknown direction 'inbound'");
	parse_error("ingress tpc 22 0.0.0.0/0\n", ":1: unknown protocol 'tpc'");
	parse_error("ingress 256 all 0.0.0.0/0\n", ":1: unknown protocol '256'");
	parse_error("ingress tcp 0 0.0.0.0/0\n", ":1: bad port range '0'");
	parse_error("ingress tcp 22-21 0.0.0.0/0\n", ":1: bad port range '22-21'");
	parse_error("ingress tcp 65536 0.0.0.0/0\n", ":1: bad port range");
	parse_error("ingress udp 1- 0.0.0.0/0\n", ":1: bad port range '1-'");
	parse_error("ingress tcp -5 0.0.0.0/0\n", ":1: bad port range");
	parse_error("ingress icmp 256 0.0.0.0/0\n", ":1: bad ICMP type range '256'");
	parse_error("ingress all 22 0.0.0.0/0\n", ":1: ports must be 'all' for protocol all");
	parse_error("ingress tcp 22 10.0.0.0/33\n", ":1: bad peer '10.0.0.0/33'");
	parse_error("ingress tcp 22 10.0.0/8\n", ":1: bad peer");
	parse_error("ingress tcp 22 10.0.0.5/24\n",
		    ":1: peer '10.0.0.5/24' has host bits set (the network is 10.0.0.0/24)");
	parse_error("ingress tcp 22 0.0.0.0/0\nx\n", "groups/web.sg:2:");
	char nul[] = "ingress tcp 22 0.0.0.0/0\ningress tcp 2\0 0.0.0.0/0\n";
	char err[256];
	assert_null(vpc_sg_parse(nul, sizeof(nul) - 1, "n.sg", err, sizeof(err)));
	assert_string_equal(err, "n.sg:2: NUL byte in the line");
	char *lng = malloc(3000);
	memset(lng, ' ', 3000);
	memcpy(lng + 2990, "x\n", 2);
	assert_null(vpc_sg_parse(lng, 3000, "l.sg", err, sizeof(err)));
	assert_string_equal(err, "l.sg:1: line longer than 1024 bytes");
	free(lng);
	/* too many rules */
	size_t cap = 1100 * 32, len = 0;
	char *many = malloc(cap);
	for (int i = 0; i < 1001; i++)
		len += (size_t)snprintf(many + len, cap - len, "egress tcp %d 0.0.0.0/0\n", i + 1);
	assert_null(vpc_sg_parse(many, len, "m.sg", err, sizeof(err)));
	assert_string_equal(err, "m.sg:1001: more than 1000 egress rules");
	free(many);
	/* files */
	assert_null(vpc_sg_load("/nonexistent/x.sg", err, sizeof(err)));
	assert_string_equal(err, "/nonexistent/x.sg: No such file or directory");
	assert_null(vpc_sg_load("/", err, sizeof(err)));
	assert_string_equal(err, "/: Is a directory");
	char path[] = "/tmp/vpc-sg-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *text = "ingress tcp 22 0.0.0.0/0\negress udp 99999 0.0.0.0/0\n";
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_null(vpc_sg_load(path, err, sizeof(err)));
	char want[128];
	snprintf(want, sizeof(want), "%s:2: bad port range '99999'", path);
	assert_true(strncmp(err, want, strlen(want)) == 0);
	unlink(path);
}

static enum vpc_action udp_in(struct vt *t, unsigned sport, unsigned dport, uint64_t now)
{
	size_t n = vt_udp(t->frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", sport, dport, 10);
	size_t m = vt_geneve(t->ul, 7, t->frame, n);
	return vt_under(t, t->ul, m, "192.0.2.6", 40006, now);
}

static enum vpc_action udp_out(struct vt *t, unsigned sport, unsigned dport, uint64_t now)
{
	size_t n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", sport, dport, 10);
	return vt_guest(t, t->frame, n, now);
}

static enum vpc_action icmp_in(struct vt *t, uint8_t type, uint16_t id, uint64_t now)
{
	size_t n = vt_icmp(t->frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", type, 0, id);
	size_t m = vt_geneve(t->ul, 7, t->frame, n);
	return vt_under(t, t->ul, m, "192.0.2.6", 40006, now);
}

static enum vpc_action icmp_out(struct vt *t, uint8_t type, uint16_t id, uint64_t now)
{
	size_t n = vt_icmp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", type, 0, id);
	return vt_guest(t, t->frame, n, now);
}

static uint64_t stat_ct(struct vt *t, int which)
{
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	return which == 0   ? st.st_conntrack_entries
	       : which == 1 ? st.st_conntrack_allowance_available
			    : st.st_conntrack_allowance_exceeded;
}

static void ingress_rules(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("ingress tcp 22 10.0.0.0/24\n"
				 "ingress tcp 8000-8080 10.0.1.0/24\n"
				 "ingress icmp 8 0.0.0.0/0\n");
	vt_setup_sg(&t, g, 0);
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x02, 0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 40000, 23, 0x02, 0), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_IN);
	assert_int_equal(vt_tcp_in(&t, true, 40000, 22, 0x02, 0), VPC_DROP); /* 10.0.1.9 */
	assert_int_equal(vt_tcp_in(&t, true, 40000, 8000, 0x02, 0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, true, 40000, 8080, 0x02, 0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, true, 40000, 8081, 0x02, 0), VPC_DROP);
	assert_int_equal(vt_tcp_in(&t, false, 40000, 8000, 0x02, 0), VPC_DROP); /* 10.0.0.6 */
	assert_int_equal(udp_in(&t, 5000, 22, 0), VPC_DROP);
	enum vpc_action a = icmp_in(&t, 8, 1, 0);
	assert_string_equal(vpc_drop_name(t.out.vo_drop), "none");
	assert_int_equal(a, VPC_TO_GUEST);
	assert_int_equal(icmp_in(&t, 13, 1, 0), VPC_DROP); /* timestamp: not type 8 */
	assert_int_equal(vt_drops(&t, VPC_DROP_SG_IN), 6);
	/* the guest answers on the tracked flows, with no egress rule needed either way */
	assert_int_equal(vt_tcp_out(&t, false, 22, 40000, 0x12, 0), VPC_TO_UNDERLAY);
	assert_int_equal(icmp_out(&t, 0, 1, 0), VPC_TO_UNDERLAY);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void empty_group(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("# nothing\n");
	vt_setup_sg(&t, g, 0);
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x02, 0), VPC_DROP);
	assert_int_equal(udp_in(&t, 5000, 53, 0), VPC_DROP);
	assert_int_equal(icmp_in(&t, 8, 9, 0), VPC_DROP);
	/* all egress, and the replies of what went out */
	assert_int_equal(vt_tcp_out(&t, false, 40000, 80, 0x02, 0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, 0x12, 0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40001, 0x12, 0), VPC_DROP); /* other port */
	assert_int_equal(udp_out(&t, 5000, 53, 0), VPC_TO_UNDERLAY);
	assert_int_equal(udp_in(&t, 53, 5000, 0), VPC_TO_GUEST);
	assert_int_equal(icmp_out(&t, 8, 9, 0), VPC_TO_UNDERLAY);
	assert_int_equal(icmp_in(&t, 0, 9, 0), VPC_TO_GUEST);
	assert_int_equal(icmp_in(&t, 0, 10, 0), VPC_DROP); /* another echo id */
	assert_int_equal(stat_ct(&t, 0), 3);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void egress_rules(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("egress udp 53 10.0.0.0/24\negress icmp all default\n");
	vt_setup_sg(&t, g, 0);
	assert_int_equal(udp_out(&t, 5000, 53, 0), VPC_TO_UNDERLAY);
	assert_int_equal(udp_out(&t, 5000, 54, 0), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_OUT);
	assert_int_equal(vt_tcp_out(&t, false, 40000, 80, 0x02, 0), VPC_DROP);
	assert_int_equal(icmp_out(&t, 8, 1, 0), VPC_TO_UNDERLAY); /* B is in the default group */
	size_t n = vt_icmp(t.frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.1.9", 8, 0, 1);
	assert_int_equal(vt_guest(&t, t.frame, n, 0), VPC_DROP); /* R is not */
	assert_int_equal(vt_drops(&t, VPC_DROP_SG_OUT), 3);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void default_group(void **state)
{
	(void)state;
	struct vt t;
	vt_setup_sg(&t, NULL, 0);
	/* B is a member of the default group, R is not */
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x02, 0), VPC_TO_GUEST);
	assert_int_equal(udp_in(&t, 5000, 9, 0), VPC_TO_GUEST);
	assert_int_equal(icmp_in(&t, 8, 1, 0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, true, 40000, 22, 0x02, 0), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_IN);
	/* all egress; R's replies come back */
	assert_int_equal(vt_tcp_out(&t, true, 40001, 443, 0x02, 0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, true, 443, 40001, 0x12, 0), VPC_TO_GUEST);
	/* a group rule naming the default group */
	struct vpc_sg *g = vt_sg("ingress tcp 22 default\n");
	vpc_port_set_sg(t.p, g);
	assert_int_equal(vt_tcp_in(&t, false, 40002, 22, 0x02, 0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 40002, 23, 0x02, 0), VPC_DROP);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void icmp_errors_of_tracked_flows(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("");
	vt_setup_sg(&t, g, 0);
	assert_int_equal(udp_out(&t, 5000, 9999, 0), VPC_TO_UNDERLAY);
	/* B: port unreachable, quoting our datagram */
	uint8_t quoted[64];
	size_t qn = vt_udp(quoted, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 5000, 9999, 4);
	uint8_t *f = t.frame;
	size_t l4 = 8 + (qn - 14);
	size_t n = vt_ipv4(f, MAC_A, MAC_B, vt_ip("10.0.0.6"), vt_ip("10.0.0.5"), 1, l4);
	memset(f + 34, 0, 8);
	f[34] = 3;
	f[35] = 3;
	memcpy(f + 42, quoted + 14, qn - 14);
	uint16_t c = vt_csum(f + 34, l4, 0);
	f[36] = (uint8_t)(c >> 8);
	f[37] = (uint8_t)c;
	size_t m = vt_geneve(t.ul, 7, f, n);
	assert_int_equal(vt_under(&t, t.ul, m, "192.0.2.6", 40006, 0), VPC_TO_GUEST);
	/* the same error about a flow we never had */
	qn = vt_udp(quoted, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 5001, 9999, 4);
	n = vt_ipv4(f, MAC_A, MAC_B, vt_ip("10.0.0.6"), vt_ip("10.0.0.5"), 1, l4);
	memset(f + 34, 0, 8);
	f[34] = 3;
	f[35] = 3;
	memcpy(f + 42, quoted + 14, qn - 14);
	m = vt_geneve(t.ul, 7, f, n);
	assert_int_equal(vt_under(&t, t.ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_IN);
	/* a truncated quote */
	n = vt_ipv4(f, MAC_A, MAC_B, vt_ip("10.0.0.6"), vt_ip("10.0.0.5"), 1, 8 + 10);
	f[34] = 3;
	m = vt_geneve(t.ul, 7, f, n);
	assert_int_equal(vt_under(&t, t.ul, m, "192.0.2.6", 40006, 0), VPC_DROP);
	/* errors open no flow */
	assert_int_equal(stat_ct(&t, 0), 1);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void egress_icmp_error_is_related(void **state)
{
	(void)state;
	struct vt t;
	/* ingress UDP 9 open, egress only TCP 443: the guest's port unreachable about the
	 * datagram it got still goes out, as related traffic */
	struct vpc_sg *g = vt_sg("ingress udp 9 0.0.0.0/0\negress tcp 443 0.0.0.0/0\n");
	vt_setup_sg(&t, g, 0);
	assert_int_equal(udp_in(&t, 7777, 9, 0), VPC_TO_GUEST);
	uint8_t quoted[64];
	size_t qn = vt_udp(quoted, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", 7777, 9, 4);
	uint8_t *f = t.frame;
	size_t l4 = 8 + (qn - 14);
	size_t n = vt_ipv4(f, MAC_GW, MAC_A, vt_ip("10.0.0.5"), vt_ip("10.0.0.6"), 1, l4);
	memset(f + 34, 0, 8);
	f[34] = 3;
	f[35] = 3;
	memcpy(f + 42, quoted + 14, qn - 14);
	assert_int_equal(vt_guest(&t, f, n, 0), VPC_TO_UNDERLAY);
	/* quoting another port: no flow, and ICMP is not allowed out */
	f[42 + 20 + 3] = 10;
	assert_int_equal(vt_guest(&t, f, n, 0), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_OUT);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void tcp_close(void **state)
{
	(void)state;
	struct vt t;
	/* egress limited to DNS: the guest's segments need the tracked flow */
	struct vpc_sg *g = vt_sg("ingress tcp 22 0.0.0.0/0\negress udp 53 10.0.0.2\n");
	vt_setup_sg(&t, g, 0);
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x02, 0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40000, 0x12, 0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x10, 0), VPC_TO_GUEST);  /* established */
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x11, NS), VPC_TO_GUEST); /* FIN */
	/* one FIN: FIN_WAIT, 120 s after each segment (Linux's timeout) */
	assert_int_equal(vt_tcp_out(&t, false, 22, 40000, 0x10, 120 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40000, 0x11, 239 * NS), VPC_TO_UNDERLAY);
	/* both FINs: 10 s after the last segment */
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x10, 245 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40000, 0x10, 254 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40000, 0x10, 265 * NS), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_OUT);
	/* a reset closes too */
	assert_int_equal(vt_tcp_in(&t, false, 40001, 22, 0x02, 4000 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40001, 0x14, 4000 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40001, 0x14, 4011 * NS), VPC_DROP);
	/* the same tuple again soon after a close: a new connection, established again */
	assert_int_equal(vt_tcp_in(&t, false, 40002, 22, 0x02, 5000 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40002, 0x14, 5000 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 40002, 22, 0x02, 5005 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40002, 0x12, 5005 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 40002, 22, 0x10, 5005 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40002, 0x10, 9000 * NS), VPC_TO_UNDERLAY);
	/* but a SYN from the guest on a closed tuple needs an egress rule */
	assert_int_equal(vt_tcp_out(&t, false, 22, 40002, 0x04, 9001 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40002, 0x02, 9002 * NS), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_OUT);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void idle_timeouts(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("");
	vt_setup_sg(&t, g, 0);
	/* UDP: 30 s after the last packet */
	assert_int_equal(udp_out(&t, 5000, 53, 0), VPC_TO_UNDERLAY);
	assert_int_equal(udp_in(&t, 53, 5000, 29 * NS), VPC_TO_GUEST);
	assert_int_equal(udp_in(&t, 53, 5000, 58 * NS), VPC_TO_GUEST);
	assert_int_equal(udp_out(&t, 5001, 53, 100 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(udp_in(&t, 53, 5001, 130 * NS + 1), VPC_DROP);
	/* UDP stream (both ways, then more): 180 s */
	assert_int_equal(udp_out(&t, 5002, 53, 200 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(udp_in(&t, 53, 5002, 201 * NS), VPC_TO_GUEST);
	assert_int_equal(udp_out(&t, 5002, 53, 202 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(udp_in(&t, 53, 5002, 381 * NS), VPC_TO_GUEST);
	assert_int_equal(udp_in(&t, 53, 5002, 561 * NS + 1), VPC_DROP);
	/* TCP established: 432000 s (5 days) */
	uint64_t t0 = 1000 * NS;
	assert_int_equal(vt_tcp_out(&t, false, 40000, 80, 0x02, t0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, 0x12, t0 + NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 40000, 80, 0x10, t0 + 2 * NS), VPC_TO_UNDERLAY);
	uint64_t t1 = t0 + 2 * NS + 431999 * NS;
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, 0x10, t1), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, 0x10, t1 + 432000 * NS + 1), VPC_DROP);
	/* TCP never answered: 120 s */
	assert_int_equal(vt_tcp_out(&t, false, 40001, 80, 0x02, t0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40001, 0x12, t0 + 121 * NS), VPC_DROP);
	/* TCP reset: 10 s */
	assert_int_equal(vt_tcp_out(&t, false, 40002, 80, 0x02, t0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40002, 0x14, t0 + NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40002, 0x10, t0 + 12 * NS), VPC_DROP);
	/* ICMP: 30 s */
	assert_int_equal(icmp_out(&t, 8, 5, t0), VPC_TO_UNDERLAY);
	assert_int_equal(icmp_in(&t, 0, 5, t0 + 31 * NS), VPC_DROP);
	/* tick reaps what is idle */
	vpc_port_tick(t.p, 100000000 * NS);
	assert_int_equal(stat_ct(&t, 0), 0);
	assert_int_equal(stat_ct(&t, 1), 65536);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void full_table(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("ingress udp all 10.0.0.0/24\n");
	vt_setup_sg(&t, g, 4);
	assert_int_equal(stat_ct(&t, 1), 4);
	/* four UDP streams (answered, then used again): assured, never evicted */
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(udp_out(&t, 5000 + i, 53, 0), VPC_TO_UNDERLAY);
		assert_int_equal(udp_in(&t, 53, 5000 + i, 0), VPC_TO_GUEST);
		assert_int_equal(udp_out(&t, 5000 + i, 53, 0), VPC_TO_UNDERLAY);
	}
	assert_int_equal(stat_ct(&t, 1), 0);
	assert_int_equal(udp_out(&t, 6000, 53, 0), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_CONNTRACK);
	assert_int_equal(udp_in(&t, 53, 7000, 0), VPC_DROP); /* a new ingress flow too */
	assert_int_equal(t.out.vo_drop, VPC_DROP_CONNTRACK);
	assert_int_equal(stat_ct(&t, 2), 2);
	/* tracked flows go on */
	assert_int_equal(udp_in(&t, 53, 5002, NS), VPC_TO_GUEST);
	assert_int_equal(udp_out(&t, 5003, 53, NS), VPC_TO_UNDERLAY);
	/* when flows go idle (streams: 180 s), room comes back (the lookup reaps) */
	assert_int_equal(udp_out(&t, 6000, 53, 400 * NS), VPC_TO_UNDERLAY);
	vpc_port_tick(t.p, 400 * NS);
	assert_int_equal(stat_ct(&t, 0), 1);
	assert_int_equal(stat_ct(&t, 1), 3);
	assert_int_equal(stat_ct(&t, 2), 2);
	/* unanswered flows make room for new ones, oldest first */
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(udp_out(&t, 6001 + i, 53, 401 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(udp_out(&t, 6004, 53, 402 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(stat_ct(&t, 0), 4);
	struct vpc_stats st;
	vpc_port_stats(t.p, &st);
	assert_int_equal(st.st_conntrack_evicted, 1);
	assert_int_equal(st.st_conntrack_allowance_exceeded, 2);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void untracked_and_rule_changes(void **state)
{
	(void)state;
	struct vt t;
	/* all TCP/UDP open both ways: AWS does not track those flows; ICMP still is */
	struct vpc_sg *open = vt_sg("ingress all all 0.0.0.0/0\n");
	vt_setup_sg(&t, open, 2);
	for (unsigned i = 0; i < 10; i++) {
		assert_int_equal(vt_tcp_in(&t, false, 40000 + i, 22, 0x02, 0), VPC_TO_GUEST);
		assert_int_equal(udp_out(&t, 5000 + i, 53, 0), VPC_TO_UNDERLAY);
	}
	assert_int_equal(stat_ct(&t, 0), 0);
	assert_int_equal(icmp_out(&t, 8, 1, 0), VPC_TO_UNDERLAY);
	assert_int_equal(stat_ct(&t, 0), 1);
	vt_teardown(&t);
	/* a tracked flow survives a rule change until it goes idle */
	struct vpc_sg *ssh = vt_sg("ingress tcp 22 0.0.0.0/0\n"), *none = vt_sg("");
	vt_setup_sg(&t, ssh, 0);
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x02, 0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 22, 40000, 0x12, 0), VPC_TO_UNDERLAY);
	vpc_port_set_sg(t.p, none);
	assert_int_equal(vt_tcp_in(&t, false, 40000, 22, 0x10, NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 40001, 22, 0x02, NS), VPC_DROP);
	vt_teardown(&t);
	vpc_sg_free(open);
	vpc_sg_free(ssh);
	vpc_sg_free(none);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parser),
	    cmocka_unit_test(parser_errors),
	    cmocka_unit_test(ingress_rules),
	    cmocka_unit_test(empty_group),
	    cmocka_unit_test(egress_rules),
	    cmocka_unit_test(default_group),
	    cmocka_unit_test(icmp_errors_of_tracked_flows),
	    cmocka_unit_test(egress_icmp_error_is_related),
	    cmocka_unit_test(tcp_close),
	    cmocka_unit_test(idle_timeouts),
	    cmocka_unit_test(full_table),
	    cmocka_unit_test(untracked_and_rule_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
