/* Puts a Linux kernel into guest memory.
 *
 * A bzImage whose payload is zstd is decompressed here on the host (once: the vmlinux is
 * cached) and its ELF segments are loaded at their physical addresses, so the guest skips
 * its own decompressor; any other bzImage is loaded at 1 MiB and decompresses itself.
 * Both enter at the 64-bit entry point. elf_load() checks every header field against the
 * buffer and guest RAM.
 *
 * The cache (issue 10 item 1). An entry is DIR/vmlinux-<SHA-384 hex of the WHOLE kernel
 * file> (the digest the security chip measures), holding a 128-byte header (magic
 * "NITRO-VMLINUX-v2", that kernel digest, the vmlinux's own SHA-384, its length) and the
 * vmlinux. An entry is used only when its header names the kernel it is looked up for and
 * its content has the digest in its header (and, with kc_want, the digest the caller
 * measured); anything else is refused (a warning) and the kernel is decompressed again.
 * The digest is computed over the very bytes then loaded (one read into memory, no
 * second look at the file). A kernel can no longer reach another kernel's entry: keys are
 * SHA-384 of all its bytes, not a 64-bit hash of its first zstd frame. Who can write the
 * folder can still write a self-consistent entry: `nitro run`'s folder is its user's own;
 * nitrod's is root's, it checks each entry against its own decompression once per kernel
 * and passes the measured vmlinux digest (kc_want) to every nitro-hv (kcache.h).
 */
#ifndef NITRO_BOOT_KERNEL_H
#define NITRO_BOOT_KERNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "boot/memory.h"

#define KERNEL_DIGEST_LEN 48 /* SHA-384 */

struct kernel_load {
	uint64_t kl_entry;
	uint64_t kl_start; /* guest range the kernel needs while booting */
	uint64_t kl_end;
	bool kl_vmlinux;		      /* host-side decompressed */
	uint8_t kl_digest[KERNEL_DIGEST_LEN]; /* SHA-384 of the vmlinux loaded (kl_vmlinux) */
};

struct kernel_cache {
	const char *kc_dir;		      /* NULL: no cache */
	uint8_t kc_kernel[KERNEL_DIGEST_LEN]; /* SHA-384 of the whole kernel file: the key */
	const uint8_t *kc_want; /* NULL, or the SHA-384 the vmlinux loaded must have */
	bool kc_write;		/* store a missing (or refused) entry */
};

/* kc may be NULL (no cache, nothing wanted); decompress = false keeps the guest
 * decompressor. */
int kernel_load(const struct guest_mem *m, const struct bzimage *bz, bool decompress,
		const struct kernel_cache *kc, struct kernel_load *kl, char *err, size_t errlen);

/* Loads an ELF64 x86-64 executable's PT_LOAD segments at their physical addresses. When
 * m has no mapping, only checks and measures. */
int elf_load(const struct guest_mem *m, const uint8_t *elf, size_t len, struct kernel_load *kl,
	     char *err, size_t errlen);

/* SHA-384 of len bytes (OpenSSL); 0 or -1. */
int kernel_sha384(const void *p, size_t len, uint8_t out[KERNEL_DIGEST_LEN]);
/* "vmlinux-<96 hex digits>": the entry name for a kernel digest. */
void kernel_cache_name(const uint8_t kd[KERNEL_DIGEST_LEN], char *out, size_t len);
/* The vmlinux in a bzImage's zstd payload (first frame), malloc'd: 0, 1 when the payload
 * is not zstd, -1 when it does not decompress. */
int kernel_decompress(const struct bzimage *bz, uint8_t **elf, size_t *len);
/* The entry of kernel digest kd in dir: 0 with the vmlinux (malloc'd) and its digest vd
 * when it passes every check above (want: NULL or the digest it must have); 1 when there
 * is none; -1 with err naming the reason when there is one but it is refused. */
int kernel_cache_read(const char *dir, const uint8_t kd[KERNEL_DIGEST_LEN], const uint8_t *want,
		      uint8_t **elf, size_t *len, uint8_t vd[KERNEL_DIGEST_LEN], char *err,
		      size_t errlen);
/* Writes the entry (a temporary file renamed into place); 0 or -1. */
int kernel_cache_store(const char *dir, const uint8_t kd[KERNEL_DIGEST_LEN], const uint8_t *elf,
		       size_t len, const uint8_t vd[KERNEL_DIGEST_LEN]);

#endif
