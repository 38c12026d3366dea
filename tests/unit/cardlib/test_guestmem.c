/* Unit tests of the card library's memory table arithmetic (src/cards/lib/guestmem.c) as
 * CONFIGURE_MEM_SLOTS changes it, and of what vr_pop (vring.c) makes of a descriptor into
 * removed memory: regions mapped from a real memfd, added and removed one at a time
 * (overlaps only as the same view), revoked ranges remembered and merged, a removed
 * range no longer mapped in this process, a chain into it denied (not a ring violation)
 * while a chain into memory that never was guest memory still breaks the ring.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cards/lib/guestmem.h"
#include "cards/lib/vring.h"

#define MiB (1ull << 20)
#define MEM (8 * MiB)
#define UVA 0x7f0000000000ull

static int memfd(void)
{
	int fd = memfd_create("gm-test", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, MEM), 0);
	return fd;
}

static int add(struct gmem *m, int fd, uint64_t gpa, uint64_t size)
{
	char err[256];
	struct gm_region_desc rd = {gpa, size, UVA + gpa, gpa};
	return gm_add_region(m, &rd, dup(fd), err, sizeof(err));
}

static int rem(struct gmem *m, uint64_t gpa, uint64_t size)
{
	char err[256];
	return gm_remove_region(m, gpa, size, UVA + gpa, err, sizeof(err));
}

/* Whether addr is mapped in this process. */
static bool mapped(const void *addr)
{
	unsigned char v;
	return mincore((void *)((uintptr_t)addr & ~4095ul), 4096, &v) == 0;
}

static void test_split_and_give_back(void **state)
{
	(void)state;
	int fd = memfd();
	struct gmem *m = malloc(sizeof(*m));
	gm_init(m);
	assert_int_equal(add(m, fd, 0, MEM), 0);
	uint8_t *whole = gm_gpa(m, 2 * MiB, 4096);
	assert_non_null(whole);
	whole[0] = 0x5a;
	/* the enclave takes [2, 4) MiB: pieces first (the same view: accepted), then the whole */
	assert_int_equal(add(m, fd, 0, 2 * MiB), 0);
	assert_int_equal(add(m, fd, 4 * MiB, 4 * MiB), 0);
	assert_non_null(gm_gpa(m, 2 * MiB, 1)); /* the old region still answers meanwhile */
	assert_int_equal(rem(m, 0, MEM), 0);
	assert_int_equal(m->gm_nregions, 2);
	assert_null(gm_gpa(m, 2 * MiB, 1));
	assert_null(gm_gpa(m, 2 * MiB - 8, 16)); /* straddling the edge */
	assert_null(gm_gpa(m, 4 * MiB - 1, 1));
	assert_non_null(gm_gpa(m, 2 * MiB - 8, 8));
	assert_non_null(gm_gpa(m, 4 * MiB, 8));
	assert_true(gm_revoked(m, 2 * MiB, 4096));
	assert_true(gm_revoked(m, 2 * MiB - 8, 16));
	assert_false(gm_revoked(m, 0, 4096));		 /* mapped: not revoked */
	assert_false(gm_revoked(m, MEM, 4096));		 /* never guest memory */
	assert_false(gm_revoked(m, UINT64_MAX - 1, 16)); /* wraps */
	/* the removed range is not mapped in this process at all */
	assert_false(mapped(whole));
	uint8_t *lo = gm_gpa(m, 0, 1), *hi = gm_gpa(m, 4 * MiB, 1);
	assert_false(mapped(lo + 2 * MiB));
	assert_true(mapped(hi) && mapped(lo));
	/* a region the card does not have, or not exactly: refused, nothing changes */
	assert_int_equal(rem(m, 2 * MiB, 2 * MiB), -ENOENT);
	assert_int_equal(rem(m, 0, MiB), -ENOENT);
	assert_int_equal(m->gm_nregions, 2);
	/* given back: the same pages (the scrub aside), no longer revoked */
	assert_int_equal(add(m, fd, 2 * MiB, 2 * MiB), 0);
	uint8_t *back = gm_gpa(m, 2 * MiB, 4096);
	assert_non_null(back);
	assert_int_equal(back[0], 0x5a);
	assert_false(gm_revoked(m, 2 * MiB, 4096));
	gm_clear(m);
	free(m);
	close(fd);
}

static void test_add_refusals(void **state)
{
	(void)state;
	int fd = memfd(), other = memfd();
	struct gmem *m = malloc(sizeof(*m));
	char err[256];
	gm_init(m);
	assert_int_equal(add(m, fd, 0, 4 * MiB), 0);
	/* overlapping but another view: other offsets, other user addresses, another file */
	struct gm_region_desc off = {MiB, MiB, UVA + MiB, 3 * MiB};
	assert_int_equal(gm_add_region(m, &off, dup(fd), err, sizeof(err)), -EINVAL);
	struct gm_region_desc uva = {MiB, MiB, UVA + 5 * MiB, MiB};
	assert_int_equal(gm_add_region(m, &uva, dup(fd), err, sizeof(err)), -EINVAL);
	assert_int_equal(add(m, other, MiB, MiB), -EINVAL);
	/* past the end of the file, empty, wrapping */
	assert_int_equal(add(m, fd, 6 * MiB, 4 * MiB), -EINVAL);
	assert_int_equal(add(m, fd, 6 * MiB, 0), -EINVAL);
	struct gm_region_desc wrap = {UINT64_MAX - 4095, 8192, UVA, 0};
	assert_int_equal(gm_add_region(m, &wrap, dup(fd), err, sizeof(err)), -EINVAL);
	assert_int_equal(m->gm_nregions, 1);
	/* a full table */
	gm_clear(m);
	for (unsigned i = 0; i < GM_MAX_SLOTS; i++)
		assert_int_equal(add(m, fd, (uint64_t)i * 4096, 4096), 0);
	assert_int_equal(m->gm_nregions, GM_MAX_SLOTS);
	assert_int_equal(add(m, fd, 0, 4096), -E2BIG);
	gm_clear(m);
	free(m);
	close(fd);
	close(other);
}

static void test_revoked_merge(void **state)
{
	(void)state;
	int fd = memfd();
	struct gmem *m = malloc(sizeof(*m));
	gm_init(m);
	for (unsigned i = 0; i < 4; i++)
		assert_int_equal(add(m, fd, i * 2 * MiB, 2 * MiB), 0);
	assert_int_equal(rem(m, 2 * MiB, 2 * MiB), 0);
	assert_int_equal(rem(m, 4 * MiB, 2 * MiB), 0); /* touching: one range */
	assert_int_equal(m->gm_nrevoked, 1);
	assert_int_equal(m->gm_revoked[0].gpa, 2 * MiB);
	assert_int_equal(m->gm_revoked[0].size, 4 * MiB);
	assert_true(gm_revoked(m, 4 * MiB - 8, 16));
	/* a whole new table forgets what was revoked */
	char err[256];
	int fds[1] = {dup(fd)};
	struct gm_region_desc rd = {0, 2 * MiB, UVA, 0};
	assert_int_equal(gm_set_table(m, &rd, 1, fds, err, sizeof(err)), 0);
	assert_int_equal(m->gm_nrevoked, 0);
	assert_false(gm_revoked(m, 2 * MiB, 16));
	gm_clear(m);
	free(m);
	close(fd);
}

/* A ring in [0, 1 MiB) and a descriptor pointing at addr: what vr_pop makes of it. */
static int pop_at(struct gmem *m, uint64_t addr, struct vr_chain *ch, struct vr_ring *vr)
{
	char err[256];
	uint8_t *base = gm_gpa(m, 0, MiB);
	memset(base, 0, 0x4000);
	struct virtq_desc *d = (struct virtq_desc *)base;
	d[0] =
	    (struct virtq_desc){.addr = 0x8000, .len = 16, .flags = VRING_DESC_F_NEXT, .next = 1};
	d[1] = (struct virtq_desc){.addr = addr, .len = 4096, .flags = VRING_DESC_F_WRITE};
	struct virtq_avail *av = (struct virtq_avail *)(base + 0x1000);
	av->ring[0] = 0;
	av->idx = 1;
	assert_int_equal(vr_map(vr, m, 8, 0, 0x1000, 0x2000, false, 0, err, sizeof(err)), 0);
	return vr_pop(vr, ch, err, sizeof(err));
}

static void test_vring_denied(void **state)
{
	(void)state;
	int fd = memfd();
	struct gmem *m = malloc(sizeof(*m));
	gm_init(m);
	assert_int_equal(add(m, fd, 0, MEM), 0);
	assert_int_equal(add(m, fd, 0, 2 * MiB), 0);
	assert_int_equal(add(m, fd, 4 * MiB, 4 * MiB), 0);
	assert_int_equal(rem(m, 0, MEM), 0);
	struct vr_seg segs[4];
	struct vr_chain ch = {.ch_segs = segs, .ch_max = 4};
	struct vr_ring vr;
	/* into the removed range: a chain, denied, the segment without a pointer */
	assert_int_equal(pop_at(m, 3 * MiB, &ch, &vr), 1);
	assert_true(ch.ch_denied);
	assert_int_equal(ch.ch_nsegs, 2);
	assert_non_null(segs[0].sg_ptr);
	assert_null(segs[1].sg_ptr);
	assert_false(vr.vr_broken);
	/* an ordinary chain is not denied */
	assert_int_equal(pop_at(m, 5 * MiB, &ch, &vr), 1);
	assert_false(ch.ch_denied);
	assert_non_null(segs[1].sg_ptr);
	/* never guest memory: a violation, the ring broken */
	assert_true(pop_at(m, 64 * MiB, &ch, &vr) < 0);
	assert_true(vr.vr_broken);
	gm_clear(m);
	free(m);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_and_give_back),
	    cmocka_unit_test(test_add_refusals),
	    cmocka_unit_test(test_revoked_merge),
	    cmocka_unit_test(test_vring_denied),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
