/* libFuzzer target for the EBS card's request layer (src/cards/ebs/blk.c): virtio-blk
 * headers, data buffer lists, discard/write-zeroes ranges and the crypto path, on a null
 * back end (plain and with an ephemeral key). The input describes requests the way a
 * driver would post them, so most chains pass the walker and reach the card's parsing;
 * headers, ranges and buffer layouts are the fuzzer's. Guest memory is an exactly sized
 * heap copy, so ASan sees any access outside it; every used entry must name a chain that
 * was posted and report at most the chain's writable bytes.
 *
 * Input: u8 flags (1 encrypted, 2 event idx), then requests until the input ends: u8 n
 * (buffers, 1 + n % 6), then per buffer u16 gpa offset, u16 length, u8 writable; the
 * buffers' first 16 bytes (and more) come from the memory image that follows the last
 * request: u16 image length, then the image.
 */
// clang-format off
// fuzz-extra: src/cards/ebs/blk.c src/cards/bdev/*.c src/volume/volume.c src/volume/xts.c -lcrypto -luring
// clang-format on
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/ebs/ebs.h"
#include "fuzz.h"
#include "lib/util.h"

#define QSIZE 16u
#define MEM (64u << 10)
#define DESC_OFF 0u
#define AVAIL_OFF 0x100u
#define USED_OFF 0x200u
#define DATA_OFF 0x400u /* buffers live above the rings */
#define UVA 0x7f0000000000ull

struct inst {
	struct loop l;
	struct volume v;
	struct bdev b;
	struct ebs e;
};

static struct inst in[2];
static bool made[2];

static void teardown(void)
{
	for (unsigned i = 0; i < 2; i++)
		if (made[i]) {
			ebs_fini(&in[i].e);
			bdev_close(&in[i].b);
			vol_close(&in[i].v);
			loop_fini(&in[i].l);
		}
}

static struct inst *instance(bool encrypted)
{
	char err[256];
	struct inst *p = &in[encrypted];
	if (made[encrypted])
		return p;
	if (loop_init(&p->l, false, err, sizeof(err)) ||
	    bdev_null_open(&p->b, 1 << 20, err, sizeof(err)))
		abort();
	vol_init_raw(&p->v, "null:1M", 1 << 20, false);
	if (encrypted && vol_set_ephemeral_key(&p->v, err, sizeof(err)))
		abort();
	if (ebs_init(&p->e, &p->v, &p->b, &p->l, 1, 0, 0, err, sizeof(err)))
		abort();
	made[encrypted] = true;
	return p;
}

/* Both devices exist before the first input and are torn down at exit (the encrypted
 * one keeps its cipher state in a locked mmap page, which LeakSanitizer does not scan). */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	instance(false);
	instance(true);
	atexit(teardown); /* runs before LeakSanitizer's own exit check */
	return 0;
}

static uint16_t u16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (size < 1)
		return 0;
	uint8_t flags = data[0];
	struct inst *in = instance(flags & 1);
	struct vu_dev *d = &in->e.e_dev;
	uint8_t *mem = calloc(1, MEM);
	if (!mem)
		abort();
	/* Requests first (they set descriptors), then the image fills the data area. */
	size_t pos = 1;
	unsigned nreq = 0, ndesc = 0;
	uint16_t heads[QSIZE];
	uint64_t wbytes[QSIZE];
	uint8_t *desc = mem + DESC_OFF;
	while (pos < size && nreq < QSIZE) {
		unsigned n = 1 + data[pos++] % 6;
		if (ndesc + n > QSIZE || pos + 5 * (size_t)n > size)
			break;
		heads[nreq] = (uint16_t)ndesc;
		wbytes[nreq] = 0;
		for (unsigned k = 0; k < n; k++, pos += 5) {
			uint64_t gpa = DATA_OFF + u16(data + pos) % (MEM - DATA_OFF);
			uint32_t len = u16(data + pos + 2);
			uint16_t fl = data[pos + 4] & 1 ? VRING_DESC_F_WRITE : 0;
			if (k + 1 < n)
				fl |= VRING_DESC_F_NEXT;
			if (fl & VRING_DESC_F_WRITE)
				wbytes[nreq] += len;
			uint8_t *dd = desc + 16 * ndesc;
			memcpy(dd, &gpa, 8);
			memcpy(dd + 8, &len, 4);
			memcpy(dd + 12, &fl, 2);
			uint16_t next = (uint16_t)(ndesc + 1);
			memcpy(dd + 14, &next, 2);
			ndesc++;
		}
		nreq++;
	}
	if (pos + 2 <= size) {
		size_t ilen = u16(data + pos);
		pos += 2;
		if (ilen > size - pos)
			ilen = size - pos;
		if (ilen > MEM - DATA_OFF)
			ilen = MEM - DATA_OFF;
		memcpy(mem + DATA_OFF, data + pos, ilen);
	}
	uint16_t *avail = (uint16_t *)(mem + AVAIL_OFF);
	for (unsigned i = 0; i < nreq; i++)
		avail[2 + i] = heads[i];
	avail[1] = (uint16_t)nreq;

	/* Queue 0 over this memory, as the frontend would set it up. */
	gm_clear(&d->vd_mem);
	if (gm_add_borrowed(&d->vd_mem, 0, UVA, mem, MEM, err, sizeof(err)))
		abort();
	d->vd_features =
	    (1ull << VIRTIO_F_VERSION_1) | (flags & 2 ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0);
	struct vu_queue *vq = &d->vd_queues[0];
	vq->vq_num = QSIZE;
	vq->vq_addr_set = true;
	vq->vq_desc_addr = UVA + DESC_OFF;
	vq->vq_avail_addr = UVA + AVAIL_OFF;
	vq->vq_used_addr = UVA + USED_OFF;
	vq->vq_base = 0;
	vq->vq_enabled = true;
	CHECK(vu_queue_start(d, 0, err, sizeof(err)) == 0);
	in->e.e_ops.vo_queue_kick(d, 0);

	/* Every used entry names a posted chain and claims no more than it could hold. */
	const uint8_t *used = mem + USED_OFF;
	uint16_t uidx = u16(used + 2);
	CHECK(uidx <= nreq);
	for (unsigned i = 0; i < uidx; i++) {
		uint32_t id, len;
		memcpy(&id, used + 4 + 8 * i, 4);
		memcpy(&len, used + 8 + 8 * i, 4);
		bool found = false;
		for (unsigned r = 0; r < nreq; r++)
			if (heads[r] == id) {
				found = true;
				CHECK(len <= wbytes[r]);
			}
		CHECK(found);
	}
	vu_queue_reset(d, 0);
	gm_clear(&d->vd_mem);
	free(mem);
	return 0;
}
