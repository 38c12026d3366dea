/* x86-64 Linux boot protocol: setup header checks, zero page, e820, page tables, GDT. */
#include "boot/boot.h"

#include <stdio.h>
#include <string.h>

#include "lib/le.h"
#include "lib/util.h"

/* Offsets in the file and in boot_params (the setup header sits at the same place). */
#define HDR_START 0x1f1
#define HDR_SETUP_SECTS 0x1f1
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_HEAP_END_PTR 0x224
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PAYLOAD_OFFSET 0x248
#define HDR_PAYLOAD_LENGTH 0x24c
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define HDR_MIN_END 0x264 /* protocol 2.12 headers reach at least here */

#define BP_ACPI_RSDP 0x070
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_SIZE 0x1000

#define LOADED_HIGH 0x01
#define CAN_USE_HEAP 0x80
#define XLF_KERNEL_64 0x01
#define XLF_CAN_BE_LOADED_ABOVE_4G 0x02

#define FAIL(...) RETURN_ERR(-1, __VA_ARGS__)

int bzimage_parse(const uint8_t *d, size_t len, struct bzimage *bz, char *err, size_t errlen)
{
	memset(bz, 0, sizeof(*bz));
	if (len < HDR_MIN_END)
		FAIL("not a bzImage (only %zu bytes)", len);
	if (le16_get(d + HDR_BOOT_FLAG) != 0xaa55 || memcmp(d + HDR_MAGIC, "HdrS", 4) != 0)
		FAIL("not a bzImage (no HdrS magic)");
	bz->bz_version = le16_get(d + HDR_VERSION);
	if (bz->bz_version < 0x020c)
		FAIL("boot protocol %u.%02u is too old (2.12 or later needed)", bz->bz_version >> 8,
		     bz->bz_version & 0xff);
	bz->bz_hdr_end = (size_t)HDR_MAGIC + d[HDR_JUMP + 1];
	if (bz->bz_hdr_end < HDR_MIN_END || bz->bz_hdr_end > len)
		FAIL("not a bzImage (setup header of bad length)");
	uint16_t xlf = le16_get(d + HDR_XLOADFLAGS);
	if (!(xlf & XLF_KERNEL_64))
		FAIL("not a 64-bit kernel (no 64-bit entry point)");
	bz->bz_above_4g = xlf & XLF_CAN_BE_LOADED_ABOVE_4G;
	if (!(d[HDR_LOADFLAGS] & LOADED_HIGH))
		FAIL("not a bzImage (zImage loaded low)");
	unsigned sects = d[HDR_SETUP_SECTS] ? d[HDR_SETUP_SECTS] : 4;
	bz->bz_pm_off = (size_t)(sects + 1) * 512;
	if (bz->bz_pm_off >= len)
		FAIL("truncated bzImage (no protected-mode kernel after %u setup sectors)", sects);
	bz->bz_pm_len = len - bz->bz_pm_off;
	bz->bz_cmdline_max = le32_get(d + HDR_CMDLINE_SIZE);
	bz->bz_initrd_max = le32_get(d + HDR_INITRD_ADDR_MAX);
	bz->bz_pref_address = le64_get(d + HDR_PREF_ADDRESS);
	bz->bz_init_size = le32_get(d + HDR_INIT_SIZE);
	uint32_t poff = le32_get(d + HDR_PAYLOAD_OFFSET), plen = le32_get(d + HDR_PAYLOAD_LENGTH);
	if (poff > bz->bz_pm_len || plen > bz->bz_pm_len - poff)
		FAIL("corrupt bzImage (payload outside the file)");
	bz->bz_payload_off = bz->bz_pm_off + poff;
	bz->bz_payload_len = plen;
	if (bz->bz_pref_address < BOOT_HIGH || bz->bz_pref_address >= MEM_HOLE_START ||
	    bz->bz_init_size == 0 || bz->bz_init_size > MEM_HOLE_START - bz->bz_pref_address)
		FAIL("corrupt bzImage (kernel address 0x%llx size 0x%x)",
		     (unsigned long long)bz->bz_pref_address, bz->bz_init_size);
	bz->bz_data = d;
	bz->bz_len = len;
	return 0;
}

int boot_check_cmdline(const struct bzimage *bz, const char *cmdline, char *err, size_t errlen)
{
	size_t n = strlen(cmdline);
	if (n > bz->bz_cmdline_max)
		FAIL("command line is %zu bytes, this kernel takes at most %u", n,
		     bz->bz_cmdline_max);
	if (n >= BOOT_ACPI - BOOT_CMDLINE)
		FAIL("command line is %zu bytes, too long", n);
	return 0;
}

int boot_plan(const struct bzimage *bz, const struct guest_mem *m, uint64_t entry,
	      uint64_t kernel_start, uint64_t kernel_end, uint64_t initrd_size,
	      struct boot_plan *bp, char *err, size_t errlen)
{
	memset(bp, 0, sizeof(*bp));
	uint64_t low_end = m->gm_regions[0].mr_size;
	if (kernel_end > low_end)
		FAIL("kernel needs memory up to %llu MiB, the guest has %llu MiB below 3 GiB",
		     (unsigned long long)(kernel_end >> 20), (unsigned long long)(low_end >> 20));
	bp->bp_entry = entry;
	bp->bp_kernel = kernel_start;
	bp->bp_kernel_end = kernel_end;
	if (initrd_size == 0)
		return 0;
	uint64_t top = low_end;
	if ((uint64_t)bz->bz_initrd_max + 1 < top)
		top = (uint64_t)bz->bz_initrd_max + 1;
	uint64_t floor = (kernel_end + 0xfff) & ~0xfffull;
	if (initrd_size > top || ((top - initrd_size) & ~0xfffull) < floor)
		FAIL("initrd (%llu KiB) does not fit in guest memory above the kernel (%llu KiB "
		     "free below %llu MiB); give the guest more --memory",
		     (unsigned long long)(initrd_size >> 10),
		     (unsigned long long)(top > floor ? (top - floor) >> 10 : 0),
		     (unsigned long long)(top >> 20));
	bp->bp_initrd = (top - initrd_size) & ~0xfffull;
	bp->bp_initrd_size = initrd_size;
	return 0;
}

static unsigned e820_add(struct e820_entry *out, unsigned n, unsigned max, uint64_t addr,
			 uint64_t size, uint32_t type)
{
	if (n < max && size)
		out[n++] = (struct e820_entry){.addr = addr, .size = size, .type = type};
	return n;
}

unsigned e820_build(const struct guest_mem *m, struct e820_entry *out, unsigned max)
{
	unsigned n = 0;
	uint64_t low = m->gm_regions[0].mr_size;
	n = e820_add(out, n, max, 0, BOOT_EBDA, E820_RAM);
	n = e820_add(out, n, max, BOOT_EBDA, 0xa0000 - BOOT_EBDA, E820_RESERVED);
	/* ACPI tables and (BOOT_TPM_LOG) the TPM event log */
	n = e820_add(out, n, max, BOOT_ACPI, BOOT_ACPI_END - BOOT_ACPI, E820_RESERVED);
	n = e820_add(out, n, max, BOOT_HIGH, low - BOOT_HIGH, E820_RAM);
	if (m->gm_nregions > 1)
		n = e820_add(out, n, max, m->gm_regions[1].mr_gpa, m->gm_regions[1].mr_size,
			     E820_RAM);
	return n;
}

/* Identity map of the first 4 GiB: PML4[0] -> PDPT, PDPT[0..3] -> 4 PDs of 2 MiB pages. */
static void write_page_tables(uint8_t *pml4, uint8_t *pdpt, uint8_t *pd)
{
	memset(pml4, 0, 4096);
	memset(pdpt, 0, 4096);
	le64_put(pml4, BOOT_PDPT | 0x3);
	for (uint64_t i = 0; i < 4; i++)
		le64_put(pdpt + i * 8, (BOOT_PD + i * 4096) | 0x3);
	for (uint64_t i = 0; i < 4 * 512; i++)
		le64_put(pd + i * 8, (i << 21) | 0x83); /* present, writable, 2 MiB */
}

/* Null, null, 64-bit code (0x10), data (0x18): the selectors Linux expects at entry. */
static void write_gdt(uint8_t *gdt)
{
	static const uint64_t entries[] = {0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull};
	for (unsigned i = 0; i < sizeof(entries) / sizeof(entries[0]); i++)
		le64_put(gdt + i * 8, entries[i]);
}

int boot_write(const struct guest_mem *m, const struct bzimage *bz, const struct boot_plan *bp,
	       const char *cmdline, char *err, size_t errlen)
{
	if (boot_check_cmdline(bz, cmdline, err, errlen) < 0)
		return -1;
	uint8_t *zp = gpa_ptr(m, BOOT_ZERO_PAGE, BP_SIZE);
	uint8_t *cl = gpa_ptr(m, BOOT_CMDLINE, strlen(cmdline) + 1);
	uint8_t *pml4 = gpa_ptr(m, BOOT_PML4, 4096), *pdpt = gpa_ptr(m, BOOT_PDPT, 4096);
	uint8_t *pd = gpa_ptr(m, BOOT_PD, 4 * 4096), *gdt = gpa_ptr(m, BOOT_GDT, 32);
	if (!zp || !cl || !pml4 || !pdpt || !pd || !gdt)
		FAIL("guest memory too small for the boot structures");

	memset(zp, 0, BP_SIZE);
	memcpy(zp + HDR_START, bz->bz_data + HDR_START, bz->bz_hdr_end - HDR_START);
	zp[HDR_TYPE_OF_LOADER] = 0xff;
	zp[HDR_LOADFLAGS] |= LOADED_HIGH | CAN_USE_HEAP;
	le16_put(zp + HDR_HEAP_END_PTR, 0xfe00);
	le32_put(zp + HDR_CMD_LINE_PTR, BOOT_CMDLINE);
	le32_put(zp + BP_EXT_CMD_LINE_PTR, 0);
	le32_put(zp + HDR_RAMDISK_IMAGE, (uint32_t)bp->bp_initrd);
	le32_put(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(bp->bp_initrd >> 32));
	le32_put(zp + HDR_RAMDISK_SIZE, (uint32_t)bp->bp_initrd_size);
	le32_put(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(bp->bp_initrd_size >> 32));
	le64_put(zp + BP_ACPI_RSDP, bp->bp_rsdp);

	struct e820_entry map[E820_MAX];
	unsigned n = e820_build(m, map, E820_MAX);
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + BP_E820_TABLE, map, n * sizeof(map[0]));

	memcpy(cl, cmdline, strlen(cmdline) + 1);
	write_page_tables(pml4, pdpt, pd);
	write_gdt(gdt);
	return 0;
}
