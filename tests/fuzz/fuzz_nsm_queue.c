/* libFuzzer target for nitro-card-nsm's request path (src/cards/nsm/queue.c): the input is
 * guest memory holding a queue of 8 entries (descriptor table at 0, avail ring at 128,
 * used ring at 152) and the buffers after it; the card's queue kick runs on it through
 * the card library, as when the guest kicks, then once more (a reply chain the first pass
 * left pending). No input may crash it or make it touch memory outside the image (ASan:
 * the image is an exactly sized copy), and a pending request never outlives a failed ring.
 * (The used ring's contents prove nothing here: a hostile guest may place a reply buffer
 * over its own rings.)
 *
 * Input: u8 flags (1 indirect descriptors, 2 event idx), then the memory image (at least
 * 256 bytes; at gpa 0).
 */
// fuzz-extra: src/cards/nsm/queue.c src/enclave/nsm.c src/enclave/cbw.c src/enclave/cose.c -lcbor
// fuzz-extra: -lcrypto
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/lib/vhost_user.h"
#include "cards/nsm/queue.h"
#include "fuzz.h"
#include "lib/util.h"

#define QSZ 8u
#define USED 152u
#define MIN_IMAGE 256u

static int sign(void *ctx, const uint8_t *tbs, size_t len, uint8_t sig[COSE_ES384_SIG_LEN])
{
	(void)ctx;
	(void)tbs;
	(void)len;
	memset(sig, 0x5a, COSE_ES384_SIG_LEN);
	return 0;
}

static int rnd(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	memset(buf, 0x11, len);
	return 0;
}

static uint64_t now(void *ctx)
{
	(void)ctx;
	return 1700000000000ull;
}

static const struct vu_ops ops = {.vo_num_queues = 1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	if (size < 1 + MIN_IMAGE)
		return 0;
	size_t len = size - 1;
	uint8_t *mem = malloc(len); /* exactly sized: ASan sees any access past it */
	if (!mem)
		abort();
	memcpy(mem, data + 1, len);
	static struct vu_dev d;
	if (vu_dev_init(&d, &ops, NULL, NULL, err, sizeof(err)) ||
	    gm_add_borrowed(&d.vd_mem, 0, 0x40000000, mem, len, err, sizeof(err)))
		abort();
	d.vd_features = (data[0] & 1 ? 1ull << VIRTIO_RING_F_INDIRECT_DESC : 0) |
			(data[0] & 2 ? 1ull << VIRTIO_RING_F_EVENT_IDX : 0);
	struct vu_queue *vq = &d.vd_queues[0];
	vq->vq_num = QSZ;
	vq->vq_addr_set = true;
	vq->vq_desc_addr = 0x40000000;
	vq->vq_avail_addr = 0x40000000 + 128;
	vq->vq_used_addr = 0x40000000 + USED;
	vq->vq_enabled = true;
	if (vu_queue_start(&d, 0, err, sizeof(err)) == 0) {
		static struct nsm_state st;
		static struct nsm_queue q;
		const uint8_t *boot[NSM_LOCKED_AT_BOOT] = {0};
		struct nsm_ops o = {.sign = sign, .random = rnd, .now_ms = now};
		static const uint8_t cert[] = {0x30, 0x03, 0x02, 0x01, 0x01};
		nsm_init(&st, "i-0123456789abcdef0-enc0000000000000010", boot, &o);
		st.cert = cert;
		st.cert_len = sizeof(cert);
		st.cabundle[0] = cert;
		st.cabundle_len[0] = sizeof(cert);
		st.ncabundle = 1;
		nsm_queue_init(&q, &st);
		for (int pass = 0; pass < 2; pass++) {
			nsm_queue_kick(&q, &d, 0);
			CHECK(!(vq->vq_failed && q.nq_pending));
			CHECK(q.nq_req_len <= NSM_REQUEST_MAX + 1);
		}
		nsm_queue_stopping(&q, &d, 0);
		nsm_queue_stop(&q);
	}
	vu_dev_fini(&d);
	free(mem);
	return 0;
}
