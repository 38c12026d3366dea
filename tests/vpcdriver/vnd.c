/* vpc-driver: the driver side of one virtio-net queue pair. */
#include "vnd.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_ring.h>

#include "lib/le.h"
#include "lib/util.h"

static uint16_t load16(const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE);
}

static int used_next(struct vnd_ring *r, uint16_t *id, uint32_t *len, char *err, size_t errlen);
static void vnd_wait_ring(struct vnd_ring *r, int ms);

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
	if (!(load16(r->r_used) & VRING_USED_F_NO_NOTIFY)) {
		uint64_t one = 1;
		if (write(r->r_vr.vr_kick, &one, sizeof(one)) == sizeof(one))
			d->d_kicks++;
	}
}

int vnd_open(struct vnd *d, const char *path, bool config, unsigned pairs, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	if (pairs < 1 || pairs > VND_MAX_PAIRS)
		RETURN_ERR(-1, "%u queue pairs (1..%d)", pairs, VND_MAX_PAIRS);
	d->d_npairs = pairs;
	d->d_rx = &d->d_rxs[0];
	d->d_tx = &d->d_txs[0];
	uint64_t mem = 2 * pairs * (uint64_t)VND_QSIZE * (VND_RXBUF + 64) + (2 << 20);
	mem = (mem + 4095) & ~4095ull;
	if (vu_open(&d->d_f, path, mem, err, errlen))
		return -1;
	uint64_t want = 1ull << VNET_F_MTU | 1ull << VNET_F_MAC | 1ull << VNET_F_STATUS;
	if (pairs > 1)
		want |= 1ull << VNET_F_MQ | 1ull << VNET_F_CTRL_VQ;
	if (vu_init(&d->d_f, want, config ? 12 : 0, err, errlen))
		goto fail;
	if (pairs > 1 && (!(d->d_f.vf_acked & (1ull << VNET_F_MQ)) ||
			  !(d->d_f.vf_acked & (1ull << VNET_F_CTRL_VQ)) ||
			  d->d_f.vf_max_queues < 2 * pairs + 1)) {
		snprintf(err, errlen, "the device has no %u queue pairs with a control queue",
			 pairs);
		goto fail;
	}
	if (d->d_f.vf_config_len >= 12) {
		d->d_config = true;
		memcpy(d->d_mac, d->d_f.vf_config, 6);
		d->d_status = le16_get(d->d_f.vf_config + 6);
		d->d_pairs = le16_get(d->d_f.vf_config + 8);
		d->d_mtu = le16_get(d->d_f.vf_config + 10);
	}
	for (unsigned p = 0; p < pairs; p++) {
		struct vnd_ring *rx = &d->d_rxs[p], *tx = &d->d_txs[p];
		if (ring_setup(d, rx, 2 * p, VND_RXBUF, err, errlen) ||
		    ring_setup(d, tx, 2 * p + 1, VND_TXBUF, err, errlen))
			goto fail;
		/* Every rx buffer is device-writable and posted from the start. */
		for (unsigned i = 0; i < VND_QSIZE; i++) {
			le16_put(rx->r_desc + 16 * i + 12, VRING_DESC_F_WRITE);
			avail_put(rx, (uint16_t)i);
		}
		rx->r_nfree = 0;
		__atomic_store_n((uint16_t *)(rx->r_avail + 2), rx->r_avail_idx, __ATOMIC_RELEASE);
		struct vnd_ring *rs[2] = {rx, tx};
		for (int i = 0; i < 2; i++)
			if (vu_vring_start(&d->d_f, rs[i]->r_idx, VND_QSIZE, rs[i]->r_desc_gpa,
					   rs[i]->r_avail_gpa, rs[i]->r_used_gpa, &rs[i]->r_vr, err,
					   errlen))
				goto fail;
		publish(d, rx);
	}
	if (pairs > 1) {
		struct vnd_ring *c = &d->d_ctrl;
		if (ring_setup(d, c, 2 * pairs, 64, err, errlen) ||
		    vu_vring_start(&d->d_f, c->r_idx, VND_QSIZE, c->r_desc_gpa, c->r_avail_gpa,
				   c->r_used_gpa, &c->r_vr, err, errlen))
			goto fail;
	}
	return 0;
fail:
	vnd_close(d);
	return -1;
}

int vnd_ctrl(struct vnd *d, uint8_t cls, uint8_t cmd, const uint8_t *data, size_t len, uint8_t *ack,
	     char *err, size_t errlen)
{
	struct vnd_ring *c = &d->d_ctrl;
	if (d->d_npairs < 2)
		RETURN_ERR(-1, "no control queue (one queue pair)");
	if (len > 62 || c->r_nfree < 2)
		RETURN_ERR(-1, "control command too long or queue full");
	/* Two descriptors: the command (device-readable), then the ack (device-writable). */
	uint16_t h = c->r_free[--c->r_nfree], t = c->r_free[--c->r_nfree];
	uint8_t *b = c->r_buf + (size_t)c->r_bufsz * h, *ab = c->r_buf + (size_t)c->r_bufsz * t;
	b[0] = cls;
	b[1] = cmd;
	memcpy(b + 2, data, len);
	ab[0] = 0xee;
	le32_put(c->r_desc + 16 * h + 8, (uint32_t)(2 + len));
	le16_put(c->r_desc + 16 * h + 12, VRING_DESC_F_NEXT);
	le16_put(c->r_desc + 16 * h + 14, t);
	le32_put(c->r_desc + 16 * t + 8, 1);
	le16_put(c->r_desc + 16 * t + 12, VRING_DESC_F_WRITE);
	avail_put(c, h);
	publish(d, c);
	for (int ms = 0; ms < 5000; ms++) {
		uint16_t id;
		uint32_t ulen;
		int k = used_next(c, &id, &ulen, err, errlen);
		if (k < 0)
			return -1;
		if (k > 0) {
			if (id != h)
				RETURN_ERR(-1, "control queue: used id %u, expected %u", id, h);
			c->r_free[c->r_nfree++] = t;
			c->r_free[c->r_nfree++] = h;
			if (ulen != 1)
				RETURN_ERR(-1, "control queue: %u bytes written, expected 1", ulen);
			*ack = ab[0];
			return 0;
		}
		vnd_wait_ring(c, 1);
	}
	RETURN_ERR(-1, "control queue: no answer in 5 s");
}

void vnd_close(struct vnd *d)
{
	for (unsigned i = 0; i < 2 * VND_MAX_PAIRS + 1; i++) {
		struct vnd_ring *r = i == 2 * VND_MAX_PAIRS ? &d->d_ctrl
				     : i & 1		    ? &d->d_txs[i / 2]
							    : &d->d_rxs[i / 2];
		if (r->r_vr.vr_kick > 0)
			close(r->r_vr.vr_kick);
		if (r->r_vr.vr_call > 0)
			close(r->r_vr.vr_call);
		r->r_vr.vr_kick = r->r_vr.vr_call = -1;
	}
	vu_close(&d->d_f);
}

unsigned vnd_tx_addq(struct vnd *d, unsigned pair, const uint8_t *frames, size_t len, size_t stride,
		     unsigned n)
{
	if (pair >= d->d_npairs)
		return 0;
	struct vnd_ring *r = &d->d_txs[pair];
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

unsigned vnd_tx_add(struct vnd *d, const uint8_t *frames, size_t len, size_t stride, unsigned n)
{
	return vnd_tx_addq(d, 0, frames, len, stride, n);
}

void vnd_tx_kickq(struct vnd *d, unsigned pair)
{
	if (pair < d->d_npairs)
		publish(d, &d->d_txs[pair]);
}

void vnd_tx_kick(struct vnd *d)
{
	vnd_tx_kickq(d, 0);
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
	int n = 0, k;
	uint16_t id;
	uint32_t len;
	for (unsigned p = 0; p < d->d_npairs; p++) {
		struct vnd_ring *r = &d->d_txs[p];
		while ((k = used_next(r, &id, &len, err, errlen)) > 0) {
			if (r->r_nfree >= VND_QSIZE)
				RETURN_ERR(-1, "tx: more buffers returned than posted");
			r->r_free[r->r_nfree++] = id;
			n++;
		}
		if (k < 0)
			return -1;
	}
	return n;
}

static int rx_poll_ring(struct vnd *d, unsigned pair, vnd_rx_fn *fn, void *arg, uint64_t *bytes,
			char *err, size_t errlen)
{
	struct vnd_ring *r = &d->d_rxs[pair];
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
				fn(pair, b + VND_HDR, len - VND_HDR, arg);
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

int vnd_rx_poll(struct vnd *d, vnd_rx_fn *fn, void *arg, uint64_t *bytes, char *err, size_t errlen)
{
	int n = 0;
	for (unsigned p = 0; p < d->d_npairs; p++) {
		int k = rx_poll_ring(d, p, fn, arg, bytes, err, errlen);
		if (k < 0)
			return -1;
		n += k;
	}
	return n;
}

static void vnd_wait_ring(struct vnd_ring *r, int ms)
{
	struct pollfd p = {.fd = r->r_vr.vr_call, .events = POLLIN};
	uint64_t v;
	if (poll(&p, 1, ms) > 0 && read(r->r_vr.vr_call, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
}

int vnd_wait(struct vnd *d, bool rx, int ms)
{
	struct pollfd p[2 * VND_MAX_PAIRS];
	unsigned n = d->d_npairs ? d->d_npairs : 1;
	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = (rx ? d->d_rxs : d->d_txs)[i].r_vr.vr_call,
				       .events = POLLIN};
	int k = poll(p, n, ms);
	if (k <= 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		uint64_t v;
		if (p[i].revents && read(p[i].fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			continue;
	}
	return 1;
}
