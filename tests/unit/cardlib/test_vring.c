/* Unit tests for the card library's guest memory table (src/cards/lib/guestmem.c) and split
 * virtqueues (src/cards/lib/vring.c). Guest memory is a region with PROT_NONE guard pages
 * on both sides, so any read or write outside it crashes the test: good chains, used-ring
 * updates and event-idx signalling, and every hostile chain (loops, indices out of range,
 * buffers outside memory, overflowing lengths, bad or nested indirect tables, readable
 * after writable, avail index jumps) failing the ring without touching anything.
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
#include "lib/util.h"

#include "../testlib/ringmem.h"

#define PAGE 4096u
#define BASE 0x100000ull /* guest-physical address of the region */
#define UVA 0x7f0000000000ull
#define MEMSZ (64u * 1024)
#define QSZ 16u
#define DESC (BASE + RINGMEM_DESC)
#define AVAIL (BASE + RINGMEM_AVAIL)
#define USED (BASE + RINGMEM_USED)
#define BUF (BASE + 0x4000)
#define ITBL (BASE + 0x3000)

struct fx {
	struct ringmem rm;
	struct gmem gm;
	struct vr_ring vr;
	struct vr_seg segs[64];
	struct vr_chain ch;
	char err[256];
};

static void set_desc(struct virtq_desc *t, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	t[i] = (struct virtq_desc){.addr = addr, .len = len, .flags = flags, .next = next};
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (ringmem_map(&f->rm, BASE, MEMSZ, QSZ))
		return -1;
	gm_init(&f->gm);
	if (gm_add_borrowed(&f->gm, BASE, UVA, f->rm.mem, MEMSZ, f->err, sizeof(f->err)))
		return -1;
	if (vr_map(&f->vr, &f->gm, QSZ, DESC, AVAIL, USED, false, 0, f->err, sizeof(f->err)))
		return -1;
	f->ch.ch_segs = f->segs;
	f->ch.ch_max = ARRAY_SIZE(f->segs);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	gm_clear(&f->gm);
	ringmem_unmap(&f->rm);
	free(f);
	return 0;
}

/* The ring failed with want and stays failed; nothing was consumed. */
static void expect_broken(struct fx *f, int want)
{
	uint16_t last = f->vr.vr_last_avail, uidx = f->rm.used->idx;
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), want);
	assert_true(f->vr.vr_broken);
	assert_int_equal(f->vr.vr_last_avail, last);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), -EIO);
	assert_int_equal(vr_push(&f->vr, 0, 0, f->err, sizeof(f->err)), -EIO);
	assert_false(vr_should_notify(&f->vr));
	assert_int_equal(f->rm.used->idx, uidx);
}

static void test_good_chain(void **state)
{
	struct fx *f = *state;
	set_desc(f->rm.desc, 3, BUF, 16, VRING_DESC_F_NEXT, 7);
	set_desc(f->rm.desc, 7, BUF + 0x100, 512, VRING_DESC_F_NEXT, 1);
	set_desc(f->rm.desc, 1, BUF + 0x400, 1, VRING_DESC_F_WRITE, 0);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 0);
	ringmem_make_avail(&f->rm, 3);
	assert_int_equal(vr_pending(&f->vr), 1);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
	assert_int_equal(f->ch.ch_head, 3);
	assert_int_equal(f->ch.ch_nsegs, 3);
	assert_ptr_equal(f->segs[0].sg_ptr, ringmem_host(&f->rm, BUF));
	assert_int_equal(f->segs[0].sg_len, 16);
	assert_false(f->segs[0].sg_write);
	assert_ptr_equal(f->segs[1].sg_ptr, ringmem_host(&f->rm, BUF + 0x100));
	assert_false(f->segs[1].sg_write);
	assert_ptr_equal(f->segs[2].sg_ptr, ringmem_host(&f->rm, BUF + 0x400));
	assert_true(f->segs[2].sg_write);
	assert_int_equal(f->ch.ch_read_bytes, 528);
	assert_int_equal(f->ch.ch_write_bytes, 1);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 0);

	assert_int_equal(vr_push(&f->vr, 3, 1, f->err, sizeof(f->err)), 0);
	assert_int_equal(f->rm.used->idx, 1);
	assert_int_equal(f->rm.used->ring[0].id, 3);
	assert_int_equal(f->rm.used->ring[0].len, 1);
	assert_true(vr_should_notify(&f->vr));
	f->rm.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	assert_false(vr_should_notify(&f->vr));
	/* A head that was never made available is refused and breaks the ring. */
	assert_int_equal(vr_push(&f->vr, QSZ, 0, f->err, sizeof(f->err)), -EINVAL);
	assert_true(f->vr.vr_broken);
}

static void test_wraparound(void **state)
{
	struct fx *f = *state;
	/* Indices wrap at 65536: start just below and run across it. */
	f->rm.avail->idx = 65530;
	f->rm.used->idx = 65530;
	assert_int_equal(
	    vr_map(&f->vr, &f->gm, QSZ, DESC, AVAIL, USED, false, 65530, f->err, sizeof(f->err)),
	    0);
	set_desc(f->rm.desc, 0, BUF, 8, VRING_DESC_F_WRITE, 0);
	for (unsigned i = 0; i < 40; i++) {
		ringmem_make_avail(&f->rm, 0);
		assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
		assert_int_equal(vr_push(&f->vr, 0, 8, f->err, sizeof(f->err)), 0);
	}
	assert_int_equal(f->rm.used->idx, (uint16_t)(65530 + 40));
}

static void test_segment_bounds(void **state)
{
	struct fx *f = *state;
	/* Exactly to the last byte of memory is fine, zero length too. */
	set_desc(f->rm.desc, 0, BASE + MEMSZ - 16, 16, VRING_DESC_F_NEXT, 1);
	set_desc(f->rm.desc, 1, BASE + MEMSZ, 0, 0, 0);
	ringmem_make_avail(&f->rm, 0);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
	assert_int_equal(f->ch.ch_nsegs, 2);
}

static void test_loop(void **state)
{
	struct fx *f = *state;
	set_desc(f->rm.desc, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
	set_desc(f->rm.desc, 1, BUF, 8, VRING_DESC_F_NEXT, 0);
	ringmem_make_avail(&f->rm, 0);
	expect_broken(f, -ELOOP);
}

static void test_self_loop(void **state)
{
	struct fx *f = *state;
	set_desc(f->rm.desc, 5, BUF, 8, VRING_DESC_F_NEXT, 5);
	ringmem_make_avail(&f->rm, 5);
	expect_broken(f, -ELOOP);
}

static void test_full_length_chain(void **state)
{
	struct fx *f = *state;
	/* A chain using every descriptor once is legal... */
	for (unsigned i = 0; i < QSZ; i++)
		set_desc(f->rm.desc, i, BUF + 16 * i, 16, i + 1 < QSZ ? VRING_DESC_F_NEXT : 0,
			 i + 1);
	ringmem_make_avail(&f->rm, 0);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
	assert_int_equal(f->ch.ch_nsegs, QSZ);
	/* ...one more (back to the start) is longer than the queue. */
	set_desc(f->rm.desc, QSZ - 1, BUF, 16, VRING_DESC_F_NEXT, 0);
	ringmem_make_avail(&f->rm, 0);
	expect_broken(f, -ELOOP);
}

static void test_head_out_of_range(void **state)
{
	struct fx *f = *state;
	ringmem_make_avail(&f->rm, QSZ);
	expect_broken(f, -EINVAL);
}

static void test_next_out_of_range(void **state)
{
	struct fx *f = *state;
	set_desc(f->rm.desc, 0, BUF, 8, VRING_DESC_F_NEXT, 0xffff);
	ringmem_make_avail(&f->rm, 0);
	expect_broken(f, -EINVAL);
}

static void test_addr_outside(void **state)
{
	struct fx *f = *state;
	static const struct {
		uint64_t addr;
		uint32_t len;
	} bad[] = {
	    {BASE + MEMSZ - 8, 16},	   /* runs past the end */
	    {BASE + MEMSZ, 1},		   /* just after */
	    {BASE - 1, 2},		   /* starts before */
	    {0, 8},			   /* no memory there */
	    {0xfffffffffffffff0ull, 0x20}, /* wraps around */
	    {0xffffffffffffffffull, 0},	   /* far away, empty */
	    {BASE + 8, MEMSZ},		   /* longer than memory */
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		teardown(state);
		setup(state);
		f = *state;
		set_desc(f->rm.desc, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
		set_desc(f->rm.desc, 1, bad[i].addr, bad[i].len, VRING_DESC_F_WRITE, 0);
		ringmem_make_avail(&f->rm, 0);
		expect_broken(f, -EFAULT);
	}
}

static void test_total_bytes(void **state)
{
	struct fx *f = *state;
	f->vr.vr_max_bytes = 1000;
	/* The default bound catches lengths whose sum would not fit in memory at all. */
	assert_true(f->vr.vr_max_bytes < 0xffffffffull);
	set_desc(f->rm.desc, 0, BUF, 600, VRING_DESC_F_NEXT, 1);
	set_desc(f->rm.desc, 1, BUF, 600, VRING_DESC_F_WRITE, 0);
	ringmem_make_avail(&f->rm, 0);
	expect_broken(f, -E2BIG);
}

static void test_too_many_segments(void **state)
{
	struct fx *f = *state;
	f->ch.ch_max = 2;
	set_desc(f->rm.desc, 0, BUF, 6, VRING_DESC_F_NEXT, 1);
	set_desc(f->rm.desc, 1, BUF, 6, VRING_DESC_F_NEXT, 2);
	set_desc(f->rm.desc, 2, BUF, 6, 0, 0);
	ringmem_make_avail(&f->rm, 0);
	expect_broken(f, -E2BIG);
}

static void test_write_before_read(void **state)
{
	struct fx *f = *state;
	set_desc(f->rm.desc, 0, BUF, 8, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 1);
	set_desc(f->rm.desc, 1, BUF, 8, 0, 0);
	ringmem_make_avail(&f->rm, 0);
	expect_broken(f, -EINVAL);
}

static void test_avail_jump(void **state)
{
	struct fx *f = *state;
	set_desc(f->rm.desc, 0, BUF, 8, 0, 0);
	f->rm.avail->idx = QSZ; /* a full ring is fine */
	assert_int_equal(vr_pending(&f->vr), QSZ);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
	f->rm.avail->idx = 1 + 2 * QSZ; /* 2 * QSZ ahead of what we consumed */
	expect_broken(f, -EINVAL);
}

static void test_indirect(void **state)
{
	struct fx *f = *state;
	struct virtq_desc *t = ringmem_host(&f->rm, ITBL);
	f->vr.vr_indirect = true;
	set_desc(t, 0, BUF, 32, VRING_DESC_F_NEXT, 2);
	set_desc(t, 2, BUF + 0x100, 64, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, BUF + 0x200, 128, VRING_DESC_F_WRITE, 0);
	set_desc(f->rm.desc, 4, ITBL, 3 * 16, VRING_DESC_F_INDIRECT | VRING_DESC_F_WRITE, 0);
	ringmem_make_avail(&f->rm, 4);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
	assert_int_equal(f->ch.ch_head, 4);
	assert_int_equal(f->ch.ch_nsegs, 3);
	assert_ptr_equal(f->segs[1].sg_ptr, ringmem_host(&f->rm, BUF + 0x100));
	assert_int_equal(f->segs[1].sg_len, 64);
	assert_false(f->segs[1].sg_write);
	assert_true(f->segs[2].sg_write);
	assert_int_equal(f->ch.ch_write_bytes, 128);
}

/* Each case: head descriptor 0 (flags, addr, len) with the table at ITBL, want. */
static void indirect_case(void **state, bool negotiated, uint16_t flags, uint64_t addr,
			  uint32_t len, void (*fill)(struct virtq_desc *), int want)
{
	teardown(state);
	setup(state);
	struct fx *f = *state;
	f->vr.vr_indirect = negotiated;
	struct virtq_desc *t = ringmem_host(&f->rm, ITBL);
	for (unsigned i = 0; i < 4; i++)
		set_desc(t, i, BUF, 8, 0, 0);
	if (fill)
		fill(t);
	set_desc(f->rm.desc, 0, addr, len, flags, 1);
	set_desc(f->rm.desc, 1, BUF, 8, 0, 0);
	ringmem_make_avail(&f->rm, 0);
	expect_broken(f, want);
}

static void fill_nested(struct virtq_desc *t)
{
	set_desc(t, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, ITBL, 32, VRING_DESC_F_INDIRECT, 0);
}

static void fill_loop(struct virtq_desc *t)
{
	set_desc(t, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
	set_desc(t, 1, BUF, 8, VRING_DESC_F_NEXT, 0);
}

static void fill_next_range(struct virtq_desc *t)
{
	set_desc(t, 0, BUF, 8, VRING_DESC_F_NEXT, 2); /* table has 2 entries */
}

static void fill_outside(struct virtq_desc *t)
{
	set_desc(t, 1, BASE + MEMSZ, 8, 0, 0);
	set_desc(t, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
}

static void test_indirect_hostile(void **state)
{
	const uint16_t I = VRING_DESC_F_INDIRECT;
	indirect_case(state, false, I, ITBL, 32, NULL, -EINVAL); /* not negotiated */
	indirect_case(state, true, I | VRING_DESC_F_NEXT, ITBL, 32, NULL, -EINVAL);
	indirect_case(state, true, I, ITBL, 0, NULL, -EINVAL);		    /* empty */
	indirect_case(state, true, I, ITBL, 24, NULL, -EINVAL);		    /* not 16 * n */
	indirect_case(state, true, I, ITBL, 16 * (QSZ + 1), NULL, -EINVAL); /* > queue size */
	indirect_case(state, true, I, BASE + MEMSZ - 16, 32, NULL, -EFAULT);
	indirect_case(state, true, I, 0xfffffffffffffff0ull, 32, NULL, -EFAULT);
	indirect_case(state, true, I, ITBL, 32, fill_nested, -EINVAL);
	indirect_case(state, true, I, ITBL, 32, fill_loop, -ELOOP);
	indirect_case(state, true, I, ITBL, 32, fill_next_range, -EINVAL);
	indirect_case(state, true, I, ITBL, 32, fill_outside, -EFAULT);
	/* An indirect descriptor later in a direct chain. */
	teardown(state);
	setup(state);
	struct fx *f = *state;
	f->vr.vr_indirect = true;
	set_desc(f->rm.desc, 0, BUF, 8, VRING_DESC_F_NEXT, 1);
	set_desc(f->rm.desc, 1, ITBL, 32, VRING_DESC_F_INDIRECT, 0);
	ringmem_make_avail(&f->rm, 0);
	expect_broken(f, -EINVAL);
}

static void test_event_idx(void **state)
{
	struct fx *f = *state;
	f->vr.vr_event_idx = true;
	uint16_t *used_event = &f->rm.avail->ring[QSZ];
	uint16_t *avail_event = (uint16_t *)((uint8_t *)f->rm.used + 4 + 8 * QSZ);
	set_desc(f->rm.desc, 0, BUF, 8, 0, 0);
	for (unsigned i = 0; i < 4; i++)
		ringmem_make_avail(&f->rm, 0);
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
		assert_int_equal(*avail_event, i + 1); /* kick me when you pass this */
	}
	/* The first push always signals (no previous signal to compare with). */
	vr_push(&f->vr, 0, 0, f->err, sizeof(f->err));
	assert_true(vr_should_notify(&f->vr)); /* signalled at used idx 1 */
	/* The driver wants an interrupt once used idx passes 2 (used_event = 2). */
	*used_event = 2;
	vr_push(&f->vr, 0, 0, f->err, sizeof(f->err)); /* idx 2 */
	assert_false(vr_should_notify(&f->vr));
	vr_push(&f->vr, 0, 0, f->err, sizeof(f->err)); /* idx 3: crossed 2 */
	assert_true(vr_should_notify(&f->vr));
	vr_push(&f->vr, 0, 0, f->err, sizeof(f->err)); /* idx 4, event still 2 */
	assert_false(vr_should_notify(&f->vr));
	/* NO_INTERRUPT is ignored with event idx. */
	f->rm.avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	*used_event = 4;
	vr_push(&f->vr, 0, 0, f->err, sizeof(f->err)); /* idx 5 */
	assert_true(vr_should_notify(&f->vr));
	/* Re-enabling notifications reports work that raced in. */
	assert_false(vr_set_notify(&f->vr, true));
	ringmem_make_avail(&f->rm, 0);
	assert_true(vr_set_notify(&f->vr, true));
}

/* A polling device switches kicks off: with event idx, popping then leaves avail_event
 * alone (the driver sees no reason to kick); switching back on publishes it. */
static void test_event_idx_polling(void **state)
{
	struct fx *f = *state;
	f->vr.vr_event_idx = true;
	uint16_t *avail_event = (uint16_t *)((uint8_t *)f->rm.used + 4 + 8 * QSZ);
	set_desc(f->rm.desc, 0, BUF, 8, 0, 0);
	ringmem_make_avail(&f->rm, 0);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
	assert_int_equal(*avail_event, 1);
	assert_false(vr_set_notify(&f->vr, false));
	for (unsigned i = 0; i < 3; i++)
		ringmem_make_avail(&f->rm, 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 1);
	assert_int_equal(*avail_event, 1);
	assert_false(vr_set_notify(&f->vr, true));
	assert_int_equal(*avail_event, 4);
	assert_int_equal(vr_pop(&f->vr, &f->ch, f->err, sizeof(f->err)), 0);
}

static void test_notify_flags(void **state)
{
	struct fx *f = *state;
	vr_set_notify(&f->vr, false);
	assert_int_equal(f->rm.used->flags, VRING_USED_F_NO_NOTIFY);
	assert_false(vr_set_notify(&f->vr, true));
	assert_int_equal(f->rm.used->flags, 0);
}

static void test_map(void **state)
{
	struct fx *f = *state;
	struct vr_ring vr;
	/* By frontend virtual address. */
	assert_int_equal(vr_map(&vr, &f->gm, QSZ, UVA, UVA + 0x1000, UVA + 0x2000, true, 0, f->err,
				sizeof(f->err)),
			 0);
	assert_ptr_equal(vr.vr_desc, f->rm.desc);
	assert_int_equal(
	    vr_map(&vr, &f->gm, QSZ, DESC, AVAIL, USED, true, 0, f->err, sizeof(f->err)), -EINVAL);
	/* Sizes: zero, not a power of two, too large. */
	assert_int_equal(vr_map(&vr, &f->gm, 0, DESC, AVAIL, USED, false, 0, f->err, 256), -EINVAL);
	assert_int_equal(vr_map(&vr, &f->gm, 24, DESC, AVAIL, USED, false, 0, f->err, 256),
			 -EINVAL);
	assert_int_equal(vr_map(&vr, &f->gm, 65536, DESC, AVAIL, USED, false, 0, f->err, 256),
			 -EINVAL);
	assert_true(vr.vr_broken);
	/* Misaligned parts; a used ring running past the end of memory. */
	assert_int_equal(vr_map(&vr, &f->gm, QSZ, DESC + 8, AVAIL, USED, false, 0, f->err, 256),
			 -EINVAL);
	assert_int_equal(vr_map(&vr, &f->gm, QSZ, DESC, AVAIL + 1, USED, false, 0, f->err, 256),
			 -EINVAL);
	assert_int_equal(vr_map(&vr, &f->gm, QSZ, DESC, AVAIL, USED + 2, false, 0, f->err, 256),
			 -EINVAL);
	assert_int_equal(
	    vr_map(&vr, &f->gm, QSZ, DESC, AVAIL, BASE + MEMSZ - 64, false, 0, f->err, 256),
	    -EINVAL);
	assert_int_equal(vr_pop(&vr, &f->ch, f->err, sizeof(f->err)), -EIO);
}

static void test_gm_table(void **state)
{
	(void)state;
	char err[256];
	int fd = memfd_create("test-vring", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 3 * PAGE), 0);
	uint8_t *view = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	assert_true(view != MAP_FAILED);
	view[PAGE + 5] = 0xab;

	struct gmem gm;
	gm_init(&gm);
	/* Two regions of one fd, the second at an unaligned offset. */
	struct gm_region_desc rd[2] = {
	    {.rd_gpa = 0, .rd_size = PAGE, .rd_uva = 0x1000, .rd_mmap_offset = 0},
	    {.rd_gpa = 0x10000, .rd_size = PAGE, .rd_uva = 0x9000, .rd_mmap_offset = PAGE + 5},
	};
	int fds[2] = {dup(fd), dup(fd)};
	assert_int_equal(gm_set_table(&gm, rd, 2, fds, err, sizeof(err)), 0);
	uint8_t *p = gm_gpa(&gm, 0x10000, 1);
	assert_non_null(p);
	assert_int_equal(*p, 0xab);
	assert_ptr_equal(gm_uva(&gm, 0x9000, PAGE), p);
	assert_null(gm_gpa(&gm, 0x10000, PAGE + 1));
	assert_null(gm_gpa(&gm, PAGE - 1, 2)); /* crosses into no memory */
	assert_null(gm_gpa(&gm, 0xffff, 2));   /* straddles into the second region */
	assert_null(gm_gpa(&gm, UINT64_MAX, 2));
	assert_null(gm_uva(&gm, 0x1000 + PAGE, 1));
	assert_non_null(gm_gpa(&gm, PAGE - 1, 1));

	/* Overlapping, empty, wrapping and too many regions are refused; the old table stays. */
	struct gm_region_desc bad[][2] = {
	    {{.rd_gpa = 0, .rd_size = PAGE}, {.rd_gpa = PAGE - 1, .rd_size = PAGE}},
	    {{.rd_gpa = 0, .rd_size = PAGE}, {.rd_gpa = 0x20000, .rd_size = 0}},
	    {{.rd_gpa = 0, .rd_size = PAGE}, {.rd_gpa = UINT64_MAX - 10, .rd_size = PAGE}},
	    {{.rd_gpa = 0, .rd_size = PAGE},
	     {.rd_gpa = PAGE, .rd_size = 1, .rd_mmap_offset = UINT64_MAX}},
	    /* past the end of the 3-page file: touching it would raise SIGBUS */
	    {{.rd_gpa = 0, .rd_size = PAGE},
	     {.rd_gpa = PAGE, .rd_size = 3 * PAGE, .rd_mmap_offset = 1}},
	};
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++) {
		int fds2[2] = {dup(fd), dup(fd)};
		assert_true(gm_set_table(&gm, bad[i], 2, fds2, err, sizeof(err)) < 0);
		assert_int_equal(fcntl(fds2[0], F_GETFD), -1); /* closed anyway */
		assert_int_equal(*(uint8_t *)gm_gpa(&gm, 0x10000, 1), 0xab);
	}
	struct gm_region_desc many[GM_MAX_REGIONS + 1];
	int mfds[GM_MAX_REGIONS + 1];
	for (unsigned i = 0; i < ARRAY_SIZE(many); i++) {
		many[i] = (struct gm_region_desc){.rd_gpa = i * PAGE, .rd_size = PAGE};
		mfds[i] = dup(fd);
	}
	assert_int_equal(gm_set_table(&gm, many, ARRAY_SIZE(many), mfds, err, sizeof(err)), -E2BIG);
	assert_int_equal(fcntl(mfds[0], F_GETFD), -1);
	/* A bad fd. */
	int badfd[1] = {-1};
	assert_true(gm_set_table(&gm, rd, 1, badfd, err, sizeof(err)) < 0);

	/* Replacing the table. */
	int fds3[1] = {dup(fd)};
	assert_int_equal(gm_set_table(&gm, &rd[0], 1, fds3, err, sizeof(err)), 0);
	assert_null(gm_gpa(&gm, 0x10000, 1));
	assert_non_null(gm_gpa(&gm, 0, PAGE));
	gm_clear(&gm);
	assert_null(gm_gpa(&gm, 0, 1));
	munmap(view, 3 * PAGE);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_good_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_wraparound, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_segment_bounds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_self_loop, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full_length_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_head_out_of_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_next_out_of_range, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_addr_outside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_total_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_segments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_before_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_avail_jump, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indirect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_indirect_hostile, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_idx, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_event_idx_polling, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_notify_flags, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_map, setup, teardown),
	    cmocka_unit_test(test_gm_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
