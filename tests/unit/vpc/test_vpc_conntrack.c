/* The conntrack hash table (src/cards/vpc/conntrack.c) against a plain array model:
 * random inserts, lookups, refreshes and expiries, so that backward-shift deletion keeps
 * every live entry reachable; and the bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cards/vpc/conntrack.h"

#define MAXE 200
#define KEYS 400

struct model {
	bool live[KEYS];
	uint64_t exp[KEYS];
};

static struct ct_key key(unsigned i)
{
	/* few remote addresses and ports: many keys share hash chains */
	struct ct_key k = {.k_rip = 0x0a000000u + i % 7,
			   .k_lport = (uint16_t)(i / 7),
			   .k_rport = 53,
			   .k_proto = (uint8_t)(i % 2 ? 17 : 6)};
	return k;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void model_check(void **state)
{
	(void)state;
	struct ct_table t;
	static struct model m;
	memset(&m, 0, sizeof(m));
	assert_int_equal(ct_init(&t, MAXE, 12345), 0);
	uint64_t s = 88172645463325252ull, now = 1;
	for (int step = 0; step < 200000; step++) {
		now += rnd(&s) % 3;
		unsigned i = (unsigned)(rnd(&s) % KEYS);
		struct ct_key k = key(i);
		bool live = m.live[i] && m.exp[i] > now;
		struct ct_entry *e = ct_find(&t, &k, now);
		assert_int_equal(e != NULL, live);
		if (e) {
			assert_int_equal(e->ce_expires, m.exp[i]);
			e->ce_expires = m.exp[i] = now + 1 + rnd(&s) % 200;
			continue;
		}
		unsigned nlive = 0;
		for (unsigned j = 0; j < KEYS; j++)
			nlive += m.live[j] && m.exp[j] > now;
		uint64_t exp = now + 1 + rnd(&s) % 200;
		e = ct_insert(&t, &k, now, exp);
		if (e) {
			m.live[i] = true;
			m.exp[i] = exp;
		} else {
			/* full: only when the table really holds MAXE entries (live or not
			 * yet reaped) */
			assert_true(t.ct_count >= MAXE);
			m.live[i] = false;
		}
		if (step % 1000 == 0)
			ct_sweep(&t, now, ct_slots(&t));
		assert_true(t.ct_count >= nlive);
		assert_true(t.ct_count <= MAXE);
	}
	/* after a full sweep the count is exactly the live entries */
	ct_sweep(&t, now, ct_slots(&t));
	unsigned nlive = 0;
	for (unsigned j = 0; j < KEYS; j++)
		nlive += m.live[j] && m.exp[j] > now;
	assert_int_equal(t.ct_count, nlive);
	ct_sweep(&t, now + 1000, ct_slots(&t));
	assert_int_equal(t.ct_count, 0);
	ct_fini(&t);
}

static void bound(void **state)
{
	(void)state;
	struct ct_table t;
	assert_int_equal(ct_init(&t, 3, 1), 0);
	assert_int_equal(ct_slots(&t), 16);
	for (unsigned i = 0; i < 3; i++) {
		struct ct_key k = key(i);
		assert_null(ct_find(&t, &k, 10));
		assert_non_null(ct_insert(&t, &k, 10, 100));
	}
	struct ct_key k = key(3);
	assert_null(ct_find(&t, &k, 10));
	assert_null(ct_insert(&t, &k, 10, 100));
	/* at 100 all three are idle: the insert reaps and succeeds */
	assert_null(ct_find(&t, &k, 100));
	assert_non_null(ct_insert(&t, &k, 100, 200));
	assert_true(t.ct_count <= 3);
	ct_fini(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(model_check),
	    cmocka_unit_test(bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
