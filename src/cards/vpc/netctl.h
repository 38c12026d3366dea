/* The VPC card's control socket: a Unix stream socket at a path the card is given; every
 * client that connects gets one line of counters ("key=value ...\n") and the connection
 * is closed (`nitro net stats` reads it). Non-blocking on the card's loop: a client that
 * does not read cannot stall the card (the line is written once, without waiting).
 */
#ifndef NITRO_CARDS_VPC_NETCTL_H
#define NITRO_CARDS_VPC_NETCTL_H

#include <stddef.h>

#include "cards/lib/loop.h"

typedef size_t ctl_stats_fn(void *opaque, char *buf, size_t len);

struct ctl {
	int ct_fd;
	char ct_path[108];
	ctl_stats_fn *ct_fn;
	void *ct_opaque;
};

/* Listens on path (replacing a stale socket) and watches it on l. 0, or -1 with err. */
int ctl_open(struct ctl *c, struct loop *l, const char *path, ctl_stats_fn *fn, void *opaque,
	     char *err, size_t errlen);
void ctl_close(struct ctl *c, struct loop *l);

#endif
