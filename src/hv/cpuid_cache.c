/* AMD 0x8000001d from the legacy cache leaves (see cpuid_cache.h). */
#include "hv/cpuid_cache.h"

#include <stdbool.h>
#include <string.h>

#define FULLY_ASSOC 0xffffu

enum { CACHE_DATA = 1, CACHE_INST = 2, CACHE_UNIFIED = 3 };

struct cache_desc {
	unsigned level, type;
	uint64_t size;	  /* bytes */
	unsigned ways;	  /* FULLY_ASSOC for fully associative, 0: unknown */
	unsigned per_tag; /* lines per tag (partitions) */
	unsigned line;	  /* bytes */
};

/* The 4-bit associativity code of 0x80000006 (AMD APM vol. 3, CPUID Fn8000_0006). */
static unsigned l23_ways(unsigned code)
{
	static const unsigned ways[16] = {[1] = 1,
					  [2] = 2,
					  [3] = 3,
					  [4] = 4,
					  [5] = 6,
					  [6] = 8,
					  [8] = 16,
					  [0xa] = 32,
					  [0xb] = 48,
					  [0xc] = 64,
					  [0xd] = 96,
					  [0xe] = 128,
					  [0xf] = FULLY_ASSOC};
	return ways[code & 0xf];
}

static struct cache_desc l1(uint32_t r, unsigned type)
{
	unsigned assoc = (r >> 16) & 0xff;
	return (struct cache_desc){1,
				   type,
				   (uint64_t)(r >> 24) << 10,
				   assoc == 0xff ? FULLY_ASSOC : assoc,
				   (r >> 8) & 0xff,
				   r & 0xff};
}

static struct cache_desc l2(uint32_t r)
{
	return (struct cache_desc){
	    2,	     CACHE_UNIFIED, (uint64_t)(r >> 16) << 10, l23_ways(r >> 12), (r >> 8) & 0xf,
	    r & 0xff};
}

static struct cache_desc l3(uint32_t r)
{
	return (struct cache_desc){
	    3,	     CACHE_UNIFIED, (uint64_t)(r >> 18) << 19, l23_ways(r >> 12), (r >> 8) & 0xf,
	    r & 0xff};
}

/* Encodes d as a leaf-4-format entry; false when d is absent or not expressible. */
static bool encode(const struct cache_desc *d, struct kvm_cpuid_entry2 *e)
{
	if (!d->size || !d->ways || !d->line)
		return false;
	unsigned per_tag = d->per_tag ? d->per_tag : 1;
	uint64_t set_bytes = (uint64_t)d->line * per_tag;
	uint64_t ways = d->ways == FULLY_ASSOC ? d->size / set_bytes : d->ways;
	if (!ways || ways > 1024 || per_tag > 1024 || d->line > 4096)
		return false;
	uint64_t sets = d->size / (set_bytes * ways);
	if (!sets || sets > 0xffffffffull)
		return false;
	e->eax = d->type | d->level << 5 | 1u << 8 | (d->ways == FULLY_ASSOC ? 1u << 9 : 0);
	e->ebx = (d->line - 1) | (per_tag - 1) << 12 | (uint32_t)(ways - 1) << 22;
	e->ecx = (uint32_t)(sets - 1);
	e->edx = 0;
	return true;
}

unsigned cpuid_amd_cache_leaves(uint32_t l5_ecx, uint32_t l5_edx, uint32_t l6_ecx, uint32_t l6_edx,
				struct kvm_cpuid_entry2 out[CPUID_AMD_CACHE_MAX])
{
	const struct cache_desc caches[] = {l1(l5_ecx, CACHE_DATA), l1(l5_edx, CACHE_INST),
					    l2(l6_ecx), l3(l6_edx)};
	unsigned n = 0;

	for (unsigned i = 0; i < sizeof(caches) / sizeof(caches[0]); i++) {
		memset(&out[n], 0, sizeof(out[n]));
		if (encode(&caches[i], &out[n]))
			n++;
	}
	memset(&out[n], 0, sizeof(out[n])); /* the null subleaf ends the list */
	n++;
	for (unsigned i = 0; i < n; i++) {
		out[i].function = 0x8000001d;
		out[i].index = i;
		out[i].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	}
	return n;
}
