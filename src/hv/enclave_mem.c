/* Donated ranges: translation and the parent's memory slots (see enclave_mem.h). */
#include "hv/enclave_mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static bool overlap(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
	return a < b + bs && b < a + as;
}

int enclave_mem_translate(const struct guest_mem *m, const struct ne_mem_range *ranges, unsigned n,
			  const struct enclave_hole *taken, unsigned ntaken, struct mem_piece *out,
			  char *err, size_t errlen)
{
	if (n == 0 || n > NE_MAX_REGIONS || n > MEM_MAX_PIECES)
		RETURN_ERR(-1, "%u memory regions (1..%d)", n, NE_MAX_REGIONS);
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = ranges[i].gpa, size = ranges[i].size;
		if (!size || (gpa | size) & (ENCLAVE_MEM_ALIGN - 1))
			RETURN_ERR(-1, "region %u (0x%llx, %llu bytes): empty or not 2 MiB aligned",
				   i, (unsigned long long)gpa, (unsigned long long)size);
		const struct mem_region *r = NULL;
		for (unsigned k = 0; k < m->gm_nregions; k++) {
			const struct mem_region *c = &m->gm_regions[k];
			if (gpa >= c->mr_gpa && gpa - c->mr_gpa < c->mr_size &&
			    size <= c->mr_size - (gpa - c->mr_gpa))
				r = c;
		}
		if (!r)
			RETURN_ERR(-1,
				   "region %u (0x%llx, %llu bytes): not within the instance's RAM",
				   i, (unsigned long long)gpa, (unsigned long long)size);
		for (unsigned k = 0; k < i; k++)
			if (overlap(gpa, size, ranges[k].gpa, ranges[k].size))
				RETURN_ERR(-1, "regions %u and %u overlap", k, i);
		for (unsigned k = 0; k < ntaken; k++)
			if (overlap(gpa, size, taken[k].gpa, taken[k].size))
				RETURN_ERR(-1, "region %u (0x%llx) belongs to another enclave", i,
					   (unsigned long long)gpa);
		/* the parent's mapping is its memfd from offset 0 */
		out[i] = (struct mem_piece){.mp_fd_off = r->mr_offset + (gpa - r->mr_gpa),
					    .mp_size = size};
	}
	return 0;
}

static int cmp_hole(const void *a, const void *b)
{
	const struct enclave_hole *x = a, *y = b;
	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static int add(struct enclave_slot_plan *out, unsigned max, unsigned *n, struct enclave_slot_plan s)
{
	if (!s.size)
		return 0;
	if (*n >= max)
		return -1;
	out[(*n)++] = s;
	return 0;
}

int enclave_mem_plan(const struct guest_mem *m, const struct enclave_hole *holes, unsigned nholes,
		     struct enclave_slot_plan *out, unsigned max)
{
	struct enclave_hole *h = nholes ? malloc(nholes * sizeof(*h)) : NULL;
	if (nholes && !h)
		return -1;
	if (nholes)
		memcpy(h, holes, nholes * sizeof(*h));
	if (nholes) /* qsort of a NULL base is undefined even for 0 elements */
		qsort(h, nholes, sizeof(*h), cmp_hole);
	unsigned n = 0, k = 0;
	int rc = 0;
	for (unsigned i = 0; i < m->gm_nregions && rc == 0; i++) {
		const struct mem_region *r = &m->gm_regions[i];
		uint64_t at = r->mr_gpa, end = r->mr_gpa + r->mr_size;
		for (; k < nholes && h[k].gpa < end && rc == 0; k++) {
			if (h[k].gpa < at) /* outside this region or overlapping: not ours to fix */
				continue;
			uint64_t hend = h[k].gpa + h[k].size < end ? h[k].gpa + h[k].size : end;
			rc |=
			    add(out, max, &n,
				(struct enclave_slot_plan){.gpa = at,
							   .size = h[k].gpa - at,
							   .map = r->mr_offset + (at - r->mr_gpa)});
			rc |= add(out, max, &n,
				  (struct enclave_slot_plan){
				      .gpa = h[k].gpa, .size = hend - h[k].gpa, .zero = true});
			at = hend;
		}
		if (rc == 0)
			rc =
			    add(out, max, &n,
				(struct enclave_slot_plan){.gpa = at,
							   .size = end - at,
							   .map = r->mr_offset + (at - r->mr_gpa)});
	}
	free(h);
	return rc < 0 ? -1 : (int)n;
}

uint32_t enclave_mem_slot_id(unsigned i)
{
	return i < ENCLAVE_MEM_FOREIGN_SLOT ? i : i + 1;
}
