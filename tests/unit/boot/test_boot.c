/* Unit tests for the boot protocol (src/boot/boot.c), guest memory (src/boot/memory.c) and the
 * ELF loader (src/boot/kernel.c): bzImage setup-header parsing and every rejection on
 * synthetic images (and on the real Debian kernel when it is cached), command-line limits,
 * initrd placement, the e820 map, gpa_ptr bounds around the end of RAM and the PCI hole,
 * the zero page, page tables and GDT that boot_write leaves in guest memory, elf_load on
 * synthetic executables (the kernel cache: test_kcache.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <elf.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot/boot.h"
#include "boot/kernel.h"
#include "boot/memory.h"
#include "lib/le.h"
#include "lib/util.h"

#include "../testlib/bzimage.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

/* ---- synthetic bzImage ---- */

#define BZ_LEN 0x2000
#define BZ_PAYLOAD_OFF 0x40
#define BZ_PAYLOAD_LEN 0x100
#define BZ_INIT_SIZE 0x2000000u
#define BZ_CMDLINE_MAX 2047u

/* Fills buf (len bytes) with a minimal valid protocol 2.15 bzImage. */
static void make_bz(uint8_t *buf, size_t len)
{
	memset(buf, 0, len);
	for (size_t i = BZ_PM_OFF; i < len; i++)
		buf[i] = (uint8_t)(i * 7);
	bz_header(buf, (struct bz_shape){.payload_off = BZ_PAYLOAD_OFF,
					 .payload_len = BZ_PAYLOAD_LEN,
					 .cmdline_size = BZ_CMDLINE_MAX,
					 .init_size = BZ_INIT_SIZE});
}

/* Parses buf and expects a rejection whose message contains want. */
static void expect_reject(const uint8_t *buf, size_t len, const char *want)
{
	struct bzimage bz;
	char err[256] = "";

	assert_int_equal(bzimage_parse(buf, len, &bz, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("message \"%s\" lacks \"%s\"", err, want);
}

static void test_bz_valid(void **state)
{
	(void)state;
	uint8_t buf[BZ_LEN];
	struct bzimage bz;
	char err[256] = "";

	make_bz(buf, sizeof(buf));
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);
	assert_ptr_equal(bz.bz_data, buf);
	assert_int_equal(bz.bz_len, sizeof(buf));
	assert_int_equal(bz.bz_hdr_end, 0x202 + BZ_JUMP);
	assert_int_equal(bz.bz_pm_off, BZ_PM_OFF);
	assert_int_equal(bz.bz_pm_len, sizeof(buf) - BZ_PM_OFF);
	assert_int_equal(bz.bz_version, 0x020f);
	assert_int_equal(bz.bz_cmdline_max, BZ_CMDLINE_MAX);
	assert_int_equal(bz.bz_initrd_max, BZ_INITRD_MAX);
	assert_int_equal(bz.bz_pref_address, BZ_PREF);
	assert_int_equal(bz.bz_init_size, BZ_INIT_SIZE);
	assert_int_equal(bz.bz_payload_off, BZ_PM_OFF + BZ_PAYLOAD_OFF);
	assert_int_equal(bz.bz_payload_len, BZ_PAYLOAD_LEN);
	assert_true(bz.bz_above_4g);

	/* Without XLF_CAN_BE_LOADED_ABOVE_4G. */
	le16_put(buf + 0x236, 0x0001);
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);
	assert_false(bz.bz_above_4g);

	/* Protocol 2.12 exactly is enough. */
	le16_put(buf + 0x206, 0x020c);
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);
	assert_int_equal(bz.bz_version, 0x020c);
}

static void test_bz_setup_sects_zero(void **state)
{
	(void)state;
	uint8_t buf[BZ_LEN];
	struct bzimage bz;
	char err[256];

	make_bz(buf, sizeof(buf));
	buf[0x1f1] = 0; /* means 4 */
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);
	assert_int_equal(bz.bz_pm_off, 5 * 512);
	buf[0x1f1] = 1;
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);
	assert_int_equal(bz.bz_pm_off, 2 * 512);
	assert_int_equal(bz.bz_payload_off, 2 * 512 + BZ_PAYLOAD_OFF);
}

static void test_bz_reject(void **state)
{
	(void)state;
	uint8_t buf[BZ_LEN];

	/* Too short: nothing, and one byte short of the 2.12 header. */
	make_bz(buf, sizeof(buf));
	expect_reject(buf, 0, "not a bzImage");
	expect_reject(buf, 0x263, "not a bzImage");

	make_bz(buf, sizeof(buf));
	memcpy(buf + 0x202, "HdrT", 4);
	expect_reject(buf, sizeof(buf), "HdrS");

	make_bz(buf, sizeof(buf));
	le16_put(buf + 0x1fe, 0xaa56);
	expect_reject(buf, sizeof(buf), "not a bzImage");

	make_bz(buf, sizeof(buf));
	le16_put(buf + 0x206, 0x020b);
	expect_reject(buf, sizeof(buf), "2.11");

	make_bz(buf, sizeof(buf));
	le16_put(buf + 0x236, 0x0002);
	expect_reject(buf, sizeof(buf), "64-bit");

	make_bz(buf, sizeof(buf));
	buf[0x211] = 0;
	expect_reject(buf, sizeof(buf), "not a bzImage");

	/* Setup header shorter than protocol 2.12's, or past the end of the file. */
	make_bz(buf, sizeof(buf));
	buf[0x201] = 0x61;
	expect_reject(buf, sizeof(buf), "setup header");
	make_bz(buf, sizeof(buf));
	expect_reject(buf, 0x267, "setup header");

	/* setup_sects reaching (or passing) the end of the file. */
	make_bz(buf, sizeof(buf));
	buf[0x1f1] = 15; /* pm_off = 16 * 512 = 0x2000 = len */
	expect_reject(buf, sizeof(buf), "truncated");
	buf[0x1f1] = 255;
	expect_reject(buf, sizeof(buf), "truncated");

	/* Payload outside the protected-mode part. */
	make_bz(buf, sizeof(buf));
	le32_put(buf + 0x248, BZ_LEN - BZ_PM_OFF + 1);
	le32_put(buf + 0x24c, 0);
	expect_reject(buf, sizeof(buf), "payload outside");
	make_bz(buf, sizeof(buf));
	le32_put(buf + 0x24c, BZ_LEN - BZ_PM_OFF - BZ_PAYLOAD_OFF + 1);
	expect_reject(buf, sizeof(buf), "payload outside");
	make_bz(buf, sizeof(buf));
	le32_put(buf + 0x248, 0x10);
	le32_put(buf + 0x24c, 0xfffffff8); /* offset + length wraps in 32 bits */
	expect_reject(buf, sizeof(buf), "payload outside");

	/* Absurd kernel address or size. */
	make_bz(buf, sizeof(buf));
	le64_put(buf + 0x258, 0x80000);
	expect_reject(buf, sizeof(buf), "kernel address");
	make_bz(buf, sizeof(buf));
	le64_put(buf + 0x258, 0xffffffffffe00000ull);
	expect_reject(buf, sizeof(buf), "kernel address");
	make_bz(buf, sizeof(buf));
	le64_put(buf + 0x258, MEM_HOLE_START);
	expect_reject(buf, sizeof(buf), "kernel address");
	make_bz(buf, sizeof(buf));
	le32_put(buf + 0x260, 0);
	expect_reject(buf, sizeof(buf), "kernel address");
	make_bz(buf, sizeof(buf));
	le32_put(buf + 0x260, 0xffffffff);
	expect_reject(buf, sizeof(buf), "kernel address");
	make_bz(buf, sizeof(buf));
	le32_put(buf + 0x260, (uint32_t)(MEM_HOLE_START - BZ_PREF) + 1);
	expect_reject(buf, sizeof(buf), "kernel address");
}

static void test_bz_boundaries_accepted(void **state)
{
	(void)state;
	uint8_t buf[BZ_LEN];
	struct bzimage bz;
	char err[256];

	/* Payload ending exactly at the end of the file. */
	make_bz(buf, sizeof(buf));
	le32_put(buf + 0x24c, BZ_LEN - BZ_PM_OFF - BZ_PAYLOAD_OFF);
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);
	assert_int_equal(bz.bz_payload_off + bz.bz_payload_len, BZ_LEN);

	/* Kernel ending exactly at the PCI hole. */
	make_bz(buf, sizeof(buf));
	le32_put(buf + 0x260, (uint32_t)(MEM_HOLE_START - BZ_PREF));
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);

	/* Longest setup header the jump byte can describe. */
	make_bz(buf, sizeof(buf));
	buf[0x201] = 0xff;
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);
	assert_int_equal(bz.bz_hdr_end, 0x301);
}

static void test_bz_real_kernel(void **state)
{
	(void)state;
	const char *home = getenv("HOME");
	char path[4096];
	uint8_t *buf;
	size_t len;
	struct bzimage bz;
	char err[256] = "";

	if (!home)
		skip();
	snprintf(path, sizeof(path), "%s/.cache/nitro/images/vmlinuz", home);
	if (access(path, R_OK) != 0)
		skip();
	assert_int_equal(read_file(path, 256u << 20, &buf, &len), 0);
	if (bzimage_parse(buf, len, &bz, err, sizeof(err)) != 0)
		fail_msg("%s: %s", path, err);
	assert_true(bz.bz_version >= 0x020c);
	assert_true(bz.bz_payload_len >= 4);
	assert_true(bz.bz_payload_off + bz.bz_payload_len <= len);
	static const uint8_t zstd_magic[4] = {0x28, 0xb5, 0x2f, 0xfd};
	assert_memory_equal(buf + bz.bz_payload_off, zstd_magic, 4);
	assert_true(bz.bz_pref_address >= BOOT_HIGH);
	assert_true(bz.bz_cmdline_max >= 255);
	free(buf);
}

/* ---- command line ---- */

static void test_cmdline(void **state)
{
	(void)state;
	uint8_t buf[BZ_LEN];
	struct bzimage bz;
	char err[256];
	char line[BZ_CMDLINE_MAX + 2];

	make_bz(buf, sizeof(buf));
	assert_int_equal(bzimage_parse(buf, sizeof(buf), &bz, err, sizeof(err)), 0);
	memset(line, 'x', BZ_CMDLINE_MAX);
	line[BZ_CMDLINE_MAX] = '\0';
	assert_int_equal(boot_check_cmdline(&bz, line, err, sizeof(err)), 0);
	assert_int_equal(boot_check_cmdline(&bz, "", err, sizeof(err)), 0);
	line[BZ_CMDLINE_MAX] = 'x';
	line[BZ_CMDLINE_MAX + 1] = '\0';
	err[0] = '\0';
	assert_int_equal(boot_check_cmdline(&bz, line, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "2048"));
	assert_non_null(strstr(err, "2047"));

	/* A kernel's limit larger than the room below the ACPI tables is capped. */
	bz.bz_cmdline_max = 0xffffffff;
	size_t room = BOOT_ACPI - BOOT_CMDLINE;
	char *big = malloc(room + 1);
	assert_non_null(big);
	memset(big, 'y', room - 1);
	big[room - 1] = '\0';
	assert_int_equal(boot_check_cmdline(&bz, big, err, sizeof(err)), 0);
	big[room - 1] = 'y';
	big[room] = '\0';
	assert_int_equal(boot_check_cmdline(&bz, big, err, sizeof(err)), -1);
	free(big);
}

/* ---- boot_plan ---- */

static void parse_default(uint8_t *buf, struct bzimage *bz)
{
	char err[256];

	make_bz(buf, BZ_LEN);
	assert_int_equal(bzimage_parse(buf, BZ_LEN, bz, err, sizeof(err)), 0);
}

static void test_plan(void **state)
{
	(void)state;
	uint8_t buf[BZ_LEN];
	struct bzimage bz;
	struct guest_mem m;
	struct boot_plan bp;
	char err[256];
	const uint64_t kend = BZ_PREF + BZ_INIT_SIZE + 123; /* not page aligned */

	parse_default(buf, &bz);
	mem_layout(&m, 256 * MiB);

	/* No initrd. */
	assert_int_equal(boot_plan(&bz, &m, 0x1234, BOOT_HIGH, kend, 0, &bp, err, sizeof(err)), 0);
	assert_int_equal(bp.bp_entry, 0x1234);
	assert_int_equal(bp.bp_kernel, BOOT_HIGH);
	assert_int_equal(bp.bp_kernel_end, kend);
	assert_int_equal(bp.bp_initrd, 0);
	assert_int_equal(bp.bp_initrd_size, 0);
	assert_int_equal(bp.bp_rsdp, 0);

	/* An initrd goes as high as possible, page aligned, inside RAM. */
	uint64_t isz = 10 * MiB + 123;
	assert_int_equal(boot_plan(&bz, &m, 0, BOOT_HIGH, kend, isz, &bp, err, sizeof(err)), 0);
	assert_int_equal(bp.bp_initrd, (256 * MiB - isz) & ~0xfffull);
	assert_int_equal(bp.bp_initrd % 4096, 0);
	assert_int_equal(bp.bp_initrd_size, isz);
	assert_true(bp.bp_initrd >= kend);
	assert_true(bp.bp_initrd + isz <= 256 * MiB);

	/* initrd_addr_max below the end of RAM bounds it. */
	struct guest_mem big;
	mem_layout(&big, 2 * GiB);
	bz.bz_initrd_max = 0x37ffffff;
	assert_int_equal(boot_plan(&bz, &big, 0, BOOT_HIGH, kend, isz, &bp, err, sizeof(err)), 0);
	assert_int_equal(bp.bp_initrd, (0x38000000 - isz) & ~0xfffull);
	assert_true(bp.bp_initrd + isz <= 0x38000000);

	/* And a layout above 4 GiB still places it below 3 GiB (low RAM only). */
	mem_layout(&big, 8 * GiB);
	bz.bz_initrd_max = 0xffffffff;
	assert_int_equal(boot_plan(&bz, &big, 0, BOOT_HIGH, kend, isz, &bp, err, sizeof(err)), 0);
	assert_int_equal(bp.bp_initrd, (MEM_HOLE_START - isz) & ~0xfffull);
	bz.bz_initrd_max = BZ_INITRD_MAX;

	/* Exactly fitting between the (rounded up) kernel end and the top of RAM. */
	uint64_t floor = (kend + 0xfff) & ~0xfffull;
	uint64_t exact = 256 * MiB - floor;
	assert_int_equal(boot_plan(&bz, &m, 0, BOOT_HIGH, kend, exact, &bp, err, sizeof(err)), 0);
	assert_int_equal(bp.bp_initrd, floor);
	err[0] = '\0';
	assert_int_equal(boot_plan(&bz, &m, 0, BOOT_HIGH, kend, exact + 1, &bp, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "does not fit"));

	/* Far too big. */
	err[0] = '\0';
	assert_int_equal(boot_plan(&bz, &m, 0, BOOT_HIGH, kend, 300 * MiB, &bp, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "does not fit"));
	err[0] = '\0';
	assert_int_equal(boot_plan(&bz, &m, 0, BOOT_HIGH, kend, UINT64_MAX, &bp, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "does not fit"));

	/* initrd_addr_max below the kernel: nothing fits. */
	bz.bz_initrd_max = 0x00ffffff;
	err[0] = '\0';
	assert_int_equal(boot_plan(&bz, &m, 0, BOOT_HIGH, kend, 4096, &bp, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "does not fit"));
	bz.bz_initrd_max = BZ_INITRD_MAX;

	/* A kernel that does not fit below 3 GiB. */
	err[0] = '\0';
	assert_int_equal(boot_plan(&bz, &m, 0, BOOT_HIGH, 256 * MiB + 1, 0, &bp, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "kernel needs"));
	assert_int_equal(boot_plan(&bz, &m, 0, BOOT_HIGH, 256 * MiB, 0, &bp, err, sizeof(err)), 0);
}

/* ---- e820 ---- */

static void check_sorted(const struct e820_entry *e, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		assert_true(e[i].size > 0);
		assert_true(e[i].addr + e[i].size > e[i].addr);
		if (i > 0)
			assert_true(e[i - 1].addr + e[i - 1].size <= e[i].addr);
	}
}

static void check_entry(const struct e820_entry *e, uint64_t addr, uint64_t end, uint32_t type)
{
	assert_int_equal(e->addr, addr);
	assert_int_equal(e->size, end - addr);
	assert_int_equal(e->type, type);
}

static void check_low_entries(const struct e820_entry *e)
{
	check_entry(&e[0], 0, 0x9fc00, E820_RAM);
	check_entry(&e[1], 0x9fc00, 0xa0000, E820_RESERVED);
	check_entry(&e[2], 0xe0000, 0x100000, E820_RESERVED);
}

static void test_e820(void **state)
{
	(void)state;
	struct guest_mem m;
	struct e820_entry e[E820_MAX];
	unsigned n;

	assert_int_equal(sizeof(struct e820_entry), 20);

	mem_layout(&m, 256 * MiB);
	n = e820_build(&m, e, E820_MAX);
	assert_int_equal(n, 4);
	check_low_entries(e);
	check_entry(&e[3], 0x100000, 256 * MiB, E820_RAM);
	check_sorted(e, n);

	mem_layout(&m, 3 * GiB);
	assert_int_equal(m.gm_nregions, 1);
	n = e820_build(&m, e, E820_MAX);
	assert_int_equal(n, 4);
	check_low_entries(e);
	check_entry(&e[3], 0x100000, 0xc0000000, E820_RAM);
	check_sorted(e, n);

	mem_layout(&m, 6 * GiB);
	assert_int_equal(m.gm_nregions, 2);
	n = e820_build(&m, e, E820_MAX);
	assert_int_equal(n, 5);
	check_low_entries(e);
	check_entry(&e[3], 0x100000, 0xc0000000, E820_RAM);
	check_entry(&e[4], 4 * GiB, 4 * GiB + 3 * GiB, E820_RAM);
	check_sorted(e, n);
	/* Total RAM in the map equals the guest's size minus the two low holes. */
	uint64_t ram = 0;
	for (unsigned i = 0; i < n; i++)
		if (e[i].type == E820_RAM)
			ram += e[i].size;
	assert_int_equal(ram, 6 * GiB - (0xa0000 - 0x9fc00) - (0x100000 - 0xa0000));

	/* max limits the output. */
	memset(e, 0xee, sizeof(e));
	n = e820_build(&m, e, 2);
	assert_int_equal(n, 2);
	check_entry(&e[0], 0, 0x9fc00, E820_RAM);
	assert_int_equal(e[2].addr, 0xeeeeeeeeeeeeeeeeull);
	assert_int_equal(e820_build(&m, e, 0), 0);
}

/* ---- mem_layout and gpa_ptr ---- */

static void test_mem_layout(void **state)
{
	(void)state;
	struct guest_mem m;

	mem_layout(&m, 64 * MiB);
	assert_int_equal(m.gm_fd, -1);
	assert_null(m.gm_base);
	assert_int_equal(m.gm_size, 64 * MiB);
	assert_int_equal(m.gm_nregions, 1);
	assert_int_equal(m.gm_regions[0].mr_gpa, 0);
	assert_int_equal(m.gm_regions[0].mr_size, 64 * MiB);
	assert_int_equal(m.gm_regions[0].mr_offset, 0);
	/* No backing: nothing is reachable. */
	assert_null(gpa_ptr(&m, 0, 1));
	assert_null(gpa_ptr(&m, 0x1000, 0));

	mem_layout(&m, 3 * GiB + 64 * MiB);
	assert_int_equal(m.gm_nregions, 2);
	assert_int_equal(m.gm_regions[0].mr_size, MEM_HOLE_START);
	assert_int_equal(m.gm_regions[1].mr_gpa, MEM_HIGH_START);
	assert_int_equal(m.gm_regions[1].mr_size, 64 * MiB);
	assert_int_equal(m.gm_regions[1].mr_offset, MEM_HOLE_START);
}

static void test_gpa_ptr_small(void **state)
{
	(void)state;
	struct guest_mem m;
	const uint64_t size = 64 * MiB;

	assert_int_equal(mem_create(&m, size), 0);
	assert_true(m.gm_fd >= 0);
	assert_non_null(m.gm_base);
	assert_ptr_equal(gpa_ptr(&m, 0, size), m.gm_base);
	assert_ptr_equal(gpa_ptr(&m, size - 1, 1), m.gm_base + size - 1);
	assert_null(gpa_ptr(&m, size, 1));
	assert_null(gpa_ptr(&m, size - 4, 8));
	assert_null(gpa_ptr(&m, 0, size + 1));
	assert_null(gpa_ptr(&m, 1, UINT64_MAX));
	assert_null(gpa_ptr(&m, UINT64_MAX, 2));
	assert_null(gpa_ptr(&m, UINT64_MAX - 1, 4));
	assert_null(gpa_ptr(&m, 4 * GiB, 1));
	/* The memory is usable and shared with the memfd. */
	uint8_t *p = gpa_ptr(&m, size - 1, 1);
	*p = 0x5a;
	uint8_t b = 0;
	assert_int_equal(pread(m.gm_fd, &b, 1, (off_t)(size - 1)), 1);
	assert_int_equal(b, 0x5a);
	mem_destroy(&m);
	assert_null(m.gm_base);
	assert_int_equal(m.gm_fd, -1);
	assert_null(gpa_ptr(&m, 0, 1));
}

static void test_gpa_ptr_hole(void **state)
{
	(void)state;
	struct guest_mem m;
	const uint64_t high = 64 * MiB;

	assert_int_equal(mem_create(&m, MEM_HOLE_START + high), 0);
	assert_int_equal(m.gm_nregions, 2);
	/* Low region up to the hole. */
	assert_ptr_equal(gpa_ptr(&m, MEM_HOLE_START - 1, 1), m.gm_base + MEM_HOLE_START - 1);
	assert_null(gpa_ptr(&m, MEM_HOLE_START - 1, 2));
	/* The hole itself. */
	assert_null(gpa_ptr(&m, MEM_HOLE_START, 1));
	assert_null(gpa_ptr(&m, 0xd0000000, 4096));
	assert_null(gpa_ptr(&m, MEM_HIGH_START - 1, 1));
	assert_null(gpa_ptr(&m, MEM_HIGH_START - 1, 2));
	/* High region at 4 GiB, backed at offset 3 GiB of the memfd. */
	uint8_t *hi = gpa_ptr(&m, MEM_HIGH_START, 1);
	assert_ptr_equal(hi, m.gm_base + MEM_HOLE_START);
	assert_ptr_equal(gpa_ptr(&m, MEM_HIGH_START, high), hi);
	assert_ptr_equal(gpa_ptr(&m, MEM_HIGH_START + high - 1, 1), hi + high - 1);
	assert_null(gpa_ptr(&m, MEM_HIGH_START + high, 1));
	assert_null(gpa_ptr(&m, MEM_HIGH_START + high - 1, 2));
	assert_null(gpa_ptr(&m, MEM_HIGH_START, high + 1));
	/* A range spanning both regions is not one region. */
	assert_null(gpa_ptr(&m, 0, MEM_HOLE_START + high));
	*hi = 0xa5;
	uint8_t b = 0;
	assert_int_equal(pread(m.gm_fd, &b, 1, (off_t)MEM_HOLE_START), 1);
	assert_int_equal(b, 0xa5);
	mem_destroy(&m);
}

/* ---- boot_write ---- */

static void test_boot_write(void **state)
{
	(void)state;
	uint8_t buf[BZ_LEN];
	struct bzimage bz;
	struct guest_mem m;
	char err[256] = "";
	const char *cmdline = "console=ttyS0 root=/dev/vda quiet";
	const struct boot_plan bp = {
	    .bp_entry = 0x1000200,
	    .bp_kernel = BOOT_HIGH,
	    .bp_kernel_end = 0x3000000,
	    .bp_initrd = 0x3400000,
	    .bp_initrd_size = 0x123456,
	    .bp_rsdp = BOOT_ACPI,
	};

	parse_default(buf, &bz);
	buf[0x210] = 0x11;		 /* overwritten by boot_write */
	memset(buf + 0x268, 0xee, 0x20); /* past the setup header: not copied */
	assert_int_equal(mem_create(&m, 64 * MiB), 0);
	uint8_t *g = m.gm_base;
	memset(g, 0xcc, 1 * MiB); /* all the boot structures live below 1 MiB */

	if (boot_write(&m, &bz, &bp, cmdline, err, sizeof(err)) != 0)
		fail_msg("boot_write: %s", err);

	const uint8_t *zp = g + BOOT_ZERO_PAGE;
	/* Setup header copied from the image, the rest of the page zeroed. */
	assert_memory_equal(zp + 0x1f1, buf + 0x1f1, 0x210 - 0x1f1);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(le16_get(zp + 0x206), 0x020f);
	assert_int_equal(le64_get(zp + 0x258), BZ_PREF);
	assert_int_equal(zp[0x000], 0);
	assert_int_equal(zp[0x1f0], 0);
	assert_int_equal(zp[0x268], 0); /* just past the setup header */
	assert_int_equal(zp[0xfff], 0);
	/* Loader fields. */
	assert_int_equal(zp[0x210], 0xff);
	assert_int_equal(zp[0x211] & 0x81, 0x81);
	assert_int_equal(le16_get(zp + 0x224), 0xfe00);
	assert_int_equal(le32_get(zp + 0x228), BOOT_CMDLINE);
	assert_int_equal(le32_get(zp + 0x0c8), 0);
	assert_int_equal(le32_get(zp + 0x218), 0x3400000);
	assert_int_equal(le32_get(zp + 0x21c), 0x123456);
	assert_int_equal(le32_get(zp + 0x0c0), 0);
	assert_int_equal(le32_get(zp + 0x0c4), 0);
	assert_int_equal(le64_get(zp + 0x070), BOOT_ACPI);
	/* e820 map. */
	struct e820_entry want[E820_MAX];
	unsigned n = e820_build(&m, want, E820_MAX);
	assert_int_equal(n, 4);
	assert_int_equal(zp[0x1e8], n);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = zp + 0x2d0 + 20 * i;
		assert_int_equal(le64_get(e), want[i].addr);
		assert_int_equal(le64_get(e + 8), want[i].size);
		assert_int_equal(le32_get(e + 16), want[i].type);
	}
	assert_int_equal(le64_get(zp + 0x2d0 + 20 * 3 + 8), 63 * MiB);
	assert_int_equal(zp[0x2d0 + 20 * n], 0);
	/* Command line with its NUL. */
	assert_string_equal((const char *)(g + BOOT_CMDLINE), cmdline);
	/* Page tables: 4 GiB identity map with 2 MiB pages. */
	assert_int_equal(le64_get(g + BOOT_PML4), BOOT_PDPT | 3);
	for (unsigned i = 1; i < 512; i++)
		assert_int_equal(le64_get(g + BOOT_PML4 + 8 * i), 0);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(le64_get(g + BOOT_PDPT + 8 * i), (BOOT_PD + 4096 * i) | 3);
	for (unsigned i = 4; i < 512; i++)
		assert_int_equal(le64_get(g + BOOT_PDPT + 8 * i), 0);
	for (uint64_t i = 0; i < 2048; i++)
		assert_int_equal(le64_get(g + BOOT_PD + 8 * i), (i << 21) | 0x83);
	/* GDT: null, null, 64-bit code at 0x10, data at 0x18. */
	assert_int_equal(le64_get(g + BOOT_GDT), 0);
	assert_int_equal(le64_get(g + BOOT_GDT + 8), 0);
	assert_int_equal(le64_get(g + BOOT_GDT + 16), 0x00af9b000000ffffull);
	assert_int_equal(le64_get(g + BOOT_GDT + 24), 0x00cf93000000ffffull);
	/* Nothing written around the structures it owns. */
	assert_int_equal(g[BOOT_GDT - 1], 0xcc);
	assert_int_equal(g[BOOT_GDT + 32], 0xcc);
	assert_int_equal(g[BOOT_ZERO_PAGE - 1], 0xcc);
	assert_int_equal(g[BOOT_ZERO_PAGE + 0x1000], 0xcc);
	assert_int_equal(g[BOOT_CMDLINE + strlen(cmdline) + 1], 0xcc);
	assert_int_equal(g[BOOT_PD + 4 * 4096], 0xcc);

	/* A 64-bit initrd address and size go to the ext_ fields. */
	struct boot_plan hi = bp;
	hi.bp_initrd = 0x123456789000ull;
	hi.bp_initrd_size = 0x100000002ull;
	assert_int_equal(boot_write(&m, &bz, &hi, cmdline, err, sizeof(err)), 0);
	assert_int_equal(le32_get(zp + 0x218), 0x56789000);
	assert_int_equal(le32_get(zp + 0x0c0), 0x1234);
	assert_int_equal(le32_get(zp + 0x21c), 2);
	assert_int_equal(le32_get(zp + 0x0c4), 1);

	/* A command line over the image's limit writes nothing. */
	char *line = malloc(BZ_CMDLINE_MAX + 2);
	assert_non_null(line);
	memset(line, 'z', BZ_CMDLINE_MAX + 1);
	line[BZ_CMDLINE_MAX + 1] = '\0';
	memset(g + BOOT_CMDLINE, 0xcc, 4096);
	err[0] = '\0';
	assert_int_equal(boot_write(&m, &bz, &bp, line, err, sizeof(err)), -1);
	assert_true(err[0] != '\0');
	assert_int_equal(g[BOOT_CMDLINE], 0xcc);
	free(line);
	mem_destroy(&m);

	/* No backing memory: refused. */
	mem_layout(&m, 64 * MiB);
	err[0] = '\0';
	assert_int_equal(boot_write(&m, &bz, &bp, cmdline, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too small"));
}

/* ---- elf_load ---- */

#define ELF_LEN 0x2000
#define SEG1_OFF 0x1000
#define SEG1_LEN 0x100
#define SEG1_PADDR 0x1000000ull
#define SEG2_OFF 0x1100
#define SEG2_FILESZ 0x80
#define SEG2_MEMSZ 0x3000
#define SEG2_PADDR 0x1200000ull
#define ELF_ENTRY (SEG1_PADDR + 0x10)

struct elf_img {
	uint8_t b[ELF_LEN] __attribute__((aligned(16)));
};

static Elf64_Ehdr get_eh(const struct elf_img *e)
{
	Elf64_Ehdr eh;

	memcpy(&eh, e->b, sizeof(eh));
	return eh;
}

static void put_eh(struct elf_img *e, const Elf64_Ehdr *eh)
{
	memcpy(e->b, eh, sizeof(*eh));
}

static Elf64_Phdr get_ph(const struct elf_img *e, unsigned i)
{
	Elf64_Phdr ph;

	memcpy(&ph, e->b + sizeof(Elf64_Ehdr) + i * sizeof(ph), sizeof(ph));
	return ph;
}

static void put_ph(struct elf_img *e, unsigned i, const Elf64_Phdr *ph)
{
	memcpy(e->b + sizeof(Elf64_Ehdr) + i * sizeof(*ph), ph, sizeof(*ph));
}

/* An x86-64 ET_EXEC with a PT_NOTE (bogus bounds, ignored) and two PT_LOADs, the second
 * with bss. */
static void make_elf(struct elf_img *e)
{
	memset(e->b, 0, sizeof(e->b));
	for (size_t i = SEG1_OFF; i < ELF_LEN; i++)
		e->b[i] = (uint8_t)(0x11 + i * 3);
	Elf64_Ehdr eh = {
	    .e_type = ET_EXEC,
	    .e_machine = EM_X86_64,
	    .e_version = EV_CURRENT,
	    .e_entry = ELF_ENTRY,
	    .e_phoff = sizeof(Elf64_Ehdr),
	    .e_ehsize = sizeof(Elf64_Ehdr),
	    .e_phentsize = sizeof(Elf64_Phdr),
	    .e_phnum = 3,
	};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	put_eh(e, &eh);
	Elf64_Phdr note = {.p_type = PT_NOTE,
			   .p_offset = 0xffffffffffff0000ull,
			   .p_filesz = 0x100000,
			   .p_memsz = 0x100000};
	Elf64_Phdr s1 = {.p_type = PT_LOAD,
			 .p_flags = PF_R | PF_X,
			 .p_offset = SEG1_OFF,
			 .p_vaddr = 0xffffffff81000000ull,
			 .p_paddr = SEG1_PADDR,
			 .p_filesz = SEG1_LEN,
			 .p_memsz = SEG1_LEN};
	Elf64_Phdr s2 = {.p_type = PT_LOAD,
			 .p_flags = PF_R | PF_W,
			 .p_offset = SEG2_OFF,
			 .p_vaddr = 0xffffffff81200000ull,
			 .p_paddr = SEG2_PADDR,
			 .p_filesz = SEG2_FILESZ,
			 .p_memsz = SEG2_MEMSZ};
	put_ph(e, 0, &note);
	put_ph(e, 1, &s1);
	put_ph(e, 2, &s2);
}

static void expect_elf_reject(const struct elf_img *e, size_t len, const char *want)
{
	struct guest_mem m;
	struct kernel_load kl;
	char err[256] = "";

	mem_layout(&m, 64 * MiB);
	memset(&kl, 0x77, sizeof(kl));
	assert_int_equal(elf_load(&m, e->b, len, &kl, err, sizeof(err)), -1);
	if (!strstr(err, want))
		fail_msg("message \"%s\" lacks \"%s\"", err, want);
}

static void test_elf_load(void **state)
{
	(void)state;
	static struct elf_img e;
	struct guest_mem m;
	struct kernel_load kl;
	char err[256] = "";

	make_elf(&e);

	/* Check-only on a layout with no backing. */
	mem_layout(&m, 64 * MiB);
	memset(&kl, 0, sizeof(kl));
	if (elf_load(&m, e.b, sizeof(e.b), &kl, err, sizeof(err)) != 0)
		fail_msg("elf_load (check only): %s", err);
	assert_int_equal(kl.kl_entry, ELF_ENTRY);
	assert_int_equal(kl.kl_start, SEG1_PADDR);
	assert_int_equal(kl.kl_end, SEG2_PADDR + SEG2_MEMSZ);
	assert_true(kl.kl_vmlinux);

	/* Real load. */
	assert_int_equal(mem_create(&m, 64 * MiB), 0);
	memset(m.gm_base + SEG1_PADDR - 16, 0xcc, SEG2_PADDR + SEG2_MEMSZ + 16 - (SEG1_PADDR - 16));
	memset(&kl, 0, sizeof(kl));
	if (elf_load(&m, e.b, sizeof(e.b), &kl, err, sizeof(err)) != 0)
		fail_msg("elf_load: %s", err);
	assert_int_equal(kl.kl_entry, ELF_ENTRY);
	assert_int_equal(kl.kl_start, SEG1_PADDR);
	assert_int_equal(kl.kl_end, SEG2_PADDR + SEG2_MEMSZ);
	assert_true(kl.kl_vmlinux);
	const uint8_t *g = m.gm_base;
	assert_memory_equal(g + SEG1_PADDR, e.b + SEG1_OFF, SEG1_LEN);
	assert_memory_equal(g + SEG2_PADDR, e.b + SEG2_OFF, SEG2_FILESZ);
	for (uint64_t a = SEG2_PADDR + SEG2_FILESZ; a < SEG2_PADDR + SEG2_MEMSZ; a++)
		if (g[a] != 0)
			fail_msg("bss byte at 0x%llx is 0x%02x", (unsigned long long)a, g[a]);
	/* Neighbours untouched. */
	assert_int_equal(g[SEG1_PADDR - 1], 0xcc);
	assert_int_equal(g[SEG1_PADDR + SEG1_LEN], 0xcc);
	assert_int_equal(g[SEG2_PADDR - 1], 0xcc);
	assert_int_equal(g[SEG2_PADDR + SEG2_MEMSZ], 0xcc);

	/* A segment that is valid but beyond this guest's RAM: checks pass, loading fails. */
	Elf64_Phdr ph = get_ph(&e, 2);
	ph.p_paddr = 128 * MiB;
	put_ph(&e, 2, &ph);
	err[0] = '\0';
	assert_int_equal(elf_load(&m, e.b, sizeof(e.b), &kl, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "outside guest memory"));
	mem_destroy(&m);
	mem_layout(&m, 64 * MiB);
	assert_int_equal(elf_load(&m, e.b, sizeof(e.b), &kl, err, sizeof(err)), 0);
	assert_int_equal(kl.kl_end, 128 * MiB + SEG2_MEMSZ);

	/* A segment ending exactly at the PCI hole is accepted (check only). */
	ph.p_paddr = MEM_HOLE_START - SEG2_MEMSZ;
	put_ph(&e, 2, &ph);
	assert_int_equal(elf_load(&m, e.b, sizeof(e.b), &kl, err, sizeof(err)), 0);
	assert_int_equal(kl.kl_end, MEM_HOLE_START);
}

static void test_elf_reject(void **state)
{
	(void)state;
	static struct elf_img e;
	Elf64_Ehdr eh;
	Elf64_Phdr ph;

	make_elf(&e);
	expect_elf_reject(&e, sizeof(Elf64_Ehdr) - 1, "not a 64-bit");
	expect_elf_reject(&e, 0, "not a 64-bit");

	make_elf(&e);
	e.b[1] = 'F' + 1;
	expect_elf_reject(&e, sizeof(e.b), "not a 64-bit");

	make_elf(&e);
	e.b[EI_CLASS] = ELFCLASS32;
	expect_elf_reject(&e, sizeof(e.b), "not a 64-bit");

	make_elf(&e);
	e.b[EI_DATA] = ELFDATA2MSB;
	expect_elf_reject(&e, sizeof(e.b), "little-endian");

	make_elf(&e);
	eh = get_eh(&e);
	eh.e_machine = EM_386;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "x86-64");

	make_elf(&e);
	eh = get_eh(&e);
	eh.e_type = ET_DYN;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "executable");

	make_elf(&e);
	eh = get_eh(&e);
	eh.e_phnum = 0;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "program header");

	make_elf(&e);
	eh = get_eh(&e);
	eh.e_phnum = 0xffff;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "program header");
	eh.e_phnum = 65;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "program header");

	make_elf(&e);
	eh = get_eh(&e);
	eh.e_phentsize = 32;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "program header");

	/* Program header table past the end of the file. */
	make_elf(&e);
	eh = get_eh(&e);
	eh.e_phoff = ELF_LEN - 2 * sizeof(Elf64_Phdr);
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "program header");
	eh.e_phoff = UINT64_MAX - 8;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "program header");
	make_elf(&e);
	expect_elf_reject(&e, sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr), "program header");

	/* Segment data past the end of the file. */
	make_elf(&e);
	ph = get_ph(&e, 2);
	ph.p_filesz = ELF_LEN - SEG2_OFF + 1;
	put_ph(&e, 2, &ph);
	expect_elf_reject(&e, sizeof(e.b), "segment 2");
	ph = get_ph(&e, 2);
	ph.p_filesz = 0x10;
	ph.p_offset = UINT64_MAX - 4; /* offset + filesz wraps */
	put_ph(&e, 2, &ph);
	expect_elf_reject(&e, sizeof(e.b), "segment 2");
	make_elf(&e);
	expect_elf_reject(&e, SEG2_OFF + SEG2_FILESZ - 1, "segment 2");

	/* filesz > memsz. */
	make_elf(&e);
	ph = get_ph(&e, 1);
	ph.p_memsz = SEG1_LEN - 1;
	put_ph(&e, 1, &ph);
	expect_elf_reject(&e, sizeof(e.b), "segment 1");

	/* Physical address below 1 MiB, in or above the hole, or running into it. */
	make_elf(&e);
	ph = get_ph(&e, 2);
	ph.p_paddr = 0x9000;
	put_ph(&e, 2, &ph);
	expect_elf_reject(&e, sizeof(e.b), "segment 2");
	ph.p_paddr = BOOT_HIGH - 1;
	put_ph(&e, 2, &ph);
	expect_elf_reject(&e, sizeof(e.b), "segment 2");
	ph.p_paddr = MEM_HOLE_START;
	put_ph(&e, 2, &ph);
	expect_elf_reject(&e, sizeof(e.b), "segment 2");
	ph.p_paddr = MEM_HOLE_START - SEG2_MEMSZ + 1;
	put_ph(&e, 2, &ph);
	expect_elf_reject(&e, sizeof(e.b), "segment 2");
	ph.p_paddr = SEG2_PADDR;
	ph.p_memsz = UINT64_MAX;
	put_ph(&e, 2, &ph);
	expect_elf_reject(&e, sizeof(e.b), "segment 2");

	/* Entry point outside every loaded segment (and in no PT_LOAD at all). */
	make_elf(&e);
	eh = get_eh(&e);
	eh.e_entry = SEG1_PADDR + SEG1_LEN;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "entry point");
	eh.e_entry = 0;
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "entry point");
	eh.e_entry = ELF_ENTRY;
	eh.e_phnum = 1; /* only the PT_NOTE */
	put_eh(&e, &eh);
	expect_elf_reject(&e, sizeof(e.b), "entry point");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bz_valid),	   cmocka_unit_test(test_bz_setup_sects_zero),
	    cmocka_unit_test(test_bz_reject),	   cmocka_unit_test(test_bz_boundaries_accepted),
	    cmocka_unit_test(test_bz_real_kernel), cmocka_unit_test(test_cmdline),
	    cmocka_unit_test(test_plan),	   cmocka_unit_test(test_e820),
	    cmocka_unit_test(test_mem_layout),	   cmocka_unit_test(test_gpa_ptr_small),
	    cmocka_unit_test(test_gpa_ptr_hole),   cmocka_unit_test(test_boot_write),
	    cmocka_unit_test(test_elf_load),	   cmocka_unit_test(test_elf_reject),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
