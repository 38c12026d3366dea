/* The conntrack hash table: linear probing with backward-shift deletion. */
#include "cards/vpc/conntrack.h"

#include <stdlib.h>
#include <string.h>

static uint32_t ct_hash(const struct ct_table *t, uint32_t rip, uint16_t lport, uint16_t rport,
			uint8_t proto)
{
	uint64_t x = ((uint64_t)rip << 32 | (uint64_t)lport << 16 | rport) ^ t->ct_seed;
	x ^= (uint64_t)proto << 56 | (uint64_t)proto;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return (uint32_t)x & t->ct_mask;
}

static uint32_t home(const struct ct_table *t, const struct ct_entry *e)
{
	return ct_hash(t, e->ce_rip, e->ce_lport, e->ce_rport, e->ce_proto);
}

int ct_init(struct ct_table *t, uint32_t max, uint64_t seed)
{
	memset(t, 0, sizeof(*t));
	uint32_t slots = 16;
	while (slots < 2 * (uint64_t)max)
		slots <<= 1;
	t->ct_slots = calloc(slots, sizeof(*t->ct_slots));
	if (!t->ct_slots)
		return -1;
	t->ct_mask = slots - 1;
	t->ct_max = max;
	t->ct_seed = seed;
	t->ct_head = t->ct_tail = CT_NIL;
	return 0;
}

void ct_fini(struct ct_table *t)
{
	free(t->ct_slots);
	t->ct_slots = NULL;
}

static void list_unlink(struct ct_table *t, uint32_t i)
{
	struct ct_entry *e = &t->ct_slots[i];
	if (!e->ce_listed)
		return;
	if (e->ce_prev != CT_NIL)
		t->ct_slots[e->ce_prev].ce_next = e->ce_next;
	else
		t->ct_head = e->ce_next;
	if (e->ce_next != CT_NIL)
		t->ct_slots[e->ce_next].ce_prev = e->ce_prev;
	else
		t->ct_tail = e->ce_prev;
	e->ce_listed = 0;
	e->ce_prev = e->ce_next = CT_NIL;
	t->ct_unassured--;
}

static void list_append(struct ct_table *t, uint32_t i)
{
	struct ct_entry *e = &t->ct_slots[i];
	e->ce_listed = 1;
	e->ce_next = CT_NIL;
	e->ce_prev = t->ct_tail;
	if (t->ct_tail != CT_NIL)
		t->ct_slots[t->ct_tail].ce_next = i;
	else
		t->ct_head = i;
	t->ct_tail = i;
	t->ct_unassured++;
}

/* An entry moved to slot i: its list neighbours follow. */
static void list_moved(struct ct_table *t, uint32_t i)
{
	struct ct_entry *e = &t->ct_slots[i];
	if (!e->ce_listed)
		return;
	if (e->ce_prev != CT_NIL)
		t->ct_slots[e->ce_prev].ce_next = i;
	else
		t->ct_head = i;
	if (e->ce_next != CT_NIL)
		t->ct_slots[e->ce_next].ce_prev = i;
	else
		t->ct_tail = i;
}

void ct_set_assured(struct ct_table *t, struct ct_entry *e, bool assured)
{
	uint32_t i = (uint32_t)(e - t->ct_slots);
	if (assured)
		list_unlink(t, i);
	else if (!e->ce_listed)
		list_append(t, i);
}

void ct_requeue(struct ct_table *t, struct ct_entry *e)
{
	uint32_t i = (uint32_t)(e - t->ct_slots);
	list_unlink(t, i);
	list_append(t, i);
}

/* Empties slot i and moves later members of its probe run back so that every entry stays
 * reachable from its home slot. */
static void ct_delete(struct ct_table *t, uint32_t i)
{
	list_unlink(t, i);
	uint32_t j = i;
	for (;;) {
		j = (j + 1) & t->ct_mask;
		struct ct_entry *e = &t->ct_slots[j];
		if (!e->ce_expires)
			break;
		uint32_t h = home(t, e);
		/* e may move to i when its home is not cyclically inside (i, j]. */
		if (((j - h) & t->ct_mask) >= ((j - i) & t->ct_mask)) {
			t->ct_slots[i] = *e;
			list_moved(t, i);
			i = j;
		}
	}
	t->ct_slots[i] = (struct ct_entry){.ce_prev = CT_NIL, .ce_next = CT_NIL};
	t->ct_count--;
}

struct ct_entry *ct_find(struct ct_table *t, const struct ct_key *k, uint64_t now)
{
	uint32_t i = ct_hash(t, k->k_rip, k->k_lport, k->k_rport, k->k_proto);
	for (;;) {
		struct ct_entry *e = &t->ct_slots[i];
		if (!e->ce_expires) {
			t->ct_hint = i;
			return NULL;
		}
		if (e->ce_expires <= now) {
			ct_delete(t, i); /* look at slot i again: something may have moved in */
			continue;
		}
		if (e->ce_rip == k->k_rip && e->ce_lport == k->k_lport &&
		    e->ce_rport == k->k_rport && e->ce_proto == k->k_proto)
			return e;
		i = (i + 1) & t->ct_mask;
	}
}

struct ct_entry *ct_insert(struct ct_table *t, const struct ct_key *k, uint64_t now,
			   uint64_t expires)
{
	if (t->ct_count >= t->ct_max) {
		/* Full: reap a stretch of the table, else evict the oldest unassured entry;
		 * then find k's empty slot again (deletions move entries). */
		ct_sweep(t, now, CT_FULL_SWEEP);
		if (t->ct_count >= t->ct_max) {
			if (t->ct_head == CT_NIL)
				return NULL;
			ct_delete(t, t->ct_head);
			t->ct_evicted++;
		}
		if (ct_find(t, k, now))
			return NULL; /* cannot happen: k was absent */
	}
	uint32_t i = t->ct_hint;
	struct ct_entry *e = &t->ct_slots[i];
	*e = (struct ct_entry){.ce_expires = expires ? expires : 1,
			       .ce_rip = k->k_rip,
			       .ce_lport = k->k_lport,
			       .ce_rport = k->k_rport,
			       .ce_proto = k->k_proto};
	t->ct_count++;
	list_append(t, i);
	return e;
}

void ct_sweep(struct ct_table *t, uint64_t now, uint32_t budget)
{
	uint32_t i = t->ct_cursor;
	while (budget) {
		struct ct_entry *e = &t->ct_slots[i];
		if (e->ce_expires && e->ce_expires <= now) {
			ct_delete(t, i); /* slot i may hold a moved entry now: look again */
			continue;
		}
		i = (i + 1) & t->ct_mask;
		budget--;
	}
	t->ct_cursor = i;
}
