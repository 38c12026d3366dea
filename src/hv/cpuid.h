/* CPUID for each vCPU: KVM's supported table, with the topology of this guest
 * (ncpus single-thread cores in one package, APIC id = vCPU index) and the KVM
 * hypervisor leaves (0x40000000 "KVMKVMKVM", so the guest uses kvm-clock).
 * cpuid_filter() is pure: it edits the table in place and touches nothing else.
 */
#ifndef NITRO_HV_CPUID_H
#define NITRO_HV_CPUID_H

#include <linux/kvm.h>

void cpuid_filter(struct kvm_cpuid_entry2 *e, unsigned n, unsigned index, unsigned ncpus);

#endif
