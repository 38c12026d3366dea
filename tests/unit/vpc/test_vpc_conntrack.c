/* The conntrack hash table (src/cards/vpc/conntrack.c) against a plain array model:
 * random inserts, lookups, refreshes, expiries and assured/unassured changes, so that
 * backward-shift deletion keeps every live entry reachable and the eviction list in order
 * (oldest unassured first); the bound and eviction. Then TCP tracking through the VPC
 * core on a made-up clock: the SYN flood of issue 10 (a table full of half-open flows
 * must not lock the guest's new flows out), the handshake states and their timeouts
 * (Linux's), RST, FIN, a flow picked up mid-stream. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cards/vpc/conntrack.h"
#include "vpctest.h"

#define MAXE 200
#define KEYS 400

struct model {
	bool live[KEYS];
	uint64_t exp[KEYS];
	bool assured[KEYS];
	uint64_t seq[KEYS]; /* when it last became unassured */
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

static unsigned key_index(const struct ct_entry *e)
{
	return (unsigned)e->ce_lport * 7 + (e->ce_rip - 0x0a000000u);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The eviction list holds exactly the unassured entries, linked both ways, oldest first. */
static void check_list(const struct ct_table *t, const struct model *m)
{
	unsigned n = 0, listed = 0;
	uint32_t prev = CT_NIL;
	uint64_t last = 0;
	for (uint32_t i = t->ct_head; i != CT_NIL; i = t->ct_slots[i].ce_next) {
		const struct ct_entry *e = &t->ct_slots[i];
		assert_true(e->ce_expires != 0);
		assert_true(e->ce_listed);
		assert_int_equal(e->ce_prev, prev);
		unsigned k = key_index(e);
		assert_false(m->assured[k]);
		assert_true(m->seq[k] > last);
		last = m->seq[k];
		prev = i;
		assert_true(++n <= t->ct_count);
	}
	assert_int_equal(t->ct_tail, prev);
	for (uint32_t i = 0; i <= t->ct_mask; i++) {
		const struct ct_entry *e = &t->ct_slots[i];
		if (!e->ce_expires)
			continue;
		assert_int_equal(e->ce_listed, !m->assured[key_index(e)]);
		listed += e->ce_listed;
	}
	assert_int_equal(n, listed);
	assert_int_equal(n, t->ct_unassured);
}

/* The key of the oldest unassured entry, or KEYS. */
static unsigned oldest(const struct ct_table *t)
{
	return t->ct_head == CT_NIL ? KEYS : key_index(&t->ct_slots[t->ct_head]);
}

static bool present(const struct ct_table *t, unsigned k)
{
	struct ct_key want = key(k);
	for (uint32_t i = 0; i <= t->ct_mask; i++) {
		const struct ct_entry *e = &t->ct_slots[i];
		if (e->ce_expires && e->ce_rip == want.k_rip && e->ce_lport == want.k_lport &&
		    e->ce_proto == want.k_proto)
			return true;
	}
	return false;
}

static void model_check(void **state)
{
	(void)state;
	struct ct_table t;
	static struct model m;
	memset(&m, 0, sizeof(m));
	assert_int_equal(ct_init(&t, MAXE, 12345), 0);
	uint64_t s = 88172645463325252ull, now = 1, seq = 0, evictions = 0, refused = 0;
	for (int step = 0; step < 200000; step++) {
		now += rnd(&s) % 3;
		unsigned i = (unsigned)(rnd(&s) % KEYS);
		struct ct_key k = key(i);
		bool live = m.live[i] && m.exp[i] > now;
		struct ct_entry *e = ct_find(&t, &k, now);
		assert_int_equal(e != NULL, live);
		if (e) {
			assert_int_equal(e->ce_expires, m.exp[i]);
			e->ce_expires = m.exp[i] = now + 1 + rnd(&s) % 2000;
			/* phases where every refresh assures: the table fills with assured
			 * entries and refuses; phases of half and half: it evicts */
			bool a = (step / 20000) % 2 ? true : rnd(&s) % 2 == 0;
			if (!a && m.assured[i])
				m.seq[i] = ++seq; /* back on the list, as the youngest */
			m.assured[i] = a;
			ct_set_assured(&t, e, a);
			if (step % 97 == 0)
				check_list(&t, &m);
			continue;
		}
		unsigned nlive = 0;
		for (unsigned j = 0; j < KEYS; j++)
			nlive += m.live[j] && m.exp[j] > now;
		uint64_t exp = now + 1 + rnd(&s) % 2000;
		unsigned head = oldest(&t);
		bool full = t.ct_count >= MAXE;
		e = ct_insert(&t, &k, now, exp);
		bool evicted = t.ct_evicted != evictions;
		if (evicted) {
			/* a full table evicted its oldest unassured entry */
			assert_true(full);
			assert_int_equal(t.ct_evicted, evictions + 1);
			assert_true(head < KEYS);
			assert_false(present(&t, head));
			m.live[head] = false;
			evictions = t.ct_evicted;
		}
		if (e) {
			m.live[i] = true;
			m.exp[i] = exp;
			m.assured[i] = false;
			m.seq[i] = ++seq;
			if ((step / 20000) % 2 && rnd(&s) % 4) {
				ct_set_assured(&t, e, true);
				m.assured[i] = true;
			}
		} else {
			/* full of assured entries only (live or not yet reaped) */
			refused++;
			assert_true(t.ct_count >= MAXE);
			assert_int_equal(t.ct_unassured, 0);
			m.live[i] = false;
		}
		if (step % 1000 == 0)
			ct_sweep(&t, now, ct_slots(&t));
		assert_true(t.ct_count + evicted >= nlive);
		assert_true(t.ct_count <= MAXE);
		if (step % 97 == 0)
			check_list(&t, &m);
	}
	assert_true(evictions > 0 && refused > 0);
	/* after a full sweep the count is exactly the live entries */
	ct_sweep(&t, now, ct_slots(&t));
	unsigned nlive = 0;
	for (unsigned j = 0; j < KEYS; j++)
		nlive += m.live[j] && m.exp[j] > now;
	assert_int_equal(t.ct_count, nlive);
	check_list(&t, &m);
	ct_sweep(&t, now + 3000, ct_slots(&t));
	assert_int_equal(t.ct_count, 0);
	assert_int_equal(t.ct_unassured, 0);
	assert_int_equal(t.ct_head, CT_NIL);
	ct_fini(&t);
}

static void bound(void **state)
{
	(void)state;
	struct ct_table t;
	assert_int_equal(ct_init(&t, 3, 1), 0);
	assert_int_equal(ct_slots(&t), 16);
	struct ct_entry *e[3];
	for (unsigned i = 0; i < 3; i++) {
		struct ct_key k = key(i);
		assert_null(ct_find(&t, &k, 10));
		assert_non_null(e[i] = ct_insert(&t, &k, 10 + i, 100));
	}
	/* full of unassured entries: the oldest (key 0) makes room */
	struct ct_key k = key(3);
	assert_null(ct_find(&t, &k, 20));
	assert_non_null(ct_insert(&t, &k, 20, 100));
	assert_int_equal(t.ct_evicted, 1);
	assert_int_equal(t.ct_count, 3);
	struct ct_key k0 = key(0), k1 = key(1);
	assert_null(ct_find(&t, &k0, 20));
	/* every entry assured: a new flow is refused */
	for (unsigned i = 1; i < 4; i++) {
		struct ct_key ki = key(i);
		ct_set_assured(&t, ct_find(&t, &ki, 20), true);
	}
	assert_int_equal(t.ct_unassured, 0);
	k = key(4);
	assert_null(ct_find(&t, &k, 20));
	assert_null(ct_insert(&t, &k, 20, 100));
	assert_int_equal(t.ct_evicted, 1);
	/* one goes unassured again (closed): it is the one evicted */
	ct_set_assured(&t, ct_find(&t, &k1, 20), false);
	assert_null(ct_find(&t, &k, 20));
	assert_non_null(ct_insert(&t, &k, 20, 100));
	assert_null(ct_find(&t, &k1, 20));
	assert_int_equal(t.ct_evicted, 2);
	/* at 100 all are idle: the insert reaps and succeeds without evicting */
	k = key(5);
	assert_null(ct_find(&t, &k, 100));
	assert_non_null(ct_insert(&t, &k, 100, 200));
	assert_int_equal(t.ct_evicted, 2);
	assert_true(t.ct_count <= 3);
	ct_fini(&t);
	(void)e;
}

/* ---- TCP tracking through the VPC core (port A, peers B and R of vpctest.h) ---- */

#define SYN 0x02
#define SYNACK 0x12
#define ACK 0x10
#define FIN 0x11 /* FIN+ACK */
#define RST 0x04

static struct vpc_stats stats(struct vt *t)
{
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	return st;
}

/* Issue 10 item 5: R opens 64 half-open connections to the guest's web port (the guest
 * answers each SYN with SYN+ACK, R never ACKs). Before, any answer marked a flow
 * established for 5 days: the 64-entry table stayed full and the guest's own new flows
 * were dropped for days. Now the half-open entries are evicted, oldest first, and the
 * guest's established flows survive any number of further SYNs. */
static void syn_flood(void **state)
{
	(void)state;
	struct vt t;
	/* web server; egress only to B:443, so a reply on a forgotten flow is visible */
	struct vpc_sg *g = vt_sg("ingress tcp 80 0.0.0.0/0\negress tcp 443 10.0.0.6\n");
	vt_setup_sg(&t, g, 64);
	for (unsigned i = 0; i < 64; i++) {
		assert_int_equal(vt_tcp_in(&t, true, 1000 + i, 80, SYN, 0), VPC_TO_GUEST);
		assert_int_equal(vt_tcp_out(&t, true, 80, 1000 + i, SYNACK, 0), VPC_TO_UNDERLAY);
	}
	assert_int_equal(stats(&t).st_conntrack_entries, 64);
	assert_int_equal(stats(&t).st_conntrack_allowance_available, 0);
	/* the victim's new flow (a minute later, long before any 5-day timeout) */
	uint64_t t1 = 1 * NS;
	assert_int_equal(vt_tcp_out(&t, false, 50000, 443, SYN, t1), VPC_TO_UNDERLAY);
	assert_int_equal(stats(&t).st_conntrack_evicted, 1);
	assert_int_equal(stats(&t).st_conntrack_allowance_exceeded, 0);
	assert_int_equal(vt_tcp_in(&t, false, 443, 50000, SYNACK, t1), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 50000, 443, ACK, t1), VPC_TO_UNDERLAY);
	/* the oldest half-open flow (R:1000) was the one evicted: the guest's late SYN+ACK
	 * for it needs a rule now; R:1001 is still tracked */
	assert_int_equal(vt_tcp_out(&t, true, 80, 1000, SYNACK, t1), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_OUT);
	assert_int_equal(vt_tcp_out(&t, true, 80, 1001, SYNACK, t1), VPC_TO_UNDERLAY);
	/* R keeps flooding: 1000 more half-open flows, the established one stays */
	for (unsigned i = 0; i < 1000; i++) {
		assert_int_equal(vt_tcp_in(&t, true, 2000 + i, 80, SYN, 2 * NS), VPC_TO_GUEST);
		assert_int_equal(vt_tcp_out(&t, true, 80, 2000 + i, SYNACK, 2 * NS),
				 VPC_TO_UNDERLAY);
	}
	assert_int_equal(stats(&t).st_conntrack_evicted, 1001);
	assert_int_equal(vt_tcp_in(&t, false, 443, 50000, ACK, 3 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 50000, 443, ACK, 3 * NS), VPC_TO_UNDERLAY);
	/* and the guest opens more flows at will */
	assert_int_equal(vt_tcp_out(&t, false, 50001, 443, SYN, 4 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(stats(&t).st_conntrack_allowance_exceeded, 0);
	assert_int_equal(stats(&t).st_conntrack_entries, 64);
	vt_teardown(&t);
	vpc_sg_free(g);
}

/* A table full of established (assured) flows still refuses a new flow. */
static void full_of_established(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("egress tcp 443 10.0.0.6\n");
	vt_setup_sg(&t, g, 4);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(vt_tcp_out(&t, false, 50000 + i, 443, SYN, 0), VPC_TO_UNDERLAY);
		assert_int_equal(vt_tcp_in(&t, false, 443, 50000 + i, SYNACK, 0), VPC_TO_GUEST);
		assert_int_equal(vt_tcp_out(&t, false, 50000 + i, 443, ACK, 0), VPC_TO_UNDERLAY);
	}
	assert_int_equal(vt_tcp_out(&t, false, 50004, 443, SYN, NS), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_CONNTRACK);
	assert_int_equal(stats(&t).st_conntrack_evicted, 0);
	/* a connection that closes becomes evictable (RST: CLOSE) */
	assert_int_equal(vt_tcp_in(&t, false, 443, 50002, RST, 2 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 50004, 443, SYN, 2 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(stats(&t).st_conntrack_evicted, 1);
	for (unsigned i = 0; i < 4; i++)
		if (i != 2)
			assert_int_equal(vt_tcp_in(&t, false, 443, 50000 + i, ACK, 3 * NS),
					 VPC_TO_GUEST);
	vt_teardown(&t);
	vpc_sg_free(g);
}

/* Only SYN (orig), SYN+ACK (other side), ACK (orig) in that order establish; the
 * timeouts of each state are Linux's. The guest's ingress is closed: a segment from B
 * passes only while the flow is tracked. */
static void handshake_states(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("# nothing in\n");
	vt_setup_sg(&t, g, 0);
	/* SYN_SENT: 120 s */
	assert_int_equal(vt_tcp_out(&t, false, 40000, 80, SYN, 0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, SYNACK, 119 * NS), VPC_TO_GUEST);
	/* SYN_RECV: 60 s; the answer alone does not establish (before: 5 days) */
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, ACK, 178 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, ACK, 239 * NS), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SG_IN);
	/* the ACK must come from the originator: B's ACKs do not establish */
	assert_int_equal(vt_tcp_out(&t, false, 40001, 80, SYN, 1000 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40001, SYNACK, 1000 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40001, ACK, 1001 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40001, ACK, 1062 * NS), VPC_DROP);
	/* nor does a SYN+ACK from the originator */
	assert_int_equal(vt_tcp_out(&t, false, 40002, 80, SYN, 2000 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_out(&t, false, 40002, 80, SYNACK, 2000 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_out(&t, false, 40002, 80, ACK, 2000 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40002, ACK, 2121 * NS), VPC_DROP);
	/* the full handshake: ESTABLISHED, 5 days */
	uint64_t t0 = 3000 * NS;
	assert_int_equal(vt_tcp_out(&t, false, 40003, 80, SYN, t0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40003, SYNACK, t0), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 40003, 80, ACK, t0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40003, ACK, t0 + 431999 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40003, ACK, t0 + 863998 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40003, ACK, t0 + (863998 + 432001) * NS),
			 VPC_DROP);
	vt_teardown(&t);
	vpc_sg_free(g);
}

static void establish(struct vt *t, unsigned lport, uint64_t now)
{
	assert_int_equal(vt_tcp_out(t, false, lport, 80, SYN, now), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(t, false, 80, lport, SYNACK, now), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(t, false, lport, 80, ACK, now), VPC_TO_UNDERLAY);
}

static void rst_and_fin(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("# nothing in\n");
	vt_setup_sg(&t, g, 0);
	/* RST (either side): CLOSE, 10 s */
	establish(&t, 40000, 0);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, RST, NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, ACK, 10 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, ACK, 21 * NS), VPC_DROP);
	/* a RST before the handshake completes closes too */
	assert_int_equal(vt_tcp_out(&t, false, 40001, 80, SYN, 100 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40001, RST | ACK, 100 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40001, ACK, 111 * NS), VPC_DROP);
	/* FIN one way: FIN_WAIT, 120 s per segment; FIN both ways: CLOSE, 10 s */
	establish(&t, 40002, 1000 * NS);
	assert_int_equal(vt_tcp_out(&t, false, 40002, 80, FIN, 1001 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40002, ACK, 1120 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40002, ACK, 1239 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40002, FIN, 1300 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 40002, 80, ACK, 1309 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40002, ACK, 1320 * NS), VPC_DROP);
	/* half-closed and idle past FIN_WAIT's 2 minutes: forgotten */
	establish(&t, 40003, 2000 * NS);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40003, FIN, 2000 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40003, ACK, 2121 * NS), VPC_DROP);
	/* a FIN before the handshake completes does not close */
	assert_int_equal(vt_tcp_out(&t, false, 40004, 80, SYN, 3000 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40004, SYNACK, 3000 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 40004, 80, FIN, 3001 * NS), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40004, ACK, 3100 * NS), VPC_TO_GUEST);
	vt_teardown(&t);
	vpc_sg_free(g);
}

/* A flow picked up mid-stream (the card restarted with the connection open): the other
 * side's ACK establishes it; an unanswered pick-up lasts 60 s. */
static void picked_up(void **state)
{
	(void)state;
	struct vt t;
	struct vpc_sg *g = vt_sg("# nothing in\n");
	vt_setup_sg(&t, g, 0);
	assert_int_equal(vt_tcp_out(&t, false, 40000, 80, ACK, 0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, ACK, NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40000, ACK, 400000 * NS), VPC_TO_GUEST);
	assert_int_equal(vt_tcp_out(&t, false, 40001, 80, ACK, 0), VPC_TO_UNDERLAY);
	assert_int_equal(vt_tcp_in(&t, false, 80, 40001, ACK, 61 * NS), VPC_DROP);
	vt_teardown(&t);
	vpc_sg_free(g);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(model_check),	cmocka_unit_test(bound),
	    cmocka_unit_test(syn_flood),	cmocka_unit_test(full_of_established),
	    cmocka_unit_test(handshake_states), cmocka_unit_test(rst_and_fin),
	    cmocka_unit_test(picked_up),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
