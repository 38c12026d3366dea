/* Unit tests for the API's fair share of connection slots (src/controller/connpool.c,
 * issue 10 item 3): the counts, each key's order and the top key agree with a plain model
 * through random adds and removes (in a small pool too, where 40 keys share a hash of 16
 * slots, so that removals shift colliding keys back); and the attack:
 * keys that fill every slot cannot keep another key below its fair share, and two keys
 * never evict each other back and forth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "controller/connpool.h"

#define MAXL 512
#define NKEYS 40

/* The model: which key each link holds (or -1), and the order they were added. */
struct model {
	struct cp_link link[MAXL];
	int key[MAXL];
	unsigned seq[MAXL];
};

static void check(const struct connpool *p, const struct model *m, unsigned keyspace)
{
	unsigned counts[NKEYS + 1] = {0}, top = 0, keys = 0;
	for (unsigned i = 0; i < MAXL; i++)
		if (m->key[i] >= 0)
			counts[m->key[i]]++;
	for (unsigned k = 0; k < keyspace; k++) {
		uint64_t key = (uint64_t)k << 20;
		assert_int_equal(cp_count(p, key), counts[k]);
		keys += counts[k] > 0;
		top = counts[k] > top ? counts[k] : top;
		/* Oldest first. */
		unsigned prev = 0, n = 0;
		for (struct cp_link *l = cp_oldest(p, key); l; l = l->cl_next, n++) {
			unsigned i = (unsigned)(l - m->link);
			assert_int_equal(m->key[i], (int)k);
			assert_true(n == 0 || m->seq[i] > prev);
			prev = m->seq[i];
		}
		assert_int_equal(n, counts[k]);
	}
	assert_int_equal(cp_keys(p), keys);
	uint64_t tk;
	unsigned tn;
	assert_int_equal(cp_top(p, &tk, &tn), top > 0);
	if (top) {
		assert_int_equal(tn, top);
		assert_int_equal(counts[tk >> 20], top);
	}
}

static void run_model(unsigned max, unsigned every)
{
	struct connpool *p = cp_new(max);
	assert_non_null(p);
	static struct model m;
	for (unsigned i = 0; i < MAXL; i++)
		m.key[i] = -1;
	srand(7);
	unsigned seq = 0, held = 0;
	for (unsigned step = 0; step < 200000; step++) {
		unsigned i = (unsigned)rand() % MAXL;
		if (m.key[i] < 0) {
			/* Skewed: a few keys hold most links, as an attacker's would. */
			unsigned k = rand() % 3 ? (unsigned)rand() % 4 : (unsigned)rand() % NKEYS;
			int rc = cp_add(p, (uint64_t)k << 20, &m.link[i]);
			assert_int_equal(rc, held < max ? 0 : -1);
			if (rc == 0) {
				m.key[i] = (int)k;
				m.seq[i] = ++seq;
				held++;
			}
		} else {
			cp_del(p, &m.link[i]);
			m.key[i] = -1;
			held--;
		}
		if (step % every == 0)
			check(p, &m, NKEYS);
	}
	check(p, &m, NKEYS);
	cp_free(p);
}

static void test_model(void **state)
{
	(void)state;
	run_model(MAXL, 997);
	run_model(6, 1);
}

/* The attack: 30 keys of 16 fill 480 slots; a 31st key asks for slots one at a time. */
static void test_fair_share_under_attack(void **state)
{
	(void)state;
	enum { SLOTS = 480, ATTACKERS = 30, VICTIM = 99 };
	struct connpool *p = cp_new(SLOTS);
	static struct cp_link l[SLOTS + 64];
	unsigned n = 0;
	for (unsigned k = 0; k < ATTACKERS; k++)
		for (unsigned j = 0; j < 16; j++)
			assert_int_equal(cp_add(p, k, &l[n++]), 0);
	uint64_t victim;
	unsigned fair, got = 0;
	/* The victim gets its fair share (480 / 31 = 15), each slot from a key holding most. */
	while (cp_evict_for(p, VICTIM, SLOTS, &victim, &fair)) {
		uint64_t top;
		unsigned most;
		assert_true(cp_top(p, &top, &most));
		assert_int_equal(victim, top);
		assert_true(most >= cp_count(p, VICTIM) + 2);
		cp_del(p, cp_oldest(p, victim));
		assert_int_equal(cp_add(p, VICTIM, &l[n++]), 0);
		got++;
	}
	assert_int_equal(fair, SLOTS / (ATTACKERS + 1));
	assert_int_equal(got, 15);
	/* An attacker asking back evicts no one: each holds 15 or 16, at or over its share. */
	for (unsigned k = 0; k < ATTACKERS; k++)
		assert_false(cp_evict_for(p, k, SLOTS, &victim, &fair));
	/* A new attacker key gets in, from the ones holding 16 only, never from the victim. */
	assert_true(cp_evict_for(p, 1000, SLOTS, &victim, &fair));
	assert_int_equal(cp_count(p, victim), 16);
	cp_free(p);
}

/* Keys one apart never evict each other; a key alone below its share takes from the top. */
static void test_no_back_and_forth(void **state)
{
	(void)state;
	struct connpool *p = cp_new(8);
	struct cp_link l[8];
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(cp_add(p, 1, &l[i]), 0);
	for (unsigned i = 4; i < 7; i++)
		assert_int_equal(cp_add(p, 2, &l[i]), 0);
	uint64_t v;
	unsigned fair;
	/* 7 slots full: key 2 (3 held, fair 3) does not evict key 1 (4). */
	assert_false(cp_evict_for(p, 2, 7, &v, &fair));
	assert_int_equal(fair, 3);
	/* Key 3 (none) does: fair 7 / 3 = 2, from key 1. */
	assert_true(cp_evict_for(p, 3, 7, &v, &fair));
	assert_int_equal(v, 1);
	assert_int_equal(fair, 2);
	/* More keys than slots: everyone's share is 1, a key holding 1 evicts no one. */
	cp_free(p);
	p = cp_new(4);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(cp_add(p, 10 + i, &l[i]), 0);
	assert_false(cp_evict_for(p, 20, 4, &v, &fair));
	assert_int_equal(fair, 1);
	cp_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_model),
	    cmocka_unit_test(test_fair_share_under_attack),
	    cmocka_unit_test(test_no_back_and_forth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
