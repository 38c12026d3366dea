/* The card side of the hypervisor <-> NVMe card protocol (src/lib/nvme_wire.h): listens on
 * the card's socket (bound under a temporary name, renamed into place once it listens),
 * serves one nitro-hv at a time (later ones wait in the backlog; a hypervisor that leaves
 * or breaks the protocol is dropped and the next one accepted), maps the guest memory and
 * the shared doorbell page, watches one kick eventfd per queue id, the back end's
 * completions and the QoS timer, and drives the controller (nvme.h).
 *
 * Hostile input: the hypervisor's messages (sizes, counts, fds checked; memory must be a
 * memfd sealed against shrinking) and, through the controller, the guest. Single-threaded
 * on the card's loop.
 */
#ifndef NITRO_CARDS_NVME_FRONT_H
#define NITRO_CARDS_NVME_FRONT_H

#include <stdbool.h>
#include <stddef.h>

#include "cards/bdev/blkctl.h"
#include "cards/lib/guestmem.h"
#include "cards/lib/loop.h"
#include "cards/nvme/nvme.h"

struct nvme_front {
	struct nvme_ctrl *f_c;
	struct loop *f_loop;
	int f_listen;
	int f_sock;
	char f_path[108];
	struct gmem f_mem;
	struct nvw_shared *f_shared;
	struct nvw_shared f_dummy; /* until the hypervisor sends the page */
	int f_kick[NVME_MAX_QIDS];
	int f_timer; /* QoS: armed while throttled */
	int f_bdev_fd;
	bool f_once; /* --fd: serve one hypervisor, then stop the loop */
};

/* Serves c on socket path (or the connected socket fd when path is NULL). */
int nvme_front_start(struct nvme_front *f, struct nvme_ctrl *c, struct loop *l, const char *path,
		     int fd, char *err, size_t errlen);
void nvme_front_stop(struct nvme_front *f);
/* Runs the loop until it stops. poll_us > 0: after each wake-up the card busy-polls the
 * guest's shadow doorbells (nvme_poll), with every I/O SQ's EventIdx set so that the
 * driver does not ring (nvme_set_polling), until poll_us pass without a new command;
 * then it puts the EventIdx back, looks once more and sleeps on the doorbells. */
int nvme_front_run(struct nvme_front *f, unsigned poll_us);
/* The control socket's ops pair (src/cards/bdev/blkctl.h), dev the struct nvme_front:
 * pauses the I/O queues for a snapshot (src/cards/nvme/pause.h). */
extern const struct blkctl_ops nvme_front_ctl_ops;

#endif
