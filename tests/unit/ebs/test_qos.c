/* cmocka tests of the EBS card's QoS arithmetic (src/cards/bdev/qos.c) on a made-up clock:
 * IOPS and byte buckets, and gp2 baselines, burst credits and their refill. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cards/bdev/qos.h"

#define GiB (1ull << 30)
#define SEC 1000000000ull

/* Admits and charges as many operations as the buckets allow from t0 to t1 (ns), stepping
 * the clock to each wait the buckets ask for; returns the count. */
static unsigned long run(struct qos *q, uint64_t t0, uint64_t t1, uint64_t bytes)
{
	unsigned long n = 0;
	uint64_t t = t0, wait;
	while (t < t1) {
		if (qos_admit(q, t, &wait)) {
			qos_charge(q, true, bytes);
			n++;
		} else {
			t += wait;
		}
	}
	return n;
}

static void test_iops_limit(void **state)
{
	(void)state;
	struct qos q;
	qos_init(&q, 500, 0, 0);
	unsigned long n = run(&q, 0, 10 * SEC, 4096);
	/* 10 s at 500/s plus at most the 50 ms burst. */
	assert_true(n >= 4990 && n <= 5030);
}

static void test_bytes_limit(void **state)
{
	(void)state;
	struct qos q;
	qos_init(&q, 0, 20 << 20, 0);
	unsigned long n = run(&q, 0, 10 * SEC, 256 << 10);
	assert_true(n >= 795 && n <= 810); /* 200 MiB in 256 KiB requests */
}

static void test_gp2_baselines(void **state)
{
	(void)state;
	struct qos q;
	qos_init_gp2(&q, 1 * GiB, 0, 0, 0);
	assert_true(q.q_baseline == 100 && q.q_burst == 3000 && q.q_credits == 5400000.0);
	qos_init_gp2(&q, 500 * GiB, 0, 0, 0);
	assert_true(q.q_baseline == 1500 && q.q_burst == 3000);
	qos_init_gp2(&q, 2000 * GiB, 0, 0, 0); /* 6000 >= burst: no bursting */
	assert_true(q.q_baseline == 6000 && q.q_burst == 6000);
	qos_init_gp2(&q, 16384 * GiB, 0, 0, 0);
	assert_true(q.q_baseline == 16000);
}

static void test_gp2_burst_then_baseline(void **state)
{
	(void)state;
	struct qos q;
	qos_init_gp2(&q, 1 * GiB, 3000, 0, 0);
	/* First second: the 3000 credits (+100 refilled) at up to 3000 IOPS. */
	unsigned long burst = run(&q, 0, 1 * SEC, 4096);
	assert_true(burst >= 2950 && burst <= 3150);
	/* After a second idle (~100 credits back), ten seconds at the baseline: the refill,
	 * 100/s, is all there is. */
	unsigned long base = run(&q, 2 * SEC, 12 * SEC, 4096);
	assert_true(base >= 1150 && base <= 1250);
	assert_true(q.q_credits < 2.0);
	/* Idle for 20 s: 2000 credits come back, and bursting with them. */
	unsigned long again = run(&q, 32 * SEC, 33 * SEC, 4096);
	assert_true(again >= 1950 && again <= 2300);
}

static void test_gp2_credit_cap(void **state)
{
	(void)state;
	struct qos q;
	qos_init_gp2(&q, 1 * GiB, 500, 0, 0);
	run(&q, 0, 1 * SEC, 4096);
	uint64_t wait;
	qos_admit(&q, 1000 * SEC, &wait); /* a long idle time refills only to the cap */
	assert_true(q.q_credits == 500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_iops_limit),	   cmocka_unit_test(test_bytes_limit),
	    cmocka_unit_test(test_gp2_baselines),  cmocka_unit_test(test_gp2_burst_then_baseline),
	    cmocka_unit_test(test_gp2_credit_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
