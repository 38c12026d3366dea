/* A card's memory table kept in step with guest memory (see mem_table.h). */
#include "hv/mem_table.h"

#include <stdlib.h>
#include <string.h>

int mem_table_want(const struct guest_mem *m, struct vu_mem_region **out)
{
	const struct mem_holes *h = mem_get_holes(m);
	/* each hole splits at most one region in two */
	unsigned max = 2 * MEM_MAX_PIECES + 2 + (h ? h->n : 0);
	struct mem_fd_region *f = malloc(max * sizeof(*f));
	struct vu_mem_region *r = malloc(max * sizeof(*r));
	int n = f && r ? mem_fd_regions(m, f, max) : -1;
	if (n < 0) {
		free(f);
		free(r);
		return -1;
	}
	for (int i = 0; i < n; i++)
		r[i] = (struct vu_mem_region){.gpa = f[i].gpa,
					      .size = f[i].size,
					      .uva = (uint64_t)(uintptr_t)f[i].host,
					      .mmap_offset = f[i].fd_off};
	free(f);
	*out = r;
	return n;
}

static bool same(const struct vu_mem_region *a, const struct vu_mem_region *b)
{
	return a->gpa == b->gpa && a->size == b->size && a->uva == b->uva &&
	       a->mmap_offset == b->mmap_offset;
}

static bool has(const struct vu_mem_region *r, unsigned n, const struct vu_mem_region *x)
{
	for (unsigned i = 0; i < n; i++)
		if (same(&r[i], x))
			return true;
	return false;
}

static int push(struct mem_table *t, const struct vu_mem_region *x)
{
	if (t->n == t->cap) {
		unsigned cap = t->cap ? 2 * t->cap : 16;
		struct vu_mem_region *r = realloc(t->r, cap * sizeof(*r));
		if (!r)
			return -1;
		t->r = r;
		t->cap = cap;
	}
	t->r[t->n++] = *x;
	return 0;
}

int mem_table_sync(struct mem_table *t, const struct vu_mem_region *want, unsigned nwant,
		   mem_table_op op, void *ctx)
{
	for (unsigned i = 0; i < nwant; i++) {
		if (has(t->r, t->n, &want[i]))
			continue;
		int r = op(ctx, true, &want[i]);
		if (r)
			return r;
		if (push(t, &want[i]) < 0)
			return -1;
	}
	for (unsigned i = 0; i < t->n;) {
		if (has(want, nwant, &t->r[i])) {
			i++;
			continue;
		}
		int r = op(ctx, false, &t->r[i]);
		if (r)
			return r;
		memmove(&t->r[i], &t->r[i + 1], (t->n - i - 1) * sizeof(t->r[0]));
		t->n--;
	}
	return 0;
}

int mem_table_set(struct mem_table *t, const struct vu_mem_region *r, unsigned n)
{
	t->n = 0;
	for (unsigned i = 0; i < n; i++)
		if (push(t, &r[i]) < 0)
			return -1;
	return 0;
}

void mem_table_free(struct mem_table *t)
{
	free(t->r);
	*t = (struct mem_table){0};
}
