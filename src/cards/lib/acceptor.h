/* A listening socket that takes any number of connections, for a card serving several
 * frontends at once (nitro-card-vsock: one vhost-user device per enclave VM). backend.h
 * serves one frontend at a time; here each accepted connection goes to the card's
 * callback, which typically makes a vu_dev of its own for it on the same loop (several
 * devices share one event loop: each vu_dev watches only its own fds, and a device may be
 * ended with vu_dev_fini and freed from its vo_disconnected callback).
 *
 * The socket is made with listen_renamed (listen.h: appears under path only once it
 * listens); accepted connections are blocking, close-on-exec. At most ac_max connections
 * are handed out at once (the card says when one ends, acceptor_closed): beyond that a
 * new connection is closed at once, so a frontend cannot make the card run out of fds.
 * Single-threaded: the loop's thread.
 */
#ifndef NITRO_CARDS_LIB_ACCEPTOR_H
#define NITRO_CARDS_LIB_ACCEPTOR_H

#include <stddef.h>

#include "cards/lib/loop.h"

struct acceptor {
	struct loop *ac_loop;
	int ac_fd;
	unsigned ac_max, ac_live;
	char ac_path[108];
	/* Owns fd from here on. */
	void (*ac_cb)(void *opaque, int fd);
	void *ac_opaque;
};

/* Listens on path and watches it on l. 0, or a negative errno value with a message. */
int acceptor_start(struct acceptor *a, struct loop *l, const char *path, unsigned max,
		   void (*cb)(void *opaque, int fd), void *opaque, char *err, size_t errlen);
/* One connection handed out earlier has ended. */
void acceptor_closed(struct acceptor *a);
/* Stops listening and removes the socket file (nothing when not started). */
void acceptor_stop(struct acceptor *a);

#endif
