/* vhost-user queues at run time: starting and stopping rings, kicks, and the chain API a
 * device uses from its queue_kick callback. */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "cards/lib/vhost_user.h"
#include "lib/util.h"

/* Signals an eventfd (non-blocking: SET_VRING_CALL/ERR). A full one, or a pipe nobody
 * reads that a hostile frontend gave instead, is not an error: the frontend has its
 * notification pending already, or does not want it. */
static int signal_fd(int fd)
{
	uint64_t one = 1;
	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return -1;
	return 0;
}

static void on_kick(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct vu_queue *vq = opaque;
	struct vu_dev *d = vq->vq_dev;
	uint64_t v;
	(void)events;
	/* An eventfd gives 8 bytes or EAGAIN (the fd is non-blocking: SET_VRING_KICK). Anything
	 * else (a pipe or socket at end of file, a short read) would be readable for ever and
	 * spin the loop: the fd is not watched any more. */
	ssize_t n = read(fd, &v, sizeof(v));
	if (n != (ssize_t)sizeof(v) && !(n < 0 && (errno == EAGAIN || errno == EINTR))) {
		warnmsg("vhost-user: queue %u: kick fd read %zd bytes (%s): not an eventfd; no "
			"longer watched",
			vq->vq_index, n, n < 0 ? strerror(errno) : "not 8");
		loop_del(l, fd);
		return;
	}
	if (vq->vq_started && vq->vq_enabled && !vq->vq_failed && d->vd_ops->vo_queue_kick)
		d->vd_ops->vo_queue_kick(d, vq->vq_index);
}

int vu_queue_start(struct vu_dev *d, unsigned q, char *err, size_t errlen)
{
	struct vu_queue *vq = &d->vd_queues[q];
	if (!vq->vq_num)
		RETURN_ERR(-EINVAL, "queue %u: started before SET_VRING_NUM", q);
	if (!vq->vq_addr_set)
		RETURN_ERR(-EINVAL, "queue %u: started before SET_VRING_ADDR", q);
	uint16_t base = vq->vq_started ? vq->vq_ring.vr_last_avail : vq->vq_base;
	int ret = vr_map(&vq->vq_ring, &d->vd_mem, vq->vq_num, vq->vq_desc_addr, vq->vq_avail_addr,
			 vq->vq_used_addr, true, base, err, errlen);
	if (ret) {
		vq->vq_started = false;
		return ret;
	}
	vq->vq_ring.vr_indirect = d->vd_features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	vq->vq_ring.vr_event_idx = d->vd_features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	vq->vq_failed = false;
	vq->vq_started = true;
	if (vq->vq_kick >= 0 && d->vd_loop && !loop_watching(d->vd_loop, vq->vq_kick))
		return loop_add(d->vd_loop, vq->vq_kick, on_kick, vq, err, errlen);
	return 0;
}

void vu_queue_stop(struct vu_dev *d, unsigned q)
{
	struct vu_queue *vq = &d->vd_queues[q];
	if (vq->vq_started && !vq->vq_failed && d->vd_ops->vo_queue_stopping)
		d->vd_ops->vo_queue_stopping(d, q);
	if (vq->vq_kick >= 0) {
		if (d->vd_loop)
			loop_del(d->vd_loop, vq->vq_kick);
		close(vq->vq_kick);
		vq->vq_kick = -1;
	}
	if (vq->vq_started) {
		/* Where to resume: a later start (new kick fd, SET_VRING_BASE aside) goes on
		 * from here rather than replaying chains already served. */
		vq->vq_base = vq->vq_ring.vr_last_avail;
		vq->vq_started = false;
		if (d->vd_ops->vo_queue_stop)
			d->vd_ops->vo_queue_stop(d, q);
	}
}

void vu_queue_reset(struct vu_dev *d, unsigned q)
{
	struct vu_queue *vq = &d->vd_queues[q];
	vu_queue_stop(d, q);
	if (vq->vq_call >= 0)
		close(vq->vq_call);
	if (vq->vq_err >= 0)
		close(vq->vq_err);
	vq->vq_call = vq->vq_err = -1;
	vq->vq_num = 0;
	vq->vq_addr_set = false;
	vq->vq_base = 0;
	vq->vq_enabled = false;
	vq->vq_failed = false;
	memset(&vq->vq_ring, 0, sizeof(vq->vq_ring));
	vq->vq_ring.vr_broken = true;
}

void vu_queue_fail(struct vu_dev *d, unsigned q, const char *why)
{
	struct vu_queue *vq = &d->vd_queues[q];
	warnmsg("vhost-user: queue %u failed, device needs reset: %s", q, why);
	vq->vq_failed = true;
	vq->vq_ring.vr_broken = true;
	if (vq->vq_kick >= 0 && d->vd_loop)
		loop_del(d->vd_loop, vq->vq_kick);
	if (vq->vq_err >= 0 && signal_fd(vq->vq_err) < 0)
		warnmsg("vhost-user: queue %u: signalling error fd: %s", q, strerror(errno));
}

/* The queue if the device may use it now, else NULL. */
static struct vu_queue *live(struct vu_dev *d, unsigned q)
{
	if (q >= d->vd_nqueues)
		return NULL;
	struct vu_queue *vq = &d->vd_queues[q];
	return vq->vq_started && !vq->vq_failed ? vq : NULL;
}

int vu_queue_pop(struct vu_dev *d, unsigned q, struct vr_chain *ch)
{
	struct vu_queue *vq = live(d, q);
	char err[256];
	if (!vq)
		return -EIO;
	if (!vq->vq_enabled)
		return 0;
	for (;;) {
		int ret = vr_pop(&vq->vq_ring, ch, err, sizeof(err));
		if (ret < 0)
			vu_queue_fail(d, q, err);
		if (ret <= 0 || !ch->ch_denied || d->vd_ops->vo_denied_chains)
			return ret;
		/* A device that does not take denied chains never sees one: it is handed back
		 * with nothing written, and the next chain is looked at. */
		warnmsg("vhost-user: queue %u: chain %u points into memory taken from the guest: "
			"refused",
			q, ch->ch_head);
		if (vu_queue_push(d, q, ch->ch_head, 0) < 0)
			return -EIO;
		vu_queue_notify(d, q);
	}
}

int vu_queue_push(struct vu_dev *d, unsigned q, uint16_t head, uint32_t written)
{
	struct vu_queue *vq = live(d, q);
	char err[256];
	if (!vq)
		return -EIO;
	int ret = vr_push(&vq->vq_ring, head, written, err, sizeof(err));
	if (ret < 0)
		vu_queue_fail(d, q, err);
	return ret;
}

void vu_queue_notify(struct vu_dev *d, unsigned q)
{
	struct vu_queue *vq = live(d, q);
	if (!vq || vq->vq_call < 0 || !vr_should_notify(&vq->vq_ring))
		return;
	if (signal_fd(vq->vq_call) < 0)
		warnmsg("vhost-user: queue %u: signalling call fd: %s", q, strerror(errno));
}
