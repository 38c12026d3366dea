/* libFuzzer target: elf_load on the input, check-only (a mem_layout guest, no backing) and
 * into a real 64 MiB guest made once. Both must agree on the header checks, and an accepted
 * executable must describe a kernel range between 1 MiB and the PCI hole with its entry
 * inside; a real load must have copied every PT_LOAD segment and zeroed its bss.
 */
#include <elf.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/kernel.h"
#include "boot/memory.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct guest_mem layout;
	struct kernel_load kl, kl2;
	char err[256];

	mem_layout(&layout, 64 * MiB);
	memset(&kl, 0, sizeof(kl));
	int r = elf_load(&layout, d, n, &kl, err, sizeof(err));
	if (r != 0) {
		CHECK(memchr(err, '\0', sizeof(err)) && err[0]);
		/* With memory the same checks fail the same way. */
		CHECK(elf_load(fuzz_guest(), d, n, &kl2, err, sizeof(err)) != 0);
		return 0;
	}
	CHECK(kl.kl_vmlinux);
	CHECK(kl.kl_start >= BOOT_HIGH && kl.kl_start < kl.kl_end && kl.kl_end <= MEM_HOLE_START);
	CHECK(kl.kl_entry >= kl.kl_start && kl.kl_entry < kl.kl_end);

	struct guest_mem *m = fuzz_guest();
	memset(&kl2, 0, sizeof(kl2));
	r = elf_load(m, d, n, &kl2, err, sizeof(err));
	if (r != 0) {
		CHECK(kl.kl_end > m->gm_regions[0].mr_size); /* only for want of RAM */
		return 0;
	}
	CHECK(kl2.kl_entry == kl.kl_entry && kl2.kl_start == kl.kl_start &&
	      kl2.kl_end == kl.kl_end && kl2.kl_vmlinux);

	/* The last PT_LOAD covering a byte wins; check the last segment fully. */
	Elf64_Ehdr eh;
	memcpy(&eh, d, sizeof(eh));
	for (int i = eh.e_phnum - 1; i >= 0; i--) {
		Elf64_Phdr ph;
		memcpy(&ph, d + eh.e_phoff + (size_t)i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD || ph.p_memsz == 0)
			continue;
		const uint8_t *g = m->gm_base + ph.p_paddr;
		CHECK(memcmp(g, d + ph.p_offset, ph.p_filesz) == 0);
		for (uint64_t j = ph.p_filesz; j < ph.p_memsz; j++)
			CHECK(g[j] == 0);
		break;
	}
	return 0;
}
