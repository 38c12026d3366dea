/* vhost-user message framing: sendmsg/recvmsg with SCM_RIGHTS and read-all loops. */
#include "lib/vu_wire.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/le.h"

void vu_wire_hdr_put(uint8_t *b, const struct vu_wire_hdr *h)
{
	le32_put(b, h->request);
	le32_put(b + 4, h->flags);
	le32_put(b + 8, h->size);
}

void vu_wire_hdr_get(const uint8_t *b, struct vu_wire_hdr *h)
{
	h->request = le32_get(b);
	h->flags = le32_get(b + 4);
	h->size = le32_get(b + 8);
}

static int io_error(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK ? -ETIMEDOUT : -e;
}

int vu_wire_send(int sock, uint32_t request, uint32_t flags, const void *payload, uint32_t size,
		 const int *fds, unsigned nfds)
{
	if (nfds > VU_WIRE_MAX_FDS)
		return -EINVAL;
	uint8_t hdr[VU_HDR_SIZE];
	vu_wire_hdr_put(hdr, &(struct vu_wire_hdr){request, flags, size});
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, size}};
	union {
		char buf[CMSG_SPACE(sizeof(int) * VU_WIRE_MAX_FDS)];
		struct cmsghdr align;
	} ctl;
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = size ? 2 : 1};
	if (nfds) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	size_t left = sizeof(hdr) + size;
	while (left) {
		ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_error(errno);
		left -= (size_t)n;
		/* A short send: the fds went with the first bytes; go on with the rest. */
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
		while (mh.msg_iovlen && (size_t)n >= mh.msg_iov->iov_len) {
			n -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (uint8_t *)mh.msg_iov->iov_base + n;
			mh.msg_iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Closes fds[0..n). */
static void close_all(int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

bool vu_wire_take_fds(struct msghdr *mh, int *fds, unsigned *nfds, unsigned max_fds)
{
	bool excess = mh->msg_flags & MSG_CTRUNC; /* the kernel closed the ones that did not fit */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < max_fds) {
				fds[(*nfds)++] = f;
			} else {
				close(f);
				excess = true;
			}
		}
	}
	return excess;
}

struct rx {
	int sock;
	int timeout_ms;
	int *fds;
	unsigned max_fds, nfds;
	bool excess; /* more fds than max_fds, or truncated by the kernel */
};

/* One recvmsg of at most len bytes into p, keeping the fds that came with them: the byte
 * count (0 at end of file), or a negative errno value. */
static ssize_t rx_some(struct rx *x, void *p, size_t len)
{
	for (;;) {
		if (x->timeout_ms >= 0) {
			struct pollfd pf = {.fd = x->sock, .events = POLLIN};
			int r = poll(&pf, 1, x->timeout_ms);
			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0)
				return -errno;
			if (r == 0)
				return -ETIMEDOUT;
		}
		union {
			char buf[CMSG_SPACE(sizeof(int) * VU_WIRE_MAX_FDS)];
			struct cmsghdr align;
		} ctl;
		struct iovec iov = {p, len};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = recvmsg(x->sock, &mh, MSG_CMSG_CLOEXEC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return io_error(errno);
		if (vu_wire_take_fds(&mh, x->fds, &x->nfds, x->max_fds))
			x->excess = true;
		return n;
	}
}

/* Reads exactly len bytes; started says whether the message began before (end of file is
 * then a truncated message). 1, 0 at end of file before the first byte, or -errno. */
static int rx_all(struct rx *x, uint8_t *p, size_t len, bool started)
{
	while (len) {
		ssize_t n = rx_some(x, p, len);
		if (n < 0)
			return (int)n;
		if (x->excess)
			return -ETOOMANYREFS;
		if (n == 0)
			return started ? -EPIPE : 0;
		started = true;
		p += n;
		len -= (size_t)n;
	}
	return 1;
}

int vu_wire_recv(int sock, struct vu_wire_hdr *h, void *payload, uint32_t max_size, int *fds,
		 unsigned max_fds, unsigned *nfds, int timeout_ms)
{
	struct rx x = {.sock = sock,
		       .timeout_ms = timeout_ms,
		       .fds = fds,
		       .max_fds = max_fds < VU_WIRE_MAX_FDS ? max_fds : VU_WIRE_MAX_FDS};
	uint8_t hdr[VU_HDR_SIZE];
	*nfds = 0;
	if (!fds)
		x.max_fds = 0;
	int r = rx_all(&x, hdr, sizeof(hdr), false);
	if (r <= 0)
		goto fail;
	vu_wire_hdr_get(hdr, h);
	if (h->size > max_size) {
		r = -EMSGSIZE;
		goto fail;
	}
	r = rx_all(&x, payload, h->size, true);
	if (r <= 0)
		goto fail;
	*nfds = x.nfds;
	return 1;
fail:
	close_all(fds, x.nfds);
	return r;
}
