/* A small epoll event loop for a card: file descriptor -> callback, and (optionally)
 * SIGTERM/SIGINT through a signalfd, which stop the loop so that the card exits cleanly.
 *
 * Callbacks run on the loop's thread and may add or delete watches, their own included:
 * a deleted watch is never called again, even later in the same batch of events. The
 * loop does not own the watched descriptors (it never closes them).
 */
#ifndef NITRO_CARDS_LOOP_H
#define NITRO_CARDS_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct loop;
typedef void loop_cb(struct loop *l, int fd, uint32_t events, void *opaque);

struct loop_watch {
	int lw_fd;
	loop_cb *lw_cb;
	void *lw_opaque;
	bool lw_dead;
	struct loop_watch *lw_next;
};

struct loop {
	int lp_epfd;
	int lp_sigfd; /* -1 without signal handling */
	bool lp_stop;
	int lp_signal; /* the signal that stopped the loop, or 0 */
	struct loop_watch *lp_watches;
	struct loop_watch *lp_dead; /* deleted during a batch; freed after it */
};

/* With signals, blocks SIGTERM and SIGINT in the calling thread (do it before starting
 * other threads) and handles them as loop events. Returns 0 or a negative errno value. */
int loop_init(struct loop *l, bool signals, char *err, size_t errlen);
void loop_fini(struct loop *l);
/* Watches fd for EPOLLIN (and hang-up/error). Returns 0 or a negative errno value. */
int loop_add(struct loop *l, int fd, loop_cb *cb, void *opaque, char *err, size_t errlen);
/* Stops watching fd; nothing when it was not watched. */
void loop_del(struct loop *l, int fd);
bool loop_watching(const struct loop *l, int fd);
/* One epoll_wait of at most timeout_ms (-1: forever) and its callbacks. Returns the number
 * of events, or a negative errno value. */
int loop_run_once(struct loop *l, int timeout_ms);
/* Runs until loop_stop() or a signal. Returns 0 or a negative errno value. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
