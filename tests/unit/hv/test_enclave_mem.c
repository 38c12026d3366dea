/* Unit tests of the enclave memory arithmetic: a slot's parent guest-physical ranges to
 * memfd offsets (src/hv/enclave_mem.c), the parent's KVM slots with donated ranges taken
 * out, an enclave's layout of memfd pieces and its vhost-user table (src/boot/memory.c),
 * and the EIF's extent in enclave memory from a hostile header (src/hv/enclave_image.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot/memory.h"
#include "hv/enclave_image.h"
#include "hv/enclave_mem.h"
#include "lib/be.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static void test_translate_low_and_high(void **state)
{
	(void)state;
	struct guest_mem m;
	mem_layout(&m, 4 * GiB); /* 3 GiB low, 1 GiB at 4 GiB = memfd offset 3 GiB */
	struct ne_mem_range r[] = {{4 * GiB + 2 * MiB, 4 * MiB}, {64 * MiB, 2 * MiB}};
	struct mem_piece p[2];
	char err[256];
	assert_int_equal(enclave_mem_translate(&m, r, 2, NULL, 0, p, err, sizeof(err)), 0);
	assert_int_equal(p[0].mp_fd_off, 3 * GiB + 2 * MiB);
	assert_int_equal(p[0].mp_size, 4 * MiB);
	assert_int_equal(p[1].mp_fd_off, 64 * MiB);
	assert_int_equal(p[1].mp_size, 2 * MiB);
}

static void test_translate_refusals(void **state)
{
	(void)state;
	struct guest_mem m;
	mem_layout(&m, 4 * GiB);
	struct mem_piece p[NE_MAX_REGIONS];
	char err[256];
	struct ne_mem_range bad[][1] = {
	    {{1 * MiB, 2 * MiB}},		   /* not 2 MiB aligned */
	    {{2 * MiB, 3 * MiB}},		   /* size not a multiple */
	    {{2 * MiB, 0}},			   /* empty */
	    {{3 * GiB, 2 * MiB}},		   /* the PCI hole */
	    {{3 * GiB - 2 * MiB, 4 * MiB}},	   /* runs into the hole */
	    {{5 * GiB, 2 * MiB}},		   /* past the end */
	    {{UINT64_MAX - 2 * MiB + 1, 2 * MiB}}, /* wraps */
	    {{4 * GiB, UINT64_MAX - 2 * MiB + 1}},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(enclave_mem_translate(&m, bad[i], 1, NULL, 0, p, err, sizeof(err)),
				 -1);
	struct ne_mem_range twice[] = {{64 * MiB, 4 * MiB}, {66 * MiB, 2 * MiB}};
	assert_int_equal(enclave_mem_translate(&m, twice, 2, NULL, 0, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "overlap"));
	struct enclave_hole other = {.gpa = 128 * MiB, .size = 8 * MiB, .fd_off = 128 * MiB};
	struct ne_mem_range theirs[] = {{134 * MiB, 2 * MiB}};
	assert_int_equal(enclave_mem_translate(&m, theirs, 1, &other, 1, p, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another enclave"));
	assert_int_equal(enclave_mem_translate(&m, theirs, 0, NULL, 0, p, err, sizeof(err)), -1);
}

static void test_plan_split(void **state)
{
	(void)state;
	struct guest_mem m;
	mem_layout(&m, 4 * GiB);
	/* given out of order; one at a region's start, one at the high region's end */
	struct enclave_hole h[] = {{5 * GiB - 2 * MiB, 2 * MiB, 0},
				   {64 * MiB, 4 * MiB, 0},
				   {0, 2 * MiB, 0},
				   {68 * MiB, 2 * MiB, 0}};
	struct enclave_slot_plan p[16];
	int n = enclave_mem_plan(&m, h, 4, p, 16);
	struct enclave_slot_plan want[] = {
	    {0, 2 * MiB, 0, true},
	    {2 * MiB, 62 * MiB, 2 * MiB, false},
	    {64 * MiB, 4 * MiB, 0, true},
	    {68 * MiB, 2 * MiB, 0, true}, /* adjacent holes: no empty RAM slot between */
	    {70 * MiB, 3 * GiB - 70 * MiB, 70 * MiB, false},
	    {4 * GiB, 1 * GiB - 2 * MiB, 3 * GiB, false},
	    {5 * GiB - 2 * MiB, 2 * MiB, 0, true},
	};
	assert_int_equal(n, 7);
	for (int i = 0; i < n; i++) {
		assert_int_equal(p[i].gpa, want[i].gpa);
		assert_int_equal(p[i].size, want[i].size);
		assert_int_equal(p[i].zero, want[i].zero);
		if (!p[i].zero)
			assert_int_equal(p[i].map, want[i].map);
	}
	/* no holes: the plain layout's two slots; too few slots: -1 */
	assert_int_equal(enclave_mem_plan(&m, NULL, 0, p, 16), 2);
	assert_int_equal(p[1].gpa, 4 * GiB);
	assert_int_equal(enclave_mem_plan(&m, h, 4, p, 6), -1);
}

static void test_pieces_layout_and_vhost_table(void **state)
{
	(void)state;
	struct guest_mem m;
	struct mem_piece in[] = {
	    {0, 96 * MiB, 96 * MiB}, {0, 0, 32 * MiB}, {0, 128 * MiB, 32 * MiB}};
	assert_int_equal(mem_layout_pieces(&m, in, 3, 224 * MiB), 0);
	assert_int_equal(m.gm_size, 160 * MiB);
	assert_int_equal(m.gm_nregions, 1);
	assert_int_equal(m.gm_pieces[1].mp_map, 96 * MiB);
	assert_int_equal(m.gm_pieces[2].mp_map, 128 * MiB);
	struct mem_fd_region r[8];
	/* pieces 1 and 2 are not contiguous in the memfd: three entries */
	assert_int_equal(mem_fd_regions(&m, r, 8), 3);
	assert_int_equal(r[1].gpa, 96 * MiB);
	assert_int_equal(r[1].fd_off, 0);
	assert_int_equal(r[2].gpa, 128 * MiB);
	assert_int_equal(r[2].fd_off, 128 * MiB);
	assert_int_equal(mem_fd_regions(&m, r, 2), -1);
	/* contiguous in the memfd: one entry */
	struct mem_piece seq[] = {{0, 0, 32 * MiB}, {0, 32 * MiB, 32 * MiB}};
	assert_int_equal(mem_layout_pieces(&m, seq, 2, 64 * MiB), 0);
	assert_int_equal(mem_fd_regions(&m, r, 8), 1);
	assert_int_equal(r[0].size, 64 * MiB);
	/* across the PCI hole: one piece, two entries */
	struct mem_piece big[] = {{0, 0, 4 * GiB}};
	assert_int_equal(mem_layout_pieces(&m, big, 1, 4 * GiB), 0);
	assert_int_equal(mem_fd_regions(&m, r, 8), 2);
	assert_int_equal(r[1].gpa, 4 * GiB);
	assert_int_equal(r[1].fd_off, 3 * GiB);
	assert_int_equal(r[1].size, 1 * GiB);
	/* refusals */
	struct mem_piece past[] = {{0, 200 * MiB, 64 * MiB}};
	assert_int_equal(mem_layout_pieces(&m, past, 1, 224 * MiB), ENXIO);
	struct mem_piece wrap[] = {{0, UINT64_MAX - 4095, 64 * MiB}};
	assert_int_equal(mem_layout_pieces(&m, wrap, 1, 224 * MiB), ENXIO);
	struct mem_piece odd[] = {{0, 100, 64 * MiB}};
	assert_int_equal(mem_layout_pieces(&m, odd, 1, 224 * MiB), EINVAL);
	struct mem_piece small[] = {{0, 0, 32 * MiB}};
	assert_int_equal(mem_layout_pieces(&m, small, 1, 224 * MiB), EINVAL);
	assert_int_equal(mem_layout_pieces(&m, small, 0, 224 * MiB), EINVAL);
}

static void test_pieces_are_the_memfd_pages(void **state)
{
	(void)state;
	int fd = memfd_create("t", 0);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 96 * MiB), 0);
	assert_int_equal(pwrite(fd, "B", 1, 64 * MiB), 1);
	struct mem_piece in[] = {{0, 64 * MiB, 32 * MiB}, {0, 0, 64 * MiB}};
	struct guest_mem m;
	assert_int_equal(mem_map_pieces(&m, fd, in, 2), 0);
	uint8_t *p = gpa_ptr(&m, 0, 1);
	assert_non_null(p);
	assert_int_equal(*p, 'B');
	*(uint8_t *)gpa_ptr(&m, 32 * MiB, 1) = 'A'; /* = memfd offset 0 */
	char c = 0;
	assert_int_equal(pread(fd, &c, 1, 0), 1);
	assert_int_equal(c, 'A');
	mem_destroy(&m);
}

static void test_eif_extent_hostile(void **state)
{
	(void)state;
	uint8_t h[EIF_HDR_SIZE] = {0};
	uint64_t len;
	char err[256];
	memcpy(h, ".eif", 4);
	h[27] = 2; /* two sections */
	be64_put(h + 28, EIF_HDR_SIZE);
	be64_put(h + 28 + 8, EIF_HDR_SIZE + 12 + 1000);
	be64_put(h + 28 + 256, 1000);
	be64_put(h + 28 + 256 + 8, 50);
	assert_int_equal(enclave_eif_extent(h, 1 << 20, &len, err, sizeof(err)), EIF_OK);
	assert_int_equal(len, EIF_HDR_SIZE + 12 + 1000 + 12 + 50);
	/* exactly the memory there is, and one byte less */
	assert_int_equal(enclave_eif_extent(h, len, &len, err, sizeof(err)), EIF_OK);
	assert_int_equal(
	    enclave_eif_extent(h, EIF_HDR_SIZE + 12 + 1000 + 12 + 49, &len, err, sizeof(err)),
	    EIF_E_TRUNCATED);
	/* sizes and offsets that overflow */
	be64_put(h + 28 + 256 + 8, UINT64_MAX - 5);
	assert_int_equal(enclave_eif_extent(h, 1 << 20, &len, err, sizeof(err)), EIF_E_TRUNCATED);
	be64_put(h + 28 + 256 + 8, 50);
	be64_put(h + 28 + 8, UINT64_MAX - 20);
	assert_int_equal(enclave_eif_extent(h, 1 << 20, &len, err, sizeof(err)), EIF_E_TRUNCATED);
	be64_put(h + 28 + 8, EIF_HDR_SIZE + 12 + 1000);
	/* counts */
	h[27] = 0;
	assert_int_equal(enclave_eif_extent(h, 1 << 20, &len, err, sizeof(err)),
			 EIF_E_NUM_SECTIONS);
	h[26] = 1;
	h[27] = 0;
	assert_int_equal(enclave_eif_extent(h, 1 << 20, &len, err, sizeof(err)),
			 EIF_E_NUM_SECTIONS);
	h[26] = 0;
	h[27] = 2;
	/* memory shorter than a header; no magic */
	assert_int_equal(enclave_eif_extent(h, EIF_HDR_SIZE - 1, &len, err, sizeof(err)),
			 EIF_E_TRUNCATED);
	h[0] = 0;
	assert_int_equal(enclave_eif_extent(h, 1 << 20, &len, err, sizeof(err)), EIF_E_MAGIC);
	assert_non_null(strstr(err, "8 MiB"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_translate_low_and_high),
	    cmocka_unit_test(test_translate_refusals),
	    cmocka_unit_test(test_plan_split),
	    cmocka_unit_test(test_pieces_layout_and_vhost_table),
	    cmocka_unit_test(test_pieces_are_the_memfd_pages),
	    cmocka_unit_test(test_eif_extent_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
