/* Block back ends of the EBS card (an ops table, kvmtool style): where a volume's bytes
 * live. The card's request layer (blk.c) does validation, encryption and QoS; a back end
 * only moves bytes at offsets of the guest-visible data area ([0, bd_size)).
 *
 *   file  a local volume file through io_uring (liburing): reads, writes and flushes are
 *         queued as SQEs and submitted once per batch (bo_commit); completions arrive on
 *         an eventfd watched by the card's loop, in any order.
 *   null  memory that forgets: reads return zeroes, writes are dropped, completions are
 *         immediate (the bench's in-memory peer of qemu's null-co).
 *   nbd   an NBD export through libnbd (nbd://HOST[:PORT]/EXPORT or
 *         nbd+unix:///EXPORT?socket=PATH): asynchronous commands on the libnbd handle,
 *         whose socket is watched by the loop.
 *
 * Asynchronous I/O (BDEV_READ, BDEV_WRITE, BDEV_FLUSH): bo_submit takes an io whose iovec
 * stays valid until bi_done is called with the bytes moved (0 for a flush) or a negative
 * errno value; bi_done may run inside bo_submit (null) or later from bo_event, which the
 * card calls when bd_event_fd is readable, or bo_poll, which it calls while it busy-polls
 * (no system call when nothing completed). A back end whose
 * connection died sets bd_event_fd to -1 (the card then stops watching the old one). A FLUSH
 * completes only once every write that completed before it was submitted is durable. bo_drain
 * returns when nothing is in flight (every bi_done has run): the card calls it before guest memory
 * is unmapped. Discard, write zeroes and plain writes from the card's own buffers are synchronous.
 */
#ifndef NITRO_CARDS_BDEV_BDEV_H
#define NITRO_CARDS_BDEV_BDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

enum bdev_op { BDEV_READ, BDEV_WRITE, BDEV_FLUSH };

struct bdev_io {
	enum bdev_op bi_op;
	uint64_t bi_off; /* bytes into the data area */
	const struct iovec *bi_iov;
	unsigned bi_niov;
	size_t bi_len; /* sum of the iovec lengths */
	void (*bi_done)(struct bdev_io *io, int res);
};

struct bdev;

struct bdev_ops {
	const char *bo_name;
	int (*bo_submit)(struct bdev *b, struct bdev_io *io); /* 0 or -errno (not queued) */
	void (*bo_commit)(struct bdev *b);		      /* hand queued I/O to the kernel */
	void (*bo_drain)(struct bdev *b);
	void (*bo_poll)(struct bdev *b);  /* runs bi_done for what completed; never blocks */
	void (*bo_event)(struct bdev *b); /* bd_event_fd is readable: consume it, then poll */
	int (*bo_pwrite)(struct bdev *b, uint64_t off, const void *buf, size_t len, char *err,
			 size_t errlen);
	/* Zeroes [off, off+len): a hole when unmap (or when that is all there is). */
	int (*bo_zero)(struct bdev *b, uint64_t off, uint64_t len, bool unmap, char *err,
		       size_t errlen);
	int (*bo_discard)(struct bdev *b, uint64_t off, uint64_t len, char *err, size_t errlen);
	void (*bo_close)(struct bdev *b);
};

/* Defines PREFIX_ops, the ops table of the back end called NAME, from its functions
 * PREFIX_submit, PREFIX_commit, ... PREFIX_close: a back end writes one line instead of a
 * table, and one that lacks a function does not compile. */
#define BDEV_OPS(prefix, name)                                                                     \
	static const struct bdev_ops prefix##_ops = {                                              \
	    .bo_name = name,                                                                       \
	    .bo_submit = prefix##_submit,                                                          \
	    .bo_commit = prefix##_commit,                                                          \
	    .bo_drain = prefix##_drain,                                                            \
	    .bo_poll = prefix##_poll,                                                              \
	    .bo_event = prefix##_event,                                                            \
	    .bo_pwrite = prefix##_pwrite,                                                          \
	    .bo_zero = prefix##_zero,                                                              \
	    .bo_discard = prefix##_discard,                                                        \
	    .bo_close = prefix##_close,                                                            \
	}

struct bdev {
	const struct bdev_ops *bd_ops;
	uint64_t bd_size;     /* bytes */
	unsigned bd_inflight; /* submitted, bi_done not yet called */
	int bd_event_fd;      /* readable when bo_poll has work; -1: none */
	bool bd_contiguous;   /* takes one iovec per io (the card bounces scattered data) */
	char bd_name[256];    /* for messages: the path or URI */
	void *bd_priv;
};

/* fd: the volume file (the back end duplicates it); data starts at byte data_off. */
int bdev_file_open(struct bdev *b, int fd, uint64_t data_off, uint64_t size, const char *name,
		   char *err, size_t errlen);
int bdev_null_open(struct bdev *b, uint64_t size, char *err, size_t errlen);
/* Connects to uri; size 0 takes the export's size. Fails clearly when no server answers. */
int bdev_nbd_open(struct bdev *b, const char *uri, bool readonly, char *err, size_t errlen);
bool bdev_is_nbd_uri(const char *s);

static inline void bdev_close(struct bdev *b)
{
	if (b->bd_ops)
		b->bd_ops->bo_close(b);
	b->bd_ops = NULL;
}

#endif
