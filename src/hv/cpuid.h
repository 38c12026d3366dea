/* CPUID for each vCPU: KVM's supported table with this guest's CPU topology and the KVM
 * hypervisor leaves (0x40000000 "KVMKVMKVM", so the guest uses kvm-clock).
 *
 * The topology is EC2's: one package (socket) of ncpus vCPUs; two threads per core when
 * ncpus is even (m5.xlarge: 4 vCPUs = 2 cores x 2 threads), else one. vCPU i has APIC id i
 * (the KVM vCPU id and the MADT's LAPIC id), so it is thread i % threads_per_core of core
 * i / threads_per_core. Every leaf that describes topology says the same:
 *   0x1      EBX initial APIC id and addressable ids in the package, EDX HTT
 *   0x4      (Intel) EAX addressable cores, threads sharing each cache
 *   0xb/0x1f x2APIC topology: SMT level then core level, x2APIC id; subleaves 0 and 1 are
 *            added when KVM's table lacks them (AMD hosts list 0xb with subleaf 0 only)
 *   0x80000001 ECX CmpLegacy; on AMD, TopologyExtensions (added when the host lacks it,
 *            with 0x8000001d synthesised from the legacy cache leaves 0x80000005/6)
 *   0x80000008 ECX NC (threads - 1), ApicIdSize
 *   0x8000001d (AMD) threads sharing each cache
 *   0x8000001e (AMD) extended APIC id, core id, threads per core, one node
 *
 * cpuid_filter() is pure: it edits the table in place (and may append entries) and
 * touches nothing else. Called once per vCPU from the thread that creates the VM.
 */
#ifndef NITRO_HV_CPUID_H
#define NITRO_HV_CPUID_H

#include <linux/kvm.h>

/* Entries cpuid_filter() may append: 0xb and 0x1f subleaves 0-1, 0x8000001d subleaves
 * 0-4, 0x8000001e. Callers leave this much room after KVM's table. */
#define CPUID_FILTER_SPARE 10

struct cpu_topo {
	unsigned ncpus;		   /* vCPUs, all in package 0 */
	unsigned threads_per_core; /* 2 when ncpus is even, else 1 */
	unsigned cores;		   /* ncpus / threads_per_core */
	unsigned smt_shift;	   /* APIC id bits of the thread within its core */
	unsigned pkg_shift;	   /* APIC id bits of thread and core within the package */
};

/* The topology of a guest of ncpus (>= 1) vCPUs. */
void cpu_topo_of(struct cpu_topo *t, unsigned ncpus);

/* Applies the topology of ncpus vCPUs as seen by vCPU index (< ncpus) and the KVM leaves
 * to the n entries of e, which has room for max. Returns the new entry count, or -1 when
 * the entries to add do not fit (e is then partly edited and must not be used). */
int cpuid_filter(struct kvm_cpuid_entry2 *e, unsigned n, unsigned max, unsigned index,
		 unsigned ncpus);

#endif
