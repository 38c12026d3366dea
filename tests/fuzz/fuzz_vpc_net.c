/* libFuzzer target: the VPC card's virtio-net device (src/cards/vpc/net.c) fed by a hostile
 * guest. The input is one guest memory image holding the rings of the rx, tx and control
 * queues (queue q at offset q * 1024: descriptors, then avail at +256, used at +320) and
 * whatever buffers the descriptors point to. Byte 0: bit 0 VERSION_1 negotiated, bits
 * 1-3 the queue size (1 << n % 5); byte 1: how many bytes of a frame to deliver on rx.
 * Every frame handed to the card must be within the limits the device promises, every
 * received frame written inside the guest's buffers; nothing may crash or hang.
 */
// fuzz-extra: src/cards/vpc/net.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vpc/net.h"
#include "fuzz.h"

#define MEM_MIN 4096
#define UVA 0x10000000ull

static unsigned frames;

static void on_tx(struct vnet *n, unsigned pair, const uint8_t *f, size_t len)
{
	CHECK(pair == 0);
	CHECK(len >= 14 && len <= (size_t)n->vn_mtu + 18);
	volatile uint8_t x = f[0];
	x ^= f[len - 1];
	(void)x;
	frames++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (size < 2)
		return 0;
	size_t len = size - 2 < MEM_MIN ? MEM_MIN : size - 2;
	uint8_t *mem = calloc(1, len); /* exactly sized: ASan sees any access past it */
	if (!mem)
		abort();
	memcpy(mem, data + 2, size - 2);
	static const uint8_t mac[6] = {2, 0, 0, 0, 0, 1};
	struct vnet n;
	CHECK(vnet_init(&n, NULL, mac, 1500, 1, err, sizeof(err)) == 0);
	n.vn_tx = on_tx;
	struct vu_dev *d = &n.vn_dev;
	d->vd_features = data[0] & 1 ? 1ull << VIRTIO_F_VERSION_1 : 0;
	CHECK(gm_add_borrowed(&d->vd_mem, 0, UVA, mem, len, err, sizeof(err)) == 0);
	unsigned qsize = 1u << ((data[0] >> 1) % 5);
	for (unsigned q = 0; q < 3; q++) {
		struct vu_queue *vq = &d->vd_queues[q];
		vq->vq_num = qsize;
		vq->vq_desc_addr = UVA + q * 1024;
		vq->vq_avail_addr = UVA + q * 1024 + 256;
		vq->vq_used_addr = UVA + q * 1024 + 320;
		vq->vq_addr_set = true;
		vq->vq_enabled = true;
		if (vu_queue_start(d, q, err, sizeof(err)) != 0)
			continue;
	}
	frames = 0;
	for (unsigned q = 1; q < 3; q++)
		if (d->vd_queues[q].vq_started && !d->vd_queues[q].vq_failed)
			n.vn_ops.vo_queue_kick(d, q);
	CHECK(frames <= qsize);
	CHECK(n.vn_active_pairs == 1);
	uint8_t frame[256];
	size_t flen = data[1];
	memset(frame, 0x5a, sizeof(frame));
	for (unsigned i = 0; i < 2; i++)
		(void)vnet_rx(&n, i, frame, flen);
	vnet_rx_flush(&n);
	(void)vnet_rx_room(&n);
	vnet_fini(&n);
	free(mem);
	return 0;
}
