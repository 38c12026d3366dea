#include "blk.h"

#include "lib/le.h"
#include "lib/util.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "rings are accessed as host words");

#define DESC_SIZE 16
#define USED_ELEM 8
#define HDR_SIZE 16

uint64_t blk_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool blk_has(const struct blk_dev *d, unsigned feature)
{
	return d->bd_vf.vf_acked & (1ull << feature);
}

/* Ring words (little-endian host, see blk.h). */
static uint16_t *avail_flags(struct blk_queue *q)
{
	return (uint16_t *)q->bq_avail;
}

static uint16_t *avail_idx(struct blk_queue *q)
{
	return (uint16_t *)(q->bq_avail + 2);
}

static uint16_t *avail_ring(struct blk_queue *q, uint16_t i)
{
	return (uint16_t *)(q->bq_avail + 4 + 2 * (i % q->bq_num));
}

static uint16_t *used_flags(struct blk_queue *q)
{
	return (uint16_t *)q->bq_used;
}

static uint16_t *used_idx(struct blk_queue *q)
{
	return (uint16_t *)(q->bq_used + 2);
}

static void set_desc(struct blk_queue *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	uint8_t *d = q->bq_desc + (size_t)DESC_SIZE * i;
	le64_put(d, addr);
	le32_put(d + 8, len);
	le16_put(d + 12, flags);
	le16_put(d + 14, next);
}

static int queue_init(struct blk_dev *d, struct blk_queue *q, unsigned idx, unsigned qsize,
		      uint32_t buf_size, char *err, size_t errlen)
{
	struct vu_front *f = &d->bd_vf;
	memset(q, 0, sizeof(*q));
	q->bq_vf = f;
	q->bq_idx = idx;
	q->bq_num = (uint16_t)qsize;
	q->bq_buf_size = buf_size;
	q->bq_vr.vr_kick = q->bq_vr.vr_call = -1;
	q->bq_nslots = qsize / 3;
	uint64_t desc = vu_alloc(f, (uint64_t)DESC_SIZE * qsize, 4096);
	uint64_t avail = vu_alloc(f, 6 + 2ull * qsize, 4096);
	uint64_t used = vu_alloc(f, 6 + (uint64_t)USED_ELEM * qsize, 4096);
	if (desc == UINT64_MAX || avail == UINT64_MAX || used == UINT64_MAX)
		RETURN_ERR(-1, "queue %u: guest memory too small for the rings", idx);
	q->bq_desc = vu_ptr(f, desc);
	q->bq_avail = vu_ptr(f, avail);
	q->bq_used = vu_ptr(f, used);

	q->bq_slots = calloc(q->bq_nslots, sizeof(*q->bq_slots));
	q->bq_free = calloc(q->bq_nslots, sizeof(*q->bq_free));
	if (!q->bq_slots || !q->bq_free)
		RETURN_ERR(-1, "out of memory");
	for (unsigned i = 0; i < q->bq_nslots; i++) {
		struct blk_req *r = &q->bq_slots[i];
		r->hdr_gpa = vu_alloc(f, HDR_SIZE + 1, 64);
		r->data_gpa = vu_alloc(f, buf_size, 4096);
		if (r->hdr_gpa == UINT64_MAX || r->data_gpa == UINT64_MAX)
			RETURN_ERR(-1,
				   "queue %u: guest memory too small for %u buffers of %u bytes "
				   "(raise --mem)",
				   idx, q->bq_nslots, buf_size);
		r->status_gpa = r->hdr_gpa + HDR_SIZE;
		r->hdr = vu_ptr(f, r->hdr_gpa);
		r->status = vu_ptr(f, r->status_gpa);
		r->data = vu_ptr(f, r->data_gpa);
		r->head = (uint16_t)(3 * i);
		q->bq_free[q->bq_nfree++] = (uint16_t)(q->bq_nslots - 1 - i);
	}
	return vu_vring_start(f, idx, qsize, desc, avail, used, &q->bq_vr, err, errlen);
}

static void parse_config(struct blk_dev *d)
{
	const uint8_t *c = d->bd_vf.vf_config;
	d->bd_capacity = le64_get(c);
	d->bd_blk_size = blk_has(d, VIRTIO_BLK_F_BLK_SIZE) ? le32_get(c + 20) : BLK_SECTOR;
	d->bd_num_queues = blk_has(d, VIRTIO_BLK_F_MQ) ? le16_get(c + 34) : 1;
	if (d->bd_num_queues == 0)
		d->bd_num_queues = 1;
	d->bd_max_discard_sectors = le32_get(c + 36);
	d->bd_max_write_zeroes_sectors = le32_get(c + 48);
}

int blk_open(struct blk_dev *d, const char *path, uint64_t mem_size, unsigned nqueues,
	     unsigned qsize, uint32_t buf_size, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	if (qsize < 3 || qsize > 32768 || (qsize & (qsize - 1)))
		RETURN_ERR(-1, "queue size %u: must be a power of two in 4..32768", qsize);
	if (nqueues == 0 || buf_size == 0)
		RETURN_ERR(-1, "need at least one queue and a non-empty buffer");
	if (vu_open(&d->bd_vf, path, mem_size, err, errlen))
		return -1;
	uint64_t want = 1ull << VIRTIO_BLK_F_SIZE_MAX | 1ull << VIRTIO_BLK_F_SEG_MAX |
			1ull << VIRTIO_BLK_F_RO | 1ull << VIRTIO_BLK_F_BLK_SIZE |
			1ull << VIRTIO_BLK_F_FLUSH | 1ull << VIRTIO_BLK_F_TOPOLOGY |
			1ull << VIRTIO_BLK_F_MQ | 1ull << VIRTIO_BLK_F_DISCARD |
			1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	if (vu_init(&d->bd_vf, want, BLK_CONFIG_LEN, err, errlen))
		goto fail;
	if (d->bd_vf.vf_config_len < BLK_CONFIG_LEN) {
		snprintf(err, errlen,
			 "back end does not offer the CONFIG protocol feature: "
			 "no capacity");
		goto fail;
	}
	parse_config(d);
	unsigned max =
	    d->bd_num_queues < d->bd_vf.vf_max_queues ? d->bd_num_queues : d->bd_vf.vf_max_queues;
	if (nqueues > max) {
		snprintf(err, errlen, "%u queues asked, device has %u", nqueues, max);
		goto fail;
	}
	d->bd_q = calloc(nqueues, sizeof(*d->bd_q));
	if (!d->bd_q) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (unsigned i = 0; i < nqueues; i++) {
		d->bd_nqueues = i + 1;
		if (queue_init(d, &d->bd_q[i], i, qsize, buf_size, err, errlen))
			goto fail;
	}
	return 0;
fail:
	blk_close(d);
	return -1;
}

void blk_close(struct blk_dev *d)
{
	vu_close(&d->bd_vf);
	for (unsigned i = 0; d->bd_q && i < d->bd_nqueues; i++) {
		struct blk_queue *q = &d->bd_q[i];
		if (q->bq_vr.vr_kick >= 0)
			close(q->bq_vr.vr_kick);
		if (q->bq_vr.vr_call >= 0)
			close(q->bq_vr.vr_call);
		free(q->bq_slots);
		free(q->bq_free);
	}
	free(d->bd_q);
	d->bd_q = NULL;
	d->bd_nqueues = 0;
}

struct blk_req *blk_req_get(struct blk_queue *q)
{
	if (q->bq_nfree == 0)
		return NULL;
	return &q->bq_slots[q->bq_free[--q->bq_nfree]];
}

void blk_req_put(struct blk_queue *q, struct blk_req *r)
{
	q->bq_free[q->bq_nfree++] = (uint16_t)(r - q->bq_slots);
}

static bool device_writes_data(uint32_t type)
{
	return type == BLK_T_IN || type == BLK_T_GET_ID;
}

void blk_submit(struct blk_queue *q, struct blk_req *r, uint32_t type, uint64_t sector,
		uint32_t len)
{
	le32_put(r->hdr, type);
	le32_put(r->hdr + 4, 0);
	le64_put(r->hdr + 8, sector);
	*r->status = 0xff; /* shows a device that never writes the status */
	uint16_t h = r->head;
	if (len) {
		set_desc(q, h, r->hdr_gpa, HDR_SIZE, VRING_DESC_F_NEXT, h + 1);
		set_desc(q, h + 1, r->data_gpa, len,
			 VRING_DESC_F_NEXT | (device_writes_data(type) ? VRING_DESC_F_WRITE : 0),
			 h + 2);
	} else {
		set_desc(q, h, r->hdr_gpa, HDR_SIZE, VRING_DESC_F_NEXT, h + 2);
	}
	set_desc(q, h + 2, r->status_gpa, 1, VRING_DESC_F_WRITE, 0);
	r->busy = true;
	r->used_len = 0;
	q->bq_inflight++;
	*avail_ring(q, q->bq_avail_idx) = h;
	q->bq_avail_idx++;
	r->t_submit = blk_now_ns();
	__atomic_store_n(avail_idx(q), q->bq_avail_idx, __ATOMIC_RELEASE);
}

void blk_kick(struct blk_queue *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (__atomic_load_n(used_flags(q), __ATOMIC_RELAXED) & VRING_USED_F_NO_NOTIFY)
		return;
	uint64_t one = 1;
	ssize_t n = write(q->bq_vr.vr_kick, &one, sizeof(one));
	(void)n; /* EAGAIN only when the counter is saturated: already kicked */
}

void blk_set_no_interrupt(struct blk_queue *q, bool on)
{
	__atomic_store_n(avail_flags(q), on ? VRING_AVAIL_F_NO_INTERRUPT : 0, __ATOMIC_RELEASE);
}

int blk_reap(struct blk_queue *q, struct blk_req **out, char *err, size_t errlen)
{
	uint16_t idx = __atomic_load_n(used_idx(q), __ATOMIC_ACQUIRE);
	if (idx == q->bq_last_used)
		return 0;
	if ((uint16_t)(idx - q->bq_last_used) > q->bq_inflight)
		RETURN_ERR(-1, "queue %u: used idx %u runs %u entries ahead with %u in flight",
			   q->bq_idx, idx, (uint16_t)(idx - q->bq_last_used), q->bq_inflight);
	const uint8_t *e = q->bq_used + 4 + (size_t)USED_ELEM * (q->bq_last_used % q->bq_num);
	uint32_t id = le32_get(e), len = le32_get(e + 4);
	if (id % 3 || id / 3 >= q->bq_nslots || !q->bq_slots[id / 3].busy)
		RETURN_ERR(-1, "queue %u: used entry names descriptor %u, not a request in flight",
			   q->bq_idx, id);
	q->bq_last_used++;
	struct blk_req *r = &q->bq_slots[id / 3];
	r->busy = false;
	r->used_len = len;
	q->bq_inflight--;
	*out = r;
	return 1;
}

int blk_wait(struct blk_queue *q, int timeout_ms, char *err, size_t errlen)
{
	struct pollfd p = {.fd = q->bq_vr.vr_call, .events = POLLIN};
	int n;
	do
		n = poll(&p, 1, timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		RETURN_ERR(-1, "queue %u: poll call eventfd: %s", q->bq_idx, strerror(errno));
	if (n == 0)
		RETURN_ERR(-1, "queue %u: no completion within %d ms (%u in flight)", q->bq_idx,
			   timeout_ms, q->bq_inflight);
	uint64_t v;
	if (read(q->bq_vr.vr_call, &v, sizeof(v)) < 0 && errno != EAGAIN)
		RETURN_ERR(-1, "queue %u: read call eventfd: %s", q->bq_idx, strerror(errno));
	return 0;
}

int blk_do(struct blk_queue *q, uint32_t type, uint64_t sector, void *buf, uint32_t len, char *err,
	   size_t errlen)
{
	if (len > q->bq_buf_size)
		RETURN_ERR(-1, "request of %u bytes exceeds the %u-byte buffer", len,
			   q->bq_buf_size);
	struct blk_req *r = blk_req_get(q);
	if (!r)
		RETURN_ERR(-1, "queue %u: no free request slot", q->bq_idx);
	if (len && !device_writes_data(type))
		memcpy(r->data, buf, len);
	else if (len)
		memset(r->data, 0xa5, len); /* so stale buffer contents cannot pass a check */
	blk_submit(q, r, type, sector, len);
	blk_kick(q);
	uint64_t deadline = blk_now_ns() + (uint64_t)BLK_TIMEOUT_MS * 1000000;
	for (;;) {
		struct blk_req *done;
		int got = blk_reap(q, &done, err, errlen);
		if (got < 0)
			return -1;
		if (got && done != r)
			RETURN_ERR(-1, "queue %u: completion for a request not submitted",
				   q->bq_idx);
		if (got)
			break;
		uint64_t now = blk_now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000) + 1;
		if (blk_wait(q, left, err, errlen))
			return -1; /* the slot stays busy: the device still owns it */
	}
	int status = *r->status;
	if (len && device_writes_data(type) && status == BLK_S_OK)
		memcpy(buf, r->data, len);
	blk_req_put(q, r);
	return status;
}

int blk_read(struct blk_queue *q, uint64_t sector, void *buf, uint32_t len, char *err,
	     size_t errlen)
{
	return blk_do(q, BLK_T_IN, sector, buf, len, err, errlen);
}

int blk_write(struct blk_queue *q, uint64_t sector, const void *buf, uint32_t len, char *err,
	      size_t errlen)
{
	return blk_do(q, BLK_T_OUT, sector, (void *)buf, len, err, errlen);
}

int blk_flush(struct blk_queue *q, char *err, size_t errlen)
{
	return blk_do(q, BLK_T_FLUSH, 0, NULL, 0, err, errlen);
}

int blk_get_id(struct blk_queue *q, char *id, char *err, size_t errlen)
{
	memset(id, 0, BLK_ID_BYTES + 1);
	return blk_do(q, BLK_T_GET_ID, 0, id, BLK_ID_BYTES, err, errlen);
}

static int range_req(struct blk_queue *q, uint32_t type, uint64_t sector, uint32_t nsectors,
		     uint32_t flags, char *err, size_t errlen)
{
	uint8_t seg[16];
	le64_put(seg, sector);
	le32_put(seg + 8, nsectors);
	le32_put(seg + 12, flags);
	return blk_do(q, type, 0, seg, sizeof(seg), err, errlen);
}

int blk_discard(struct blk_queue *q, uint64_t sector, uint32_t nsectors, char *err, size_t errlen)
{
	return range_req(q, BLK_T_DISCARD, sector, nsectors, 0, err, errlen);
}

int blk_write_zeroes(struct blk_queue *q, uint64_t sector, uint32_t nsectors, bool unmap, char *err,
		     size_t errlen)
{
	return range_req(q, BLK_T_WRITE_ZEROES, sector, nsectors, unmap ? 1 : 0, err, errlen);
}

void blk_raw_desc(struct blk_queue *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		  uint16_t next)
{
	set_desc(q, i, addr, len, flags, next);
}

void blk_raw_publish(struct blk_queue *q, uint16_t head, uint16_t step)
{
	*avail_ring(q, q->bq_avail_idx) = head;
	q->bq_avail_idx = (uint16_t)(q->bq_avail_idx + step);
	__atomic_store_n(avail_idx(q), q->bq_avail_idx, __ATOMIC_RELEASE);
}

uint16_t blk_used_idx(struct blk_queue *q)
{
	return __atomic_load_n(used_idx(q), __ATOMIC_ACQUIRE);
}
