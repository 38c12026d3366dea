/* CPUID filtering: the guest's topology, the hypervisor bit and leaves (see cpuid.h). */
#include "hv/cpuid.h"

#include <stdbool.h>
#include <string.h>

#include "hv/cpuid_cache.h"

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define CPUID_80000001_ECX_TOPOEXT (1u << 22)
#define KVM_SIGNATURE_LEAF 0x40000000u
#define LEAF_AMD_CACHE 0x8000001du
#define LEAF_AMD_TOPO 0x8000001eu
#define X2APIC_LEVEL_SMT 1u
#define X2APIC_LEVEL_CORE 2u

static unsigned order_of(unsigned n) /* bits needed for ids 0..n-1 */
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

void cpu_topo_of(struct cpu_topo *t, unsigned ncpus)
{
	t->ncpus = ncpus;
	t->threads_per_core = ncpus % 2 == 0 ? 2 : 1;
	t->cores = ncpus / t->threads_per_core;
	t->smt_shift = order_of(t->threads_per_core);
	t->pkg_shift = t->smt_shift + order_of(t->cores);
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid_entry2 *e, unsigned n, unsigned fn,
				     unsigned index)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].function == fn && e[i].index == index)
			return &e[i];
	return NULL;
}

static bool has_leaf(const struct kvm_cpuid_entry2 *e, unsigned n, unsigned fn)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].function == fn)
			return true;
	return false;
}

/* The entry (fn, index), appended zeroed when missing; NULL when there is no room. */
static struct kvm_cpuid_entry2 *need(struct kvm_cpuid_entry2 *e, unsigned *n, unsigned max,
				     unsigned fn, unsigned index, unsigned flags)
{
	struct kvm_cpuid_entry2 *c = find(e, *n, fn, index);
	if (c)
		return c;
	if (*n >= max)
		return NULL;
	c = &e[(*n)++];
	memset(c, 0, sizeof(*c));
	c->function = fn;
	c->index = index;
	c->flags = flags;
	return c;
}

static bool vendor_is(const struct kvm_cpuid_entry2 *l0, const char *v)
{
	return !memcmp(&l0->ebx, v, 4) && !memcmp(&l0->edx, v + 4, 4) &&
	       !memcmp(&l0->ecx, v + 8, 4);
}

/* Adds what the topology needs and the host's table lacks: leaf 0xb (and 0x1f when
 * listed) subleaves 0 and 1; on AMD, 0x8000001d and 0x8000001e for TopologyExtensions. */
static int add_missing(struct kvm_cpuid_entry2 *e, unsigned *n, unsigned max)
{
	const unsigned si = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	struct kvm_cpuid_entry2 *l0 = find(e, *n, 0, 0);

	if (!l0)
		return 0;
	if (l0->eax >= 0xb)
		for (unsigned i = 0; i < 2; i++)
			if (!need(e, n, max, 0xb, i, si))
				return -1;
	if (l0->eax >= 0x1f && has_leaf(e, *n, 0x1f))
		for (unsigned i = 0; i < 2; i++)
			if (!need(e, n, max, 0x1f, i, si))
				return -1;

	struct kvm_cpuid_entry2 *x0 = find(e, *n, 0x80000000, 0);
	if (!(vendor_is(l0, "AuthenticAMD") || vendor_is(l0, "HygonGenuine")) || !x0 ||
	    !find(e, *n, 0x80000001, 0))
		return 0;
	if (!has_leaf(e, *n, LEAF_AMD_CACHE)) {
		struct kvm_cpuid_entry2 *l5 = find(e, *n, 0x80000005, 0);
		struct kvm_cpuid_entry2 *l6 = find(e, *n, 0x80000006, 0);
		struct kvm_cpuid_entry2 cache[CPUID_AMD_CACHE_MAX];
		unsigned k = cpuid_amd_cache_leaves(l5 ? l5->ecx : 0, l5 ? l5->edx : 0,
						    l6 ? l6->ecx : 0, l6 ? l6->edx : 0, cache);
		if (*n + k > max)
			return -1;
		memcpy(&e[*n], cache, k * sizeof(cache[0]));
		*n += k;
	}
	if (!need(e, n, max, LEAF_AMD_TOPO, 0, 0))
		return -1;
	if (x0->eax < LEAF_AMD_TOPO) /* entries are only appended: x0 still points at it */
		x0->eax = LEAF_AMD_TOPO;
	find(e, *n, 0x80000001, 0)->ecx |= CPUID_80000001_ECX_TOPOEXT;
	return 0;
}

static void topology_level(struct kvm_cpuid_entry2 *c, unsigned index, const struct cpu_topo *t)
{
	switch (c->index) {
	case 0:
		c->eax = t->smt_shift;
		c->ebx = t->threads_per_core;
		c->ecx = X2APIC_LEVEL_SMT << 8;
		break;
	case 1:
		c->eax = t->pkg_shift;
		c->ebx = t->ncpus;
		c->ecx = 1 | X2APIC_LEVEL_CORE << 8;
		break;
	default: /* an invalid level ends the list */
		c->eax = 0;
		c->ebx = 0;
		c->ecx = c->index & 0xff;
		break;
	}
	c->edx = index;
}

/* Leaf 4 / 0x8000001d EAX[25:14]: addressable ids sharing the cache - 1 (the threads of a
 * core for L1 and L2, the package for L3 and beyond). */
static uint32_t cache_sharing(uint32_t eax, const struct cpu_topo *t)
{
	unsigned level = (eax >> 5) & 7;
	unsigned share = (1u << (level >= 3 ? t->pkg_shift : t->smt_shift)) - 1;
	return (eax & ~(0xfffu << 14)) | (share & 0xfff) << 14;
}

int cpuid_filter(struct kvm_cpuid_entry2 *e, unsigned n, unsigned max, unsigned index,
		 unsigned ncpus)
{
	struct cpu_topo t;

	cpu_topo_of(&t, ncpus);
	if (add_missing(e, &n, max) < 0)
		return -1;
	unsigned id_count = 1u << t.pkg_shift; /* addressable APIC ids in the package */
	unsigned core_ids = 1u << (t.pkg_shift - t.smt_shift);

	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *c = &e[i];
		switch (c->function) {
		case 1:
			c->ebx = (c->ebx & 0x0000ffffu) | (index << 24) |
				 ((id_count > 255 ? 255 : id_count) << 16);
			c->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (ncpus > 1)
				c->edx |= CPUID_1_EDX_HTT;
			else
				c->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4:
			/* Deterministic cache parameters: null subleaves stay as they are. */
			if ((c->eax & 0x1f) == 0)
				break;
			c->eax = cache_sharing(c->eax, &t);
			c->eax = (c->eax & 0x03ffffffu) | ((core_ids - 1) & 0x3f) << 26;
			break;
		case 0xb:
		case 0x1f:
			topology_level(c, index, &t);
			break;
		case KVM_SIGNATURE_LEAF:
			memcpy(&c->ebx, "KVMK", 4);
			memcpy(&c->ecx, "VMKV", 4);
			memcpy(&c->edx, "M\0\0\0", 4);
			break;
		case 0x80000001:
			if (ncpus > 1)
				c->ecx |= CPUID_80000001_ECX_CMP_LEGACY;
			else
				c->ecx &= ~CPUID_80000001_ECX_CMP_LEGACY;
			break;
		case 0x80000008:
			/* NC = threads in the package - 1, ApicIdSize = APIC id bits of the package
			 */
			c->ecx = (c->ecx & ~0xf0ffu) | ((ncpus - 1) & 0xff) | (t.pkg_shift << 12);
			break;
		case LEAF_AMD_CACHE:
			if ((c->eax & 0x1f) != 0)
				c->eax = cache_sharing(c->eax, &t);
			break;
		case LEAF_AMD_TOPO:
			c->eax = index;				/* extended APIC id */
			c->ebx = (index >> t.smt_shift) & 0xff; /* core id */
			c->ebx |= (t.threads_per_core - 1) << 8;
			c->ecx = 0; /* node 0, one node per package */
			c->edx = 0;
			break;
		default:
			break;
		}
	}
	return (int)n;
}
