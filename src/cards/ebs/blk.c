/* The EBS card's virtio-blk request handling and QoS pacing. */
#include "cards/ebs/ebs.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_blk.h>

#include "lib/le.h"
#include "lib/util.h"

#define BIT(n) (1ull << (n))

/* Request types and status values: <linux/virtio_blk.h>'s, by short names. */
#define T_IN VIRTIO_BLK_T_IN
#define T_OUT VIRTIO_BLK_T_OUT
#define T_FLUSH VIRTIO_BLK_T_FLUSH
#define T_GET_ID VIRTIO_BLK_T_GET_ID
#define T_DISCARD VIRTIO_BLK_T_DISCARD
#define T_WRITE_ZEROES VIRTIO_BLK_T_WRITE_ZEROES

#define S_OK VIRTIO_BLK_S_OK
#define S_IOERR VIRTIO_BLK_S_IOERR
#define S_UNSUPP VIRTIO_BLK_S_UNSUPP

#define HDR_BYTES 16
#define RANGE_BYTES 16
#define ID_BYTES 20
_Static_assert(ID_BYTES == 3 + VOL_ID_LEN - 4, "vol + 17 hex digits fill the id");
#define WZ_F_UNMAP VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP

uint64_t ebs_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Copies len bytes at byte off of the chain's device-readable (writable false) or
 * device-writable segments out of (to_guest false) or into guest memory. The caller has
 * checked that the range lies within the chain's totals. */
static void seg_copy(const struct vr_chain *ch, bool writable, uint64_t off, uint8_t *buf,
		     uint64_t len, bool to_guest)
{
	for (unsigned i = 0; i < ch->ch_nsegs && len; i++) {
		const struct vr_seg *s = &ch->ch_segs[i];
		if (s->sg_write != writable)
			continue;
		if (off >= s->sg_len) {
			off -= s->sg_len;
			continue;
		}
		uint64_t n = s->sg_len - off;
		if (n > len)
			n = len;
		uint8_t *g = (uint8_t *)s->sg_ptr + off;
		if (to_guest)
			memcpy(g, buf, n);
		else
			memcpy(buf, g, n);
		buf += n;
		len -= n;
		off = 0;
	}
}

static bool in_range(const struct ebs *e, uint64_t sector, uint64_t nsectors)
{
	uint64_t cap = e->e_vol->v_size / VOL_SECTOR;
	return sector <= cap && nsectors <= cap - sector;
}

/* --- requests ------------------------------------------------------------------------ */

static struct ebs_req *req_get(struct ebs *e)
{
	struct ebs_req *r = e->e_free;
	if (r) {
		e->e_free = r->r_next;
		e->e_inflight++;
	}
	return r;
}

static void req_put(struct ebs *e, struct ebs_req *r)
{
	r->r_next = e->e_free;
	e->e_free = r;
	e->e_inflight--;
}

/* Remembers r as the latest chain taken from its queue. */
static void order_append(struct ebs *e, struct ebs_req *r)
{
	r->r_order = NULL;
	r->r_finished = false;
	if (e->e_order_tail[r->r_q])
		e->e_order_tail[r->r_q]->r_order = r;
	else
		e->e_order_head[r->r_q] = r;
	e->e_order_tail[r->r_q] = r;
}

/* Sets the chain's status and hands it back, with the bytes written into it. Back ends
 * complete out of order, but used entries are published in the order the chains were
 * taken: then the used index always says exactly which chains are done, so a restarted
 * card resumes from it (nitro-hv's reconnect) without skipping or repeating one. */
static void finish(struct ebs_req *r, uint8_t status, uint32_t written)
{
	struct ebs *e = r->r_e;
	if (status != S_OK)
		e->e_stats.st_errors++;
	if (r->r_status)
		*r->r_status = status;
	r->r_written = written;
	r->r_finished = true;
	unsigned q = r->r_q;
	while ((r = e->e_order_head[q]) && r->r_finished) {
		e->e_order_head[q] = r->r_order;
		if (!r->r_order)
			e->e_order_tail[q] = NULL;
		if (vu_queue_push(&e->e_dev, q, r->r_head, r->r_written) == 0)
			e->e_notify |= 1ull << q;
		e->e_stats.st_completed++;
		req_put(e, r);
	}
}

static void finish_rw(struct ebs_req *r, uint8_t status)
{
	struct ebs *e = r->r_e;
	bool read = r->r_type == T_IN;
	if (status == S_OK) {
		if (read) {
			e->e_stats.st_reads++;
			e->e_stats.st_bytes_read += r->r_len;
		} else {
			e->e_stats.st_writes++;
			e->e_stats.st_bytes_written += r->r_len;
		}
	}
	finish(r, status, 1 + (read && status == S_OK ? (uint32_t)r->r_len : 0));
}

/* r_iov := the data buffers' bytes [off, off + len); returns the iovec count. */
static unsigned slice(struct ebs_req *r, uint64_t off, uint64_t len)
{
	unsigned n = 0;
	for (unsigned i = 0; i < r->r_nsegs && len; i++) {
		size_t sl = r->r_segs[i].iov_len;
		if (off >= sl) {
			off -= sl;
			continue;
		}
		size_t k = sl - off < len ? sl - (size_t)off : (size_t)len;
		r->r_iov[n++] = (struct iovec){(uint8_t *)r->r_segs[i].iov_base + off, k};
		len -= k;
		off = 0;
	}
	return n;
}

static void iov_copy(const struct iovec *iov, unsigned n, uint8_t *buf, bool to_iov)
{
	for (unsigned i = 0; i < n; i++) {
		if (to_iov)
			memcpy(iov[i].iov_base, buf, iov[i].iov_len);
		else
			memcpy(buf, iov[i].iov_base, iov[i].iov_len);
		buf += iov[i].iov_len;
	}
}

/* Zeroes bytes [from, end) of the iovec (a read that met the end of the file). */
static void iov_zero_from(const struct iovec *iov, unsigned n, size_t from)
{
	for (unsigned i = 0; i < n; i++) {
		size_t l = iov[i].iov_len;
		if (from >= l) {
			from -= l;
			continue;
		}
		memset((uint8_t *)iov[i].iov_base + from, 0, l - from);
		from = 0;
	}
}

/* Encrypts the guest buffers into buf (enc) or decrypts buf into them, n bytes from
 * sector on; runs inside one buffer go in one call, a sector split across buffers goes
 * through a 512-byte staging copy. 0 or -EIO. */
static int crypt_iov(struct volume *v, bool enc, uint64_t sector, const struct iovec *iov,
		     unsigned niov, uint8_t *buf, size_t n)
{
	size_t off = 0, pos = 0;
	unsigned i = 0;
	uint8_t tmp[VOL_SECTOR];
	while (off < n && i < niov) {
		size_t rem = iov[i].iov_len - pos;
		uint8_t *g = (uint8_t *)iov[i].iov_base + pos;
		uint64_t s = sector + off / VOL_SECTOR;
		if (rem >= VOL_SECTOR) {
			size_t k = rem / VOL_SECTOR * VOL_SECTOR;
			if (k > n - off)
				k = n - off;
			if (enc ? vol_encrypt(v, s, g, buf + off, k)
				: vol_decrypt(v, s, buf + off, g, k))
				return -EIO;
			off += k;
			pos += k;
		} else {
			if (!enc && vol_decrypt(v, s, buf + off, tmp, VOL_SECTOR))
				return -EIO;
			for (size_t t = 0; t < VOL_SECTOR && i < niov;) {
				size_t c = iov[i].iov_len - pos;
				if (c > VOL_SECTOR - t)
					c = VOL_SECTOR - t;
				uint8_t *gp = (uint8_t *)iov[i].iov_base + pos;
				if (enc)
					memcpy(tmp + t, gp, c);
				else
					memcpy(gp, tmp + t, c);
				t += c;
				pos += c;
				if (pos == iov[i].iov_len) {
					i++;
					pos = 0;
				}
			}
			if (enc && vol_encrypt(v, s, tmp, buf + off, VOL_SECTOR))
				return -EIO;
			off += VOL_SECTOR;
		}
		if (i < niov && pos == iov[i].iov_len) {
			i++;
			pos = 0;
		}
	}
	return 0;
}

static void step_start(struct ebs_req *r);

static void step_done(struct bdev_io *io, int res)
{
	struct ebs_req *r = (struct ebs_req *)((uint8_t *)io - offsetof(struct ebs_req, r_io));
	struct ebs *e = r->r_e;
	bool read = r->r_type == T_IN;
	uint64_t sector = r->r_sector + r->r_done / VOL_SECTOR;
	if (res < 0) {
		warnmsg("%s: %s of %zu bytes at sector %llu: %s", e->e_bdev->bd_name,
			read ? "read" : "write", r->r_step, (unsigned long long)sector,
			strerror(-res));
		finish_rw(r, S_IOERR);
		return;
	}
	if (!read && (size_t)res < r->r_step) {
		warnmsg("%s: short write (%d of %zu bytes) at sector %llu", e->e_bdev->bd_name, res,
			r->r_step, (unsigned long long)sector);
		finish_rw(r, S_IOERR);
		return;
	}
	if (read) {
		if ((size_t)res < r->r_step) /* past the end of the backing file: zeroes */
			iov_zero_from(io->bi_iov, io->bi_niov, (size_t)res);
		if (r->r_bounced) {
			/* Straight from our ciphertext into the guest's buffers. */
			unsigned n = slice(r, r->r_done, r->r_step);
			if (!e->e_vol->v_crypt)
				iov_copy(r->r_iov, n, r->r_bounce, true);
			else if (crypt_iov(e->e_vol, false, sector, r->r_iov, n, r->r_bounce,
					   r->r_step)) {
				warnmsg("volume %s: decryption failed", e->e_vol->v_path);
				finish_rw(r, S_IOERR);
				return;
			}
		}
	}
	r->r_done += r->r_step;
	if (r->r_done < r->r_len)
		step_start(r);
	else
		finish_rw(r, S_OK);
}

/* Starts the next piece (at most EBS_CHUNK bytes) of an IN or OUT request. */
static void step_start(struct ebs_req *r)
{
	struct ebs *e = r->r_e;
	struct bdev *b = e->e_bdev;
	bool write = r->r_type == T_OUT;
	uint64_t left = r->r_len - r->r_done;
	size_t n = left < EBS_CHUNK ? (size_t)left : EBS_CHUNK;
	uint64_t sector = r->r_sector + r->r_done / VOL_SECTOR;
	unsigned niov = slice(r, r->r_done, n);
	bool bounce = e->e_vol->v_crypt || (b->bd_contiguous && niov > 1);
	if (bounce) {
		if (!r->r_bounce && !(r->r_bounce = malloc(EBS_CHUNK))) {
			warnmsg("volume %s: out of memory for a bounce buffer", e->e_vol->v_path);
			finish_rw(r, S_IOERR);
			return;
		}
		if (write && !e->e_vol->v_crypt) {
			iov_copy(r->r_iov, niov, r->r_bounce, false);
		} else if (write) {
			/* Each guest byte is read once, by the cipher; only ciphertext leaves. */
			if (crypt_iov(e->e_vol, true, sector, r->r_iov, niov, r->r_bounce, n)) {
				warnmsg("volume %s: encryption failed", e->e_vol->v_path);
				finish_rw(r, S_IOERR);
				return;
			}
		}
		r->r_iov[0] = (struct iovec){r->r_bounce, n};
		niov = 1;
	}
	r->r_step = n;
	r->r_bounced = bounce;
	r->r_io = (struct bdev_io){.bi_op = write ? BDEV_WRITE : BDEV_READ,
				   .bi_off = sector * VOL_SECTOR,
				   .bi_iov = r->r_iov,
				   .bi_niov = niov,
				   .bi_len = n,
				   .bi_done = step_done};
	int ret = b->bd_ops->bo_submit(b, &r->r_io);
	if (ret < 0) {
		warnmsg("%s: submitting I/O: %s", b->bd_name, strerror(-ret));
		finish_rw(r, S_IOERR);
	}
}

static void flush_done(struct bdev_io *io, int res)
{
	struct ebs_req *r = (struct ebs_req *)((uint8_t *)io - offsetof(struct ebs_req, r_io));
	if (res < 0)
		warnmsg("%s: flush: %s", r->r_e->e_bdev->bd_name, strerror(-res));
	finish(r, res < 0 ? S_IOERR : S_OK, 1);
}

/* The data buffers of an IN (writable, without the status byte) or OUT (readable, after
 * the header) chain; false when there are more than EBS_REQ_SEGS. */
static bool collect(struct ebs_req *r, const struct vr_chain *ch, bool writable, uint64_t skip,
		    uint64_t len)
{
	r->r_nsegs = 0;
	for (unsigned i = 0; i < ch->ch_nsegs && len; i++) {
		const struct vr_seg *s = &ch->ch_segs[i];
		if (s->sg_write != writable)
			continue;
		if (skip >= s->sg_len) {
			skip -= s->sg_len;
			continue;
		}
		uint64_t k = s->sg_len - skip < len ? s->sg_len - skip : len;
		if (r->r_nsegs == EBS_REQ_SEGS)
			return false;
		r->r_segs[r->r_nsegs++] = (struct iovec){(uint8_t *)s->sg_ptr + skip, (size_t)k};
		len -= k;
		skip = 0;
	}
	return true;
}

/* The last device-writable byte of the chain (the status), or NULL. */
static uint8_t *status_ptr(const struct vr_chain *ch)
{
	for (unsigned i = ch->ch_nsegs; i-- > 0;)
		if (ch->ch_segs[i].sg_write && ch->ch_segs[i].sg_len)
			return ch->ch_segs[i].sg_ptr /* NULL: denied (revoked memory) */
				   ? (uint8_t *)ch->ch_segs[i].sg_ptr + ch->ch_segs[i].sg_len - 1
				   : NULL;
	return NULL;
}

/* DISCARD or WRITE_ZEROES: every range is copied out and checked before any is applied.
 * *bytes gets what the ranges cover once they passed the checks: QoS charges them like a
 * write of that size (storage does that much work, and on an encrypted volume it is a
 * real ciphertext write), so they cannot bypass the throughput limit. */
static uint8_t do_ranges(struct ebs *e, const struct vr_chain *ch, uint32_t type, uint64_t *bytes)
{
	uint8_t raw[EBS_MAX_RANGES * RANGE_BYTES];
	uint64_t dlen = ch->ch_read_bytes - HDR_BYTES;
	char err[512];
	if (e->e_vol->v_readonly)
		return S_IOERR;
	if (dlen == 0 || dlen % RANGE_BYTES || dlen > sizeof(raw))
		return S_IOERR;
	unsigned n = (unsigned)(dlen / RANGE_BYTES);
	seg_copy(ch, false, HDR_BYTES, raw, dlen, false);
	uint32_t max = type == T_DISCARD ? EBS_MAX_DISCARD : EBS_MAX_ZEROES;
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *r = raw + i * RANGE_BYTES;
		uint64_t sector = le64_get(r);
		uint32_t num = le32_get(r + 8), flags = le32_get(r + 12);
		/* Discard takes no flags; write zeroes only "unmap". */
		if (flags & ~(type == T_WRITE_ZEROES ? WZ_F_UNMAP : 0u))
			return S_UNSUPP;
		if (num > max || !in_range(e, sector, num))
			return S_IOERR;
		total += (uint64_t)num * VOL_SECTOR;
	}
	*bytes = total;
	struct bdev *b = e->e_bdev;
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *r = raw + i * RANGE_BYTES;
		uint64_t sector = le64_get(r);
		uint32_t num = le32_get(r + 8), flags = le32_get(r + 12);
		uint64_t off = sector * VOL_SECTOR, len = (uint64_t)num * VOL_SECTOR;
		int ret = 0;
		if (type == T_DISCARD) {
			ret = b->bd_ops->bo_discard(b, off, len, err, sizeof(err));
		} else if (!e->e_vol->v_crypt) {
			ret = b->bd_ops->bo_zero(b, off, len, flags & WZ_F_UNMAP, err, sizeof(err));
		} else {
			/* Encrypted zeroes: storage shows nothing about what the guest zeroed. */
			static const uint8_t zero[64 * VOL_SECTOR];
			uint8_t buf[sizeof(zero)];
			for (uint64_t s = 0; s < num && !ret; s += 64) {
				uint64_t k = num - s < 64 ? num - s : 64;
				if (vol_encrypt(e->e_vol, sector + s, zero, buf, k * VOL_SECTOR)) {
					snprintf(err, sizeof(err),
						 "volume %.200s: encryption failed",
						 e->e_vol->v_path);
					ret = -EIO;
					break;
				}
				ret = b->bd_ops->bo_pwrite(b, (sector + s) * VOL_SECTOR, buf,
							   k * VOL_SECTOR, err, sizeof(err));
			}
		}
		if (ret) {
			warnmsg("%s", err);
			return S_IOERR;
		}
	}
	e->e_stats.st_other++;
	return S_OK;
}

/* Serves one chain: completes it now, or starts its asynchronous I/O. */
static void handle(struct ebs *e, struct ebs_req *r, const struct vr_chain *ch, uint64_t *bytes,
		   bool *op)
{
	uint8_t hdr[HDR_BYTES], status;
	*bytes = 0;
	*op = true;
	r->r_status = status_ptr(ch);
	if (ch->ch_write_bytes < 1 || !r->r_status) {
		finish(r, 0, 0); /* no status byte: nothing can be reported */
		return;
	}
	if (ch->ch_denied) { /* a buffer in memory taken from the guest (an enclave's) */
		finish(r, S_IOERR, 1);
		return;
	}
	uint64_t wdata = ch->ch_write_bytes - 1;
	uint32_t written = 1;
	if (ch->ch_read_bytes < HDR_BYTES) {
		status = S_IOERR;
		goto done;
	}
	seg_copy(ch, false, 0, hdr, HDR_BYTES, false); /* read once, then validated */
	r->r_type = le32_get(hdr);
	r->r_sector = le64_get(hdr + 8);
	switch (r->r_type) {
	case T_IN:
	case T_OUT: {
		bool write = r->r_type == T_OUT;
		uint64_t len = write ? ch->ch_read_bytes - HDR_BYTES : wdata;
		if (len % VOL_SECTOR || !in_range(e, r->r_sector, len / VOL_SECTOR) ||
		    (write && e->e_vol->v_readonly) ||
		    !collect(r, ch, !write, write ? HDR_BYTES : 0, len)) {
			status = S_IOERR;
			goto done;
		}
		*bytes = len;
		r->r_len = len;
		r->r_done = 0;
		if (len == 0) {
			finish_rw(r, S_OK);
			return;
		}
		step_start(r);
		return;
	}
	case T_FLUSH:
		*op = false;
		e->e_stats.st_flushes++;
		r->r_io = (struct bdev_io){.bi_op = BDEV_FLUSH, .bi_done = flush_done};
		if (e->e_bdev->bd_ops->bo_submit(e->e_bdev, &r->r_io) < 0) {
			warnmsg("%s: flush not submitted", e->e_bdev->bd_name);
			status = S_IOERR;
			goto done;
		}
		return;
	case T_GET_ID: {
		*op = false;
		/* As EC2 shows it (NVMe serial): the id without its dash, exactly 20 bytes. */
		uint8_t id[ID_BYTES] = {0};
		memcpy(id, "vol", 3);
		memcpy(id + 3, e->e_vol->v_id + 4, VOL_ID_LEN - 4);
		uint32_t n = wdata < ID_BYTES ? (uint32_t)wdata : ID_BYTES;
		seg_copy(ch, true, 0, id, n, true);
		written += n;
		status = S_OK;
		break;
	}
	case T_DISCARD:
	case T_WRITE_ZEROES:
		status = do_ranges(e, ch, r->r_type, bytes);
		break;
	default:
		status = S_UNSUPP;
		break;
	}
done:
	finish(r, status, written);
}

static void throttle(struct ebs *e, uint64_t wait_ns)
{
	struct itimerspec it = {.it_value = {.tv_sec = (time_t)(wait_ns / 1000000000ull),
					     .tv_nsec = (long)(wait_ns % 1000000000ull)}};
	if (timerfd_settime(e->e_timer, 0, &it, NULL) < 0) {
		warnmsg("QoS timer: %s", strerror(errno));
		return; /* not throttled: serving on beats stalling the guest */
	}
	e->e_throttled = true;
	e->e_throttle_start = ebs_now_ns();
}

static void batch_begin(struct ebs *e)
{
	e->e_batch++;
}

static void serve(struct ebs *e, unsigned q);
static bool queue_live(const struct ebs *e, unsigned q);

/* Ends a batch: resumes queues that waited for a free request, hands queued I/O to the
 * back end, then notifies each queue that got used entries (once). */
static void batch_end(struct ebs *e)
{
	if (--e->e_batch)
		return;
	e->e_batch++;
	struct bdev *b = e->e_bdev;
	for (int round = 0; round < 4; round++) {
		if (e->e_starved && e->e_free && !e->e_throttled) {
			e->e_starved = false;
			for (unsigned q = 0; q < e->e_dev.vd_nqueues; q++)
				serve(e, q);
		}
		b->bd_ops->bo_commit(b);
		if (!e->e_starved || !e->e_free || e->e_throttled)
			break;
	}
	e->e_batch--;
	uint64_t m = e->e_notify;
	e->e_notify = 0;
	for (unsigned q = 0; m; q++, m >>= 1)
		if (m & 1)
			vu_queue_notify(&e->e_dev, q);
	if (e->e_paused && e->e_on_quiet && e->e_inflight == 0) {
		void (*cb)(struct ebs *, void *) = e->e_on_quiet;
		e->e_on_quiet = NULL;
		cb(e, e->e_quiet_opaque);
	}
}

void ebs_pause(struct ebs *e, void (*on_quiet)(struct ebs *e, void *opaque), void *opaque)
{
	e->e_paused = true;
	e->e_on_quiet = on_quiet;
	e->e_quiet_opaque = opaque;
	batch_begin(e);
	batch_end(e); /* runs on_quiet now when nothing is in flight */
}

void ebs_resume(struct ebs *e)
{
	if (!e->e_paused)
		return;
	e->e_paused = false;
	e->e_on_quiet = NULL;
	batch_begin(e);
	if (!e->e_throttled)
		for (unsigned q = 0; q < e->e_dev.vd_nqueues; q++)
			if (queue_live(e, q))
				serve(e, q);
	batch_end(e);
}

/* The control socket's pause (blkctl.h). */
static void ctl_quiet(struct ebs *e, void *ctl)
{
	(void)e;
	blkctl_quiet(ctl);
}

static void ctl_pause(void *dev, struct blkctl *ctl)
{
	ebs_pause(dev, ctl_quiet, ctl);
}

static void ctl_resume(void *dev)
{
	ebs_resume(dev);
}

const struct blkctl_ops ebs_ctl_ops = {.co_pause = ctl_pause, .co_resume = ctl_resume};

/* Takes chains from queue q while the buckets allow (inside a batch). */
static void serve(struct ebs *e, unsigned q)
{
	struct vu_dev *d = &e->e_dev;
	while (!e->e_throttled && !e->e_paused) {
		uint64_t wait;
		if (!e->e_free) {
			e->e_starved = true;
			break;
		}
		if (e->e_qos_on && !qos_admit(&e->e_qos, ebs_now_ns(), &wait)) {
			/* Throttle only when there is work waiting. */
			if (q < d->vd_nqueues && vr_pending(&d->vd_queues[q].vq_ring))
				throttle(e, wait);
			break;
		}
		struct vr_chain ch = {.ch_segs = e->e_segs, .ch_max = EBS_MAX_SEGS};
		if (vu_queue_pop(d, q, &ch) <= 0)
			break;
		struct ebs_req *r = req_get(e);
		r->r_q = q;
		r->r_head = ch.ch_head;
		order_append(e, r);
		uint64_t bytes;
		bool op;
		e->e_stats.st_ops++;
		handle(e, r, &ch, &bytes, &op);
		if (e->e_qos_on)
			qos_charge(&e->e_qos, op, bytes);
	}
}

static bool queue_live(const struct ebs *e, unsigned q)
{
	const struct vu_queue *vq = &e->e_dev.vd_queues[q];
	return vq->vq_started && vq->vq_enabled && !vq->vq_failed;
}

static void on_kick(struct vu_dev *d, unsigned q)
{
	struct ebs *e = d->vd_opaque;
	batch_begin(e);
	if (!e->e_throttled) /* else the timer resumes every queue */
		serve(e, q);
	batch_end(e);
}

static void on_bdev(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct ebs *e = opaque;
	struct bdev *b = e->e_bdev;
	(void)fd;
	(void)events;
	batch_begin(e);
	b->bd_ops->bo_event(b);
	batch_end(e);
	if (b->bd_event_fd != e->e_bdev_fd) { /* the back end's connection died */
		loop_del(l, e->e_bdev_fd);
		e->e_bdev_fd = -1;
	}
}

/* Before guest memory goes away: nothing may still be reading or writing it. */
static void drain(struct ebs *e)
{
	batch_begin(e);
	e->e_bdev->bd_ops->bo_drain(e->e_bdev);
	batch_end(e);
}

static void on_queue_stop(struct vu_dev *d, unsigned q)
{
	(void)q;
	drain(d->vd_opaque);
}

static void on_mem_changing(struct vu_dev *d)
{
	drain(d->vd_opaque);
}

unsigned ebs_poll(struct ebs *e)
{
	uint64_t before = e->e_stats.st_ops + e->e_stats.st_completed;
	batch_begin(e);
	e->e_bdev->bd_ops->bo_poll(e->e_bdev);
	if (!e->e_throttled)
		for (unsigned q = 0; q < e->e_dev.vd_nqueues; q++)
			if (queue_live(e, q))
				serve(e, q);
	batch_end(e);
	return (unsigned)(e->e_stats.st_ops + e->e_stats.st_completed - before);
}

bool ebs_set_polling(struct ebs *e, bool on)
{
	bool pending = false;
	e->e_polling = on;
	for (unsigned q = 0; q < e->e_dev.vd_nqueues; q++)
		if (queue_live(e, q) && vr_set_notify(&e->e_dev.vd_queues[q].vq_ring, !on))
			pending = true;
	return pending;
}

static void on_timer(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct ebs *e = opaque;
	uint64_t n;
	(void)l;
	(void)events;
	if (read(fd, &n, sizeof(n)) < 0 && errno == EAGAIN)
		return;
	if (!e->e_throttled)
		return;
	e->e_throttled = false;
	e->e_stats.st_throttled_ns += ebs_now_ns() - e->e_throttle_start;
	unsigned nq = e->e_dev.vd_nqueues;
	batch_begin(e);
	for (unsigned i = 0; i < nq && !e->e_throttled; i++) {
		unsigned q = (e->e_next_queue + i) % nq;
		if (queue_live(e, q))
			serve(e, q);
	}
	batch_end(e);
	e->e_next_queue = nq ? (e->e_next_queue + 1) % nq : 0;
}

static int config_read(struct vu_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct ebs *e = d->vd_opaque;
	uint8_t c[EBS_CONFIG_SIZE] = {0};
	if (off > sizeof(c) || len > sizeof(c) - off)
		return -EINVAL;
	le64_put(c + 0, e->e_vol->v_size / VOL_SECTOR); /* capacity */
	le32_put(c + 12, EBS_SEG_MAX);
	le32_put(c + 20, VOL_SECTOR); /* blk_size */
	c[24] = 3;		      /* physical_block_exp: 4 KiB */
	le16_put(c + 34, (uint16_t)e->e_nqueues);
	le32_put(c + 36, EBS_MAX_DISCARD);
	le32_put(c + 40, EBS_MAX_RANGES);
	le32_put(c + 44, 8); /* discard_sector_alignment */
	le32_put(c + 48, EBS_MAX_ZEROES);
	le32_put(c + 52, EBS_MAX_RANGES);
	c[56] = e->e_vol->v_encrypted ? 0 : 1; /* write_zeroes_may_unmap */
	memcpy(buf, c + off, len);
	return 0;
}

int ebs_init(struct ebs *e, struct volume *v, struct bdev *b, struct loop *l, unsigned nqueues,
	     uint64_t iops, uint64_t bytes_per_s, char *err, size_t errlen)
{
	*e = (struct ebs){.e_vol = v,
			  .e_bdev = b,
			  .e_bdev_fd = -1,
			  .e_loop = l,
			  .e_nqueues = nqueues,
			  .e_timer = -1};
	if (nqueues == 0 || nqueues > EBS_MAX_QUEUES)
		RETURN_ERR(-EINVAL, "%u queues (1..64)", nqueues);
	e->e_ops = (struct vu_ops){
	    .vo_features = BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_BLK_SIZE) |
			   BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_BLK_F_DISCARD) |
			   BIT(VIRTIO_BLK_F_WRITE_ZEROES) | BIT(VIRTIO_BLK_F_MQ) |
			   (v->v_readonly ? BIT(VIRTIO_BLK_F_RO) : 0),
	    .vo_num_queues = nqueues,
	    .vo_config_size = EBS_CONFIG_SIZE,
	    .vo_config_read = config_read,
	    .vo_queue_kick = on_kick,
	    .vo_queue_stopping = on_queue_stop,
	    .vo_queue_stop = on_queue_stop,
	    .vo_mem_changing = on_mem_changing,
	    .vo_denied_chains = true,
	};
	e->e_qos_on = iops || bytes_per_s;
	qos_init(&e->e_qos, iops, bytes_per_s, ebs_now_ns());
	e->e_segs = calloc(EBS_MAX_SEGS, sizeof(*e->e_segs));
	e->e_reqs = calloc(EBS_MAX_INFLIGHT, sizeof(*e->e_reqs));
	if (!e->e_segs || !e->e_reqs) {
		ebs_fini(e);
		RETURN_ERR(-ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < EBS_MAX_INFLIGHT; i++) {
		e->e_reqs[i].r_e = e;
		e->e_reqs[i].r_next = e->e_free;
		e->e_free = &e->e_reqs[i];
	}
	e->e_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (e->e_timer < 0) {
		int r = -errno;
		ebs_fini(e);
		RETURN_ERR(r, "timerfd: %s", strerror(-r));
	}
	int r = loop_add(l, e->e_timer, on_timer, e, err, errlen);
	if (!r && b->bd_event_fd >= 0) {
		r = loop_add(l, b->bd_event_fd, on_bdev, e, err, errlen);
		if (!r)
			e->e_bdev_fd = b->bd_event_fd;
	}
	if (!r)
		r = vu_dev_init(&e->e_dev, &e->e_ops, e, l, err, errlen);
	if (r)
		ebs_fini(e);
	return r;
}

void ebs_set_gp2(struct ebs *e, double credit_cap)
{
	qos_init_gp2(&e->e_qos, e->e_vol->v_size, credit_cap,
		     e->e_qos.q_bytes.qb_rate > 0 ? (uint64_t)e->e_qos.q_bytes.qb_rate : 0,
		     ebs_now_ns());
	e->e_qos_on = true;
}

void ebs_fini(struct ebs *e)
{
	if (e->e_dev.vd_ops)
		vu_dev_fini(&e->e_dev); /* drains the back end first (queue stop) */
	if (e->e_bdev && e->e_bdev->bd_ops)
		drain(e);
	if (e->e_bdev_fd >= 0) {
		loop_del(e->e_loop, e->e_bdev_fd);
		e->e_bdev_fd = -1;
	}
	if (e->e_timer >= 0) {
		loop_del(e->e_loop, e->e_timer);
		close(e->e_timer);
		e->e_timer = -1;
	}
	if (e->e_throttled) {
		e->e_stats.st_throttled_ns += ebs_now_ns() - e->e_throttle_start;
		e->e_throttled = false;
	}
	for (unsigned i = 0; e->e_reqs && i < EBS_MAX_INFLIGHT; i++)
		free(e->e_reqs[i].r_bounce);
	free(e->e_reqs);
	free(e->e_segs);
	e->e_reqs = e->e_free = NULL;
	e->e_segs = NULL;
}

void ebs_print_stats(const struct ebs *e, FILE *f)
{
	const struct ebs_stats *s = &e->e_stats;
	uint64_t thr = s->st_throttled_ns;
	char credits[64] = "";
	if (e->e_throttled)
		thr += ebs_now_ns() - e->e_throttle_start;
	if (e->e_qos.q_gp2)
		snprintf(credits, sizeof(credits), " credits=%llu baseline_iops=%llu",
			 (unsigned long long)(e->e_qos.q_credits > 0 ? e->e_qos.q_credits : 0),
			 (unsigned long long)e->e_qos.q_baseline);
	fprintf(f,
		"%s: %s: ops=%llu reads=%llu writes=%llu flushes=%llu other=%llu "
		"bytes_read=%llu bytes_written=%llu errors=%llu throttled_ms=%llu%s\n",
		util_prog(), e->e_vol->v_id, (unsigned long long)s->st_ops,
		(unsigned long long)s->st_reads, (unsigned long long)s->st_writes,
		(unsigned long long)s->st_flushes, (unsigned long long)s->st_other,
		(unsigned long long)s->st_bytes_read, (unsigned long long)s->st_bytes_written,
		(unsigned long long)s->st_errors, (unsigned long long)(thr / 1000000), credits);
	fflush(f);
}
