/* NVMe card: pausing the I/O queues (pause.h). */
#include "cards/nvme/pause.h"

void nvme_pause_io(struct nvme_ctrl *c, void (*on_quiet)(void *opaque), void *opaque)
{
	c->c_paused = true;
	if (c->c_inflight) { /* the last completion calls it (nvme.c, req_free) */
		c->c_on_quiet = on_quiet;
		c->c_quiet_opaque = opaque;
		return;
	}
	c->c_on_quiet = NULL;
	on_quiet(opaque);
}

void nvme_unpause_io(struct nvme_ctrl *c)
{
	if (!c->c_paused)
		return;
	c->c_paused = false;
	c->c_on_quiet = NULL;
	nvme_kick_all(c);
}
