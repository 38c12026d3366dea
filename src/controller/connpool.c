/* The fair share of the API's connection slots among uids (see connpool.h). */
#include "controller/connpool.h"

#include <stdlib.h>

/* One key holding connections: in the hash (by index) and in the bucket of its count. */
struct ent {
	uint64_t e_key;
	unsigned e_count;
	struct cp_link *e_head, *e_tail;
	int e_bprev, e_bnext; /* its bucket's list; e_bnext links the free entries too */
};

struct connpool {
	unsigned p_max;	    /* links, and so entries */
	unsigned p_links;   /* held */
	unsigned p_keys;    /* entries in use */
	unsigned p_top;	    /* the highest count with a non-empty bucket (0: none) */
	unsigned p_mask;    /* of the hash: a power of two minus one, >= 2 * p_max */
	int p_free;	    /* free entries */
	int *p_hash;	    /* entry index or -1, linear probing */
	int *p_bucket;	    /* [count]: first entry with that count, or -1 */
	struct ent p_ent[]; /* p_max */
};

static unsigned slot_of(const struct connpool *p, uint64_t key)
{
	return (unsigned)((key * 0x9e3779b97f4a7c15ull) >> 32) & p->p_mask;
}

struct connpool *cp_new(unsigned max_links)
{
	if (!max_links)
		max_links = 1;
	struct connpool *p = calloc(1, sizeof(*p) + max_links * sizeof(struct ent));
	if (!p)
		return NULL;
	unsigned cap = 4;
	while (cap < 2 * max_links)
		cap *= 2;
	p->p_max = max_links;
	p->p_mask = cap - 1;
	p->p_hash = malloc(cap * sizeof(int));
	p->p_bucket = malloc((max_links + 1) * sizeof(int));
	if (!p->p_hash || !p->p_bucket) {
		cp_free(p);
		return NULL;
	}
	for (unsigned i = 0; i < cap; i++)
		p->p_hash[i] = -1;
	for (unsigned i = 0; i <= max_links; i++)
		p->p_bucket[i] = -1;
	for (unsigned i = 0; i < max_links; i++)
		p->p_ent[i].e_bnext = i + 1 < max_links ? (int)i + 1 : -1;
	p->p_free = 0;
	return p;
}

void cp_free(struct connpool *p)
{
	if (!p)
		return;
	free(p->p_hash);
	free(p->p_bucket);
	free(p);
}

/* The hash slot holding key's entry, or the empty slot where it would go. */
static unsigned find(const struct connpool *p, uint64_t key)
{
	unsigned s = slot_of(p, key);
	while (p->p_hash[s] >= 0 && p->p_ent[p->p_hash[s]].e_key != key)
		s = (s + 1) & p->p_mask;
	return s;
}

/* Removes the entry at hash slot s, shifting back the ones after it (no tombstones). */
static void hash_del(struct connpool *p, unsigned s)
{
	unsigned hole = s;
	for (unsigned i = (s + 1) & p->p_mask; p->p_hash[i] >= 0; i = (i + 1) & p->p_mask) {
		unsigned home = slot_of(p, p->p_ent[p->p_hash[i]].e_key);
		/* The entry at i may move to the hole when its home is not in (hole, i]. */
		if (((i - home) & p->p_mask) >= ((i - hole) & p->p_mask)) {
			p->p_hash[hole] = p->p_hash[i];
			hole = i;
		}
	}
	p->p_hash[hole] = -1;
}

static void bucket_del(struct connpool *p, int e)
{
	struct ent *x = &p->p_ent[e];
	if (x->e_bprev >= 0)
		p->p_ent[x->e_bprev].e_bnext = x->e_bnext;
	else
		p->p_bucket[x->e_count] = x->e_bnext;
	if (x->e_bnext >= 0)
		p->p_ent[x->e_bnext].e_bprev = x->e_bprev;
}

static void bucket_add(struct connpool *p, int e)
{
	struct ent *x = &p->p_ent[e];
	x->e_bprev = -1;
	x->e_bnext = p->p_bucket[x->e_count];
	if (x->e_bnext >= 0)
		p->p_ent[x->e_bnext].e_bprev = e;
	p->p_bucket[x->e_count] = e;
	if (x->e_count > p->p_top)
		p->p_top = x->e_count;
}

unsigned cp_count(const struct connpool *p, uint64_t key)
{
	int e = p->p_hash[find(p, key)];
	return e >= 0 ? p->p_ent[e].e_count : 0;
}

unsigned cp_keys(const struct connpool *p)
{
	return p->p_keys;
}

int cp_add(struct connpool *p, uint64_t key, struct cp_link *l)
{
	if (p->p_links >= p->p_max)
		return -1;
	unsigned s = find(p, key);
	int e = p->p_hash[s];
	if (e < 0) {
		e = p->p_free;
		p->p_free = p->p_ent[e].e_bnext;
		p->p_ent[e] = (struct ent){.e_key = key};
		p->p_hash[s] = e;
		p->p_keys++;
	} else {
		bucket_del(p, e);
	}
	struct ent *x = &p->p_ent[e];
	*l = (struct cp_link){.cl_prev = x->e_tail, .cl_ent = e};
	if (x->e_tail)
		x->e_tail->cl_next = l;
	else
		x->e_head = l;
	x->e_tail = l;
	x->e_count++;
	bucket_add(p, e);
	p->p_links++;
	return 0;
}

void cp_del(struct connpool *p, struct cp_link *l)
{
	int e = l->cl_ent;
	struct ent *x = &p->p_ent[e];
	if (l->cl_prev)
		l->cl_prev->cl_next = l->cl_next;
	else
		x->e_head = l->cl_next;
	if (l->cl_next)
		l->cl_next->cl_prev = l->cl_prev;
	else
		x->e_tail = l->cl_prev;
	l->cl_prev = l->cl_next = NULL;
	bucket_del(p, e);
	p->p_links--;
	if (--x->e_count) {
		bucket_add(p, e);
	} else {
		hash_del(p, find(p, x->e_key));
		x->e_bnext = p->p_free;
		p->p_free = e;
		p->p_keys--;
	}
	/* Its bucket emptied at the top: the entry is now one below (or gone, from 1 to 0). */
	if (p->p_top && p->p_bucket[p->p_top] < 0)
		p->p_top--;
}

bool cp_top(const struct connpool *p, uint64_t *key, unsigned *count)
{
	if (!p->p_top)
		return false;
	*key = p->p_ent[p->p_bucket[p->p_top]].e_key;
	*count = p->p_top;
	return true;
}

struct cp_link *cp_oldest(const struct connpool *p, uint64_t key)
{
	int e = p->p_hash[find(p, key)];
	return e >= 0 ? p->p_ent[e].e_head : NULL;
}

bool cp_evict_for(const struct connpool *p, uint64_t key, unsigned slots, uint64_t *victim,
		  unsigned *fair)
{
	unsigned mine = cp_count(p, key);
	unsigned keys = p->p_keys + (mine == 0);
	*fair = slots / keys ? slots / keys : 1;
	uint64_t top;
	unsigned most;
	if (mine >= *fair || !cp_top(p, &top, &most) || most < mine + 2)
		return false;
	*victim = top;
	return true;
}
