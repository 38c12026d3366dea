/* The VPC card's control socket. */
#include "cards/vpc/netctl.h"
#include "cards/lib/listen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

static void on_accept(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct ctl *c = opaque;
	char buf[4096];
	(void)l;
	(void)events;
	for (;;) {
		int s = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s < 0)
			return;
		size_t n = c->ct_fn(c->ct_opaque, buf, sizeof(buf));
		if (send(s, buf, n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			warnmsg("control socket: %s", strerror(errno));
		close(s);
	}
}

int ctl_open(struct ctl *c, struct loop *l, const char *path, ctl_stats_fn *fn, void *opaque,
	     char *err, size_t errlen)
{
	*c = (struct ctl){.ct_fd = -1, .ct_fn = fn, .ct_opaque = opaque};
	int fd = listen_replacing(path, 8, err, errlen);
	if (fd < 0)
		return -1;
	c->ct_fd = fd;
	strcpy(c->ct_path, path);
	if (loop_add(l, c->ct_fd, on_accept, c, err, errlen) < 0) {
		ctl_close(c, l);
		return -1;
	}
	return 0;
}

void ctl_close(struct ctl *c, struct loop *l)
{
	if (c->ct_fd < 0)
		return;
	loop_del(l, c->ct_fd);
	close(c->ct_fd);
	c->ct_fd = -1;
	unlink(c->ct_path);
}
