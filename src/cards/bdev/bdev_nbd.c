/* The NBD back end: an export served by any NBD server, through libnbd (see bdev.h).
 *
 * libnbd is loaded (dlopen "libnbd.so.0", Debian's libnbd0) only when an NBD volume is
 * opened: a card serving a file or null volume maps neither it nor what it pulls in
 * (libxml2, libicu, gnutls: tens of MiB, and seconds of relocations in an emulated host).
 * Every libnbd function used goes through the table `lib`, filled by load_libnbd().
 *
 * Commands are libnbd asynchronous commands; the handle's socket is watched by the loop
 * for replies, and after queueing the card pushes requests out while the socket accepts
 * them (nbd_poll, which also reads replies, so the server can never block us both).
 * A server that goes away fails every command in flight (libnbd retires them with
 * ENOTCONN) and every later one: the guest sees IOERR, the card keeps running.
 */
#include "cards/bdev/bdev.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include <dlfcn.h>
#include <libnbd.h>

#include "lib/util.h"

#define NBD_PIECE (32u << 20) /* largest command the card sends */

#define NBD_FUNCS(X)                                                                               \
	X(nbd_aio_flush)                                                                           \
	X(nbd_aio_get_direction)                                                                   \
	X(nbd_aio_get_fd)                                                                          \
	X(nbd_aio_is_closed)                                                                       \
	X(nbd_aio_is_dead)                                                                         \
	X(nbd_aio_is_ready)                                                                        \
	X(nbd_aio_notify_read)                                                                     \
	X(nbd_aio_pread)                                                                           \
	X(nbd_aio_pwrite)                                                                          \
	X(nbd_can_flush)                                                                           \
	X(nbd_can_trim)                                                                            \
	X(nbd_can_zero)                                                                            \
	X(nbd_close)                                                                               \
	X(nbd_connect_uri)                                                                         \
	X(nbd_create)                                                                              \
	X(nbd_get_errno)                                                                           \
	X(nbd_get_error)                                                                           \
	X(nbd_get_size)                                                                            \
	X(nbd_is_read_only)                                                                        \
	X(nbd_poll)                                                                                \
	X(nbd_pwrite)                                                                              \
	X(nbd_shutdown)                                                                            \
	X(nbd_trim)                                                                                \
	X(nbd_zero)

static struct {
#define X(f) __typeof__(f) *f;
	NBD_FUNCS(X)
#undef X
} lib;

/* Loads libnbd once (before the card's seccomp filter: dlopen opens files). */
static int load_libnbd(const char *uri, char *err, size_t errlen)
{
	static void *handle;
	if (handle)
		return 0;
	void *h = dlopen("libnbd.so.0", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		RETURN_ERR(-ENOENT, "volume %s: NBD volumes need libnbd (Debian: libnbd0): %s", uri,
			   dlerror());
#define X(f)                                                                                       \
	if (!(lib.f = (__typeof__(f) *)dlsym(h, #f))) {                                            \
		snprintf(err, errlen, "volume %s: libnbd.so.0 lacks %s", uri, #f);                 \
		dlclose(h);                                                                        \
		return -ENOENT;                                                                    \
	}
	NBD_FUNCS(X)
#undef X
	handle = h;
	return 0;
}

struct nbd_priv {
	struct nbd_handle *np_h;
	int np_fd; /* the socket, -1 once dead */
	bool np_can_zero, np_can_trim, np_can_flush;
	struct nbd_cmd *np_done, **np_done_tail; /* completed, not yet delivered */
	bool np_delivering;
};

struct nbd_cmd;

bool bdev_is_nbd_uri(const char *s)
{
	return !strncmp(s, "nbd://", 6) || !strncmp(s, "nbd+unix://", 11) ||
	       !strncmp(s, "nbds://", 7) || !strncmp(s, "nbds+unix://", 12);
}

static void unwatch_if_dead(struct bdev *b)
{
	struct nbd_priv *p = b->bd_priv;
	if (p->np_fd >= 0 &&
	    (lib.nbd_aio_is_dead(p->np_h) == 1 || lib.nbd_aio_is_closed(p->np_h) == 1)) {
		warnmsg("%s: connection lost: %s", b->bd_name,
			lib.nbd_get_error() ? lib.nbd_get_error() : "closed");
		p->np_fd = -1;
		b->bd_event_fd = -1;
	}
}

struct nbd_cmd {
	struct bdev *nc_b;
	struct bdev_io *nc_io;
	int nc_res;
	struct nbd_cmd *nc_next;
};

/* libnbd's completion callback: libnbd must not be re-entered from here, so the result
 * waits on a list that deliver() hands to the card once the libnbd call returned. */
static int cmd_done(void *user_data, int *error)
{
	struct nbd_cmd *c = user_data;
	struct nbd_priv *p = c->nc_b->bd_priv;
	struct bdev_io *io = c->nc_io;
	c->nc_res = *error ? -*error : (io->bi_op == BDEV_FLUSH ? 0 : (int)io->bi_len);
	c->nc_next = NULL;
	*p->np_done_tail = c;
	p->np_done_tail = &c->nc_next;
	return 1;
}

static void deliver(struct bdev *b)
{
	struct nbd_priv *p = b->bd_priv;
	if (p->np_delivering)
		return;
	p->np_delivering = true;
	while (p->np_done) {
		struct nbd_cmd *c = p->np_done;
		p->np_done = c->nc_next;
		if (!p->np_done)
			p->np_done_tail = &p->np_done;
		struct bdev_io *io = c->nc_io;
		int res = c->nc_res;
		free(c);
		b->bd_inflight--;
		io->bi_done(io, res);
	}
	p->np_delivering = false;
}

/* Busy polling: only what libnbd already has (the socket is read on events). */
static void nbdev_poll(struct bdev *b)
{
	deliver(b);
}

static void nbdev_event(struct bdev *b)
{
	struct nbd_priv *p = b->bd_priv;
	if (p->np_fd >= 0)
		lib.nbd_aio_notify_read(p->np_h);
	unwatch_if_dead(b);
	deliver(b);
}

/* Sends what libnbd has queued while the socket takes it (reading replies meanwhile). */
static void nbdev_commit(struct bdev *b)
{
	struct nbd_priv *p = b->bd_priv;
	while (p->np_fd >= 0 && (lib.nbd_aio_get_direction(p->np_h) & LIBNBD_AIO_DIRECTION_WRITE)) {
		if (lib.nbd_poll(p->np_h, 5000) <= 0)
			break;
	}
	unwatch_if_dead(b);
	deliver(b);
}

static int nbdev_submit(struct bdev *b, struct bdev_io *io)
{
	struct nbd_priv *p = b->bd_priv;
	if (io->bi_niov > 1 || io->bi_len > NBD_PIECE)
		return -EINVAL; /* the card hands this back end one piece at a time */
	if (io->bi_op == BDEV_FLUSH && !p->np_can_flush) {
		io->bi_done(io, 0); /* the server has no volatile cache */
		return 0;
	}
	struct nbd_cmd *c = malloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	*c = (struct nbd_cmd){.nc_b = b, .nc_io = io};
	nbd_completion_callback cb = {.callback = cmd_done, .user_data = c};
	void *buf = io->bi_niov ? io->bi_iov[0].iov_base : NULL;
	int64_t r;
	b->bd_inflight++;
	switch (io->bi_op) {
	case BDEV_READ:
		r = lib.nbd_aio_pread(p->np_h, buf, io->bi_len, io->bi_off, cb, 0);
		break;
	case BDEV_WRITE:
		r = lib.nbd_aio_pwrite(p->np_h, buf, io->bi_len, io->bi_off, cb, 0);
		break;
	default:
		r = lib.nbd_aio_flush(p->np_h, cb, 0);
		break;
	}
	if (r < 0) {
		/* Not queued: libnbd never calls the completion (nor frees c). */
		b->bd_inflight--;
		int e = lib.nbd_get_errno();
		free(c);
		unwatch_if_dead(b);
		return e ? -e : -EIO;
	}
	return 0;
}

static void nbdev_drain(struct bdev *b)
{
	struct nbd_priv *p = b->bd_priv;
	for (;;) {
		deliver(b);
		if (!b->bd_inflight || p->np_fd < 0)
			break;
		if (lib.nbd_poll(p->np_h, 5000) < 0)
			unwatch_if_dead(b);
	}
	if (b->bd_inflight)
		warnmsg("%s: %u commands never completed", b->bd_name, b->bd_inflight);
}

static int sync_err(struct bdev *b, const char *what, char *err, size_t errlen)
{
	int e = lib.nbd_get_errno();
	snprintf(err, errlen, "%s: %s: %s", b->bd_name, what, lib.nbd_get_error());
	unwatch_if_dead(b);
	deliver(b);
	return e ? -e : -EIO;
}

static int nbdev_pwrite(struct bdev *b, uint64_t off, const void *buf, size_t len, char *err,
			size_t errlen)
{
	struct nbd_priv *p = b->bd_priv;
	const uint8_t *s = buf;
	while (len) {
		size_t n = len < NBD_PIECE ? len : NBD_PIECE;
		if (lib.nbd_pwrite(p->np_h, s, n, off, 0) < 0)
			return sync_err(b, "write", err, errlen);
		s += n;
		off += n;
		len -= n;
	}
	deliver(b);
	return 0;
}

static int nbdev_zero(struct bdev *b, uint64_t off, uint64_t len, bool unmap, char *err,
		      size_t errlen)
{
	struct nbd_priv *p = b->bd_priv;
	static const uint8_t zero[1 << 20];
	while (len) {
		uint64_t n = len < NBD_PIECE ? len : NBD_PIECE;
		if (p->np_can_zero) {
			if (lib.nbd_zero(p->np_h, n, off, unmap ? 0 : LIBNBD_CMD_FLAG_NO_HOLE) < 0)
				return sync_err(b, "write zeroes", err, errlen);
		} else {
			for (uint64_t o = 0; o < n; o += sizeof(zero)) {
				size_t k = n - o < sizeof(zero) ? (size_t)(n - o) : sizeof(zero);
				int r = nbdev_pwrite(b, off + o, zero, k, err, errlen);
				if (r)
					return r;
			}
		}
		off += n;
		len -= n;
	}
	deliver(b);
	return 0;
}

static int nbdev_discard(struct bdev *b, uint64_t off, uint64_t len, char *err, size_t errlen)
{
	struct nbd_priv *p = b->bd_priv;
	if (!p->np_can_trim)
		return 0; /* advisory */
	while (len) {
		uint64_t n = len < NBD_PIECE ? len : NBD_PIECE;
		if (lib.nbd_trim(p->np_h, n, off, 0) < 0)
			return sync_err(b, "discard", err, errlen);
		off += n;
		len -= n;
	}
	deliver(b);
	return 0;
}

static void nbdev_close(struct bdev *b)
{
	struct nbd_priv *p = b->bd_priv;
	if (!p)
		return;
	nbdev_drain(b);
	if (lib.nbd_aio_is_ready(p->np_h) == 1)
		lib.nbd_shutdown(p->np_h, 0);
	lib.nbd_close(p->np_h);
	free(p);
	b->bd_priv = NULL;
}

BDEV_OPS(nbdev, "nbd");

int bdev_nbd_open(struct bdev *b, const char *uri, bool readonly, char *err, size_t errlen)
{
	*b = (struct bdev){.bd_event_fd = -1, .bd_contiguous = true};
	snprintf(b->bd_name, sizeof(b->bd_name), "%s", uri);
	int lr = load_libnbd(uri, err, errlen);
	if (lr)
		return lr;
	struct nbd_priv *p = calloc(1, sizeof(*p));
	if (!p)
		RETURN_ERR(-ENOMEM, "%s: out of memory", uri);
	p->np_fd = -1;
	p->np_done_tail = &p->np_done;
	p->np_h = lib.nbd_create();
	if (!p->np_h) {
		free(p);
		RETURN_ERR(-ENOMEM, "%s: %s", uri, lib.nbd_get_error());
	}
	b->bd_priv = p;
	b->bd_ops = &nbdev_ops;
	int r;
	if (lib.nbd_connect_uri(p->np_h, uri) < 0) {
		int e = lib.nbd_get_errno();
		snprintf(err, errlen, "volume %s: cannot connect to the NBD server: %s", uri,
			 lib.nbd_get_error());
		r = e ? -e : -ECONNREFUSED;
		goto fail;
	}
	int64_t size = lib.nbd_get_size(p->np_h);
	if (size <= 0 || size % 512) {
		snprintf(err, errlen,
			 "volume %s: export size %lld is not a positive multiple of 512", uri,
			 (long long)size);
		r = -EINVAL;
		goto fail;
	}
	b->bd_size = (uint64_t)size;
	if (!readonly && lib.nbd_is_read_only(p->np_h) == 1) {
		snprintf(err, errlen, "volume %s: the export is read-only (use readonly)", uri);
		r = -EROFS;
		goto fail;
	}
	p->np_can_zero = lib.nbd_can_zero(p->np_h) == 1;
	p->np_can_trim = lib.nbd_can_trim(p->np_h) == 1;
	p->np_can_flush = lib.nbd_can_flush(p->np_h) == 1;
	p->np_fd = lib.nbd_aio_get_fd(p->np_h);
	if (p->np_fd < 0) {
		snprintf(err, errlen, "volume %s: %s", uri, lib.nbd_get_error());
		r = -EIO;
		goto fail;
	}
	b->bd_event_fd = p->np_fd;
	return 0;
fail:
	p->np_fd = -1;
	bdev_close(b);
	return r;
}
