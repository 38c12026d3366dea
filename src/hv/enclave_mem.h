/* The arithmetic of donating parent memory to enclaves: pure functions, no KVM, no global
 * state, thread-safe; the inputs (an NE slot's ranges) come from the parent's guest driver
 * and are hostile.
 *
 * enclave_mem_translate() turns a slot's parent guest-physical ranges into memfd offsets
 * (for the spawner's --enclave-mem), refusing a range that is empty, not 2 MiB aligned,
 * not wholly inside one RAM region of the parent, overlapping another range of the slot or
 * a range already donated to another enclave.
 *
 * enclave_mem_plan() gives the parent's KVM memory slots while ranges are donated: the
 * parent's RAM regions minus the donated ranges (RAM slots into its own mapping), and each
 * donated range as a read-only slot onto a zero mapping. What the parent then sees there:
 * reads give zeros, instruction fetches run zeros, writes exit to nitro-hv as MMIO and are
 * dropped; nitro-hv does not crash and the enclave's pages are neither read nor changed.
 */
#ifndef NITRO_HV_ENCLAVE_MEM_H
#define NITRO_HV_ENCLAVE_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/memory.h"
#include "hv/ne_cmd.h"

#define ENCLAVE_MEM_ALIGN (2ull << 20) /* hugepage regions, as the NE driver sends them */

/* A donated range: parent guest-physical and memfd offset. */
struct enclave_hole {
	uint64_t gpa, size, fd_off;
};

/* Translates ranges (n of them) of the parent layout m into pieces (memfd offset and size,
 * same order). taken (ntaken) are the ranges other enclaves hold. 0, or -1 with err. */
int enclave_mem_translate(const struct guest_mem *m, const struct ne_mem_range *ranges, unsigned n,
			  const struct enclave_hole *taken, unsigned ntaken, struct mem_piece *out,
			  char *err, size_t errlen);

/* One KVM memory slot of the parent. */
struct enclave_slot_plan {
	uint64_t gpa, size;
	uint64_t map; /* RAM: offset in the parent's mapping; zero slot: unused */
	bool zero;    /* read-only, onto the zero mapping */
};

/* The parent's slots with holes (nholes, each inside one RAM region of m, not overlapping)
 * taken out, in address order; returns how many, or -1 when more than max are needed. */
int enclave_mem_plan(const struct guest_mem *m, const struct enclave_hole *holes, unsigned nholes,
		     struct enclave_slot_plan *out, unsigned max);

/* KVM memory slot ids the plan's entries get: 0, 1, ... skipping ENCLAVE_MEM_FOREIGN_SLOT,
 * the id another part of nitro-hv holds for itself (the TPM's CRB buffer, hv/tpm.h
 * TPM_KVM_SLOT): rewriting that id would move or delete the TPM buffer of the parent. */
#define ENCLAVE_MEM_FOREIGN_SLOT 8
uint32_t enclave_mem_slot_id(unsigned i);

#endif
