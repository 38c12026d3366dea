/* The EBS card's control socket (--ctl PATH): crash-consistent snapshots of a served
 * volume. A client connects and writes "pause\n"; the card stops taking requests from
 * every queue, lets the ones in flight finish, has the back end FLUSH (fdatasync), and
 * answers "paused\n": from then until the client writes "resume\n" or closes the
 * connection (or dies), the volume file holds every write the guest saw acknowledged and
 * does not change, so a snapshotter may read it (src/snapshot). Then the card answers
 * "resumed\n" and serves on. One client at a time: another one gets "busy\n". Anything
 * else gets "error ...\n" and the connection is closed (a paused card resumes).
 * Runs on the card's loop; non-blocking; a client that never reads cannot stall it.
 */
#ifndef NITRO_CARDS_EBS_EBSCTL_H
#define NITRO_CARDS_EBS_EBSCTL_H

#include <stdbool.h>
#include <stddef.h>

#include "cards/ebs/ebs.h"

struct ebsctl {
	int ec_fd;     /* the listening socket */
	int ec_client; /* the connection that paused (or asks to), or -1 */
	char ec_path[108];
	char ec_buf[64];
	size_t ec_len;
	struct ebs *ec_ebs;
	struct loop *ec_loop;
	struct bdev_io ec_flush;
	bool ec_flushing; /* ec_flush is in flight */
	bool ec_reflush;  /* a newer pause needs a flush of its own once it completes */
};

/* Listens on path (replacing a stale socket). 0, or -1 with err. */
int ebsctl_open(struct ebsctl *c, struct ebs *e, struct loop *l, const char *path, char *err,
		size_t errlen);
void ebsctl_close(struct ebsctl *c);

#endif
