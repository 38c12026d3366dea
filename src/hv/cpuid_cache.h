/* AMD's cache leaf 0x8000001d synthesised from the legacy cache descriptors of leaves
 * 0x80000005 (L1 data in ECX, L1 instruction in EDX) and 0x80000006 (L2 in ECX, L3 in
 * EDX), for hosts whose KVM lists no 0x8000001d (no TopologyExtensions): nitro-hv turns
 * TopologyExtensions on for its AMD guests so that every kernel reads the threads per
 * core from 0x8000001e, and a guest with that bit reads its caches from 0x8000001d.
 *
 * cpuid_amd_cache_leaves() is pure. It writes subleaves 0.. (L1d, L1i, L2, L3, skipping a
 * cache the descriptors mark absent or describe with an associativity it cannot express)
 * and a final null subleaf (type 0), each with KVM_CPUID_FLAG_SIGNIFCANT_INDEX; the
 * threads-sharing field EAX[25:14] is 0 (cpuid_filter sets it). Returns the count
 * written, at most CPUID_AMD_CACHE_MAX.
 */
#ifndef NITRO_HV_CPUID_CACHE_H
#define NITRO_HV_CPUID_CACHE_H

#include <stdint.h>

#include <linux/kvm.h>

#define CPUID_AMD_CACHE_MAX 5 /* four caches and the null subleaf */

unsigned cpuid_amd_cache_leaves(uint32_t l5_ecx, uint32_t l5_edx, uint32_t l6_ecx, uint32_t l6_edx,
				struct kvm_cpuid_entry2 out[CPUID_AMD_CACHE_MAX]);

#endif
