/* libFuzzer target for the split-virtqueue walker (src/cards/lib/vring.c): the input is a
 * queue state and a guest memory image (one or two regions); every chain the walker
 * returns must lie inside the image, and no input may crash it.
 *
 * Input: u8 size (queue size 1 << (size % 6), or 1 << (size % 16) with placement bit),
 * u8 flags (1 indirect, 2 event idx, 4 place the rings from the next three u16s instead
 * of back to back, 8 split memory into two regions), u16 last_avail, u16 desc, u16 avail,
 * u16 used, u16 split, u16 max_bytes / 16, then the memory image (at gpa 0; the second
 * region, if any, at gpa 0x100000).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/lib/guestmem.h"
#include "cards/lib/vring.h"
#include "fuzz.h"
#include "lib/util.h"

#define HDR 14
#define GPA2 0x100000ull

static uint16_t u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

struct image {
	const uint8_t *lo[2], *hi[2];
};

static bool inside(const struct image *im, const struct vr_seg *s)
{
	const uint8_t *p = s->sg_ptr;
	for (unsigned i = 0; i < 2; i++)
		if (im->lo[i] && p >= im->lo[i] && p <= im->hi[i] &&
		    s->sg_len <= (size_t)(im->hi[i] - p))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (size < HDR)
		return 0;
	uint8_t flags = data[1];
	unsigned qsize = 1u << (flags & 4 ? data[0] % 16 : data[0] % 6);
	uint16_t last = u16(data + 2), split = u16(data + 10);
	size_t len = size - HDR;
	/* An exactly sized copy, so that ASan sees any access past the image. */
	uint8_t *mem = malloc(len ? len : 1);
	if (!mem)
		abort();
	memcpy(mem, data + HDR, len);

	struct gmem gm;
	struct image im = {{0}, {0}};
	gm_init(&gm);
	size_t n0 = (flags & 8) && split < len ? split : len;
	if (n0 && gm_add_borrowed(&gm, 0, 0x40000000, mem, n0, err, sizeof(err)) == 0) {
		im.lo[0] = mem;
		im.hi[0] = mem + n0;
	}
	if (len > n0 &&
	    gm_add_borrowed(&gm, GPA2, 0x50000000, mem + n0, len - n0, err, sizeof(err)) == 0) {
		im.lo[1] = mem + n0;
		im.hi[1] = mem + len;
	}

	uint64_t d, a, u;
	if (flags & 4) {
		d = u16(data + 4), a = u16(data + 6), u = u16(data + 8);
	} else {
		d = 0;
		a = vr_desc_bytes(qsize);
		u = (a + vr_avail_bytes(qsize) + 3) & ~3ull;
	}
	struct vr_ring vr;
	if (vr_map(&vr, &gm, qsize, d, a, u, false, last, err, sizeof(err)) == 0) {
		vr.vr_indirect = flags & 1;
		vr.vr_event_idx = flags & 2;
		if (u16(data + 12))
			vr.vr_max_bytes = u16(data + 12) * 16ull;
		struct vr_seg segs[64];
		struct vr_chain ch = {.ch_segs = segs, .ch_max = ARRAY_SIZE(segs)};
		for (unsigned i = 0; i < 2 * VR_MAX_SIZE / 256 && i < 4 * qsize; i++) {
			int r = vr_pop(&vr, &ch, err, sizeof(err));
			CHECK(r >= -4095 && r <= 1);
			if (r <= 0) {
				CHECK(r == 0 || vr.vr_broken);
				break;
			}
			CHECK(ch.ch_head < qsize);
			CHECK(ch.ch_nsegs <= ch.ch_max);
			uint64_t rd = 0, wr = 0;
			bool seen_write = false;
			for (unsigned k = 0; k < ch.ch_nsegs; k++) {
				CHECK(inside(&im, &segs[k]));
				CHECK(!seen_write || segs[k].sg_write);
				seen_write |= segs[k].sg_write;
				*(segs[k].sg_write ? &wr : &rd) += segs[k].sg_len;
				/* Touch every byte: ASan checks the bounds too. */
				if (segs[k].sg_len) {
					volatile uint8_t *p = segs[k].sg_ptr;
					(void)p[0];
					(void)p[segs[k].sg_len - 1];
					if (segs[k].sg_write)
						memset(segs[k].sg_ptr, 0xa5, segs[k].sg_len);
				}
			}
			CHECK(rd == ch.ch_read_bytes && wr == ch.ch_write_bytes);
			CHECK(rd + wr <= vr.vr_max_bytes);
			if (vr_push(&vr, ch.ch_head, (uint32_t)wr, err, sizeof(err)) == 0)
				(void)vr_should_notify(&vr);
		}
		(void)vr_set_notify(&vr, false);
		(void)vr_set_notify(&vr, true);
		(void)vr_pending(&vr);
	}
	gm_clear(&gm);
	free(mem);
	return 0;
}
