/* Interface allowances in the VPC core: the packets/s bucket (both directions together)
 * and the bandwidth buckets (each direction), their ENA counters, and refill over now_ns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "vpctest.h"

#define MS 1000000ull

static enum vpc_action out1000(struct vt *t, uint64_t now)
{
	size_t n = vt_udp(t->frame, MAC_GW, MAC_A, "10.0.0.5", "10.0.0.6", 5000, 6000, 958);
	return vt_guest(t, t->frame, n, now); /* a 1000-byte frame */
}

static enum vpc_action in1000(struct vt *t, uint64_t now)
{
	size_t n = vt_udp(t->frame, MAC_A, MAC_B, "10.0.0.6", "10.0.0.5", 6000, 5000, 958);
	size_t m = vt_geneve(t->ul, 7, t->frame, n);
	return vt_under(t, t->ul, m, "192.0.2.6", 40006, now);
}

static void pps(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_cfg c = vt_cfg();
	c.vc_pps = 1000; /* a burst of 100 ms: 100 packets */
	vt_setup(&t, &c);
	uint64_t now = 5 * NS;
	unsigned ok = 0;
	for (int i = 0; i < 150; i++)
		ok += (i % 2 ? in1000(&t, now) : out1000(&t, now)) != VPC_DROP;
	assert_int_equal(ok, 100);
	struct vpc_stats st;
	vpc_port_stats(t.p, &st);
	assert_int_equal(st.st_pps_allowance_exceeded, 50);
	assert_int_equal(st.st_drops[VPC_DROP_PPS], 50);
	assert_int_equal(st.st_bw_in_allowance_exceeded + st.st_bw_out_allowance_exceeded, 0);
	/* 10 ms later: 10 more */
	ok = 0;
	for (int i = 0; i < 20; i++)
		ok += out1000(&t, now + 10 * MS) != VPC_DROP;
	assert_int_equal(ok, 10);
	/* over a second of steady sending at 2000 pps: the burst refilled while idle (100)
	 * and the rate (1000) */
	ok = 0;
	for (int i = 0; i < 2000; i++)
		ok += out1000(&t, now + 1 * NS + (uint64_t)i * 500000) != VPC_DROP;
	assert_in_range(ok, 1095, 1101);
	/* ARP and DHCP are answered locally and are not limited */
	vt_teardown(&t);
}

static void bandwidth(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_cfg c = vt_cfg();
	c.vc_bps = 8000000; /* 1 MB/s each way: a 100 kB burst */
	vt_setup(&t, &c);
	uint64_t now = NS;
	unsigned ok = 0;
	for (int i = 0; i < 150; i++)
		ok += out1000(&t, now) != VPC_DROP;
	assert_int_equal(ok, 100);
	assert_int_equal(t.out.vo_drop, VPC_DROP_BW_OUT);
	/* the other direction has its own bucket */
	ok = 0;
	for (int i = 0; i < 150; i++)
		ok += in1000(&t, now) != VPC_DROP;
	assert_int_equal(ok, 100);
	assert_int_equal(t.out.vo_drop, VPC_DROP_BW_IN);
	struct vpc_stats st;
	vpc_port_stats(t.p, &st);
	assert_int_equal(st.st_bw_out_allowance_exceeded, 50);
	assert_int_equal(st.st_bw_in_allowance_exceeded, 50);
	assert_int_equal(st.st_pps_allowance_exceeded, 0);
	/* 50 ms refill 50 kB */
	ok = 0;
	for (int i = 0; i < 100; i++)
		ok += out1000(&t, now + 50 * MS) != VPC_DROP;
	assert_int_equal(ok, 50);
	/* long idle does not bank more than the burst */
	ok = 0;
	for (int i = 0; i < 300; i++)
		ok += out1000(&t, now + 100 * NS) != VPC_DROP;
	assert_int_equal(ok, 100);
	vt_teardown(&t);
}

static void tiny_rate_still_passes_a_frame(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_cfg c = vt_cfg();
	c.vc_bps = 1000; /* far below one frame per burst */
	c.vc_pps = 1;
	vt_setup(&t, &c);
	assert_int_equal(out1000(&t, 0), VPC_TO_UNDERLAY);
	assert_int_equal(out1000(&t, 0), VPC_DROP);
	vt_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(pps),
	    cmocka_unit_test(bandwidth),
	    cmocka_unit_test(tiny_rate_still_passes_a_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
