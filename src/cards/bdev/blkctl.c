/* A block card's control socket: pause, flush, resume (blkctl.h). */
#include "cards/bdev/blkctl.h"
#include "cards/lib/listen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util.h"

static void say(struct blkctl *c, const char *msg)
{
	if (c->bc_client >= 0 && write(c->bc_client, msg, strlen(msg)) < 0)
		warnmsg("control socket: %s", strerror(errno));
}

/* The client is gone (or misbehaved): never leave the guest paused. */
static void drop(struct blkctl *c)
{
	if (c->bc_client < 0)
		return;
	loop_del(c->bc_loop, c->bc_client);
	close(c->bc_client);
	c->bc_client = -1;
	c->bc_len = 0;
	if (c->bc_state != BLKCTL_IDLE) {
		c->bc_state = BLKCTL_IDLE;
		c->bc_ops->co_resume(c->bc_dev);
	}
}

static void submit_flush(struct blkctl *c);

/* The answer goes only to a client still holding the pause, and only for a flush
 * submitted after its pause went quiet (a flush of an earlier, abandoned pause does not
 * cover the writes completed since). */
static void flushed(struct bdev_io *io, int res)
{
	struct blkctl *c = (struct blkctl *)((char *)io - offsetof(struct blkctl, bc_flush));
	c->bc_flushing = false;
	if (c->bc_reflush) {
		c->bc_reflush = false;
		if (c->bc_state == BLKCTL_FLUSHING)
			submit_flush(c);
		return;
	}
	if (c->bc_state != BLKCTL_FLUSHING)
		return;
	if (res < 0) {
		say(c, "error flush failed\n");
		drop(c);
		return;
	}
	c->bc_state = BLKCTL_PAUSED;
	say(c, "paused\n");
}

static void submit_flush(struct blkctl *c)
{
	struct bdev *b = c->bc_bdev;
	if (c->bc_flushing) {
		c->bc_reflush = true;
		return;
	}
	c->bc_flush = (struct bdev_io){.bi_op = BDEV_FLUSH, .bi_done = flushed};
	c->bc_flushing = true;
	if (b->bd_ops->bo_submit(b, &c->bc_flush) < 0) {
		c->bc_flushing = false;
		say(c, "error flush failed\n");
		drop(c);
		return;
	}
	b->bd_ops->bo_commit(b);
}

/* Nothing in flight any more: flush what completed, then tell the client. */
void blkctl_quiet(struct blkctl *c)
{
	if (c->bc_state != BLKCTL_DRAINING)
		return;
	c->bc_state = BLKCTL_FLUSHING;
	submit_flush(c);
}

static void on_client(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct blkctl *c = opaque;
	(void)l;
	(void)events;
	ssize_t n = read(fd, c->bc_buf + c->bc_len, sizeof(c->bc_buf) - c->bc_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	c->bc_len += (size_t)n;
	char *nl;
	while ((nl = memchr(c->bc_buf, '\n', c->bc_len))) {
		*nl = 0;
		if (!strcmp(c->bc_buf, "pause") && c->bc_state == BLKCTL_IDLE) {
			c->bc_state = BLKCTL_DRAINING;
			c->bc_ops->co_pause(c->bc_dev, c); /* may be quiet at once */
		} else if (!strcmp(c->bc_buf, "resume") && c->bc_state == BLKCTL_PAUSED) {
			c->bc_state = BLKCTL_IDLE;
			c->bc_ops->co_resume(c->bc_dev);
			say(c, "resumed\n");
		} else {
			say(c, "error unknown or out-of-order command\n");
			drop(c);
			return;
		}
		if (c->bc_client < 0) /* the flush failed at once */
			return;
		size_t used = (size_t)(nl - c->bc_buf) + 1;
		memmove(c->bc_buf, nl + 1, c->bc_len - used);
		c->bc_len -= used;
	}
	if (c->bc_len == sizeof(c->bc_buf)) {
		say(c, "error line too long\n");
		drop(c);
	}
}

static void on_accept(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct blkctl *c = opaque;
	char err[256];
	(void)events;
	for (;;) {
		int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s < 0)
			return;
		if (c->bc_client >= 0) {
			if (write(s, "busy\n", 5) < 0) {
				/* nothing to do: it goes away */
			}
			close(s);
			continue;
		}
		c->bc_client = s;
		c->bc_len = 0;
		if (loop_add(l, s, on_client, c, err, sizeof(err)) < 0) {
			warnmsg("control socket: %s", err);
			close(s);
			c->bc_client = -1;
		}
	}
}

void blkctl_init(struct blkctl *c)
{
	*c = (struct blkctl){.bc_fd = -1, .bc_client = -1};
}

int blkctl_open(struct blkctl *c, const struct blkctl_ops *ops, void *dev, struct bdev *b,
		struct loop *l, const char *path, char *err, size_t errlen)
{
	*c = (struct blkctl){
	    .bc_fd = -1, .bc_client = -1, .bc_ops = ops, .bc_dev = dev, .bc_bdev = b, .bc_loop = l};
	int fd = listen_replacing(path, 4, err, errlen); /* refuses a path too long */
	if (fd < 0)
		return -1;
	c->bc_fd = fd;
	snprintf(c->bc_path, sizeof(c->bc_path), "%s", path);
	if (loop_add(l, c->bc_fd, on_accept, c, err, errlen) < 0) {
		blkctl_close(c);
		return -1;
	}
	return 0;
}

void blkctl_close(struct blkctl *c)
{
	if (c->bc_client >= 0) {
		loop_del(c->bc_loop, c->bc_client);
		close(c->bc_client);
		c->bc_client = -1;
	}
	if (c->bc_fd < 0)
		return;
	loop_del(c->bc_loop, c->bc_fd);
	close(c->bc_fd);
	c->bc_fd = -1;
	unlink(c->bc_path);
}
