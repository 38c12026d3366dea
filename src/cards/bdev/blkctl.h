/* A block card's control socket (--ctl PATH), shared by the virtio-blk front
 * (src/cards/ebs) and the NVMe front (src/cards/nvme): crash-consistent snapshots of a
 * served volume. A client connects and writes "pause\n"; the card stops starting guest
 * requests, lets the ones in flight finish, has the back end FLUSH (fdatasync), and
 * answers "paused\n": from then until the client writes "resume\n" or closes the
 * connection (or dies), the volume file holds every write the guest saw acknowledged and
 * does not change, so a snapshotter may read it (src/snapshot). Then the card answers
 * "resumed\n" and serves on. One client at a time: another one gets "busy\n". Anything
 * else gets "error ...\n" and the connection is closed (a paused card resumes).
 *
 * The front supplies an ops pair: co_pause(dev, ctl) stops taking guest requests and
 * calls blkctl_quiet(ctl) once none is in flight (at once, inside co_pause, when none
 * is); co_resume(dev) takes them again. The flush goes to the back end b directly.
 * Runs on the card's loop; non-blocking; a client that never reads cannot stall it; the
 * client's bytes are hostile (bounded line buffer, exact commands only).
 */
#ifndef NITRO_CARDS_BDEV_BLKCTL_H
#define NITRO_CARDS_BDEV_BLKCTL_H

#include <stdbool.h>
#include <stddef.h>

#include "cards/bdev/bdev.h"
#include "cards/lib/loop.h"

struct blkctl;

struct blkctl_ops {
	void (*co_pause)(void *dev, struct blkctl *ctl);
	void (*co_resume)(void *dev);
};

enum blkctl_state {
	BLKCTL_IDLE,	 /* serving */
	BLKCTL_DRAINING, /* paused, waiting for the requests in flight */
	BLKCTL_FLUSHING, /* nothing in flight, the back end flushes */
	BLKCTL_PAUSED,	 /* "paused" answered: the client reads the volume */
};

struct blkctl {
	int bc_fd;     /* the listening socket */
	int bc_client; /* the connection that paused (or asks to), or -1 */
	char bc_path[108];
	char bc_buf[64];
	size_t bc_len;
	const struct blkctl_ops *bc_ops;
	void *bc_dev;
	struct bdev *bc_bdev;
	struct loop *bc_loop;
	enum blkctl_state bc_state;
	struct bdev_io bc_flush;
	bool bc_flushing; /* bc_flush is in flight */
	bool bc_reflush;  /* a newer pause needs a flush of its own once it completes */
};

/* Before blkctl_open, so that blkctl_close of a never-opened socket does nothing. */
void blkctl_init(struct blkctl *c);
/* Listens on path (replacing a stale socket). 0, or -1 with err. */
int blkctl_open(struct blkctl *c, const struct blkctl_ops *ops, void *dev, struct bdev *b,
		struct loop *l, const char *path, char *err, size_t errlen);
/* From co_pause's front: nothing of the guest's is in flight any more. */
void blkctl_quiet(struct blkctl *c);
void blkctl_close(struct blkctl *c);

#endif
