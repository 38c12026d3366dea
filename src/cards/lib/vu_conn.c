/* vhost-user connection: framing over a Unix socket with SCM_RIGHTS fds, replies, and
 * the device's lifetime around a connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "cards/lib/vhost_user.h"
#include "lib/util.h"

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

void vu_dev_detach(struct vu_dev *d)
{
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
	struct timeval tv = {.tv_sec = VU_MSG_TIMEOUT_S};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)); /* best effort */
	d->vd_fd = fd;
	if (d->vd_loop) {
		int ret = loop_add(d->vd_loop, fd, on_socket, d, err, errlen);
		if (ret) {
			close(fd);
			d->vd_fd = -1;
			return ret;
		}
	}
	return 0;
}

static void close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

/* Reads exactly len bytes (the rest of a message). */
static int read_full(int fd, uint8_t *p, size_t len, char *err, size_t errlen)
{
	while (len) {
		ssize_t n = recv(fd, p, len, 0);
		if (n == 0)
			RETURN_ERR(-EPIPE, "frontend closed the connection mid-message");
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				RETURN_ERR(-ETIMEDOUT, "frontend stalled mid-message");
			RETURN_ERR(-errno, "reading a message: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int vu_read_msg(int fd, struct vu_msg *m, char *err, size_t errlen)
{
	uint8_t buf[VU_HDR_SIZE + VU_PAYLOAD_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = VU_HDR_SIZE};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf)};
	int fds[VU_MAX_FDS];
	unsigned nfds = 0;
	ssize_t n;
	int ret;

	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		RETURN_ERR(-errno, "reading a message: %s", strerror(errno));
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		unsigned k = (unsigned)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (unsigned i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (nfds < VU_MAX_FDS)
				fds[nfds++] = f;
			else
				close(f);
		}
	}
	if (n == 0) {
		close_fds(fds, nfds);
		return 0;
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		close_fds(fds, nfds);
		RETURN_ERR(-EMSGSIZE, "message with more than %d fds", VU_MAX_FDS);
	}
	ret = read_full(fd, buf + n, VU_HDR_SIZE - (size_t)n, err, errlen);
	if (ret)
		goto fail;
	uint32_t size;
	memcpy(&size, buf + 8, sizeof(size));
	if (size > VU_PAYLOAD_MAX) {
		uint32_t req;
		memcpy(&req, buf, sizeof(req));
		snprintf(err, errlen, "request %u: payload of %u bytes (at most %d)", req, size,
			 VU_PAYLOAD_MAX);
		ret = -EMSGSIZE;
		goto fail;
	}
	ret = read_full(fd, buf + VU_HDR_SIZE, size, err, errlen);
	if (ret)
		goto fail;
	ret = vu_parse(buf, VU_HDR_SIZE + size, m, err, errlen);
	if (ret && ret != -ENOSYS) /* unknown requests are the dispatcher's to answer */
		goto fail;
	memcpy(m->vm_fds, fds, nfds * sizeof(int));
	m->vm_nfds = nfds;
	return 1;
fail:
	close_fds(fds, nfds);
	return ret;
}

int vu_send(int fd, const struct vu_msg *m, char *err, size_t errlen)
{
	uint8_t buf[VU_HDR_SIZE + VU_PAYLOAD_MAX];
	uint32_t hdr[3] = {m->vm_request, m->vm_flags, m->vm_size};
	if (m->vm_size > VU_PAYLOAD_MAX)
		RETURN_ERR(-EMSGSIZE, "reply of %u bytes", m->vm_size);
	memcpy(buf, hdr, sizeof(hdr));
	memcpy(buf + VU_HDR_SIZE, &m->vm_u, m->vm_size);
	size_t len = VU_HDR_SIZE + m->vm_size, off = 0;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			RETURN_ERR(-errno, "sending a reply: %s", strerror(errno));
		}
		off += (size_t)n;
	}
	return 0;
}

int vu_handle_one(struct vu_dev *d, char *err, size_t errlen)
{
	struct vu_msg m, reply;
	bool has_reply;

	int r = vu_read_msg(d->vd_fd, &m, err, errlen);
	if (r <= 0)
		return r == 0 ? 1 : r;
	int ret = vu_dispatch(d, &m, &reply, &has_reply, err, errlen);
	if (ret)
		return ret;
	if (has_reply)
		return vu_send(d->vd_fd, &reply, err, errlen);
	return 0;
}
