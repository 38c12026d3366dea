/* epoll event loop with signalfd-driven shutdown. */
#include "cards/lib/loop.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib/util.h"

static void on_signal(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct signalfd_siginfo si;
	(void)events;
	(void)opaque;
	if (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		l->lp_signal = (int)si.ssi_signo;
		l->lp_stop = true;
	}
}

int loop_init(struct loop *l, bool signals, char *err, size_t errlen)
{
	memset(l, 0, sizeof(*l));
	l->lp_sigfd = -1;
	l->lp_epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->lp_epfd < 0)
		RETURN_ERR(-errno, "epoll_create1: %s", strerror(errno));
	if (!signals)
		return 0;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	int e = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (e == 0) {
		l->lp_sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
		e = l->lp_sigfd < 0 ? errno : 0;
	}
	if (e == 0)
		e = -loop_add(l, l->lp_sigfd, on_signal, NULL, err, errlen);
	else
		snprintf(err, errlen, "signalfd: %s", strerror(e));
	if (e) {
		loop_fini(l);
		return -e;
	}
	return 0;
}

static void free_list(struct loop_watch *w)
{
	while (w) {
		struct loop_watch *next = w->lw_next;
		free(w);
		w = next;
	}
}

void loop_fini(struct loop *l)
{
	free_list(l->lp_watches);
	free_list(l->lp_dead);
	if (l->lp_sigfd >= 0)
		close(l->lp_sigfd);
	if (l->lp_epfd >= 0)
		close(l->lp_epfd);
	l->lp_watches = l->lp_dead = NULL;
	l->lp_sigfd = l->lp_epfd = -1;
}

int loop_add(struct loop *l, int fd, loop_cb *cb, void *opaque, char *err, size_t errlen)
{
	if (loop_watching(l, fd))
		RETURN_ERR(-EEXIST, "fd %d is already watched", fd);
	struct loop_watch *w = calloc(1, sizeof(*w));
	if (!w)
		RETURN_ERR(-ENOMEM, "out of memory");
	*w = (struct loop_watch){.lw_fd = fd, .lw_cb = cb, .lw_opaque = opaque};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
	if (epoll_ctl(l->lp_epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int e = errno;
		free(w);
		RETURN_ERR(-e, "epoll_ctl add fd %d: %s", fd, strerror(e));
	}
	w->lw_next = l->lp_watches;
	l->lp_watches = w;
	return 0;
}

bool loop_watching(const struct loop *l, int fd)
{
	for (const struct loop_watch *w = l->lp_watches; w; w = w->lw_next)
		if (w->lw_fd == fd)
			return true;
	return false;
}

void loop_del(struct loop *l, int fd)
{
	for (struct loop_watch **pp = &l->lp_watches; *pp; pp = &(*pp)->lw_next) {
		struct loop_watch *w = *pp;
		if (w->lw_fd != fd)
			continue;
		*pp = w->lw_next;
		/* May fail if fd was already closed: the kernel dropped it then. */
		epoll_ctl(l->lp_epfd, EPOLL_CTL_DEL, fd, NULL);
		w->lw_dead = true;
		w->lw_next = l->lp_dead;
		l->lp_dead = w;
		return;
	}
}

int loop_run_once(struct loop *l, int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(l->lp_epfd, evs, ARRAY_SIZE(evs), timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct loop_watch *w = evs[i].data.ptr;
		if (!w->lw_dead)
			w->lw_cb(l, w->lw_fd, evs[i].events, w->lw_opaque);
	}
	free_list(l->lp_dead);
	l->lp_dead = NULL;
	return n;
}

int loop_run(struct loop *l)
{
	while (!l->lp_stop) {
		int r = loop_run_once(l, -1);
		if (r < 0)
			return r;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->lp_stop = true;
}
