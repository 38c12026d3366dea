/* A listening socket with any number of connections (acceptor.h). */
#include "cards/lib/acceptor.h"
#include "cards/lib/listen.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util.h"

static void on_accept(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct acceptor *a = opaque;
	(void)l;
	(void)events;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			warnmsg("%s: accept: %s", a->ac_path, strerror(errno));
		return;
	}
	if (a->ac_live >= a->ac_max) {
		warnmsg("%s: already %u connections; refused one", a->ac_path, a->ac_live);
		close(c);
		return;
	}
	a->ac_live++;
	a->ac_cb(a->ac_opaque, c);
}

int acceptor_start(struct acceptor *a, struct loop *l, const char *path, unsigned max,
		   void (*cb)(void *opaque, int fd), void *opaque, char *err, size_t errlen)
{
	*a = (struct acceptor){
	    .ac_loop = l, .ac_fd = -1, .ac_max = max, .ac_cb = cb, .ac_opaque = opaque};
	if (strlen(path) >= sizeof(a->ac_path))
		RETURN_ERR(-ENAMETOOLONG, "%s: socket path too long", path);
	int fd = listen_renamed(path, err, errlen);
	if (fd < 0)
		return fd;
	a->ac_fd = fd;
	snprintf(a->ac_path, sizeof(a->ac_path), "%s", path);
	int r = loop_add(l, fd, on_accept, a, err, errlen);
	if (r < 0)
		acceptor_stop(a);
	return r;
}

void acceptor_closed(struct acceptor *a)
{
	if (a->ac_live)
		a->ac_live--;
}

void acceptor_stop(struct acceptor *a)
{
	if (a->ac_fd >= 0) {
		loop_del(a->ac_loop, a->ac_fd);
		close(a->ac_fd);
		a->ac_fd = -1;
	}
	if (a->ac_path[0]) {
		unlink(a->ac_path);
		a->ac_path[0] = 0;
	}
}
