/* Pausing an NVMe controller's I/O for a crash-consistent snapshot (the control socket,
 * src/cards/bdev/blkctl.h, through the front's nvme_front_ctl_ops). While paused the I/O
 * submission queues are not read: commands the guest submits wait in them, the guest
 * sees a slow device, never an error (its driver's I/O timeout, 30 s by default, bounds
 * how long a pause may last before it resets the controller). The admin queue is served
 * on (nothing on it writes the volume). Commands already taken finish; when the last one
 * has, on_quiet(opaque) runs once, on the card's loop (inside nvme_pause_io when none is
 * in flight). A controller reset or re-enable during the pause keeps it paused.
 * Single-threaded, on the card's loop.
 */
#ifndef NITRO_CARDS_NVME_PAUSE_H
#define NITRO_CARDS_NVME_PAUSE_H

#include "cards/nvme/nvme.h"

void nvme_pause_io(struct nvme_ctrl *c, void (*on_quiet)(void *opaque), void *opaque);
/* Takes the commands that waited (every queue kicked). */
void nvme_unpause_io(struct nvme_ctrl *c);

#endif
