/* CPUID filtering: topology, hypervisor bit and leaves. */
#include "hv/cpuid.h"

#include <string.h>

#define CPUID_1_ECX_HYPERVISOR (1u << 31)
#define CPUID_1_EDX_HTT (1u << 28)
#define CPUID_80000001_ECX_CMP_LEGACY (1u << 1)
#define KVM_SIGNATURE_LEAF 0x40000000u

static unsigned order_of(unsigned n) /* bits needed for ids 0..n-1 */
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

static void topology_level(struct kvm_cpuid_entry2 *c, unsigned index, unsigned ncpus)
{
	/* Level 0: SMT (1 thread per core); level 1: core (ncpus per package). */
	switch (c->index) {
	case 0:
		c->eax = 0;
		c->ebx = 1;
		c->ecx = 1u << 8;
		break;
	case 1:
		c->eax = order_of(ncpus);
		c->ebx = ncpus;
		c->ecx = 1 | 2u << 8;
		break;
	default:
		c->eax = 0;
		c->ebx = 0;
		c->ecx = c->index;
		break;
	}
	c->edx = index;
}

void cpuid_filter(struct kvm_cpuid_entry2 *e, unsigned n, unsigned index, unsigned ncpus)
{
	for (unsigned i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *c = &e[i];
		switch (c->function) {
		case 1:
			c->ebx = (c->ebx & 0x0000ffffu) | (index << 24) | ((ncpus & 0xff) << 16);
			c->ecx |= CPUID_1_ECX_HYPERVISOR;
			if (ncpus > 1)
				c->edx |= CPUID_1_EDX_HTT;
			else
				c->edx &= ~CPUID_1_EDX_HTT;
			break;
		case 4: {
			/* Deterministic cache parameters: cores per package, sharing. */
			unsigned level = (c->eax >> 5) & 7;
			unsigned share = level >= 3 ? ncpus - 1 : 0;
			unsigned cores = ncpus - 1 > 63 ? 63 : ncpus - 1; /* 6-bit field */
			c->eax = (c->eax & 0x3fffu) | (share << 14) | (cores << 26);
			break;
		}
		case 0xb:
		case 0x1f:
			topology_level(c, index, ncpus);
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
			/* NC = cores - 1, ApicIdCoreIdSize */
			c->ecx = (c->ecx & ~0xf0ffu) | (ncpus - 1) | (order_of(ncpus) << 12);
			break;
		case 0x8000001e:
			c->eax = index;     /* extended APIC id */
			c->ebx = index;     /* core id, 1 thread per core */
			c->ecx = 0;         /* node 0, 1 node per package */
			break;
		default:
			break;
		}
	}
}
