/* Split virtqueue: hostile-safe descriptor walking, used ring and notification suppression. */
#include "cards/lib/vring.h"

#include <errno.h>
#include <string.h>

#include "lib/util.h"

/* Marks the ring broken and returns ret with the message in err. */
#define FAIL(ret, ...)                                                                             \
	do {                                                                                       \
		vr->vr_broken = true;                                                              \
		RETURN_ERR(ret, __VA_ARGS__);                                                      \
	} while (0)

static bool aligned(const void *p, uintptr_t a)
{
	return ((uintptr_t)p & (a - 1)) == 0;
}

int vr_init(struct vr_ring *vr, const struct gmem *mem, unsigned n, void *desc, void *avail,
	    void *used, uint16_t last_avail, char *err, size_t errlen)
{
	memset(vr, 0, sizeof(*vr));
	vr->vr_broken = true;
	if (n == 0 || n > VR_MAX_SIZE || (n & (n - 1)))
		RETURN_ERR(-EINVAL, "queue size %u is not a power of two in 1..%d", n, VR_MAX_SIZE);
	if (!desc || !avail || !used)
		RETURN_ERR(-EINVAL, "ring part outside guest memory");
	if (!aligned(desc, 16) || !aligned(avail, 2) || !aligned(used, 4))
		RETURN_ERR(-EINVAL, "misaligned ring (desc %p avail %p used %p)", desc, avail,
			   used);
	vr->vr_mem = mem;
	vr->vr_size = n;
	vr->vr_desc = desc;
	vr->vr_avail = avail;
	vr->vr_used = used;
	vr->vr_last_avail = last_avail;
	vr->vr_used_idx = __atomic_load_n(&vr->vr_used->idx, __ATOMIC_RELAXED);
	vr->vr_max_bytes = VR_DEFAULT_MAX_BYTES;
	vr->vr_broken = false;
	return 0;
}

int vr_map(struct vr_ring *vr, const struct gmem *mem, unsigned n, uint64_t desc, uint64_t avail,
	   uint64_t used, bool uva, uint16_t last_avail, char *err, size_t errlen)
{
	void *(*tr)(const struct gmem *, uint64_t, uint64_t) = uva ? gm_uva : gm_gpa;

	if (n == 0 || n > VR_MAX_SIZE || (n & (n - 1))) {
		memset(vr, 0, sizeof(*vr));
		vr->vr_broken = true;
		RETURN_ERR(-EINVAL, "queue size %u is not a power of two in 1..%d", n, VR_MAX_SIZE);
	}
	void *d = tr(mem, desc, vr_desc_bytes(n));
	void *a = tr(mem, avail, vr_avail_bytes(n));
	void *u = tr(mem, used, vr_used_bytes(n));
	if (!d || !a || !u) {
		memset(vr, 0, sizeof(*vr));
		vr->vr_broken = true;
		RETURN_ERR(-EINVAL, "%s 0x%llx outside guest memory",
			   !d	? "descriptor table"
			   : !a ? "avail ring"
				: "used ring",
			   (unsigned long long)(!d   ? desc
						: !a ? avail
						     : used));
	}
	return vr_init(vr, mem, n, d, a, u, last_avail, err, errlen);
}

/* One descriptor, read exactly once: the driver may change it under us, so every check
 * and use must see the same copy. */
static struct virtq_desc read_desc(const struct virtq_desc *p)
{
	struct virtq_desc d;

	memcpy(&d, p, sizeof(d));
	__asm__ volatile("" ::: "memory");
	return d;
}

static uint16_t *avail_event(struct vr_ring *vr)
{
	/* right after the used ring's entries (guest memory has no declared type) */
	return (uint16_t *)((uint8_t *)vr->vr_used + 4 + 8 * (size_t)vr->vr_size);
}

static uint16_t *used_event(struct vr_ring *vr)
{
	return &vr->vr_avail->ring[vr->vr_size];
}

unsigned vr_pending(const struct vr_ring *vr)
{
	if (vr->vr_broken)
		return 0;
	uint16_t idx = __atomic_load_n(&vr->vr_avail->idx, __ATOMIC_ACQUIRE);
	return (uint16_t)(idx - vr->vr_last_avail);
}

/* Walks the chain starting at head into ch. */
static int walk(struct vr_ring *vr, uint16_t head, struct vr_chain *ch, char *err, size_t errlen)
{
	const struct virtq_desc *table = vr->vr_desc;
	unsigned max = vr->vr_size, count = 0;
	bool indirect = false, seen_write = false;
	uint64_t total = 0;

	ch->ch_head = head;
	ch->ch_nsegs = 0;
	ch->ch_read_bytes = ch->ch_write_bytes = 0;
	ch->ch_denied = false;
	if (head >= max)
		FAIL(-EINVAL, "head index %u >= queue size %u", head, max);
	struct virtq_desc d = read_desc(&table[head]);
	if (d.flags & VRING_DESC_F_INDIRECT) {
		if (!vr->vr_indirect)
			FAIL(-EINVAL, "indirect descriptor %u without VIRTIO_RING_F_INDIRECT_DESC",
			     head);
		if (d.flags & VRING_DESC_F_NEXT)
			FAIL(-EINVAL, "indirect descriptor %u also has NEXT", head);
		if (d.len == 0 || d.len % sizeof(struct virtq_desc))
			FAIL(-EINVAL, "indirect table length %u is not a multiple of 16", d.len);
		max = d.len / sizeof(struct virtq_desc);
		if (max > vr->vr_size)
			FAIL(-EINVAL, "indirect table of %u entries > queue size %u", max,
			     vr->vr_size);
		table = gm_gpa(vr->vr_mem, d.addr, d.len);
		if (!table && gm_revoked(vr->vr_mem, d.addr, d.len)) {
			ch->ch_denied = true; /* memory taken away: a chain with no buffers */
			return 0;
		}
		if (!table)
			FAIL(-EFAULT, "indirect table 0x%llx+%u outside guest memory",
			     (unsigned long long)d.addr, d.len);
		indirect = true;
		d = read_desc(&table[0]);
	}
	for (;;) {
		if (++count > max)
			FAIL(-ELOOP, "descriptor chain from head %u longer than %u%s", head, max,
			     indirect ? " (indirect)" : "");
		if (d.flags & VRING_DESC_F_INDIRECT)
			FAIL(-EINVAL, "%s indirect descriptor in chain from head %u",
			     indirect ? "nested" : "non-head", head);
		total += d.len;
		if (total > vr->vr_max_bytes)
			FAIL(-E2BIG, "descriptor chain from head %u larger than %llu bytes", head,
			     (unsigned long long)vr->vr_max_bytes);
		void *p = gm_gpa(vr->vr_mem, d.addr, d.len);
		if (!p && gm_revoked(vr->vr_mem, d.addr, d.len))
			ch->ch_denied = true; /* the segment stays, without a pointer */
		else if (!p)
			FAIL(-EFAULT, "buffer 0x%llx+%u outside guest memory",
			     (unsigned long long)d.addr, d.len);
		bool w = d.flags & VRING_DESC_F_WRITE;
		if (seen_write && !w)
			FAIL(-EINVAL, "device-readable buffer after a writable one (head %u)",
			     head);
		seen_write |= w;
		if (ch->ch_nsegs >= ch->ch_max)
			FAIL(-E2BIG, "descriptor chain from head %u has more than %u buffers", head,
			     ch->ch_max);
		ch->ch_segs[ch->ch_nsegs++] = (struct vr_seg){p, d.len, w};
		if (w)
			ch->ch_write_bytes += d.len;
		else
			ch->ch_read_bytes += d.len;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return 0;
		if (d.next >= max)
			FAIL(-EINVAL, "next index %u >= %u (head %u)", d.next, max, head);
		d = read_desc(&table[d.next]);
	}
}

int vr_pop(struct vr_ring *vr, struct vr_chain *ch, char *err, size_t errlen)
{
	if (vr->vr_broken)
		RETURN_ERR(-EIO, "ring is broken");
	uint16_t idx = __atomic_load_n(&vr->vr_avail->idx, __ATOMIC_ACQUIRE);
	uint16_t n = (uint16_t)(idx - vr->vr_last_avail);
	if (n > vr->vr_size)
		FAIL(-EINVAL, "avail index %u is %u ahead of %u (queue size %u)", idx, n,
		     vr->vr_last_avail, vr->vr_size);
	if (n == 0)
		return 0;
	uint16_t head = __atomic_load_n(&vr->vr_avail->ring[vr->vr_last_avail & (vr->vr_size - 1)],
					__ATOMIC_RELAXED);
	int ret = walk(vr, head, ch, err, errlen);
	if (ret)
		return ret;
	vr->vr_last_avail++;
	if (vr->vr_event_idx && !vr->vr_no_notify)
		__atomic_store_n(avail_event(vr), vr->vr_last_avail, __ATOMIC_RELAXED);
	return 1;
}

int vr_push(struct vr_ring *vr, uint16_t head, uint32_t written, char *err, size_t errlen)
{
	if (vr->vr_broken)
		RETURN_ERR(-EIO, "ring is broken");
	if (head >= vr->vr_size)
		FAIL(-EINVAL, "pushing head %u >= queue size %u", head, vr->vr_size);
	struct virtq_used_elem *e = &vr->vr_used->ring[vr->vr_used_idx & (vr->vr_size - 1)];
	__atomic_store_n(&e->id, head, __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, written, __ATOMIC_RELAXED);
	vr->vr_used_idx++;
	__atomic_store_n(&vr->vr_used->idx, vr->vr_used_idx, __ATOMIC_RELEASE);
	return 0;
}

bool vr_should_notify(struct vr_ring *vr)
{
	if (vr->vr_broken)
		return false;
	/* Our used->idx store must be visible before we read the driver's suppression
	 * state, or an interrupt the driver waits for can be lost. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vr->vr_event_idx)
		return !(__atomic_load_n(&vr->vr_avail->flags, __ATOMIC_RELAXED) &
			 VRING_AVAIL_F_NO_INTERRUPT);
	uint16_t old = vr->vr_signalled, new = vr->vr_used_idx;
	bool valid = vr->vr_signalled_valid;
	vr->vr_signalled = new;
	vr->vr_signalled_valid = true;
	if (!valid)
		return true;
	uint16_t ev = __atomic_load_n(used_event(vr), __ATOMIC_RELAXED);
	/* vring_need_event: ev lies in (old, new]. */
	return (uint16_t)(new - ev - 1) < (uint16_t)(new - old);
}

bool vr_set_notify(struct vr_ring *vr, bool enable)
{
	if (vr->vr_broken)
		return false;
	vr->vr_no_notify = !enable;
	if (vr->vr_event_idx) {
		if (enable)
			__atomic_store_n(avail_event(vr), vr->vr_last_avail, __ATOMIC_RELAXED);
	} else {
		__atomic_store_n(&vr->vr_used->flags, enable ? 0 : VRING_USED_F_NO_NOTIFY,
				 __ATOMIC_RELAXED);
	}
	if (!enable)
		return false;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vr_pending(vr) != 0;
}

/* One copy between buf and the chain's readable (write false) or writable part. */
static void chain_copy(const struct vr_chain *ch, bool write, uint64_t off, uint8_t *buf,
		       uint64_t len)
{
	for (unsigned i = 0; i < ch->ch_nsegs && len; i++) {
		const struct vr_seg *s = &ch->ch_segs[i];
		if (s->sg_write != write)
			continue;
		if (off >= s->sg_len) {
			off -= s->sg_len;
			continue;
		}
		uint64_t k = s->sg_len - off < len ? s->sg_len - off : len;
		if (s->sg_ptr) {
			if (write)
				memcpy((uint8_t *)s->sg_ptr + off, buf, k);
			else
				memcpy(buf, (uint8_t *)s->sg_ptr + off, k);
		}
		buf += k;
		len -= k;
		off = 0;
	}
}

void vr_chain_read(const struct vr_chain *ch, uint64_t off, uint8_t *buf, uint64_t len)
{
	chain_copy(ch, false, off, buf, len);
}

void vr_chain_write(const struct vr_chain *ch, uint64_t off, const uint8_t *buf, uint64_t len)
{
	chain_copy(ch, true, off, (uint8_t *)buf, len);
}
