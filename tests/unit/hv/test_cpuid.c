/* Unit tests for cpuid_filter (src/hv/cpuid.c) and cpuid_amd_cache_leaves
 * (src/hv/cpuid_cache.c) on synthetic KVM_GET_SUPPORTED_CPUID tables of an Intel host, an
 * AMD host without TopologyExtensions (what the emulated host's KVM lists) and an AMD host
 * with them: for 1, 2, 3, 4 and 8 vCPUs every leaf that describes topology is checked
 * field by field, and the topology a Linux 6.12 guest derives is computed three ways
 * (leaf 0xb; AMD's 0x80000008 + 0x8000001e; the legacy leaf 1 + leaf 4) and must be the
 * same: one package, ncpus / 2 cores of two threads when ncpus is even, else single-thread
 * cores, core id = APIC id >> SMT shift. Also the KVM signature, the leaves the filter
 * does not own, and the no-room error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "hv/cpuid.h"
#include "hv/cpuid_cache.h"

#define MAXE 64
#define L1_EBX 0xaabb0810u	  /* initial APIC id 0xaa, count 0xbb, CLFLUSH 8, brand 0x10 */
#define L1_ECX 0x77fa3203u	  /* hypervisor bit clear */
#define L1_EDX 0x178bfbffu	  /* HTT set */
#define L4_HIGH 0xfc000000u	  /* garbage in EAX[31:26] */
#define L80000001_ECX 0x000001f3u /* CmpLegacy set, TopologyExtensions clear */
#define L80000008_ECX 0x0003f0ffu /* NC = 0xff, ApicIdCoreIdSize = 0xf, bits 17:16 set */
#define L7_EBX 0x219c07abu
/* The emulated host's (QEMU TCG -cpu max, family 0xf) legacy AMD cache descriptors. */
#define AMD_L1D 0x40020140u /* 64 KiB, 2-way, 1 line per tag, 64-byte lines */
#define AMD_L1I 0x40020140u
#define AMD_L2 0x02008140u /* 512 KiB, 16-way */
#define AMD_L3 0x00808140u /* 32 x 512 KiB = 16 MiB, 16-way */
#define TOPOEXT (1u << 22)

enum host { INTEL, AMD_LEGACY, AMD_TOPOEXT };

struct table {
	struct kvm_cpuid_entry2 e[MAXE];
	unsigned n;
};

static void add(struct table *t, uint32_t fn, uint32_t idx, uint32_t a, uint32_t b, uint32_t c,
		uint32_t d)
{
	struct kvm_cpuid_entry2 *e = &t->e[t->n++];

	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = (fn == 4 || fn == 7 || fn == 0xb || fn == 0xd || fn == 0x8000001d)
		       ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX
		       : 0;
	e->eax = a;
	e->ebx = b;
	e->ecx = c;
	e->edx = d;
}

/* Leaf 4 EAX for a cache: type in [4:0], level in [7:5], self-initialising [8]. */
static uint32_t l4_eax(unsigned level, unsigned type)
{
	return L4_HIGH | 0x03ffc000u | 0x100u | (level << 5) | type;
}

static void make_table(struct table *t, enum host h)
{
	t->n = 0;
	if (h == INTEL) {
		add(t, 0, 0, 0x1b, 0x756e6547, 0x6c65746e, 0x49656e69); /* GenuineIntel */
		add(t, 1, 0, 0x000906ea, L1_EBX, L1_ECX, L1_EDX);
		add(t, 4, 0, l4_eax(1, 1), 0x01c0003f, 0x3f, 0);
		add(t, 4, 1, l4_eax(1, 2), 0x01c0003f, 0x3f, 0);
		add(t, 4, 2, l4_eax(2, 3), 0x01c0003f, 0x3ff, 0);
		add(t, 4, 3, l4_eax(3, 3), 0x03c0003f, 0x2fff, 6);
		add(t, 4, 4, 0, 0, 0, 0); /* the null subleaf */
		add(t, 7, 0, 0, L7_EBX, 0x12345678, 0x9abcdef0);
		add(t, 0xb, 0, 0x11, 0x22, 0x33, 0x44);
		add(t, 0xb, 1, 0x55, 0x66, 0x77, 0x88);
		add(t, 0xb, 2, 0x99, 0xaa, 0xbb, 0xcc);
		add(t, 0x40000000, 0, 0x40000001, 0, 0, 0);
		add(t, 0x80000000, 0, 0x80000008, 0, 0, 0);
		add(t, 0x80000001, 0, 0, 0, 0x121, 0x2c100800);
		add(t, 0x80000008, 0, 0x3030, 0, 0, 0);
		return;
	}
	add(t, 0, 0, 0xd, 0x68747541, 0x444d4163, 0x69746e65); /* AuthenticAMD */
	add(t, 1, 0, 0x00060fb1, L1_EBX, L1_ECX, L1_EDX);
	add(t, 4, 0, 0, 0, 0, 0); /* AMD: reserved, all zero */
	add(t, 7, 0, 0, L7_EBX, 0x12345678, 0x9abcdef0);
	add(t, 0xb, 0, 0, 0, 0, 0); /* KVM on a host without 0xb: subleaf 0 only */
	add(t, 0xd, 0, 0x207, 0xa88, 0xa88, 0);
	add(t, 0x40000000, 0, 0x40000001, 0, 0, 0);
	add(t, 0x80000000, 0, h == AMD_TOPOEXT ? 0x80000021 : 0x8000000a, 0x68747541, 0x444d4163,
	    0x69746e65);
	add(t, 0x80000001, 0, 0x00060fb1, 0,
	    h == AMD_TOPOEXT ? L80000001_ECX | TOPOEXT : L80000001_ECX, 0xedd3fbfd);
	add(t, 0x80000005, 0, 0x01ff01ff, 0x01ff01ff, AMD_L1D, AMD_L1I);
	add(t, 0x80000006, 0, 0, 0x42004200, AMD_L2, AMD_L3);
	add(t, 0x80000008, 0, 0x00283928, 0x04000000, L80000008_ECX, 0);
	if (h == AMD_TOPOEXT) {
		/* A Zen host: its own cache sharing, and 0x8000001e zeroed by KVM. */
		add(t, 0x8000001d, 0, 0x00004121, 0x01c0003f, 0x3f, 0);
		add(t, 0x8000001d, 1, 0x00004122, 0x01c0003f, 0x3f, 0);
		add(t, 0x8000001d, 2, 0x00004143, 0x01c0003f, 0x3ff, 2);
		add(t, 0x8000001d, 3, 0x0001c163, 0x03c0003f, 0x7fff, 1);
		add(t, 0x8000001d, 4, 0, 0, 0, 0);
		add(t, 0x8000001e, 0, 0, 0, 0, 0);
	}
}

static struct kvm_cpuid_entry2 *get(struct table *t, uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < t->n; i++)
		if (t->e[i].function == fn && t->e[i].index == idx)
			return &t->e[i];
	return NULL;
}

static unsigned count_leaf(const struct table *t, uint32_t fn)
{
	unsigned k = 0;
	for (unsigned i = 0; i < t->n; i++)
		k += t->e[i].function == fn;
	return k;
}

static unsigned order(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

/* Filters a fresh table of host h for vCPU index of ncpus. */
static void filtered(struct table *t, enum host h, unsigned index, unsigned ncpus)
{
	make_table(t, h);
	int r = cpuid_filter(t->e, t->n, MAXE, index, ncpus);
	assert_true(r >= (int)t->n);
	t->n = (unsigned)r;
}

/* What a guest derives for one CPU: its APIC id, package, core id, SMT shift. */
struct view {
	unsigned apicid, pkg, core, smt_shift, pkg_shift, threads;
};

/* Linux 6.12's leaf 0xb parser (topology_ext.c): SMT then core level, ids split by shift. */
static struct view view_0b(struct table *t)
{
	struct kvm_cpuid_entry2 *s0 = get(t, 0xb, 0), *s1 = get(t, 0xb, 1), *s2 = get(t, 0xb, 2);
	struct view v;

	assert_non_null(s0);
	assert_non_null(s1);
	assert_int_equal((s0->ecx >> 8) & 0xff, 1); /* SMT */
	assert_int_equal(s0->ecx & 0xff, 0);
	assert_int_equal((s1->ecx >> 8) & 0xff, 2); /* core */
	assert_int_equal(s1->ecx & 0xff, 1);
	if (s2) /* an invalid level ends the list */
		assert_int_equal((s2->ecx >> 8) & 0xff, 0);
	assert_int_equal(s0->edx, s1->edx);
	v.apicid = s0->edx;
	v.smt_shift = s0->eax & 0x1f;
	v.pkg_shift = s1->eax & 0x1f;
	v.threads = s0->ebx & 0xffff;
	assert_true(v.smt_shift <= v.pkg_shift);
	assert_true(v.threads <= 1u << v.smt_shift);
	v.pkg = v.apicid >> v.pkg_shift;
	v.core = (v.apicid & ((1u << v.pkg_shift) - 1)) >> v.smt_shift;
	return v;
}

/* Linux 6.12's AMD parser without leaf 0xb (topology_amd.c): the core domain from
 * 0x80000008 ECX, the SMT domain and APIC id from 0x8000001e. */
static struct view view_amd(struct table *t)
{
	struct kvm_cpuid_entry2 *x8 = get(t, 0x80000008, 0), *x1e = get(t, 0x8000001e, 0);
	struct view v;

	assert_non_null(x8);
	assert_non_null(x1e);
	assert_true(get(t, 0x80000001, 0)->ecx & TOPOEXT);
	assert_true(get(t, 0x80000000, 0)->eax >= 0x8000001e);
	v.pkg_shift = (x8->ecx >> 12) & 0xf;
	if (!v.pkg_shift)
		v.pkg_shift = order((x8->ecx & 0xff) + 1);
	v.threads = ((x1e->ebx >> 8) & 0xff) + 1;
	v.smt_shift = order(v.threads);
	v.apicid = x1e->eax;
	v.pkg = v.apicid >> v.pkg_shift;
	v.core = (v.apicid & ((1u << v.pkg_shift) - 1)) >> v.smt_shift;
	assert_int_equal(x1e->ebx & 0xff, v.core); /* the leaf's own core id agrees */
	assert_int_equal(x1e->ecx, 0);		   /* node 0 of one node */
	return v;
}

/* Linux's legacy parser (Intel without leaf 0xb): leaf 1 EBX count, leaf 4 cores, HTT. */
static struct view view_legacy(struct table *t)
{
	struct kvm_cpuid_entry2 *l1 = get(t, 1, 0), *l4 = get(t, 4, 0);
	struct view v;

	unsigned cores = l4 && (l4->eax & 0x1f) ? (l4->eax >> 26) + 1 : 1;
	unsigned core_shift = order(cores), smt_shift = 0;
	if (l1->edx & (1u << 28)) {
		unsigned nproc_shift = order((l1->ebx >> 16) & 0xff);
		assert_true(nproc_shift >= core_shift); /* Linux WARNs otherwise */
		smt_shift = nproc_shift - core_shift;
	}
	v.apicid = l1->ebx >> 24;
	v.smt_shift = smt_shift;
	v.pkg_shift = core_shift + smt_shift;
	v.threads = 1u << smt_shift;
	v.pkg = v.apicid >> v.pkg_shift;
	v.core = (v.apicid & ((1u << v.pkg_shift) - 1)) >> v.smt_shift;
	return v;
}

static void assert_view(struct view v, unsigned index, unsigned ncpus)
{
	unsigned tpc = ncpus % 2 == 0 ? 2 : 1;

	assert_int_equal(v.apicid, index);
	assert_int_equal(v.pkg, 0); /* one package */
	assert_int_equal(v.core, index / tpc);
	assert_int_equal(1u << v.smt_shift, tpc);
	assert_int_equal(v.pkg_shift, order(tpc) + order(ncpus / tpc));
}

static const unsigned counts[] = {1, 2, 3, 4, 8};

static void test_topology_of(void **state)
{
	(void)state;
	static const struct {
		unsigned ncpus, tpc, cores, smt, pkg;
	} want[] = {{1, 1, 1, 0, 0}, {2, 2, 1, 1, 1}, {3, 1, 3, 0, 2},
		    {4, 2, 2, 1, 2}, {6, 2, 3, 1, 3}, {8, 2, 4, 1, 3}};

	for (unsigned i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		struct cpu_topo t;
		cpu_topo_of(&t, want[i].ncpus);
		assert_int_equal(t.ncpus, want[i].ncpus);
		assert_int_equal(t.threads_per_core, want[i].tpc);
		assert_int_equal(t.cores, want[i].cores);
		assert_int_equal(t.smt_shift, want[i].smt);
		assert_int_equal(t.pkg_shift, want[i].pkg);
	}
}

/* Every host, every count, every vCPU: the three derivations agree with the layout, and
 * the fields that carry it are consistent. */
static void test_views_agree(void **state)
{
	(void)state;
	for (unsigned h = INTEL; h <= AMD_TOPOEXT; h++)
		for (unsigned k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
			unsigned ncpus = counts[k];
			unsigned cores_seen = 0;

			for (unsigned idx = 0; idx < ncpus; idx++) {
				struct table t;
				filtered(&t, h, idx, ncpus);
				struct view v = view_0b(&t);
				assert_view(v, idx, ncpus);
				assert_int_equal(v.threads, ncpus % 2 == 0 ? 2 : 1);
				if (h == INTEL)
					assert_view(view_legacy(&t), idx, ncpus);
				else
					assert_view(view_amd(&t), idx, ncpus);
				/* 0x80000008: NC = threads - 1, ApicIdSize = the package shift */
				struct kvm_cpuid_entry2 *x8 = get(&t, 0x80000008, 0);
				assert_int_equal(x8->ecx & 0xff, ncpus - 1);
				assert_int_equal((x8->ecx >> 12) & 0xf, v.pkg_shift);
				/* leaf 1: APIC id, addressable ids = 1 << package shift */
				struct kvm_cpuid_entry2 *l1 = get(&t, 1, 0);
				assert_int_equal(l1->ebx >> 24, idx);
				assert_int_equal((l1->ebx >> 16) & 0xff, 1u << v.pkg_shift);
				assert_int_equal(!!(l1->edx & (1u << 28)), ncpus > 1);
				if (v.core + 1 > cores_seen)
					cores_seen = v.core + 1;
			}
			assert_int_equal(cores_seen, ncpus % 2 == 0 ? ncpus / 2 : ncpus);
		}
}

static void test_intel_four_cpus_index2(void **state)
{
	(void)state;
	struct table t, orig;

	make_table(&orig, INTEL);
	filtered(&t, INTEL, 2, 4);
	assert_int_equal(t.n, orig.n); /* Intel: 0xb is complete, nothing added */

	/* Identification of each entry is untouched. */
	for (unsigned i = 0; i < t.n; i++) {
		assert_int_equal(t.e[i].function, orig.e[i].function);
		assert_int_equal(t.e[i].index, orig.e[i].index);
		assert_int_equal(t.e[i].flags, orig.e[i].flags);
	}

	struct kvm_cpuid_entry2 *l1 = get(&t, 1, 0);
	assert_int_equal(l1->eax, get(&orig, 1, 0)->eax);
	assert_int_equal(l1->ebx, (2u << 24) | (4u << 16) | (L1_EBX & 0xffff));
	assert_int_equal(l1->ecx, L1_ECX | (1u << 31)); /* hypervisor */
	assert_int_equal(l1->edx, L1_EDX);		/* HTT stays set */

	/* Leaf 4: addressable cores - 1 (2 cores) in [31:26]; sharing in [25:14]: the two
	 * threads of a core for L1 and L2, the package (4 ids) for L3; the rest kept. */
	for (unsigned i = 0; i < 4; i++) {
		struct kvm_cpuid_entry2 *c = get(&t, 4, i), *o = get(&orig, 4, i);
		unsigned level = (o->eax >> 5) & 7;

		assert_int_equal(c->eax >> 26, 1);
		assert_int_equal((c->eax >> 14) & 0xfff, level >= 3 ? 3 : 1);
		assert_int_equal(c->eax & 0x3fff, o->eax & 0x3fff);
		assert_int_equal(c->ebx, o->ebx);
		assert_int_equal(c->ecx, o->ecx);
		assert_int_equal(c->edx, o->edx);
	}
	assert_memory_equal(get(&t, 4, 4), get(&orig, 4, 4), sizeof(t.e[0])); /* null stays */

	/* Leaf 0xb: SMT level of 2 threads (shift 1), core level of 4 (shift 2), x2APIC id 2. */
	struct kvm_cpuid_entry2 *b0 = get(&t, 0xb, 0), *b1 = get(&t, 0xb, 1), *b2 = get(&t, 0xb, 2);
	assert_int_equal(b0->eax, 1);
	assert_int_equal(b0->ebx, 2);
	assert_int_equal(b0->ecx, 0x100); /* level 0, type SMT */
	assert_int_equal(b0->edx, 2);
	assert_int_equal(b1->eax, 2);
	assert_int_equal(b1->ebx, 4);
	assert_int_equal(b1->ecx, 0x201); /* level 1, type core */
	assert_int_equal(b1->edx, 2);
	assert_int_equal(b2->eax, 0); /* invalid level terminates the list */
	assert_int_equal(b2->ebx, 0);
	assert_int_equal(b2->ecx, 2);
	assert_int_equal(b2->edx, 2);

	/* KVM signature. */
	struct kvm_cpuid_entry2 *kv = get(&t, 0x40000000, 0);
	char sig[12];
	assert_int_equal(kv->eax, 0x40000001);
	memcpy(sig, &kv->ebx, 4);
	memcpy(sig + 4, &kv->ecx, 4);
	memcpy(sig + 8, &kv->edx, 4);
	assert_memory_equal(sig, "KVMKVMKVM\0\0\0", 12);

	/* Extended leaves: CmpLegacy on, no TopologyExtensions on Intel, NC and ApicIdSize. */
	assert_int_equal(get(&t, 0x80000001, 0)->ecx, 0x121 | 2u);
	assert_int_equal(get(&t, 0x80000000, 0)->eax, 0x80000008);
	assert_int_equal(get(&t, 0x80000008, 0)->ecx, 3u | 2u << 12);
	assert_int_equal(get(&t, 0x80000008, 0)->eax, 0x3030);
	assert_null(get(&t, 0x8000001e, 0));

	/* Leaves it does not own. */
	assert_memory_equal(get(&t, 0, 0), get(&orig, 0, 0), sizeof(t.e[0]));
	assert_memory_equal(get(&t, 7, 0), get(&orig, 7, 0), sizeof(t.e[0]));
}

static void test_single_cpu(void **state)
{
	(void)state;
	for (unsigned h = INTEL; h <= AMD_TOPOEXT; h++) {
		struct table t;

		filtered(&t, h, 0, 1);
		struct kvm_cpuid_entry2 *l1 = get(&t, 1, 0);
		assert_int_equal(l1->ebx >> 24, 0);
		assert_int_equal((l1->ebx >> 16) & 0xff, 1);
		assert_int_equal(l1->edx, L1_EDX & ~(1u << 28)); /* HTT cleared, nothing else */
		assert_true(l1->ecx & (1u << 31));
		assert_false(get(&t, 0x80000001, 0)->ecx & 2u); /* CmpLegacy cleared */
		assert_int_equal(get(&t, 0xb, 0)->eax, 0);
		assert_int_equal(get(&t, 0xb, 0)->ebx, 1);
		assert_int_equal(get(&t, 0xb, 1)->eax, 0);
		assert_int_equal(get(&t, 0xb, 1)->ebx, 1);
		assert_int_equal(get(&t, 0x80000008, 0)->ecx & 0xf0ff, 0);
		if (h == INTEL) {
			for (unsigned i = 0; i < 4; i++) {
				assert_int_equal(get(&t, 4, i)->eax >> 26, 0);
				assert_int_equal((get(&t, 4, i)->eax >> 14) & 0xfff, 0);
			}
		} else {
			assert_int_equal(get(&t, 0x8000001e, 0)->ebx, 0); /* core 0, 1 thread */
			for (unsigned i = 0; get(&t, 0x8000001d, i); i++)
				assert_int_equal((get(&t, 0x8000001d, i)->eax >> 14) & 0xfff, 0);
		}
	}
}

/* The emulated host's table: 0xb subleaf 1, 0x8000001d, 0x8000001e are added,
 * TopologyExtensions set, the extended level raised; AMD's leaf 4 stays zero. */
static void test_amd_without_topoext(void **state)
{
	(void)state;
	struct table t, orig;

	make_table(&orig, AMD_LEGACY);
	filtered(&t, AMD_LEGACY, 3, 4);
	assert_int_equal(t.n, orig.n + 1 + 5 + 1); /* 0xb.1, four caches + null, 0x8000001e */
	assert_int_equal(count_leaf(&t, 0xb), 2);
	assert_int_equal(count_leaf(&t, 0x8000001d), 5);
	assert_int_equal(count_leaf(&t, 0x8000001e), 1);
	assert_int_equal(get(&t, 0xb, 1)->flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	assert_int_equal(get(&t, 0x8000001d, 2)->flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
	assert_int_equal(get(&t, 0x8000001e, 0)->flags, 0);
	assert_int_equal(get(&t, 0x80000000, 0)->eax, 0x8000001e);
	assert_int_equal(get(&t, 0x80000001, 0)->ecx, L80000001_ECX | TOPOEXT);
	assert_memory_equal(get(&t, 4, 0), get(&orig, 4, 0), sizeof(t.e[0]));
	assert_memory_equal(get(&t, 0xd, 0), get(&orig, 0xd, 0), sizeof(t.e[0]));
	/* The leaf-0x8000001e view of vCPU 3: APIC id 3, core 1, 2 threads per core. */
	struct kvm_cpuid_entry2 *x1e = get(&t, 0x8000001e, 0);
	assert_int_equal(x1e->eax, 3);
	assert_int_equal(x1e->ebx, 1u | 1u << 8);
	assert_int_equal(x1e->ecx, 0);
	assert_int_equal(x1e->edx, 0);
	/* Cache sharing: L1d, L1i, L2 per core (2 threads), L3 the package (4). */
	static const unsigned level[] = {1, 1, 2, 3}, type[] = {1, 2, 3, 3}, share[] = {1, 1, 1, 3};
	for (unsigned i = 0; i < 4; i++) {
		struct kvm_cpuid_entry2 *c = get(&t, 0x8000001d, i);
		assert_int_equal(c->eax & 0x1f, type[i]);
		assert_int_equal((c->eax >> 5) & 7, level[i]);
		assert_int_equal((c->eax >> 14) & 0xfff, share[i]);
	}
	assert_int_equal(get(&t, 0x8000001d, 4)->eax, 0);

	/* Too little room: -1. */
	make_table(&t, AMD_LEGACY);
	assert_int_equal(cpuid_filter(t.e, t.n, t.n + 6, 0, 4), -1);
	make_table(&t, AMD_LEGACY);
	assert_int_equal(cpuid_filter(t.e, t.n, t.n + 7, 0, 4), (int)t.n + 7);
	make_table(&t, INTEL);
	assert_int_equal(cpuid_filter(t.e, t.n, t.n, 0, 4), (int)t.n); /* nothing to add */
}

/* A Zen host: its 0x8000001d sharing and 0x8000001e are overwritten, nothing is added,
 * the extended level is not lowered. */
static void test_amd_with_topoext(void **state)
{
	(void)state;
	struct table t, orig;

	make_table(&orig, AMD_TOPOEXT);
	filtered(&t, AMD_TOPOEXT, 5, 8);
	assert_int_equal(t.n, orig.n + 1); /* only 0xb subleaf 1 */
	assert_int_equal(get(&t, 0x80000000, 0)->eax, 0x80000021);
	for (unsigned i = 0; i < 4; i++) {
		struct kvm_cpuid_entry2 *c = get(&t, 0x8000001d, i), *o = get(&orig, 0x8000001d, i);
		unsigned lvl = (o->eax >> 5) & 7;
		assert_int_equal((c->eax >> 14) & 0xfff, lvl >= 3 ? 7 : 1);
		assert_int_equal(c->eax & ~(0xfffu << 14), o->eax & ~(0xfffu << 14));
		assert_int_equal(c->ebx, o->ebx);
		assert_int_equal(c->ecx, o->ecx);
		assert_int_equal(c->edx, o->edx);
	}
	assert_int_equal(get(&t, 0x8000001e, 0)->eax, 5);
	assert_int_equal(get(&t, 0x8000001e, 0)->ebx, 2u | 1u << 8);
}

/* An odd count: single-thread cores everywhere. */
static void test_three_cpus(void **state)
{
	(void)state;
	struct table t;

	filtered(&t, AMD_LEGACY, 2, 3);
	assert_int_equal(get(&t, 0xb, 0)->eax, 0);
	assert_int_equal(get(&t, 0xb, 0)->ebx, 1);
	assert_int_equal(get(&t, 0xb, 1)->eax, 2);
	assert_int_equal(get(&t, 0xb, 1)->ebx, 3);
	assert_int_equal(get(&t, 0x8000001e, 0)->ebx, 2); /* core 2, 1 thread */
	assert_int_equal((get(&t, 0x8000001d, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal((get(&t, 0x8000001d, 3)->eax >> 14) & 0xfff, 3);
	filtered(&t, INTEL, 1, 3);
	assert_int_equal(get(&t, 4, 0)->eax >> 26, 3); /* 4 addressable cores */
	assert_int_equal((get(&t, 1, 0)->ebx >> 16) & 0xff, 4);
}

static void test_leaf_1f_and_empty(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 e[4];

	memset(e, 0, sizeof(e));
	e[0].function = 0;
	e[0].eax = 0x1f;
	e[1].function = 0x1f;
	e[1].index = 0;
	e[1].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	e[1].eax = 0xdead;
	struct kvm_cpuid_entry2 e2[5];
	memcpy(e2, e, sizeof(e));
	assert_int_equal(cpuid_filter(e, 2, 4, 3, 4), -1); /* 0xb.0, 0xb.1, 0x1f.1: no room */
	assert_int_equal(cpuid_filter(e2, 2, 5, 3, 4), 5);
	assert_int_equal(e2[4].function, 0x1f);
	assert_int_equal(e2[4].index, 1);
	assert_int_equal(e2[4].ebx, 4);

	struct table t;
	make_table(&t, INTEL);
	get(&t, 0, 0)->eax = 0x1f;
	add(&t, 0x1f, 0, 0xdead, 0xbeef, 0xcafe, 0xf00d);
	add(&t, 0x1f, 1, 0xdead, 0xbeef, 0xcafe, 0xf00d);
	int r = cpuid_filter(t.e, t.n, MAXE, 3, 4);
	assert_int_equal(r, (int)t.n);
	assert_int_equal(get(&t, 0x1f, 0)->eax, 1);
	assert_int_equal(get(&t, 0x1f, 0)->ebx, 2);
	assert_int_equal(get(&t, 0x1f, 0)->ecx, 0x100);
	assert_int_equal(get(&t, 0x1f, 0)->edx, 3);
	assert_int_equal(get(&t, 0x1f, 1)->eax, 2);
	assert_int_equal(get(&t, 0x1f, 1)->ebx, 4);
	assert_int_equal(get(&t, 0x1f, 1)->ecx, 0x201);
	assert_int_equal(get(&t, 0x1f, 1)->edx, 3);

	/* n = 0 touches nothing. */
	struct kvm_cpuid_entry2 one, copy;
	memset(&one, 0, sizeof(one));
	one.function = 1;
	one.eax = 1;
	copy = one;
	assert_int_equal(cpuid_filter(&one, 0, 1, 1, 2), 0);
	assert_memory_equal(&one, &copy, sizeof(one));
}

/* Size = ways x partitions x line x sets of a leaf-4-format entry. */
static uint64_t cache_bytes(const struct kvm_cpuid_entry2 *c)
{
	return (uint64_t)((c->ebx >> 22) + 1) * (((c->ebx >> 12) & 0x3ff) + 1) *
	       ((c->ebx & 0xfff) + 1) * ((uint64_t)c->ecx + 1);
}

static void test_amd_cache_leaves(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 c[CPUID_AMD_CACHE_MAX];

	/* The emulated host's caches. */
	assert_int_equal(cpuid_amd_cache_leaves(AMD_L1D, AMD_L1I, AMD_L2, AMD_L3, c), 5);
	static const uint64_t size[] = {64 << 10, 64 << 10, 512 << 10, 16 << 20};
	static const unsigned ways[] = {2, 2, 16, 16}, level[] = {1, 1, 2, 3},
			      type[] = {1, 2, 3, 3};
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(c[i].function, 0x8000001d);
		assert_int_equal(c[i].index, i);
		assert_int_equal(c[i].flags, KVM_CPUID_FLAG_SIGNIFCANT_INDEX);
		assert_int_equal(c[i].eax, type[i] | level[i] << 5 | 1u << 8);
		assert_int_equal((c[i].ebx >> 22) + 1, ways[i]);
		assert_int_equal((c[i].ebx & 0xfff) + 1, 64);
		assert_int_equal(cache_bytes(&c[i]), size[i]);
		assert_int_equal(c[i].edx, 0);
	}
	assert_int_equal(c[4].index, 4);
	assert_int_equal(c[4].eax, 0);
	assert_int_equal(c[4].ebx, 0);

	/* No L3 (EDX 0), a fully associative L1i (0xff), an L2 whose associativity code 9
	 * means "see 0x8000001d" (Zen): L1d, L1i and the null subleaf. */
	assert_int_equal(cpuid_amd_cache_leaves(AMD_L1D, 0x20ff0140u, 0x02009140u, 0, c), 3);
	assert_int_equal(c[1].eax, 2u | 1u << 5 | 1u << 8 | 1u << 9);
	assert_int_equal(c[1].ecx, 0); /* one set */
	assert_int_equal(cache_bytes(&c[1]), 32 << 10);
	assert_int_equal(c[2].index, 2);
	assert_int_equal(c[2].eax, 0);

	/* Nothing described: the null subleaf alone. */
	assert_int_equal(cpuid_amd_cache_leaves(0, 0, 0, 0, c), 1);
	assert_int_equal(c[0].function, 0x8000001d);
	assert_int_equal(c[0].eax, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_topology_of),
	    cmocka_unit_test(test_views_agree),
	    cmocka_unit_test(test_intel_four_cpus_index2),
	    cmocka_unit_test(test_single_cpu),
	    cmocka_unit_test(test_amd_without_topoext),
	    cmocka_unit_test(test_amd_with_topoext),
	    cmocka_unit_test(test_three_cpus),
	    cmocka_unit_test(test_leaf_1f_and_empty),
	    cmocka_unit_test(test_amd_cache_leaves),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
