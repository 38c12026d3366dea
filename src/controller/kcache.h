/* The controller's kernel cache (issue 5): nitro-hv loads a zstd bzImage faster from its
 * host-decompressed vmlinux (src/boot/kernel.h), but a jailed hypervisor must not write a
 * cache another instance would then boot. So nitrod decompresses each measured kernel
 * itself, once, into STATE/kcache (root's, 0755), and every nitro-hv gets that folder
 * read-only with --cache-dir: what an instance boots is what nitrod derived from the
 * kernel the chip measured. Work per launch is a stat when the kernel file is unchanged.
 */
#ifndef NITRO_CONTROLLER_KCACHE_H
#define NITRO_CONTROLLER_KCACHE_H

#include <stddef.h>
#include <stdint.h>

/* Makes sure cache_dir holds the vmlinux of kernel (a no-op for a kernel that is not a
 * zstd bzImage: the guest decompresses it). 0, or -1 with err (a bad kernel: nitro-hv
 * would refuse it too). Call with g_ctl.c_lock held. */
int kcache_prepare(const char *cache_dir, const char *kernel, uint64_t mem_mib, char *err,
		   size_t errlen);

#endif
