/* The file back end: a local volume file through io_uring (see bdev.h).
 *
 * A file on a memory file system (tmpfs, ramfs) is read and written inline instead: the
 * kernel has no non-blocking path for it, so io_uring would hand every request to a
 * worker thread (a second core) only to run a memory copy that never waits on a device. */
#include "cards/bdev/bdev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <liburing.h>

#include "lib/util.h"

#define RING_ENTRIES 256

struct file_priv {
	struct io_uring fp_ring;
	int fp_fd;
	int fp_efd; /* io_uring's completion eventfd, watched by the loop */
	uint64_t fp_data_off;
	unsigned fp_queued; /* SQEs prepared, not yet submitted */
	bool fp_inline;	    /* memory file system: plain preadv/pwritev on the loop's thread */
};

static void reap(struct bdev *b)
{
	struct file_priv *p = b->bd_priv;
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&p->fp_ring, &cqe) == 0) {
		struct bdev_io *io = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&p->fp_ring, cqe);
		b->bd_inflight--;
		io->bi_done(io, res);
	}
}

static void file_poll(struct bdev *b)
{
	if (b->bd_inflight)
		reap(b);
}

static void file_event(struct bdev *b)
{
	struct file_priv *p = b->bd_priv;
	eventfd_t v;
	if (eventfd_read(p->fp_efd, &v) < 0 && errno != EAGAIN)
		warnmsg("%s: io_uring eventfd: %s", b->bd_name, strerror(errno));
	reap(b);
}

static void file_commit(struct bdev *b)
{
	struct file_priv *p = b->bd_priv;
	if (!p->fp_queued)
		return;
	int r = io_uring_submit(&p->fp_ring);
	if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -EINTR)
		warnmsg("%s: io_uring_submit: %s", b->bd_name, strerror(-r));
	if (r > 0)
		p->fp_queued -= (unsigned)r < p->fp_queued ? (unsigned)r : p->fp_queued;
}

static void inline_io(struct file_priv *p, struct bdev_io *io)
{
	ssize_t n;
	off_t off = (off_t)(p->fp_data_off + io->bi_off);
	do {
		if (io->bi_op == BDEV_READ)
			n = preadv(p->fp_fd, io->bi_iov, (int)io->bi_niov, off);
		else if (io->bi_op == BDEV_WRITE)
			n = pwritev(p->fp_fd, io->bi_iov, (int)io->bi_niov, off);
		else
			n = fdatasync(p->fp_fd);
	} while (n < 0 && errno == EINTR);
	io->bi_done(io, n < 0 ? -errno : (int)n);
}

static int file_submit(struct bdev *b, struct bdev_io *io)
{
	struct file_priv *p = b->bd_priv;
	if (p->fp_inline) {
		inline_io(p, io);
		return 0;
	}
	struct io_uring_sqe *sqe = io_uring_get_sqe(&p->fp_ring);
	if (!sqe) {
		file_commit(b);
		reap(b);
		sqe = io_uring_get_sqe(&p->fp_ring);
		if (!sqe)
			return -EBUSY;
	}
	uint64_t off = p->fp_data_off + io->bi_off;
	switch (io->bi_op) {
	case BDEV_READ:
		io_uring_prep_readv(sqe, p->fp_fd, io->bi_iov, io->bi_niov, off);
		break;
	case BDEV_WRITE:
		io_uring_prep_writev(sqe, p->fp_fd, io->bi_iov, io->bi_niov, off);
		break;
	case BDEV_FLUSH:
		/* Covers every write that completed before it (page cache -> media). */
		io_uring_prep_fsync(sqe, p->fp_fd, IORING_FSYNC_DATASYNC);
		break;
	}
	io_uring_sqe_set_data(sqe, io);
	p->fp_queued++;
	b->bd_inflight++;
	return 0;
}

static void file_drain(struct bdev *b)
{
	struct file_priv *p = b->bd_priv;
	while (b->bd_inflight) {
		struct io_uring_cqe *cqe;
		int r = io_uring_submit_and_wait(&p->fp_ring, 1);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			warnmsg("%s: waiting for I/O: %s", b->bd_name, strerror(-r));
			return;
		}
		p->fp_queued = 0;
		if (io_uring_peek_cqe(&p->fp_ring, &cqe) == 0)
			reap(b);
	}
}

static int file_pwrite(struct bdev *b, uint64_t off, const void *buf, size_t len, char *err,
		       size_t errlen)
{
	struct file_priv *p = b->bd_priv;
	const uint8_t *s = buf;
	off += p->fp_data_off;
	while (len) {
		ssize_t n = pwrite(p->fp_fd, s, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			RETURN_ERR(n < 0 ? -errno : -EIO, "%s: write: %s", b->bd_name,
				   n < 0 ? strerror(errno) : "no progress");
		s += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int punch(struct file_priv *p, int mode, uint64_t off, uint64_t len)
{
	if (fallocate(p->fp_fd, mode, (off_t)(p->fp_data_off + off), (off_t)len) < 0)
		return -errno;
	return 0;
}

static int file_zero(struct bdev *b, uint64_t off, uint64_t len, bool unmap, char *err,
		     size_t errlen)
{
	struct file_priv *p = b->bd_priv;
	int r = punch(p,
		      unmap ? FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE
			    : FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
		      off, len);
	if (r)
		r = punch(p, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	if (!r)
		return 0;
	/* No fallocate here: write the zeroes out. */
	static const uint8_t zero[64 << 10];
	while (len) {
		size_t n = len < sizeof(zero) ? (size_t)len : sizeof(zero);
		if ((r = file_pwrite(b, off, zero, n, err, errlen)))
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static int file_discard(struct bdev *b, uint64_t off, uint64_t len, char *err, size_t errlen)
{
	int r = punch(b->bd_priv, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len);
	if (r && r != -EOPNOTSUPP)
		RETURN_ERR(r, "%s: discard: %s", b->bd_name, strerror(-r));
	return 0; /* advisory: unsupported means nothing to do */
}

static void file_close(struct bdev *b)
{
	struct file_priv *p = b->bd_priv;
	file_drain(b);
	io_uring_queue_exit(&p->fp_ring);
	if (p->fp_efd >= 0)
		close(p->fp_efd);
	close(p->fp_fd);
	free(p);
	b->bd_priv = NULL;
}

BDEV_OPS(file, "file");

/* io_uring requests are not seen by seccomp: the ring may only ever carry the three
 * operations this back end submits (IORING_REGISTER_RESTRICTIONS), and no further
 * registrations; then it is enabled. */
static int restrict_ring(struct io_uring *ring)
{
	struct io_uring_restriction res[3] = {
	    {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_READV},
	    {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_WRITEV},
	    {.opcode = IORING_RESTRICTION_SQE_OP, .sqe_op = IORING_OP_FSYNC},
	};
	/* Direct calls: Debian's liburing 2.3 does not export its wrappers for these two. */
	if (syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_RESTRICTIONS, res, 3) <
		0 ||
	    syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0) <
		0)
		return -errno;
	return 0;
}

int bdev_file_open(struct bdev *b, int fd, uint64_t data_off, uint64_t size, const char *name,
		   char *err, size_t errlen)
{
	*b = (struct bdev){.bd_size = size, .bd_event_fd = -1};
	snprintf(b->bd_name, sizeof(b->bd_name), "%s", name);
	struct file_priv *p = calloc(1, sizeof(*p));
	if (!p)
		RETURN_ERR(-ENOMEM, "%s: out of memory", name);
	p->fp_data_off = data_off;
	p->fp_efd = -1;
	p->fp_fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	int r = p->fp_fd < 0 ? -errno : 0;
	if (r) {
		free(p);
		RETURN_ERR(r, "%s: %s", name, strerror(-r));
	}
	struct statfs sfs;
	if (fstatfs(fd, &sfs) == 0 &&
	    (sfs.f_type == TMPFS_MAGIC || sfs.f_type == (typeof(sfs.f_type))RAMFS_MAGIC))
		p->fp_inline = true;
	/* The ring starts disabled so that it can be restricted before its first use. */
	struct io_uring_params par = {.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_R_DISABLED};
	r = io_uring_queue_init_params(RING_ENTRIES, &p->fp_ring, &par);
	if (r == -EINVAL) { /* kernels before 5.19 */
		par = (struct io_uring_params){.flags = IORING_SETUP_R_DISABLED};
		r = io_uring_queue_init_params(RING_ENTRIES, &p->fp_ring, &par);
	}
	if (r) {
		close(p->fp_fd);
		free(p);
		RETURN_ERR(r, "%s: io_uring: %s", name, strerror(-r));
	}
	p->fp_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->fp_efd < 0)
		r = -errno;
	else
		r = io_uring_register_eventfd(&p->fp_ring, p->fp_efd);
	if (!r)
		r = restrict_ring(&p->fp_ring);
	b->bd_priv = p;
	b->bd_ops = &file_ops;
	if (r) {
		snprintf(err, errlen, "%s: io_uring set-up (eventfd, restrictions): %s", name,
			 strerror(-r));
		bdev_close(b);
		return r;
	}
	b->bd_event_fd = p->fp_efd;
	return 0;
}
