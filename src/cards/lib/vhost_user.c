/* vhost-user back-end: message parser, one handler per request, and the dispatcher. */
#include "cards/lib/vhost_user.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

#define BIT(n) (1ull << (n))

/* Ring features the library implements for every device. */
#define VU_RING_FEATURES                                                                           \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_INDIRECT_DESC) |                              \
	 BIT(VIRTIO_RING_F_EVENT_IDX) | BIT(VHOST_USER_F_PROTOCOL_FEATURES))

uint64_t vu_features(const struct vu_dev *d)
{
	return d->vd_ops->vo_features | VU_RING_FEATURES;
}

uint64_t vu_protocol_features(const struct vu_dev *d)
{
	uint64_t f = d->vd_ops->vo_protocol_features | BIT(VU_PROTOCOL_F_MQ) |
		     BIT(VU_PROTOCOL_F_REPLY_ACK) | BIT(VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	if (d->vd_ops->vo_config_read)
		f |= BIT(VU_PROTOCOL_F_CONFIG);
	return f;
}

static bool acked(const struct vu_dev *d, unsigned bit)
{
	return d->vd_features & BIT(bit);
}

/* ---- Handlers: 0 or a negative errno value with a message in err. ---- */

typedef int handler_fn(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
		       size_t errlen);

static void reply_u64(struct vu_msg *reply, uint64_t v)
{
	reply->vm_size = sizeof(uint64_t);
	reply->vm_u.u64 = v;
}

/* The queue a ring message names, or NULL with a message. */
static struct vu_queue *queue_of(struct vu_dev *d, uint64_t index, char *err, size_t errlen)
{
	if (index >= d->vd_nqueues) {
		snprintf(err, errlen, "queue index %llu out of range (%u queues)",
			 (unsigned long long)index, d->vd_nqueues);
		return NULL;
	}
	return &d->vd_queues[index];
}

static int h_get_features(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			  size_t errlen)
{
	(void)m, (void)err, (void)errlen;
	reply_u64(reply, vu_features(d));
	return 0;
}

static void apply_ring_features(struct vu_dev *d)
{
	for (unsigned i = 0; i < d->vd_nqueues; i++) {
		struct vr_ring *vr = &d->vd_queues[i].vq_ring;
		vr->vr_indirect = acked(d, VIRTIO_RING_F_INDIRECT_DESC);
		vr->vr_event_idx = acked(d, VIRTIO_RING_F_EVENT_IDX);
	}
}

static int h_set_features(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			  size_t errlen)
{
	(void)reply;
	uint64_t f = m->vm_u.u64, extra = f & ~vu_features(d);
	if (extra)
		RETURN_ERR(-EINVAL, "SET_FEATURES 0x%llx has bits never offered: 0x%llx",
			   (unsigned long long)f, (unsigned long long)extra);
	d->vd_features = f;
	apply_ring_features(d);
	return 0;
}

static int h_set_owner(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
		       size_t errlen)
{
	(void)m, (void)reply, (void)err, (void)errlen;
	d->vd_owner = true;
	return 0;
}

/* Deprecated; the spec recommends disabling all rings and nothing more (discarding the
 * session's state here is known to cause bugs). */
static int h_reset_owner(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			 size_t errlen)
{
	(void)m, (void)reply, (void)err, (void)errlen;
	for (unsigned i = 0; i < d->vd_nqueues; i++) {
		vu_queue_stop(d, i);
		d->vd_queues[i].vq_enabled = false;
	}
	return 0;
}

static int h_get_protocol_features(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply,
				   char *err, size_t errlen)
{
	(void)m, (void)err, (void)errlen;
	reply_u64(reply, vu_protocol_features(d));
	return 0;
}

static int h_set_protocol_features(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply,
				   char *err, size_t errlen)
{
	(void)reply;
	uint64_t f = m->vm_u.u64, extra = f & ~vu_protocol_features(d);
	if (extra)
		RETURN_ERR(-EINVAL, "SET_PROTOCOL_FEATURES has bits never offered: 0x%llx",
			   (unsigned long long)extra);
	d->vd_protocol_features = f;
	return 0;
}

/* Guest memory must be a memfd sealed against shrinking (see vo_allow_unsealed_memory). */
static int check_sealed(const struct vu_dev *d, int fd, unsigned i, char *err, size_t errlen)
{
	if (d->vd_ops->vo_allow_unsealed_memory)
		return 0;
	int seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		RETURN_ERR(-EPERM,
			   "memory region %u: guest memory fd is not sealed against shrinking "
			   "(F_SEAL_SHRINK%s); refused",
			   i, seals < 0 ? ": not a sealable memfd" : " missing");
	return 0;
}

/* After mappings went away: every started ring is translated again from its addresses
 * (the position is kept); one whose ring is no longer in guest memory fails. */
static void remap_rings(struct vu_dev *d, const bool *was_started)
{
	for (unsigned i = 0; i < d->vd_nqueues; i++) {
		struct vu_queue *vq = &d->vd_queues[i];
		if (!was_started[i] || vq->vq_failed)
			continue;
		char why[200];
		if (vu_queue_start(d, i, why, sizeof(why)))
			vu_queue_fail(d, i, why);
	}
}

static int h_get_max_mem_slots(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			       size_t errlen)
{
	(void)d, (void)m, (void)err, (void)errlen;
	reply_u64(reply, GM_MAX_SLOTS);
	return 0;
}

static bool slots_on(const struct vu_dev *d, char *err, size_t errlen)
{
	if (d->vd_protocol_features & BIT(VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return true;
	snprintf(err, errlen, "ADD/REM_MEM_REG without CONFIGURE_MEM_SLOTS negotiated");
	return false;
}

/* ADD_MEM_REG: one more region; nothing in use changes, so nothing is drained. */
static int h_add_mem_reg(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			 size_t errlen)
{
	(void)reply;
	const struct vu_mem_region *r = &m->vm_u.single.region;
	if (!slots_on(d, err, errlen))
		return -EPROTO;
	if (m->vm_nfds != 1)
		RETURN_ERR(-EINVAL, "ADD_MEM_REG carries %u fds (one)", m->vm_nfds);
	int ret = check_sealed(d, m->vm_fds[0], 0, err, errlen);
	if (ret)
		return ret;
	struct gm_region_desc rd = {.rd_gpa = r->gpa,
				    .rd_size = r->size,
				    .rd_uva = r->uva,
				    .rd_mmap_offset = r->mmap_offset};
	ret = gm_add_region(&d->vd_mem, &rd, m->vm_fds[0], err, errlen);
	m->vm_fds[0] = -1; /* consumed either way */
	return ret;
}

/* REM_MEM_REG: nothing may still use the region when it is unmapped (in-flight requests
 * are finished first, rings are translated again); its range becomes revoked memory:
 * a request pointing there fails on its own (vr_pop's ch_denied). */
static int h_rem_mem_reg(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			 size_t errlen)
{
	(void)reply;
	const struct vu_mem_region *r = &m->vm_u.single.region;
	if (!slots_on(d, err, errlen))
		return -EPROTO;
	/* (a fd, as some frontends send, is closed unused by the dispatcher) */
	bool found = false;
	for (unsigned i = 0; i < d->vd_mem.gm_nregions && !found; i++) {
		const struct gm_region *g = &d->vd_mem.gm_regions[i];
		found = g->gr_gpa == r->gpa && g->gr_size == r->size && g->gr_uva == r->uva;
	}
	if (!found)
		RETURN_ERR(-ENOENT, "REM_MEM_REG: no region at gpa 0x%llx of 0x%llx bytes",
			   (unsigned long long)r->gpa, (unsigned long long)r->size);
	if (d->vd_ops->vo_mem_changing)
		d->vd_ops->vo_mem_changing(d);
	bool was_started[VU_MAX_QUEUES] = {0};
	for (unsigned i = 0; i < d->vd_nqueues; i++)
		was_started[i] = d->vd_queues[i].vq_started;
	int ret = gm_remove_region(&d->vd_mem, r->gpa, r->size, r->uva, err, errlen);
	if (ret)
		return ret;
	remap_rings(d, was_started);
	return 0;
}

static int h_set_mem_table(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			   size_t errlen)
{
	(void)reply;
	const struct vu_mem_table *t = &m->vm_u.mem;
	struct gm_region_desc rd[GM_MAX_REGIONS];

	/* (the parser checked nregions <= GM_MAX_REGIONS and the payload size) */
	if (m->vm_nfds != t->nregions)
		RETURN_ERR(-EINVAL, "SET_MEM_TABLE with %u regions carries %u fds (one per region)",
			   t->nregions, m->vm_nfds);
	for (unsigned i = 0; i < t->nregions; i++)
		rd[i] = (struct gm_region_desc){.rd_gpa = t->regions[i].gpa,
						.rd_size = t->regions[i].size,
						.rd_uva = t->regions[i].uva,
						.rd_mmap_offset = t->regions[i].mmap_offset};
	for (unsigned i = 0; i < t->nregions; i++) {
		int ret = check_sealed(d, m->vm_fds[i], i, err, errlen);
		if (ret)
			return ret;
	}
	if (d->vd_ops->vo_mem_changing)
		d->vd_ops->vo_mem_changing(d);
	/* The old mappings go away: the started rings point into them. */
	bool was_started[VU_MAX_QUEUES] = {0};
	for (unsigned i = 0; i < d->vd_nqueues; i++)
		was_started[i] = d->vd_queues[i].vq_started;
	int ret = gm_set_table(&d->vd_mem, rd, t->nregions, m->vm_fds, err, errlen);
	for (unsigned i = 0; i < m->vm_nfds; i++)
		m->vm_fds[i] = -1; /* consumed either way */
	if (ret)
		return ret;
	remap_rings(d, was_started);
	return 0;
}

static int h_set_vring_num(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			   size_t errlen)
{
	(void)reply;
	struct vu_queue *vq = queue_of(d, m->vm_u.state.index, err, errlen);
	if (!vq)
		return -EINVAL;
	unsigned n = m->vm_u.state.num, max = d->vd_ops->vo_max_queue_size;
	if (!max || max > VR_MAX_SIZE)
		max = VR_MAX_SIZE;
	if (n == 0 || n > max || (n & (n - 1)))
		RETURN_ERR(-EINVAL, "queue %u: size %u is not a power of two in 1..%u",
			   vq->vq_index, n, max);
	if (vq->vq_started)
		RETURN_ERR(-EBUSY, "queue %u: SET_VRING_NUM while started", vq->vq_index);
	vq->vq_num = n;
	return 0;
}

static int h_set_vring_addr(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			    size_t errlen)
{
	(void)reply;
	const struct vu_vring_addr *a = &m->vm_u.addr;
	struct vu_queue *vq = queue_of(d, a->index, err, errlen);
	if (!vq)
		return -EINVAL;
	if (a->flags & ~VU_VRING_F_LOG)
		RETURN_ERR(-EINVAL, "queue %u: unknown ring address flags 0x%x", vq->vq_index,
			   a->flags);
	if (vq->vq_started)
		RETURN_ERR(-EBUSY, "queue %u: SET_VRING_ADDR while started", vq->vq_index);
	/* Check now when we can, so that the frontend hears of bad addresses here. */
	if (vq->vq_num && d->vd_mem.gm_nregions) {
		struct vr_ring tmp;
		if (vr_map(&tmp, &d->vd_mem, vq->vq_num, a->desc, a->avail, a->used, true, 0, err,
			   errlen))
			return -EINVAL;
	}
	vq->vq_desc_addr = a->desc;
	vq->vq_avail_addr = a->avail;
	vq->vq_used_addr = a->used;
	vq->vq_addr_set = true;
	return 0;
}

static int h_set_vring_base(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			    size_t errlen)
{
	(void)reply;
	struct vu_queue *vq = queue_of(d, m->vm_u.state.index, err, errlen);
	if (!vq)
		return -EINVAL;
	if (m->vm_u.state.num > 0xffff)
		RETURN_ERR(-EINVAL, "queue %u: base %u > 65535", vq->vq_index, m->vm_u.state.num);
	if (vq->vq_started)
		RETURN_ERR(-EBUSY, "queue %u: SET_VRING_BASE while started", vq->vq_index);
	vq->vq_base = (uint16_t)m->vm_u.state.num;
	return 0;
}

static int h_get_vring_base(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			    size_t errlen)
{
	struct vu_queue *vq = queue_of(d, m->vm_u.state.index, err, errlen);
	if (!vq)
		return -EINVAL;
	vu_queue_stop(d, vq->vq_index);
	vq->vq_failed = false;
	reply->vm_size = sizeof(struct vu_vring_state);
	reply->vm_u.state = (struct vu_vring_state){.index = vq->vq_index, .num = vq->vq_base};
	return 0;
}

/* KICK, CALL and ERR: the queue, and the fd (or -1 with the no-fd bit). */
static struct vu_queue *ring_fd(struct vu_dev *d, struct vu_msg *m, int *fd, char *err,
				size_t errlen)
{
	uint64_t v = m->vm_u.u64;
	unsigned want = v & VU_VRING_NOFD ? 0 : 1;
	if (v & ~(VU_VRING_IDX_MASK | VU_VRING_NOFD)) {
		snprintf(err, errlen, "%s: unknown bits in 0x%llx", vu_request_name(m->vm_request),
			 (unsigned long long)v);
		return NULL;
	}
	if (m->vm_nfds != want) {
		snprintf(err, errlen, "%s: %u fds, expected %u", vu_request_name(m->vm_request),
			 m->vm_nfds, want);
		return NULL;
	}
	struct vu_queue *vq = queue_of(d, v & VU_VRING_IDX_MASK, err, errlen);
	if (!vq)
		return NULL;
	*fd = -1;
	if (want) {
		*fd = m->vm_fds[0];
		m->vm_fds[0] = -1;
		/* The card never waits on a ring fd: reading a kick fd or signalling a call fd
		 * that a hostile frontend made a pipe would otherwise stop the whole loop (the
		 * eventfds of nitro-hv and QEMU are non-blocking already). */
		int fl = fcntl(*fd, F_GETFL);
		if (fl < 0 || fcntl(*fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			snprintf(err, errlen, "%s: fd: %s", vu_request_name(m->vm_request),
				 strerror(errno));
			close(*fd);
			return NULL;
		}
	}
	return vq;
}

static int h_set_vring_kick(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			    size_t errlen)
{
	(void)reply;
	int fd;
	struct vu_queue *vq = ring_fd(d, m, &fd, err, errlen);
	if (!vq)
		return -EINVAL;
	vu_queue_stop(d, vq->vq_index); /* closes the old kick fd */
	vq->vq_kick = fd;
	if (!acked(d, VHOST_USER_F_PROTOCOL_FEATURES))
		vq->vq_enabled = true;
	return vu_queue_start(d, vq->vq_index, err, errlen);
}

/* SET_VRING_CALL and SET_VRING_ERR: replace the ring's fd at offset slot. */
static int set_ring_fd(struct vu_dev *d, struct vu_msg *m, size_t slot, char *err, size_t errlen)
{
	int fd;
	struct vu_queue *vq = ring_fd(d, m, &fd, err, errlen);
	if (!vq)
		return -EINVAL;
	int *cur = (int *)((char *)vq + slot);
	if (*cur >= 0)
		close(*cur);
	*cur = fd;
	return 0;
}

static int h_set_vring_call(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			    size_t errlen)
{
	(void)reply;
	return set_ring_fd(d, m, offsetof(struct vu_queue, vq_call), err, errlen);
}

static int h_set_vring_err(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			   size_t errlen)
{
	(void)reply;
	return set_ring_fd(d, m, offsetof(struct vu_queue, vq_err), err, errlen);
}

static int h_get_queue_num(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			   size_t errlen)
{
	(void)m, (void)err, (void)errlen;
	reply_u64(reply, d->vd_nqueues);
	return 0;
}

static int h_set_vring_enable(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			      size_t errlen)
{
	(void)reply;
	struct vu_queue *vq = queue_of(d, m->vm_u.state.index, err, errlen);
	if (!vq)
		return -EINVAL;
	if (m->vm_u.state.num > 1)
		RETURN_ERR(-EINVAL, "queue %u: SET_VRING_ENABLE %u (0 or 1)", vq->vq_index,
			   m->vm_u.state.num);
	vq->vq_enabled = m->vm_u.state.num;
	return 0;
}

static int config_range(struct vu_dev *d, const struct vu_config *c, char *err, size_t errlen)
{
	uint32_t size = d->vd_ops->vo_config_size;
	if (size > VU_CONFIG_MAX)
		size = VU_CONFIG_MAX;
	if (c->offset > size || c->size > size - c->offset)
		RETURN_ERR(-EINVAL, "config access %u+%u outside %u bytes", c->offset, c->size,
			   size);
	return 0;
}

static int h_get_config(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			size_t errlen)
{
	const struct vu_config *c = &m->vm_u.config;
	if (!d->vd_ops->vo_config_read)
		RETURN_ERR(-ENOTSUP, "GET_CONFIG: device has no config space");
	int ret = config_range(d, c, err, errlen);
	if (ret)
		return ret;
	reply->vm_u.config =
	    (struct vu_config){.offset = c->offset, .size = c->size, .flags = c->flags};
	ret = d->vd_ops->vo_config_read(d, c->offset, reply->vm_u.config.payload, c->size);
	if (ret)
		RETURN_ERR(ret < 0 ? ret : -EIO, "GET_CONFIG %u+%u: device refused", c->offset,
			   c->size);
	reply->vm_size = 12 + c->size;
	return 0;
}

static int h_set_config(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, char *err,
			size_t errlen)
{
	(void)reply;
	const struct vu_config *c = &m->vm_u.config;
	if (!d->vd_ops->vo_config_write)
		RETURN_ERR(-ENOTSUP, "SET_CONFIG: device config space is read-only");
	int ret = config_range(d, c, err, errlen);
	if (ret)
		return ret;
	ret = d->vd_ops->vo_config_write(d, c->offset, c->payload, c->size, c->flags);
	if (ret)
		RETURN_ERR(ret < 0 ? ret : -EIO, "SET_CONFIG %u+%u: device refused", c->offset,
			   c->size);
	return 0;
}

/* ---- The table and the dispatcher. ---- */

enum fds_rule { FDS_NONE, FDS_ANY /* checked by the handler */ };

struct handler {
	const char *h_name;
	uint16_t h_min, h_max; /* payload size bounds (variable ones re-checked in vu_parse) */
	enum fds_rule h_fds;
	bool h_reply;	   /* the request has its own reply */
	bool h_empty_fail; /* on failure, reply with an empty payload instead of closing */
	handler_fn *h_fn;
};

#define U64 sizeof(uint64_t), sizeof(uint64_t)
#define STATE sizeof(struct vu_vring_state), sizeof(struct vu_vring_state)
#define CONFIG 12, 12 + VU_CONFIG_MAX
#define SINGLE sizeof(struct vu_mem_region_single), sizeof(struct vu_mem_region_single)

static const struct handler handlers[VU_REQUEST_MAX] = {
    [VU_GET_FEATURES] = {"GET_FEATURES", 0, sizeof(uint64_t), FDS_NONE, true, false,
			 h_get_features},
    [VU_SET_FEATURES] = {"SET_FEATURES", U64, FDS_NONE, false, false, h_set_features},
    [VU_SET_OWNER] = {"SET_OWNER", 0, 0, FDS_NONE, false, false, h_set_owner},
    [VU_RESET_OWNER] = {"RESET_OWNER", 0, 0, FDS_NONE, false, false, h_reset_owner},
    [VU_SET_MEM_TABLE] = {"SET_MEM_TABLE", 8, sizeof(struct vu_mem_table), FDS_ANY, false, false,
			  h_set_mem_table},
    [VU_SET_VRING_NUM] = {"SET_VRING_NUM", STATE, FDS_NONE, false, false, h_set_vring_num},
    [VU_SET_VRING_ADDR] = {"SET_VRING_ADDR", sizeof(struct vu_vring_addr),
			   sizeof(struct vu_vring_addr), FDS_NONE, false, false, h_set_vring_addr},
    [VU_SET_VRING_BASE] = {"SET_VRING_BASE", STATE, FDS_NONE, false, false, h_set_vring_base},
    [VU_GET_VRING_BASE] = {"GET_VRING_BASE", STATE, FDS_NONE, true, false, h_get_vring_base},
    [VU_SET_VRING_KICK] = {"SET_VRING_KICK", U64, FDS_ANY, false, false, h_set_vring_kick},
    [VU_SET_VRING_CALL] = {"SET_VRING_CALL", U64, FDS_ANY, false, false, h_set_vring_call},
    [VU_SET_VRING_ERR] = {"SET_VRING_ERR", U64, FDS_ANY, false, false, h_set_vring_err},
    [VU_GET_PROTOCOL_FEATURES] = {"GET_PROTOCOL_FEATURES", 0, sizeof(uint64_t), FDS_NONE, true,
				  false, h_get_protocol_features},
    [VU_SET_PROTOCOL_FEATURES] = {"SET_PROTOCOL_FEATURES", U64, FDS_NONE, false, false,
				  h_set_protocol_features},
    [VU_GET_QUEUE_NUM] = {"GET_QUEUE_NUM", 0, sizeof(uint64_t), FDS_NONE, true, false,
			  h_get_queue_num},
    [VU_SET_VRING_ENABLE] = {"SET_VRING_ENABLE", STATE, FDS_NONE, false, false, h_set_vring_enable},
    [VU_GET_CONFIG] = {"GET_CONFIG", CONFIG, FDS_NONE, true, true, h_get_config},
    [VU_SET_CONFIG] = {"SET_CONFIG", CONFIG, FDS_NONE, false, false, h_set_config},
    [VU_GET_MAX_MEM_SLOTS] = {"GET_MAX_MEM_SLOTS", 0, sizeof(uint64_t), FDS_NONE, true, false,
			      h_get_max_mem_slots},
    [VU_ADD_MEM_REG] = {"ADD_MEM_REG", SINGLE, FDS_ANY, false, false, h_add_mem_reg},
    [VU_REM_MEM_REG] = {"REM_MEM_REG", SINGLE, FDS_ANY, false, false, h_rem_mem_reg},
};

static const struct handler *handler_of(uint32_t req)
{
	if (req >= ARRAY_SIZE(handlers) || !handlers[req].h_fn)
		return NULL;
	return &handlers[req];
}

const char *vu_request_name(uint32_t req)
{
	const struct handler *h = handler_of(req);
	return h ? h->h_name : "unknown request";
}

int vu_parse(const uint8_t *buf, size_t len, struct vu_msg *m, char *err, size_t errlen)
{
	uint32_t hdr[3];

	if (len < VU_HDR_SIZE)
		RETURN_ERR(-EINVAL, "short header: %zu bytes", len);
	memcpy(hdr, buf, sizeof(hdr));
	m->vm_request = hdr[0];
	m->vm_flags = hdr[1];
	m->vm_size = hdr[2];
	m->vm_nfds = 0;
	if ((m->vm_flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION)
		RETURN_ERR(-EINVAL, "request %u: version %u (want 1)", m->vm_request,
			   m->vm_flags & VU_FLAG_VERSION_MASK);
	if (m->vm_flags & VU_FLAG_REPLY)
		RETURN_ERR(-EINVAL, "request %u has the reply flag", m->vm_request);
	if (m->vm_size > VU_PAYLOAD_MAX)
		RETURN_ERR(-EMSGSIZE, "request %u: payload of %u bytes (at most %d)", m->vm_request,
			   m->vm_size, VU_PAYLOAD_MAX);
	if (len - VU_HDR_SIZE != m->vm_size)
		RETURN_ERR(-EINVAL, "request %u: header says %u payload bytes, got %zu",
			   m->vm_request, m->vm_size, len - VU_HDR_SIZE);
	memset(&m->vm_u, 0, sizeof(m->vm_u));
	memcpy(&m->vm_u, buf + VU_HDR_SIZE, m->vm_size);

	const struct handler *h = handler_of(m->vm_request);
	if (!h)
		RETURN_ERR(-ENOSYS, "unknown request %u", m->vm_request);
	if (m->vm_size < h->h_min || m->vm_size > h->h_max)
		RETURN_ERR(-EINVAL, "%s: payload of %u bytes (want %u..%u)", h->h_name, m->vm_size,
			   h->h_min, h->h_max);
	if (m->vm_request == VU_SET_MEM_TABLE) {
		uint32_t n = m->vm_u.mem.nregions;
		if (n > GM_MAX_REGIONS || m->vm_size != 8 + n * sizeof(struct vu_mem_region))
			RETURN_ERR(-EINVAL, "SET_MEM_TABLE: %u regions in %u bytes", n, m->vm_size);
	}
	if (m->vm_request == VU_GET_CONFIG || m->vm_request == VU_SET_CONFIG) {
		uint32_t n = m->vm_u.config.size;
		if (n > VU_CONFIG_MAX || m->vm_size != 12 + n)
			RETURN_ERR(-EINVAL, "%s: %u config bytes in %u", h->h_name, n, m->vm_size);
	}
	return 0;
}

static void close_unused(struct vu_msg *m)
{
	for (unsigned i = 0; i < m->vm_nfds; i++) {
		if (m->vm_fds[i] >= 0)
			close(m->vm_fds[i]);
		m->vm_fds[i] = -1;
	}
	m->vm_nfds = 0;
}

int vu_dispatch(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, bool *has_reply,
		char *err, size_t errlen)
{
	const struct handler *h = handler_of(m->vm_request);
	bool need_reply = m->vm_flags & VU_FLAG_NEED_REPLY;
	int ret;

	*has_reply = false;
	reply->vm_request = m->vm_request;
	reply->vm_flags = VU_FLAG_VERSION | VU_FLAG_REPLY;
	reply->vm_size = 0;
	reply->vm_nfds = 0;
	if (!h) {
		ret = -ENOSYS;
		snprintf(err, errlen, "unknown request %u", m->vm_request);
	} else if (h->h_fds == FDS_NONE && m->vm_nfds) {
		ret = -EINVAL;
		snprintf(err, errlen, "%s carries %u unexpected fds", h->h_name, m->vm_nfds);
	} else {
		ret = h->h_fn(d, m, reply, err, errlen);
	}
	close_unused(m);

	if (h && h->h_reply) {
		if (ret == 0 || h->h_empty_fail) {
			if (ret) {
				warnmsg("vhost-user: %s failed: %s", h->h_name, err);
				reply->vm_size = 0;
			}
			*has_reply = true;
			return 0;
		}
		return ret;
	}
	if (need_reply) {
		if (ret)
			warnmsg("vhost-user: %s failed: %s", h ? h->h_name : "request", err);
		reply_u64(reply, ret ? 1 : 0);
		*has_reply = true;
		return 0;
	}
	return ret;
}
