/* vpc-driver: the driver side of one virtio-net queue pair. */
#include "vnd.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/util.h"

#define DESC_F_NEXT 1
#define DESC_F_WRITE 2
#define USED_F_NO_NOTIFY 1

static uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static int ring_setup(struct vnd *d, struct vnd_ring *r, unsigned idx, uint32_t bufsz, char *err,
		      size_t errlen)
{
	struct vu_front *f = &d->d_f;
	unsigned n = VND_QSIZE;
	memset(r, 0, sizeof(*r));
	r->r_idx = idx;
	r->r_bufsz = bufsz;
	r->r_desc_gpa = vu_alloc(f, 16 * n, 4096);
	r->r_avail_gpa = vu_alloc(f, 6 + 2 * n, 4096);
	r->r_used_gpa = vu_alloc(f, 6 + 8 * n, 4096);
	r->r_buf_gpa = vu_alloc(f, (uint64_t)bufsz * n, 4096);
	if (r->r_desc_gpa == UINT64_MAX || r->r_avail_gpa == UINT64_MAX ||
	    r->r_used_gpa == UINT64_MAX || r->r_buf_gpa == UINT64_MAX)
		RETURN_ERR(-1, "queue %u: out of guest memory", idx);
	r->r_desc = vu_ptr(f, r->r_desc_gpa);
	r->r_avail = vu_ptr(f, r->r_avail_gpa);
	r->r_used = vu_ptr(f, r->r_used_gpa);
	r->r_buf = vu_ptr(f, r->r_buf_gpa);
	for (unsigned i = 0; i < n; i++) {
		uint8_t *de = r->r_desc + 16 * i;
		le64_put(de, r->r_buf_gpa + (uint64_t)bufsz * i);
		le32_put(de + 8, bufsz);
		le16_put(de + 12, 0);
		le16_put(de + 14, 0);
		r->r_free[i] = (uint16_t)(n - 1 - i);
	}
	r->r_nfree = n;
	return 0;
}

static void avail_put(struct vnd_ring *r, uint16_t id)
{
	le16_put(r->r_avail + 4 + 2 * (r->r_avail_idx % VND_QSIZE), id);
	r->r_avail_idx++;
}

static void publish(struct vnd *d, struct vnd_ring *r)
{
	__atomic_store_n((uint16_t *)(r->r_avail + 2), r->r_avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!(load16(r->r_used) & USED_F_NO_NOTIFY)) {
		uint64_t one = 1;
		if (write(r->r_vr.vr_kick, &one, sizeof(one)) == sizeof(one))
			d->d_kicks++;
	}
}

int vnd_open(struct vnd *d, const char *path, bool config, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	uint64_t mem = 2 * (uint64_t)VND_QSIZE * (VND_RXBUF + 64) + (1 << 20);
	mem = (mem + 4095) & ~4095ull;
	if (vu_open(&d->d_f, path, mem, err, errlen))
		return -1;
	uint64_t want = 1ull << VNET_F_MTU | 1ull << VNET_F_MAC | 1ull << VNET_F_STATUS;
	if (vu_init(&d->d_f, want, config ? 12 : 0, err, errlen))
		goto fail;
	if (d->d_f.vf_config_len >= 12) {
		d->d_config = true;
		memcpy(d->d_mac, d->d_f.vf_config, 6);
		d->d_status = le16_get(d->d_f.vf_config + 6);
		d->d_pairs = le16_get(d->d_f.vf_config + 8);
		d->d_mtu = le16_get(d->d_f.vf_config + 10);
	}
	if (ring_setup(d, &d->d_rx, 0, VND_RXBUF, err, errlen) ||
	    ring_setup(d, &d->d_tx, 1, VND_TXBUF, err, errlen))
		goto fail;
	/* Every rx buffer is device-writable and posted from the start. */
	for (unsigned i = 0; i < VND_QSIZE; i++) {
		le16_put(d->d_rx.r_desc + 16 * i + 12, DESC_F_WRITE);
		avail_put(&d->d_rx, (uint16_t)i);
	}
	d->d_rx.r_nfree = 0;
	__atomic_store_n((uint16_t *)(d->d_rx.r_avail + 2), d->d_rx.r_avail_idx, __ATOMIC_RELEASE);
	struct vnd_ring *rs[2] = {&d->d_rx, &d->d_tx};
	for (int i = 0; i < 2; i++)
		if (vu_vring_start(&d->d_f, rs[i]->r_idx, VND_QSIZE, rs[i]->r_desc_gpa,
				   rs[i]->r_avail_gpa, rs[i]->r_used_gpa, &rs[i]->r_vr, err,
				   errlen))
			goto fail;
	publish(d, &d->d_rx);
	return 0;
fail:
	vnd_close(d);
	return -1;
}

void vnd_close(struct vnd *d)
{
	struct vnd_ring *rs[2] = {&d->d_rx, &d->d_tx};
	for (int i = 0; i < 2; i++) {
		if (rs[i]->r_vr.vr_kick > 0)
			close(rs[i]->r_vr.vr_kick);
		if (rs[i]->r_vr.vr_call > 0)
			close(rs[i]->r_vr.vr_call);
		rs[i]->r_vr.vr_kick = rs[i]->r_vr.vr_call = -1;
	}
	vu_close(&d->d_f);
}

unsigned vnd_tx_add(struct vnd *d, const uint8_t *frames, size_t len, size_t stride, unsigned n)
{
	struct vnd_ring *r = &d->d_tx;
	unsigned k = 0;
	if (len + VND_HDR > r->r_bufsz)
		return 0;
	for (; k < n && r->r_nfree; k++) {
		uint16_t id = r->r_free[--r->r_nfree];
		uint8_t *b = r->r_buf + (size_t)r->r_bufsz * id;
		memset(b, 0, VND_HDR);
		memcpy(b + VND_HDR, frames + k * stride, len);
		le32_put(r->r_desc + 16 * id + 8, (uint32_t)(VND_HDR + len));
		avail_put(r, id);
	}
	return k;
}

void vnd_tx_kick(struct vnd *d)
{
	publish(d, &d->d_tx);
}

/* The next used entry of r: 1 with id and len set, 0 when none, -1 on a bad entry. */
static int used_next(struct vnd_ring *r, uint16_t *id, uint32_t *len, char *err, size_t errlen)
{
	uint16_t u = load16(r->r_used + 2);
	if (u == r->r_used_seen)
		return 0;
	if ((uint16_t)(u - r->r_used_seen) > VND_QSIZE)
		RETURN_ERR(-1, "queue %u: used index %u runs %u ahead", r->r_idx, u,
			   (uint16_t)(u - r->r_used_seen));
	const uint8_t *e = r->r_used + 4 + 8 * (r->r_used_seen % VND_QSIZE);
	uint32_t i = le32_get(e);
	*len = le32_get(e + 4);
	if (i >= VND_QSIZE)
		RETURN_ERR(-1, "queue %u: used id %u out of range", r->r_idx, i);
	*id = (uint16_t)i;
	r->r_used_seen++;
	return 1;
}

int vnd_tx_reap(struct vnd *d, char *err, size_t errlen)
{
	struct vnd_ring *r = &d->d_tx;
	int n = 0, k;
	uint16_t id;
	uint32_t len;
	while ((k = used_next(r, &id, &len, err, errlen)) > 0) {
		if (r->r_nfree >= VND_QSIZE)
			RETURN_ERR(-1, "tx: more buffers returned than posted");
		r->r_free[r->r_nfree++] = id;
		n++;
	}
	return k < 0 ? -1 : n;
}

int vnd_rx_poll(struct vnd *d, void (*fn)(const uint8_t *f, size_t len, void *arg), void *arg,
		uint64_t *bytes, char *err, size_t errlen)
{
	struct vnd_ring *r = &d->d_rx;
	int n = 0, k;
	uint16_t id;
	uint32_t len;
	while ((k = used_next(r, &id, &len, err, errlen)) > 0) {
		if (len > r->r_bufsz)
			RETURN_ERR(-1, "rx: used length %u > buffer %u", len, r->r_bufsz);
		const uint8_t *b = r->r_buf + (size_t)r->r_bufsz * id;
		if (len >= VND_HDR) {
			if (le16_get(b + 10) > 1) /* 1 (the spec) or 0 (some back ends) */
				RETURN_ERR(-1, "rx: num_buffers %u without MRG_RXBUF",
					   le16_get(b + 10));
			if (fn)
				fn(b + VND_HDR, len - VND_HDR, arg);
			if (bytes)
				*bytes += len - VND_HDR;
			n++;
		}
		avail_put(r, id);
	}
	if (k < 0)
		return -1;
	if (n || r->r_avail_idx != load16(r->r_avail + 2))
		publish(d, r);
	return n;
}

int vnd_wait(struct vnd *d, bool rx, int ms)
{
	struct vnd_ring *r = rx ? &d->d_rx : &d->d_tx;
	struct pollfd p = {.fd = r->r_vr.vr_call, .events = POLLIN};
	int n = poll(&p, 1, ms);
	if (n > 0) {
		uint64_t v;
		if (read(r->r_vr.vr_call, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return 0;
		return 1;
	}
	return 0;
}
