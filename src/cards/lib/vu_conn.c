/* vhost-user connection: messages (framed by src/lib/vu_wire.c), replies, and the device's
 * lifetime around a connection. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cards/lib/vhost_user.h"
#include "lib/util.h"
#include "lib/vu_wire.h"

/* How long a frontend may stall in the middle of a message before we give up on it. */
#define VU_MSG_TIMEOUT_S 5

int vu_dev_init(struct vu_dev *d, const struct vu_ops *ops, void *opaque, struct loop *l, char *err,
		size_t errlen)
{
	memset(d, 0, sizeof(*d));
	d->vd_fd = -1;
	if (ops->vo_num_queues == 0 || ops->vo_num_queues > VU_MAX_QUEUES)
		RETURN_ERR(-EINVAL, "%u queues (1..%d)", ops->vo_num_queues, VU_MAX_QUEUES);
	if (ops->vo_config_size > VU_CONFIG_MAX)
		RETURN_ERR(-EINVAL, "config space of %u bytes (at most %d)", ops->vo_config_size,
			   VU_CONFIG_MAX);
	d->vd_queues = calloc(ops->vo_num_queues, sizeof(*d->vd_queues));
	if (!d->vd_queues)
		RETURN_ERR(-ENOMEM, "out of memory");
	d->vd_ops = ops;
	d->vd_opaque = opaque;
	d->vd_loop = l;
	d->vd_nqueues = ops->vo_num_queues;
	gm_init(&d->vd_mem);
	for (unsigned i = 0; i < d->vd_nqueues; i++) {
		struct vu_queue *vq = &d->vd_queues[i];
		vq->vq_dev = d;
		vq->vq_index = i;
		vq->vq_kick = vq->vq_call = vq->vq_err = -1;
		vq->vq_ring.vr_broken = true;
	}
	return 0;
}

/* A message arriving on a vo_shared_loop connection: its bytes so far and their fds. */
struct vu_partial {
	uint8_t p_buf[VU_HDR_SIZE + VU_PAYLOAD_MAX];
	size_t p_got;
	int p_fds[VU_MAX_FDS];
	unsigned p_nfds;
};

static void partial_free(struct vu_dev *d)
{
	struct vu_partial *p = d->vd_partial;
	if (!p)
		return;
	for (unsigned i = 0; i < p->p_nfds; i++)
		close(p->p_fds[i]);
	free(p);
	d->vd_partial = NULL;
}

void vu_dev_detach(struct vu_dev *d)
{
	partial_free(d);
	for (unsigned i = 0; i < d->vd_nqueues; i++)
		vu_queue_reset(d, i);
	if (d->vd_fd >= 0) {
		if (d->vd_loop)
			loop_del(d->vd_loop, d->vd_fd);
		close(d->vd_fd);
		d->vd_fd = -1;
	}
	gm_clear(&d->vd_mem);
	d->vd_owner = false;
	d->vd_features = d->vd_protocol_features = 0;
}

void vu_dev_fini(struct vu_dev *d)
{
	if (d->vd_queues)
		vu_dev_detach(d);
	free(d->vd_queues);
	d->vd_queues = NULL;
	d->vd_nqueues = 0;
}

static void on_socket(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct vu_dev *d = opaque;
	char err[256];
	(void)fd;
	(void)events;
	int r = vu_handle_one(d, err, sizeof(err));
	if (r == 0)
		return;
	if (r == 1)
		warnmsg("vhost-user: frontend disconnected");
	else
		warnmsg("vhost-user: closing the connection: %s", err);
	vu_dev_detach(d);
	if (d->vd_ops->vo_disconnected)
		d->vd_ops->vo_disconnected(d);
	else
		loop_stop(l);
}

int vu_dev_attach(struct vu_dev *d, int fd, char *err, size_t errlen)
{
	if (d->vd_fd >= 0) {
		close(fd);
		RETURN_ERR(-EBUSY, "already serving a frontend");
	}
	if (d->vd_ops->vo_shared_loop) {
		int fl = fcntl(fd, F_GETFL);
		d->vd_partial = calloc(1, sizeof(*d->vd_partial));
		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || !d->vd_partial) {
			free(d->vd_partial);
			d->vd_partial = NULL;
			close(fd);
			RETURN_ERR(-ENOMEM, "non-blocking connection: %s", strerror(errno));
		}
	} else {
		struct timeval tv = {.tv_sec = VU_MSG_TIMEOUT_S};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* best effort */
	}
	d->vd_fd = fd;
	if (d->vd_loop) {
		int ret = loop_add(d->vd_loop, fd, on_socket, d, err, errlen);
		if (ret) {
			close(fd);
			d->vd_fd = -1;
			partial_free(d);
			return ret;
		}
	}
	return 0;
}

int vu_read_msg(int fd, struct vu_msg *m, char *err, size_t errlen)
{
	uint8_t buf[VU_HDR_SIZE + VU_PAYLOAD_MAX];
	struct vu_wire_hdr h;
	int fds[VU_MAX_FDS];
	unsigned nfds;

	int r = vu_wire_recv(fd, &h, buf + VU_HDR_SIZE, VU_PAYLOAD_MAX, fds, VU_MAX_FDS, &nfds, -1);
	switch (r) {
	case 1:
		break;
	case 0:
		return 0;
	case -EPIPE:
		RETURN_ERR(-EPIPE, "frontend closed the connection mid-message");
	case -ETIMEDOUT:
		RETURN_ERR(-ETIMEDOUT, "frontend stalled mid-message");
	case -ETOOMANYREFS:
		RETURN_ERR(-EMSGSIZE, "message with more than %d fds", VU_MAX_FDS);
	case -EMSGSIZE:
		RETURN_ERR(-EMSGSIZE, "request %u: payload of %u bytes (at most %d)", h.request,
			   h.size, VU_PAYLOAD_MAX);
	default:
		RETURN_ERR(r, "reading a message: %s", strerror(-r));
	}
	vu_wire_hdr_put(buf, &h);
	int ret = vu_parse(buf, VU_HDR_SIZE + h.size, m, err, errlen);
	if (ret && ret != -ENOSYS) { /* unknown requests are the dispatcher's to answer */
		for (unsigned i = 0; i < nfds; i++)
			close(fds[i]);
		return ret;
	}
	memcpy(m->vm_fds, fds, nfds * sizeof(int));
	m->vm_nfds = nfds;
	return 1;
}

/* vo_shared_loop: takes what has arrived of the message without waiting. 1 with *m when it
 * is complete, 0 when more is to come, 2 at end of file between messages, or a negative
 * errno value. */
static int read_partial(struct vu_dev *d, struct vu_msg *m, char *err, size_t errlen)
{
	struct vu_partial *p = d->vd_partial;
	struct vu_wire_hdr h = {0};
	if (p->p_got >= VU_HDR_SIZE)
		vu_wire_hdr_get(p->p_buf, &h);
	size_t want = p->p_got < VU_HDR_SIZE ? VU_HDR_SIZE : VU_HDR_SIZE + h.size;
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {p->p_buf + p->p_got, want - p->p_got};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl)};
	ssize_t n = recvmsg(d->vd_fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		RETURN_ERR(-errno, "reading a message: %s", strerror(errno));
	}
	if (vu_wire_take_fds(&mh, p->p_fds, &p->p_nfds, VU_MAX_FDS))
		RETURN_ERR(-EMSGSIZE, "message with more than %d fds", VU_MAX_FDS);
	if (n == 0) {
		if (p->p_got)
			RETURN_ERR(-EPIPE, "frontend closed the connection mid-message");
		return 2;
	}
	p->p_got += (size_t)n;
	if (p->p_got == VU_HDR_SIZE) {
		vu_wire_hdr_get(p->p_buf, &h);
		if (h.size > VU_PAYLOAD_MAX)
			RETURN_ERR(-EMSGSIZE, "request %u: payload of %u bytes (at most %d)",
				   h.request, h.size, VU_PAYLOAD_MAX);
	}
	if (p->p_got < VU_HDR_SIZE || p->p_got < VU_HDR_SIZE + h.size)
		return 0;
	size_t len = p->p_got;
	unsigned nfds = p->p_nfds;
	p->p_got = 0;
	p->p_nfds = 0;
	int ret = vu_parse(p->p_buf, len, m, err, errlen);
	if (ret && ret != -ENOSYS) {
		for (unsigned i = 0; i < nfds; i++)
			close(p->p_fds[i]);
		return ret;
	}
	memcpy(m->vm_fds, p->p_fds, nfds * sizeof(int));
	m->vm_nfds = nfds;
	return 1;
}

int vu_send(int fd, const struct vu_msg *m, char *err, size_t errlen)
{
	if (m->vm_size > VU_PAYLOAD_MAX)
		RETURN_ERR(-EMSGSIZE, "reply of %u bytes", m->vm_size);
	int r = vu_wire_send(fd, m->vm_request, m->vm_flags, &m->vm_u, m->vm_size, NULL, 0);
	if (r < 0)
		RETURN_ERR(r, "sending a reply: %s", strerror(-r));
	return 0;
}

int vu_handle_one(struct vu_dev *d, char *err, size_t errlen)
{
	struct vu_msg m, reply;
	bool has_reply;

	if (d->vd_partial) {
		int r = read_partial(d, &m, err, errlen);
		if (r != 1)
			return r == 2 ? 1 : r;
	} else {
		int r = vu_read_msg(d->vd_fd, &m, err, errlen);
		if (r <= 0)
			return r == 0 ? 1 : r;
	}
	int ret = vu_dispatch(d, &m, &reply, &has_reply, err, errlen);
	if (ret)
		return ret;
	if (has_reply)
		return vu_send(d->vd_fd, &reply, err, errlen);
	return 0;
}
