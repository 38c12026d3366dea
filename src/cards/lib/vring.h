/* Split virtqueues (virtio 1.x, little-endian x86 host) as a device sees them, with every
 * field the driver wrote treated as hostile.
 *
 * vr_pop() walks one descriptor chain into segments (pointer, length, writable) and
 * returns an error, never aborting and never touching memory outside guest memory, when
 * the head or a next index is out of range, a buffer is not inside one guest memory
 * region, the chain is longer than the queue (a loop), an indirect table is malformed or
 * nested, a device-readable buffer follows a device-writable one, the chain is larger
 * than vr_max_bytes, or the avail index ran more than the queue size ahead. A buffer in
 * revoked memory (guestmem.h: removed by the frontend, e.g. donated to an enclave) is not
 * a violation: the chain comes back with ch_denied and that segment's pointer NULL. After an
 * error the ring is broken (vr_broken) and every later call fails: the caller reports the
 * device as NEEDS_RESET. Each guest field is read once; avail->idx with acquire and
 * used->idx is published with release ordering. Not thread-safe: one thread per ring.
 */
#ifndef NITRO_CARDS_VRING_H
#define NITRO_CARDS_VRING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* VRING_DESC_F_*, VRING_AVAIL_F_NO_INTERRUPT, VRING_USED_F_NO_NOTIFY (flag values) and
 * VIRTIO_RING_F_INDIRECT_DESC, VIRTIO_RING_F_EVENT_IDX (feature bit numbers). */
#include <linux/virtio_ring.h>

#include "cards/lib/guestmem.h"

#define VR_MAX_SIZE 32768

#define VR_DEFAULT_MAX_BYTES (1ull << 30)

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[]; /* [size], then used_event */
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct virtq_used {
	uint16_t flags;
	uint16_t idx;
	struct virtq_used_elem ring[]; /* [size], then avail_event */
};

/* Bytes of each part for a queue of size n (including the event-idx fields). */
static inline size_t vr_desc_bytes(unsigned n)
{
	return 16 * (size_t)n;
}
static inline size_t vr_avail_bytes(unsigned n)
{
	return 6 + 2 * (size_t)n;
}
static inline size_t vr_used_bytes(unsigned n)
{
	return 6 + 8 * (size_t)n;
}

struct vr_seg {
	void *sg_ptr;
	uint32_t sg_len;
	bool sg_write;
};

struct vr_chain {
	uint16_t ch_head; /* what to hand back to vr_push */
	/* A buffer (or the indirect table) lies in memory the frontend took away
	 * (gm_revoked): its segment has sg_ptr NULL (no segments at all for an indirect
	 * table). The chain is well-formed otherwise; the device fails just this request. */
	bool ch_denied;
	unsigned ch_nsegs;
	uint64_t ch_read_bytes;	 /* device-readable total */
	uint64_t ch_write_bytes; /* device-writable total */
	struct vr_seg *ch_segs;	 /* caller's array of ch_max entries */
	unsigned ch_max;
};

struct vr_ring {
	const struct gmem *vr_mem;
	unsigned vr_size;
	struct virtq_desc *vr_desc;
	struct virtq_avail *vr_avail;
	struct virtq_used *vr_used;
	uint16_t vr_last_avail; /* next avail entry to consume */
	uint16_t vr_used_idx;	/* next used entry to fill (published by vr_push) */
	uint16_t vr_signalled;	/* used idx at the last notification (event idx) */
	bool vr_signalled_valid;
	bool vr_indirect;  /* VIRTIO_RING_F_INDIRECT_DESC negotiated */
	bool vr_event_idx; /* VIRTIO_RING_F_EVENT_IDX negotiated */
	bool vr_broken;
	bool vr_no_notify;     /* vr_set_notify(false): kicks not wanted (device polls) */
	uint64_t vr_max_bytes; /* bound on a chain's total length */
};

/* Copies len bytes from byte off of the chain's device-readable part into buf, and into the
 * device-writable part at byte off from buf. What lies past the part's end is left alone
 * (callers bound len by ch_read_bytes / ch_write_bytes); segments with sg_ptr NULL (a
 * denied chain) are skipped. */
void vr_chain_read(const struct vr_chain *ch, uint64_t off, uint8_t *buf, uint64_t len);
void vr_chain_write(const struct vr_chain *ch, uint64_t off, const uint8_t *buf, uint64_t len);

/* Sets up a ring of size n (power of two, 1..VR_MAX_SIZE) from the three parts already
 * translated to local pointers (each checked to be vr_*_bytes long in guest memory and
 * suitably aligned). last_avail comes from SET_VRING_BASE; the used index is read from
 * the ring. Returns 0 or -EINVAL with a message. */
int vr_init(struct vr_ring *vr, const struct gmem *mem, unsigned n, void *desc, void *avail,
	    void *used, uint16_t last_avail, char *err, size_t errlen);
/* Translates frontend virtual addresses (uva true) or guest-physical ones, then vr_init. */
int vr_map(struct vr_ring *vr, const struct gmem *mem, unsigned n, uint64_t desc, uint64_t avail,
	   uint64_t used, bool uva, uint16_t last_avail, char *err, size_t errlen);

/* Takes the next available chain: 1 with *ch filled, 0 when none is pending, or a negative
 * errno value (the ring is then broken). */
int vr_pop(struct vr_ring *vr, struct vr_chain *ch, char *err, size_t errlen);
/* Hands a chain back with the number of bytes written into it, and publishes it. */
int vr_push(struct vr_ring *vr, uint16_t head, uint32_t written, char *err, size_t errlen);
/* Whether the driver wants an interrupt for what has been pushed since the last true
 * answer (event idx or VRING_AVAIL_F_NO_INTERRUPT). */
bool vr_should_notify(struct vr_ring *vr);
/* Entries the driver made available and not yet popped (0 when broken). */
unsigned vr_pending(const struct vr_ring *vr);
/* Asks (or stops asking) the driver for kicks: used->flags, or with event idx avail_event
 * (which vr_pop then stops advancing until kicks are asked for again). Returns true when,
 * after enabling, work arrived meanwhile (the caller should poll again). */
bool vr_set_notify(struct vr_ring *vr, bool enable);

#endif
