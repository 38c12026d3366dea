/* libFuzzer target for the NVMe card core (src/cards/nvme/nvme.c): admin and I/O commands,
 * PRP lists, SGLs, queue creation and deletion, doorbell values, shadow doorbells, all
 * guest-controlled, on heap guest memory (ASan sees any access outside it) and a null
 * back end (plain or encrypted). The card must never crash: bad input fails the command
 * or the controller (CSTS.CFS); a failed controller is enabled again.
 *
 * Input: u8 flags (1: encrypted), u16 n, n bytes copied into guest memory at the data
 * area (PRP lists, SGL segments, DSM ranges), then records until the input ends: u8 op
 * (low 3 bits: the queue id; 0x80: write the next u32 as that queue's SQ tail doorbell
 * instead of posting; 0x40: as its CQ head; with either, 0x08: instead of the kick, the
 * card's busy-poll window: polling on (0x10) or off, then a poll; else 0x38: a card
 * restart: the next u16 is
 * an offset into the saved state, the u16 after it is written there — the last card may
 * have been subverted — and a new card resumes from it), then a 64-byte command. */
// clang-format off
// fuzz-extra: src/cards/nvme/nvme.c src/cards/bdev/bdev_null.c src/cards/bdev/qos.c src/volume/volume.c src/volume/xts.c -lcrypto
// clang-format on
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/nvme/nvmetest.h"
#include "fuzz.h"

static struct nt t[2];
static bool ready[2];

static void teardown(void)
{
	for (unsigned k = 0; k < 2; k++)
		if (ready[k])
			nt_fini(&t[k]);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n < 3)
		return 0;
	unsigned k = d[0] & 1;
	if (!ready[k]) {
		if (nt_init(&t[k], 1u << 20, k))
			abort();
		if (!ready[0] && !ready[1])
			atexit(teardown); /* runs before LeakSanitizer's own exit check */
		ready[k] = true;
	}
	struct nt *x = &t[k];
	/* a fresh controller state each run (the memory and key stay) */
	struct nvw_enable e = {.e_cc = 1 | 6u << 16 | 4u << 20,
			       .e_aqa = (NT_QD - 1) << 16 | (NT_QD - 1),
			       .e_asq = NT_ASQ,
			       .e_acq = NT_ACQ};
	memset(x->mem, 0, NT_MEM);
	memset(x->tail, 0, sizeof(x->tail));
	memset(x->head, 0, sizeof(x->head));
	for (unsigned i = 0; i < NVME_MAX_QIDS; i++) {
		x->phase[i] = 1;
		x->sq[i] = NT_DATA + 0x10000 + i * 0x1000; /* where a fuzzed create puts them */
		x->cq[i] = NT_DATA + 0x18000 + i * 0x1000;
	}
	x->sq[0] = NT_ASQ;
	x->cq[0] = NT_ACQ;
	if (!nvme_enable(&x->c, &e))
		abort();
	size_t len = (size_t)d[1] | (size_t)d[2] << 8;
	d += 3;
	n -= 3;
	if (len > n)
		len = n;
	if (len > 0x10000)
		len = 0x10000;
	memcpy(nt_ptr(x, NT_DATA), d, len);
	d += len;
	n -= len;
	while (n >= 5) {
		uint8_t op = d[0];
		unsigned q = op & 7;
		if (q >= x->c.c_info.ni_nqids)
			q = 0;
		if (!(op & 0xc0) && (op & 0x38) == 0x38) {
			static struct nvw_shared gone;
			uint16_t off, v;
			memcpy(&off, d + 1, 2);
			memcpy(&v, d + 3, 2);
			memcpy((uint8_t *)&x->sh.s_state + off % (sizeof(x->sh.s_state) - 1), &v,
			       2);
			x->c.c_shared = &gone; /* the card ends: nothing of it but the memfd */
			nvme_disable(&x->c);
			x->c.c_shared = &x->sh;
			nvme_resume(&x->c, &e);
			d += 5;
			n -= 5;
			continue;
		}
		if (op & 0xc0) {
			uint32_t v;
			memcpy(&v, d + 1, 4);
			unsigned idx = 2 * q + ((op & 0x40) ? 1 : 0);
			if (q && x->c.c_dbs)
				x->c.c_dbs[idx] = v;
			else
				x->sh.s_db[idx] = v;
			if (op & 0x08) {
				nvme_set_polling(&x->c, op & 0x10);
				nvme_poll(&x->c);
			} else {
				nvme_kick(&x->c, q);
			}
			d += 5;
			n -= 5;
			continue;
		}
		if (n < 65)
			break;
		uint8_t cmd[64];
		memcpy(cmd, d + 1, 64);
		if (!x->c.c_failed)
			nt_post(x, q, cmd, NULL);
		d += 65;
		n -= 65;
	}
	nvme_set_polling(&x->c, false);
	nvme_disable(&x->c);
	return 0;
}
