/* The controller's kernel cache (issue 5; keyed and bound by SHA-384 since issue 10
 * item 1): nitro-hv loads a zstd bzImage faster from its host-decompressed vmlinux
 * (src/boot/kernel.h), but a jailed hypervisor must not write a cache another instance would
 * then boot. So nitrod decompresses each measured kernel itself into STATE/kcache (root's,
 * 0755), and every nitro-hv gets that folder read-only with --cache-dir and the measured
 * vmlinux digest with --vmlinux-sha384: what an instance boots is what nitrod derived from
 * the kernel the chip measured, and nothing else.
 *
 * Entries are named by the SHA-384 of the whole kernel file (the chip's digest), so no
 * kernel reaches another kernel's entry. The first time a kernel is seen (per nitrod
 * process) nitrod decompresses it from the very bytes it measured and checks (or writes
 * afresh) the entry on disk; later launches of the same kernel cost a lookup.
 */
#ifndef NITRO_CONTROLLER_KCACHE_H
#define NITRO_CONTROLLER_KCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Makes sure cache_dir holds the vmlinux of the kernel open at kernel_fd, whose SHA-384
 * the chip measured as kd (the file is read again and must still have that digest). On
 * 0, *have says whether there is a host-decompressed vmlinux (a zstd bzImage) and vd is
 * its SHA-384; -1 with err for a kernel that changed since it was measured or whose
 * vmlinux nitro-hv would refuse too. Not a bzImage: 0 with *have false (nitro-hv says
 * why). Call with g_ctl.c_lock held. */
int kcache_prepare(const char *cache_dir, int kernel_fd, const uint8_t kd[48], uint64_t mem_mib,
		   uint8_t vd[48], bool *have, char *err, size_t errlen);

/* Forgets which kernels were checked (tests: the next prepare checks the disk again). */
void kcache_forget(void);

#endif
