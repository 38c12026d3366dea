/* The EBS card's control socket: pause, flush, resume (ebsctl.h). */
#include "cards/ebs/ebsctl.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

static void say(struct ebsctl *c, const char *msg)
{
	if (c->ec_client >= 0 && write(c->ec_client, msg, strlen(msg)) < 0)
		warnmsg("control socket: %s", strerror(errno));
}

/* The client is gone (or misbehaved): never leave the guest paused. */
static void drop(struct ebsctl *c)
{
	if (c->ec_client < 0)
		return;
	loop_del(c->ec_loop, c->ec_client);
	close(c->ec_client);
	c->ec_client = -1;
	c->ec_len = 0;
	ebs_resume(c->ec_ebs);
}

static void submit_flush(struct ebsctl *c);

/* The answer goes only to a client still holding the pause, and only for a flush
 * submitted after its pause went quiet (a flush of an earlier, abandoned pause does not
 * cover the writes completed since). */
static void flushed(struct bdev_io *io, int res)
{
	struct ebsctl *c = (struct ebsctl *)((char *)io - offsetof(struct ebsctl, ec_flush));
	c->ec_flushing = false;
	if (c->ec_reflush) {
		c->ec_reflush = false;
		if (c->ec_client >= 0 && c->ec_ebs->e_paused)
			submit_flush(c);
		return;
	}
	if (c->ec_client < 0 || !c->ec_ebs->e_paused)
		return;
	if (res < 0) {
		say(c, "error flush failed\n");
		drop(c);
		return;
	}
	say(c, "paused\n");
}

static void submit_flush(struct ebsctl *c)
{
	struct bdev *b = c->ec_ebs->e_bdev;
	if (c->ec_flushing) {
		c->ec_reflush = true;
		return;
	}
	c->ec_flush = (struct bdev_io){.bi_op = BDEV_FLUSH, .bi_done = flushed};
	c->ec_flushing = true;
	if (b->bd_ops->bo_submit(b, &c->ec_flush) < 0) {
		c->ec_flushing = false;
		say(c, "error flush failed\n");
		drop(c);
		return;
	}
	b->bd_ops->bo_commit(b);
}

/* Nothing in flight any more: flush what completed, then tell the client. */
static void quiet(struct ebs *e, void *opaque)
{
	(void)e;
	submit_flush(opaque);
}

static void on_client(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct ebsctl *c = opaque;
	(void)l;
	(void)events;
	ssize_t n = read(fd, c->ec_buf + c->ec_len, sizeof(c->ec_buf) - c->ec_len);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		drop(c);
		return;
	}
	c->ec_len += (size_t)n;
	char *nl;
	while ((nl = memchr(c->ec_buf, '\n', c->ec_len))) {
		*nl = 0;
		if (!strcmp(c->ec_buf, "pause") && !c->ec_ebs->e_paused) {
			ebs_pause(c->ec_ebs, quiet, c);
		} else if (!strcmp(c->ec_buf, "resume") && c->ec_ebs->e_paused &&
			   !c->ec_ebs->e_on_quiet && !c->ec_flushing) {
			ebs_resume(c->ec_ebs);
			say(c, "resumed\n");
		} else {
			say(c, "error unknown or out-of-order command\n");
			drop(c);
			return;
		}
		size_t used = (size_t)(nl - c->ec_buf) + 1;
		memmove(c->ec_buf, nl + 1, c->ec_len - used);
		c->ec_len -= used;
		if (c->ec_client < 0)
			return;
	}
	if (c->ec_len == sizeof(c->ec_buf)) {
		say(c, "error line too long\n");
		drop(c);
	}
}

static void on_accept(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct ebsctl *c = opaque;
	char err[256];
	(void)events;
	for (;;) {
		int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s < 0)
			return;
		if (c->ec_client >= 0) {
			if (write(s, "busy\n", 5) < 0) {
				/* nothing to do: it goes away */
			}
			close(s);
			continue;
		}
		c->ec_client = s;
		c->ec_len = 0;
		if (loop_add(l, s, on_client, c, err, sizeof(err)) < 0) {
			warnmsg("control socket: %s", err);
			close(s);
			c->ec_client = -1;
		}
	}
}

int ebsctl_open(struct ebsctl *c, struct ebs *e, struct loop *l, const char *path, char *err,
		size_t errlen)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	*c = (struct ebsctl){.ec_fd = -1, .ec_client = -1, .ec_ebs = e, .ec_loop = l};
	if (strlen(path) >= sizeof(sa.sun_path))
		RETURN_ERR(-1, "control socket %s: path longer than %zu bytes", path,
			   sizeof(sa.sun_path) - 1);
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode))
			RETURN_ERR(-1, "control socket %s: exists and is not a socket", path);
		unlink(path);
	}
	strcpy(sa.sun_path, path);
	c->ec_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->ec_fd < 0)
		RETURN_ERR(-1, "control socket: %s", strerror(errno));
	if (bind(c->ec_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->ec_fd, 4) < 0) {
		int en = errno;
		close(c->ec_fd);
		c->ec_fd = -1;
		RETURN_ERR(-1, "control socket %s: %s", path, strerror(en));
	}
	strcpy(c->ec_path, path);
	if (loop_add(l, c->ec_fd, on_accept, c, err, errlen) < 0) {
		ebsctl_close(c);
		return -1;
	}
	return 0;
}

void ebsctl_close(struct ebsctl *c)
{
	if (c->ec_client >= 0) {
		loop_del(c->ec_loop, c->ec_client);
		close(c->ec_client);
		c->ec_client = -1;
	}
	if (c->ec_fd < 0)
		return;
	loop_del(c->ec_loop, c->ec_fd);
	close(c->ec_fd);
	c->ec_fd = -1;
	unlink(c->ec_path);
}
