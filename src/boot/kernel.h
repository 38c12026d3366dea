/* Puts a Linux kernel into guest memory.
 *
 * A bzImage whose payload is zstd is decompressed here on the host (once: the vmlinux is
 * cached under cache_dir, keyed by a hash of the payload) and its ELF segments are loaded
 * at their physical addresses, so the guest skips its own decompressor; any other bzImage
 * is loaded at 1 MiB and decompresses itself. Both enter at the 64-bit entry point.
 * elf_load() checks every header field against the buffer and guest RAM.
 */
#ifndef NITRO_BOOT_KERNEL_H
#define NITRO_BOOT_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "boot/memory.h"

struct kernel_load {
	uint64_t kl_entry;
	uint64_t kl_start; /* guest range the kernel needs while booting */
	uint64_t kl_end;
	bool kl_vmlinux; /* host-side decompressed */
};

/* cache_dir may be NULL (no cache); decompress = false keeps the guest decompressor. */
int kernel_load(const struct guest_mem *m, const struct bzimage *bz, bool decompress,
		const char *cache_dir, struct kernel_load *kl, char *err, size_t errlen);

/* Loads an ELF64 x86-64 executable's PT_LOAD segments at their physical addresses. When
 * m has no mapping, only checks and measures. */
int elf_load(const struct guest_mem *m, const uint8_t *elf, size_t len, struct kernel_load *kl,
	     char *err, size_t errlen);

/* 64-bit content hash used as the cache key. */
uint64_t kernel_hash(const uint8_t *p, size_t len);

#endif
