/* libFuzzer target: a bzImage from the input through everything nitro does with it before
 * the guest runs: bzimage_parse, then (when it passes) boot_check_cmdline, boot_plan on a
 * 256 MiB layout with an initrd size taken from the input, boot_write and kernel_load
 * (with and without host-side decompression) into a 64 MiB guest made once. Every field
 * bzimage_parse keeps is checked against the input and the plan against the layout.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/kernel.h"
#include "boot/memory.h"

#include "fuzz.h"

#define CMDLINE "console=ttyS0 reboot=k panic=-1"

static void check_err(const char *err, size_t errlen)
{
	CHECK(memchr(err, '\0', errlen) != NULL);
	CHECK(err[0] != '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct bzimage bz;
	char err[256];

	if (bzimage_parse(d, n, &bz, err, sizeof(err)) != 0) {
		check_err(err, sizeof(err));
		return 0;
	}
	CHECK(bz.bz_data == d && bz.bz_len == n);
	CHECK(bz.bz_version >= 0x020c);
	CHECK(bz.bz_hdr_end >= 0x264 && bz.bz_hdr_end <= n);
	CHECK(bz.bz_pm_off >= 512 && bz.bz_pm_off < n && bz.bz_pm_off + bz.bz_pm_len == n);
	CHECK(bz.bz_payload_off >= bz.bz_pm_off && bz.bz_payload_off <= n);
	CHECK(bz.bz_payload_len <= n - bz.bz_payload_off);
	CHECK(bz.bz_pref_address >= BOOT_HIGH && bz.bz_init_size > 0);
	CHECK(bz.bz_pref_address + bz.bz_init_size <= MEM_HOLE_START);

	int cl = boot_check_cmdline(&bz, CMDLINE, err, sizeof(err));
	CHECK((cl == 0) == (strlen(CMDLINE) <= bz.bz_cmdline_max));

	struct guest_mem layout;
	mem_layout(&layout, 256 * MiB);
	uint64_t kend = bz.bz_pref_address + bz.bz_init_size;
	uint32_t tail = 0;
	memcpy(&tail, d + n - 4, 4);
	uint64_t initrd = tail & 0x0fffffff; /* up to 256 MiB */
	struct boot_plan bp;
	int r = boot_plan(&bz, &layout, 0x1000200, BOOT_HIGH, kend, initrd, &bp, err, sizeof(err));
	if (kend > 256 * MiB)
		CHECK(r != 0);
	if (r != 0) {
		check_err(err, sizeof(err));
	} else {
		CHECK(bp.bp_kernel_end == kend);
		if (initrd) {
			uint64_t top = 256 * MiB;
			if ((uint64_t)bz.bz_initrd_max + 1 < top)
				top = (uint64_t)bz.bz_initrd_max + 1;
			CHECK(bp.bp_initrd_size == initrd);
			CHECK(bp.bp_initrd % 4096 == 0);
			CHECK(bp.bp_initrd >= kend);
			CHECK(bp.bp_initrd + initrd <= top);
		} else {
			CHECK(bp.bp_initrd == 0);
		}
	}

	struct guest_mem *m = fuzz_guest();
	if (cl == 0) {
		struct boot_plan small = {
		    .bp_entry = 0x1000200, .bp_initrd = 0x2000000, .bp_initrd_size = 4096};
		CHECK(boot_write(m, &bz, &small, CMDLINE, err, sizeof(err)) == 0);
		const uint8_t *zp = m->gm_base + BOOT_ZERO_PAGE;
		CHECK(memcmp(zp + 0x202, "HdrS", 4) == 0);
		CHECK(zp[0x210] == 0xff);
		CHECK(strcmp((const char *)m->gm_base + BOOT_CMDLINE, CMDLINE) == 0);
	}

	/* Loading: the guest has 64 MiB, so most images are refused for their size. */
	struct kernel_load kl;
	for (int decompress = 0; decompress < 2; decompress++) {
		memset(&kl, 0, sizeof(kl));
		r = kernel_load(m, &bz, decompress, NULL, &kl, err, sizeof(err));
		if (r != 0) {
			check_err(err, sizeof(err));
			continue;
		}
		CHECK(kl.kl_start >= BOOT_HIGH && kl.kl_start <= kl.kl_end);
		CHECK(kl.kl_end <= m->gm_regions[0].mr_size || kl.kl_vmlinux);
		if (!kl.kl_vmlinux) {
			CHECK(kl.kl_entry == BOOT_HIGH + 0x200);
			CHECK(memcmp(m->gm_base + BOOT_HIGH, d + bz.bz_pm_off, bz.bz_pm_len) == 0);
		}
	}
	return 0;
}
