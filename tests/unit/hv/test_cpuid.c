/* Unit tests for cpuid_filter (src/hv/cpuid.c) on a synthetic KVM_GET_SUPPORTED_CPUID
 * table: APIC ids and counts in leaf 1, cache sharing in leaf 4, x2APIC topology in leaf
 * 0xb, the KVM signature, AMD core counts, the single-CPU case, and that leaves it does
 * not own are left alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "hv/cpuid.h"

#define L1_EBX 0xaabb0810u	  /* initial APIC id 0xaa, count 0xbb, CLFLUSH 8, brand 0x10 */
#define L1_ECX 0x77fa3203u	  /* hypervisor bit clear */
#define L1_EDX 0x178bfbffu	  /* HTT set */
#define L4_HIGH 0xfc000000u	  /* garbage in EAX[31:26] */
#define L80000001_ECX 0x000001f3u /* CmpLegacy set */
#define L80000008_ECX 0x0003f0ffu /* NC = 0xff, ApicIdCoreIdSize = 0xf, bits 17:16 set */
#define L7_EBX 0x219c07abu

enum {
	E_L0,
	E_L1,
	E_L4_1,
	E_L4_2,
	E_L4_3,
	E_L7,
	E_LB_0,
	E_LB_1,
	E_LB_2,
	E_KVM,
	E_X1,
	E_X8,
	E_X1E,
	E_COUNT,
};

static struct kvm_cpuid_entry2 leaf(uint32_t fn, uint32_t idx, uint32_t a, uint32_t b, uint32_t c,
				    uint32_t d)
{
	struct kvm_cpuid_entry2 e;

	memset(&e, 0, sizeof(e));
	e.function = fn;
	e.index = idx;
	e.flags = (fn == 4 || fn == 7 || fn == 0xb) ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
	e.eax = a;
	e.ebx = b;
	e.ecx = c;
	e.edx = d;
	return e;
}

/* Leaf 4 EAX for a cache: type in [4:0], level in [7:5], self-initialising [8]. */
static uint32_t l4_eax(unsigned level, unsigned type)
{
	return L4_HIGH | 0x03ffc000u | 0x100u | (level << 5) | type;
}

static void make_table(struct kvm_cpuid_entry2 *e)
{
	e[E_L0] = leaf(0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69);
	e[E_L1] = leaf(1, 0, 0x000906ea, L1_EBX, L1_ECX, L1_EDX);
	e[E_L4_1] = leaf(4, 0, l4_eax(1, 1), 0x01c0003f, 0x3f, 0);
	e[E_L4_2] = leaf(4, 1, l4_eax(2, 3), 0x01c0003f, 0x3ff, 0);
	e[E_L4_3] = leaf(4, 2, l4_eax(3, 3), 0x03c0003f, 0x2fff, 6);
	e[E_L7] = leaf(7, 0, 0, L7_EBX, 0x12345678, 0x9abcdef0);
	e[E_LB_0] = leaf(0xb, 0, 0x11, 0x22, 0x33, 0x44);
	e[E_LB_1] = leaf(0xb, 1, 0x55, 0x66, 0x77, 0x88);
	e[E_LB_2] = leaf(0xb, 2, 0x99, 0xaa, 0xbb, 0xcc);
	e[E_KVM] = leaf(0x40000000, 0, 0x40000001, 0, 0, 0);
	e[E_X1] = leaf(0x80000001, 0, 0, 0, L80000001_ECX, 0x2c100800);
	e[E_X8] = leaf(0x80000008, 0, 0x3030, 0, L80000008_ECX, 0);
	e[E_X1E] = leaf(0x8000001e, 0, 0xffffffff, 0xffffffff, 0xffffffff, 0x5a5a5a5a);
}

static void test_four_cpus_index2(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 e[E_COUNT], orig[E_COUNT];

	make_table(e);
	make_table(orig);
	cpuid_filter(e, E_COUNT, 2, 4);

	/* Identification of each entry is untouched. */
	for (unsigned i = 0; i < E_COUNT; i++) {
		assert_int_equal(e[i].function, orig[i].function);
		assert_int_equal(e[i].index, orig[i].index);
		assert_int_equal(e[i].flags, orig[i].flags);
	}

	/* Leaf 1. */
	assert_int_equal(e[E_L1].eax, orig[E_L1].eax);
	assert_int_equal(e[E_L1].ebx >> 24, 2);		 /* initial APIC id */
	assert_int_equal((e[E_L1].ebx >> 16) & 0xff, 4); /* logical processors */
	assert_int_equal(e[E_L1].ebx & 0xffff, L1_EBX & 0xffff);
	assert_int_equal(e[E_L1].ecx, L1_ECX | (1u << 31)); /* hypervisor */
	assert_int_equal(e[E_L1].edx, L1_EDX);		    /* HTT stays set */
	assert_true(e[E_L1].edx & (1u << 28));

	/* Leaf 4: cores per package - 1 in [31:26], sharing in [25:14], the rest kept. */
	for (unsigned i = E_L4_1; i <= E_L4_3; i++) {
		unsigned level = (orig[i].eax >> 5) & 7;

		assert_int_equal(e[i].eax >> 26, 3);
		assert_int_equal((e[i].eax >> 14) & 0xfff, level >= 3 ? 3 : 0);
		assert_int_equal(e[i].eax & 0x3fff, orig[i].eax & 0x3fff);
		assert_int_equal(e[i].ebx, orig[i].ebx);
		assert_int_equal(e[i].ecx, orig[i].ecx);
		assert_int_equal(e[i].edx, orig[i].edx);
	}

	/* Leaf 0xb: SMT level of 1 thread, core level of 4, x2APIC id 2 in every subleaf. */
	assert_int_equal(e[E_LB_0].eax, 0);
	assert_int_equal(e[E_LB_0].ebx, 1);
	assert_int_equal(e[E_LB_0].ecx, 0x100); /* level 0, type SMT */
	assert_int_equal(e[E_LB_0].edx, 2);
	assert_int_equal(e[E_LB_1].eax, 2); /* shift: 4 ids need 2 bits */
	assert_int_equal(e[E_LB_1].ebx, 4);
	assert_int_equal(e[E_LB_1].ecx, 0x201); /* level 1, type core */
	assert_int_equal(e[E_LB_1].edx, 2);
	assert_int_equal(e[E_LB_2].eax, 0); /* invalid level terminates the list */
	assert_int_equal(e[E_LB_2].ebx, 0);
	assert_int_equal(e[E_LB_2].ecx, 2);
	assert_int_equal(e[E_LB_2].edx, 2);

	/* KVM signature. */
	assert_int_equal(e[E_KVM].eax, 0x40000001);
	char sig[12];
	memcpy(sig, &e[E_KVM].ebx, 4);
	memcpy(sig + 4, &e[E_KVM].ecx, 4);
	memcpy(sig + 8, &e[E_KVM].edx, 4);
	assert_memory_equal(sig, "KVMKVMKVM\0\0\0", 12);

	/* AMD leaves. */
	assert_int_equal(e[E_X1].ecx, L80000001_ECX); /* CmpLegacy stays */
	assert_int_equal(e[E_X1].edx, orig[E_X1].edx);
	assert_int_equal(e[E_X8].ecx & 0xff, 3);
	assert_int_equal((e[E_X8].ecx >> 12) & 0xf, 2);
	assert_int_equal(e[E_X8].ecx & ~0xf0ffu, L80000008_ECX & ~0xf0ffu);
	assert_int_equal(e[E_X8].eax, orig[E_X8].eax);
	assert_int_equal(e[E_X1E].eax, 2);
	assert_int_equal(e[E_X1E].ebx, 2);
	assert_int_equal(e[E_X1E].ecx, 0);

	/* Leaves it does not own. */
	assert_memory_equal(&e[E_L0], &orig[E_L0], sizeof(e[0]));
	assert_memory_equal(&e[E_L7], &orig[E_L7], sizeof(e[0]));
}

static void test_single_cpu(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 e[E_COUNT];

	make_table(e);
	cpuid_filter(e, E_COUNT, 0, 1);
	assert_int_equal(e[E_L1].ebx >> 24, 0);
	assert_int_equal((e[E_L1].ebx >> 16) & 0xff, 1);
	assert_int_equal(e[E_L1].edx, L1_EDX & ~(1u << 28)); /* HTT cleared, nothing else */
	assert_true(e[E_L1].ecx & (1u << 31));
	assert_int_equal(e[E_X1].ecx, L80000001_ECX & ~2u); /* CmpLegacy cleared */
	for (unsigned i = E_L4_1; i <= E_L4_3; i++) {
		assert_int_equal(e[i].eax >> 26, 0);
		assert_int_equal((e[i].eax >> 14) & 0xfff, 0);
	}
	assert_int_equal(e[E_LB_1].eax, 0);
	assert_int_equal(e[E_LB_1].ebx, 1);
	assert_int_equal(e[E_LB_0].edx, 0);
	assert_int_equal(e[E_X8].ecx & 0xff, 0);
	assert_int_equal((e[E_X8].ecx >> 12) & 0xf, 0);
	assert_int_equal(e[E_X1E].eax, 0);
}

static void test_ids_per_cpu(void **state)
{
	(void)state;
	const unsigned ncpus = 8;

	for (unsigned idx = 0; idx < ncpus; idx++) {
		struct kvm_cpuid_entry2 e[E_COUNT];

		make_table(e);
		cpuid_filter(e, E_COUNT, idx, ncpus);
		assert_int_equal(e[E_L1].ebx >> 24, idx);
		assert_int_equal((e[E_L1].ebx >> 16) & 0xff, ncpus);
		assert_int_equal(e[E_LB_0].edx, idx);
		assert_int_equal(e[E_LB_1].edx, idx);
		assert_int_equal(e[E_LB_1].eax, 3);
		assert_int_equal(e[E_LB_1].ebx, ncpus);
		assert_int_equal(e[E_X1E].eax, idx);
		assert_int_equal(e[E_L4_3].eax >> 26, ncpus - 1);
		assert_int_equal(e[E_X8].ecx & 0xff, ncpus - 1);
		assert_int_equal((e[E_X8].ecx >> 12) & 0xf, 3);
	}

	/* Non-power-of-two counts round the shift up. */
	struct kvm_cpuid_entry2 e[E_COUNT];
	make_table(e);
	cpuid_filter(e, E_COUNT, 4, 5);
	assert_int_equal(e[E_LB_1].eax, 3);
	assert_int_equal(e[E_LB_1].ebx, 5);
	assert_int_equal((e[E_X8].ecx >> 12) & 0xf, 3);
	make_table(e);
	cpuid_filter(e, E_COUNT, 1, 2);
	assert_int_equal(e[E_LB_1].eax, 1);
}

static void test_leaf_1f_and_empty(void **state)
{
	(void)state;
	struct kvm_cpuid_entry2 e[2];

	e[0] = leaf(0x1f, 0, 0xdead, 0xbeef, 0xcafe, 0xf00d);
	e[1] = leaf(0x1f, 1, 0xdead, 0xbeef, 0xcafe, 0xf00d);
	cpuid_filter(e, 2, 3, 4);
	assert_int_equal(e[0].ebx, 1);
	assert_int_equal(e[0].ecx, 0x100);
	assert_int_equal(e[0].edx, 3);
	assert_int_equal(e[1].eax, 2);
	assert_int_equal(e[1].ebx, 4);
	assert_int_equal(e[1].ecx, 0x201);
	assert_int_equal(e[1].edx, 3);

	/* n = 0 touches nothing. */
	struct kvm_cpuid_entry2 one = leaf(1, 0, 1, 2, 3, 4), copy = one;
	cpuid_filter(&one, 0, 1, 2);
	assert_memory_equal(&one, &copy, sizeof(one));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_four_cpus_index2),
	    cmocka_unit_test(test_single_cpu),
	    cmocka_unit_test(test_ids_per_cpu),
	    cmocka_unit_test(test_leaf_1f_and_empty),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
