/* The EBS card's virtio-blk request handling and QoS pacing. */
#include "cards/ebs/ebs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/util.h"

#define BIT(n) (1ull << (n))

#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13

#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define HDR_BYTES 16
#define RANGE_BYTES 16
#define ID_BYTES 20
_Static_assert(ID_BYTES == 3 + VOL_ID_LEN - 4, "vol + 17 hex digits fill the id");
#define WZ_F_UNMAP 1u

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

static uint8_t do_rw(struct ebs *e, const struct vr_chain *ch, bool write, uint64_t sector,
		     uint64_t len)
{
	char err[512];
	if (len % VOL_SECTOR || !in_range(e, sector, len / VOL_SECTOR))
		return S_IOERR;
	if (write && e->e_vol->v_readonly)
		return S_IOERR;
	for (uint64_t off = 0; off < len; off += EBS_CHUNK) {
		uint64_t n = len - off < EBS_CHUNK ? len - off : EBS_CHUNK;
		uint64_t s = sector + off / VOL_SECTOR;
		int r;
		if (write) {
			seg_copy(ch, false, HDR_BYTES + off, e->e_buf, n, false);
			r = vol_write(e->e_vol, s, e->e_buf, n, err, sizeof(err));
		} else {
			r = vol_read(e->e_vol, s, e->e_buf, n, err, sizeof(err));
			if (!r)
				seg_copy(ch, true, off, e->e_buf, n, true);
		}
		if (r) {
			warnmsg("%s", err);
			return S_IOERR;
		}
	}
	if (write) {
		e->e_stats.st_writes++;
		e->e_stats.st_bytes_written += len;
	} else {
		e->e_stats.st_reads++;
		e->e_stats.st_bytes_read += len;
	}
	return S_OK;
}

/* DISCARD or WRITE_ZEROES: every range is copied out and checked before any is applied. */
static uint8_t do_ranges(struct ebs *e, const struct vr_chain *ch, uint32_t type)
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
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *r = raw + i * RANGE_BYTES;
		uint64_t sector = le64_get(r);
		uint32_t num = le32_get(r + 8), flags = le32_get(r + 12);
		/* Discard takes no flags; write zeroes only "unmap". */
		if (flags & ~(type == T_WRITE_ZEROES ? WZ_F_UNMAP : 0u))
			return S_UNSUPP;
		if (num > max || !in_range(e, sector, num))
			return S_IOERR;
	}
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *r = raw + i * RANGE_BYTES;
		uint64_t sector = le64_get(r);
		uint32_t num = le32_get(r + 8), flags = le32_get(r + 12);
		int ret = type == T_DISCARD
			      ? vol_discard(e->e_vol, sector, num, err, sizeof(err))
			      : vol_write_zeroes(e->e_vol, sector, num, flags & WZ_F_UNMAP, err,
						 sizeof(err));
		if (ret) {
			warnmsg("%s", err);
			return S_IOERR;
		}
	}
	e->e_stats.st_other++;
	return S_OK;
}

/* Serves one chain; returns the bytes written into it and sets *bytes to the data moved. */
static uint32_t handle(struct ebs *e, const struct vr_chain *ch, uint64_t *bytes, bool *op)
{
	uint8_t hdr[HDR_BYTES], status;
	char err[512];
	*bytes = 0;
	*op = true;
	if (ch->ch_write_bytes < 1)
		return 0; /* no status byte: nothing can be reported */
	uint64_t wdata = ch->ch_write_bytes - 1;
	uint32_t written = 1;
	if (ch->ch_read_bytes < HDR_BYTES) {
		status = S_IOERR;
		goto done;
	}
	seg_copy(ch, false, 0, hdr, HDR_BYTES, false); /* read once, then validated */
	uint32_t type = le32_get(hdr);
	uint64_t sector = le64_get(hdr + 8);
	switch (type) {
	case T_IN:
		status = do_rw(e, ch, false, sector, wdata);
		if (status == S_OK) {
			written += (uint32_t)wdata;
			*bytes = wdata;
		}
		break;
	case T_OUT:
		status = do_rw(e, ch, true, sector, ch->ch_read_bytes - HDR_BYTES);
		if (status == S_OK)
			*bytes = ch->ch_read_bytes - HDR_BYTES;
		break;
	case T_FLUSH:
		*op = false;
		status = S_OK;
		if (vol_flush(e->e_vol, err, sizeof(err))) {
			warnmsg("%s", err);
			status = S_IOERR;
		}
		e->e_stats.st_flushes++;
		break;
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
		status = do_ranges(e, ch, type);
		break;
	default:
		status = S_UNSUPP;
		break;
	}
done:
	if (status != S_OK)
		e->e_stats.st_errors++;
	seg_copy(ch, true, wdata, &status, 1, true);
	return written;
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

/* Takes chains from queue q while the buckets allow. */
static void serve(struct ebs *e, unsigned q)
{
	struct vu_dev *d = &e->e_dev;
	bool pushed = false;
	while (!e->e_throttled) {
		uint64_t wait;
		if (e->e_qos_on && !qos_admit(&e->e_qos, ebs_now_ns(), &wait)) {
			/* Throttle only when there is work waiting. */
			if (q < d->vd_nqueues && vr_pending(&d->vd_queues[q].vq_ring))
				throttle(e, wait);
			break;
		}
		struct vr_chain ch = {.ch_segs = e->e_segs, .ch_max = EBS_MAX_SEGS};
		if (vu_queue_pop(d, q, &ch) <= 0)
			break;
		uint64_t bytes;
		bool op;
		uint32_t written = handle(e, &ch, &bytes, &op);
		e->e_stats.st_ops++;
		if (e->e_qos_on)
			qos_charge(&e->e_qos, op, bytes);
		if (vu_queue_push(d, q, ch.ch_head, written) < 0)
			break;
		pushed = true;
	}
	if (pushed)
		vu_queue_notify(d, q);
}

static void on_kick(struct vu_dev *d, unsigned q)
{
	struct ebs *e = d->vd_opaque;
	if (!e->e_throttled) /* else the timer resumes every queue */
		serve(e, q);
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
	for (unsigned i = 0; i < nq && !e->e_throttled; i++) {
		unsigned q = (e->e_next_queue + i) % nq;
		const struct vu_queue *vq = &e->e_dev.vd_queues[q];
		if (vq->vq_started && vq->vq_enabled && !vq->vq_failed)
			serve(e, q);
	}
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

int ebs_init(struct ebs *e, struct volume *v, struct loop *l, unsigned nqueues, uint64_t iops,
	     uint64_t bytes_per_s, char *err, size_t errlen)
{
	*e = (struct ebs){.e_vol = v, .e_loop = l, .e_nqueues = nqueues, .e_timer = -1};
	e->e_ops = (struct vu_ops){
	    .vo_features = BIT(VIRTIO_BLK_F_SEG_MAX) | BIT(VIRTIO_BLK_F_BLK_SIZE) |
			   BIT(VIRTIO_BLK_F_FLUSH) | BIT(VIRTIO_BLK_F_DISCARD) |
			   BIT(VIRTIO_BLK_F_WRITE_ZEROES) | BIT(VIRTIO_BLK_F_MQ) |
			   (v->v_readonly ? BIT(VIRTIO_BLK_F_RO) : 0),
	    .vo_num_queues = nqueues,
	    .vo_config_size = EBS_CONFIG_SIZE,
	    .vo_config_read = config_read,
	    .vo_queue_kick = on_kick,
	};
	e->e_qos_on = iops || bytes_per_s;
	qos_init(&e->e_qos, iops, bytes_per_s, ebs_now_ns());
	e->e_segs = calloc(EBS_MAX_SEGS, sizeof(*e->e_segs));
	e->e_buf = malloc(EBS_CHUNK);
	if (!e->e_segs || !e->e_buf) {
		ebs_fini(e);
		RETURN_ERR(-ENOMEM, "out of memory");
	}
	e->e_timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (e->e_timer < 0) {
		int r = -errno;
		ebs_fini(e);
		RETURN_ERR(r, "timerfd: %s", strerror(-r));
	}
	int r = loop_add(l, e->e_timer, on_timer, e, err, errlen);
	if (!r)
		r = vu_dev_init(&e->e_dev, &e->e_ops, e, l, err, errlen);
	if (r)
		ebs_fini(e);
	return r;
}

void ebs_fini(struct ebs *e)
{
	if (e->e_dev.vd_ops)
		vu_dev_fini(&e->e_dev);
	if (e->e_timer >= 0) {
		loop_del(e->e_loop, e->e_timer);
		close(e->e_timer);
		e->e_timer = -1;
	}
	if (e->e_throttled) {
		e->e_stats.st_throttled_ns += ebs_now_ns() - e->e_throttle_start;
		e->e_throttled = false;
	}
	free(e->e_segs);
	free(e->e_buf);
	e->e_segs = NULL;
	e->e_buf = NULL;
}

void ebs_print_stats(const struct ebs *e, FILE *f)
{
	const struct ebs_stats *s = &e->e_stats;
	uint64_t thr = s->st_throttled_ns;
	if (e->e_throttled)
		thr += ebs_now_ns() - e->e_throttle_start;
	fprintf(f,
		"%s: %s: ops=%llu reads=%llu writes=%llu flushes=%llu other=%llu "
		"bytes_read=%llu bytes_written=%llu errors=%llu throttled_ms=%llu\n",
		util_prog(), e->e_vol->v_id, (unsigned long long)s->st_ops,
		(unsigned long long)s->st_reads, (unsigned long long)s->st_writes,
		(unsigned long long)s->st_flushes, (unsigned long long)s->st_other,
		(unsigned long long)s->st_bytes_read, (unsigned long long)s->st_bytes_written,
		(unsigned long long)s->st_errors, (unsigned long long)(thr / 1000000));
	fflush(f);
}
