/* NVMe card: the hypervisor connection (see front.h). */
#include "cards/nvme/front.h"
#include "cards/lib/listen.h"
#include "cards/nvme/pause.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "lib/vhost_user_wire.h"
#include "lib/vu_wire.h"

#define NVW_TIMEOUT_MS 5000

static void on_listen(struct loop *l, int fd, uint32_t events, void *opaque);

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void watch_bdev(struct nvme_front *f);
static void arm_timer(struct nvme_front *f);

/* The hypervisor left (or broke the protocol, or the card stops): forget everything it
 * gave. The state saved in the shared memfd stays as it is for the next card. */
static void drop(struct nvme_front *f)
{
	struct nvme_ctrl *c = f->f_c;
	nvme_detach(c, &f->f_dummy);
	nvme_disable(c);
	for (unsigned i = 0; i < NVME_MAX_QIDS; i++) {
		if (f->f_kick[i] >= 0)
			loop_del(f->f_loop, f->f_kick[i]);
		close_fd(&f->f_kick[i]);
	}
	for (unsigned i = 0; i < NVME_MAX_VECTORS; i++)
		close_fd(&c->c_call[i]);
	close_fd(&c->c_note);
	if (f->f_shared != &f->f_dummy)
		munmap(f->f_shared, NVW_SHARED_SIZE);
	f->f_shared = c->c_shared = &f->f_dummy;
	gm_clear(&f->f_mem);
	if (f->f_sock >= 0) {
		loop_del(f->f_loop, f->f_sock);
		close_fd(&f->f_sock);
	}
	if (f->f_once) {
		loop_stop(f->f_loop);
		return;
	}
	char err[256];
	if (f->f_listen >= 0 &&
	    loop_add(f->f_loop, f->f_listen, on_listen, f, err, sizeof(err)) < 0) {
		warnmsg("nvme: %s", err);
		loop_stop(f->f_loop);
	}
}

static void arm_timer(struct nvme_front *f)
{
	struct nvme_ctrl *c = f->f_c;
	if (!c->c_qos_wait_ns || f->f_timer < 0)
		return;
	struct itimerspec its = {.it_value = {.tv_sec = (time_t)(c->c_qos_wait_ns / 1000000000ull),
					      .tv_nsec = (long)(c->c_qos_wait_ns % 1000000000ull)}};
	timerfd_settime(f->f_timer, 0, &its, NULL);
}

/* After any work: queues that waited for a request go on; a throttle arms the timer. */
static void after_work(struct nvme_front *f)
{
	struct nvme_ctrl *c = f->f_c;
	if (c->c_starved && c->c_free) {
		c->c_starved = false;
		nvme_kick_all(c);
	}
	arm_timer(f);
	watch_bdev(f);
}

static void on_kick(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct nvme_front *f = opaque;
	(void)l;
	(void)events;
	uint64_t n = 0;
	if (read(fd, &n, sizeof(n)) != sizeof(n) && errno != EAGAIN)
		return;
	for (unsigned q = 0; q < NVME_MAX_QIDS; q++)
		if (f->f_kick[q] == fd) {
			if (q) {
				f->f_c->c_kicks++;
				f->f_c->c_rings += n;
			}
			nvme_kick(f->f_c, q);
			break;
		}
	after_work(f);
}

static uint64_t mono_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

int nvme_front_run(struct nvme_front *f, unsigned poll_us)
{
	struct loop *l = f->f_loop;
	struct nvme_ctrl *c = f->f_c;
	if (!poll_us)
		return loop_run(l);
	uint64_t span = (uint64_t)poll_us * 1000;
	bool sleep = true;
	while (!l->lp_stop) {
		int r = loop_run_once(l, sleep ? -1 : 0);
		if (r < 0)
			return r;
		if (!c->c_eis) { /* no shadow doorbells (yet): nothing to poll */
			sleep = true;
			continue;
		}
		nvme_set_polling(c, true);
		uint64_t deadline = mono_ns() + span;
		for (unsigned spins = 1; !l->lp_stop && c->c_eis; spins++) {
			if (nvme_poll(c)) {
				c->c_polled++;
				after_work(f);
				deadline = mono_ns() + span; /* work: the window starts again */
			} else if (spins % 16 == 0 && mono_ns() >= deadline) {
				break;
			}
			/* completions, the hypervisor's messages, kicks that raced in */
			if (spins % 64 == 0 && (r = loop_run_once(l, 0)) < 0)
				return r;
		}
		/* back to doorbells; what raced in meanwhile is polled for at once */
		sleep = !nvme_set_polling(c, false);
		after_work(f);
	}
	return 0;
}

static void on_timer(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct nvme_front *f = opaque;
	(void)l;
	(void)events;
	uint64_t n;
	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return;
	f->f_c->c_qos_wait_ns = 0;
	nvme_kick_all(f->f_c);
	after_work(f);
}

static void on_bdev(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct nvme_front *f = opaque;
	struct nvme_ctrl *c = f->f_c;
	(void)l;
	(void)fd;
	(void)events;
	c->c_batch++;
	c->c_bdev->bd_ops->bo_event(c->c_bdev);
	c->c_batch--;
	nvme_flush_irqs(c);
	after_work(f);
}

/* The back end's completion fd (it may change when an NBD connection is remade). */
static void watch_bdev(struct nvme_front *f)
{
	int fd = f->f_c->c_bdev->bd_event_fd;
	if (fd == f->f_bdev_fd)
		return;
	if (f->f_bdev_fd >= 0)
		loop_del(f->f_loop, f->f_bdev_fd);
	f->f_bdev_fd = -1;
	char err[256];
	if (fd >= 0 && loop_add(f->f_loop, fd, on_bdev, f, err, sizeof(err)) == 0)
		f->f_bdev_fd = fd;
}

static bool sealed_memfd(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);
	return seals >= 0 && (seals & F_SEAL_SHRINK);
}

union nvw_payload {
	uint64_t u64;
	uint32_t u32;
	struct nvw_enable en;
	struct vu_mem_table mem;
	struct vu_mem_region_single single;
	uint8_t raw[512];
};

/* One message; false drops the hypervisor. */
static bool handle(struct nvme_front *f, const struct vu_wire_hdr *h, union nvw_payload *p,
		   int *fds, unsigned nfds)
{
	struct nvme_ctrl *c = f->f_c;
	uint64_t status = 0;
	char err[256];
	bool need_fd = h->request == NVW_SHARED || h->request == NVW_KICK ||
		       h->request == NVW_CALL || h->request == NVW_NOTE ||
		       h->request == NVW_MEM_ADD;
	if (need_fd && nfds != 1)
		return false;
	if (h->request != NVW_MEM && !need_fd && nfds)
		return false;
	switch (h->request) {
	case NVW_HELLO: {
		if (h->size != 4 || p->u32 != NVW_VERSION) {
			warnmsg("nvme: hypervisor speaks version %u, the card %u", p->u32,
				NVW_VERSION);
			return false;
		}
		struct nvw_hello r = {.h_version = NVW_VERSION,
				      .h_device = c->c_info.ni_device,
				      .h_nqids = (uint16_t)c->c_info.ni_nqids,
				      .h_nvectors = (uint16_t)c->c_info.ni_nqids,
				      .h_mqes = NVME_MQES};
		return vu_wire_send(f->f_sock, NVW_HELLO, VU_FLAG_VERSION | VU_FLAG_REPLY, &r,
				    sizeof(r), NULL, 0) == 0;
	}
	case NVW_MEM: {
		const struct vu_mem_table *t = &p->mem;
		if (h->size < 8 || t->nregions == 0 || t->nregions > VU_MAX_REGIONS ||
		    h->size != 8 + t->nregions * sizeof(struct vu_mem_region) ||
		    nfds != t->nregions) {
			for (unsigned i = 0; i < nfds; i++)
				close(fds[i]);
			return false;
		}
		struct gm_region_desc rd[VU_MAX_REGIONS];
		for (unsigned i = 0; i < t->nregions; i++) {
			rd[i] =
			    (struct gm_region_desc){t->regions[i].gpa, t->regions[i].size,
						    t->regions[i].uva, t->regions[i].mmap_offset};
			if (!sealed_memfd(fds[i]))
				status = 1;
		}
		nvme_disable(c); /* nothing may point into the old table */
		if (status) {
			for (unsigned i = 0; i < nfds; i++)
				close(fds[i]);
			warnmsg("nvme: guest memory that is not a sealed memfd: refused");
		} else if (gm_set_table(&f->f_mem, rd, t->nregions, fds, err, sizeof(err)) < 0) {
			warnmsg("nvme: %s", err);
			status = 1;
		}
		break;
	}
	case NVW_MEM_ADD: {
		const struct vu_mem_region *r = &p->single.region;
		if (h->size != sizeof(p->single)) {
			close(fds[0]);
			return false;
		}
		struct gm_region_desc rd = {r->gpa, r->size, r->uva, r->mmap_offset};
		if (!sealed_memfd(fds[0])) {
			close(fds[0]);
			warnmsg("nvme: guest memory that is not a sealed memfd: refused");
			status = 1;
		} else if (gm_add_region(&f->f_mem, &rd, fds[0], err, sizeof(err)) < 0) {
			warnmsg("nvme: %s", err);
			status = 1;
		}
		break;
	}
	case NVW_MEM_REM: {
		const struct vu_mem_region *r = &p->single.region;
		if (h->size != sizeof(p->single))
			return false;
		bool found = false;
		for (unsigned i = 0; i < f->f_mem.gm_nregions && !found; i++) {
			const struct gm_region *g = &f->f_mem.gm_regions[i];
			found = g->gr_gpa == r->gpa && g->gr_size == r->size && g->gr_uva == r->uva;
		}
		if (!found) {
			warnmsg("nvme: MEM_REM of a region the card does not have");
			status = 1;
			break;
		}
		nvme_mem_changing(c); /* nothing in flight points into it any more */
		gm_remove_region(&f->f_mem, r->gpa, r->size, r->uva, err, sizeof(err));
		nvme_remap(c);
		break;
	}
	case NVW_SHARED: {
		struct stat st;
		void *m = MAP_FAILED;
		if (fstat(fds[0], &st) == 0 && S_ISREG(st.st_mode) &&
		    st.st_size == NVW_SHARED_SIZE && sealed_memfd(fds[0]))
			m = mmap(NULL, NVW_SHARED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0],
				 0);
		close(fds[0]);
		if (m == MAP_FAILED)
			return false;
		if (f->f_shared != &f->f_dummy)
			munmap(f->f_shared, NVW_SHARED_SIZE);
		f->f_shared = c->c_shared = m;
		break;
	}
	case NVW_KICK:
		if (h->size != 8 || p->u64 >= c->c_info.ni_nqids) {
			close(fds[0]);
			return false;
		}
		if (f->f_kick[p->u64] >= 0) {
			loop_del(f->f_loop, f->f_kick[p->u64]);
			close(f->f_kick[p->u64]);
		}
		f->f_kick[p->u64] = fds[0];
		if (loop_add(f->f_loop, fds[0], on_kick, f, err, sizeof(err)) < 0)
			return false;
		break;
	case NVW_CALL:
		if (h->size != 8 || p->u64 >= NVME_MAX_VECTORS) {
			close(fds[0]);
			return false;
		}
		close_fd(&c->c_call[p->u64]);
		c->c_call[p->u64] = fds[0];
		break;
	case NVW_NOTE:
		close_fd(&c->c_note);
		c->c_note = fds[0];
		break;
	case NVW_ENABLE:
		if (h->size != sizeof(struct nvw_enable))
			return false;
		if (!f->f_mem.gm_nregions || f->f_shared == &f->f_dummy)
			status = 1;
		else
			status = nvme_enable(c, &p->en) ? 0 : 1;
		break;
	case NVW_RESUME:
		if (h->size != sizeof(struct nvw_enable))
			return false;
		if (!f->f_mem.gm_nregions || f->f_shared == &f->f_dummy)
			status = 1;
		else
			status = nvme_resume(c, &p->en) ? 0 : 1;
		break;
	case NVW_DISABLE:
		nvme_disable(c);
		break;
	case NVW_SHUTDOWN:
		nvme_shutdown(c);
		break;
	default:
		warnmsg("nvme: unknown request %u from the hypervisor", h->request);
		return false;
	}
	if (!(h->flags & VU_FLAG_NEED_REPLY))
		return true;
	return vu_wire_send(f->f_sock, h->request, VU_FLAG_VERSION | VU_FLAG_REPLY, &status,
			    sizeof(status), NULL, 0) == 0;
}

static void on_sock(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct nvme_front *f = opaque;
	(void)l;
	(void)events;
	struct vu_wire_hdr h;
	union nvw_payload p;
	int fds[VU_WIRE_MAX_FDS];
	unsigned nfds = 0;
	memset(&p, 0, sizeof(p));
	int r = vu_wire_recv(fd, &h, &p, sizeof(p), fds, VU_WIRE_MAX_FDS, &nfds, NVW_TIMEOUT_MS);
	if (r != 1) {
		if (r < 0)
			warnmsg("nvme: hypervisor connection: %s", strerror(-r));
		drop(f);
		return;
	}
	if (!handle(f, &h, &p, fds, nfds)) {
		warnmsg("nvme: protocol error from the hypervisor (request %u): dropped",
			h.request);
		drop(f);
		return;
	}
	after_work(f);
}

static int attach(struct nvme_front *f, int fd, char *err, size_t errlen)
{
	f->f_sock = fd;
	return loop_add(f->f_loop, fd, on_sock, f, err, errlen);
}

static void on_listen(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct nvme_front *f = opaque;
	char err[256];
	(void)events;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	loop_del(l, fd); /* one hypervisor at a time */
	if (attach(f, c, err, sizeof(err)) < 0) {
		warnmsg("nvme: %s", err);
		close(c);
		f->f_sock = -1;
		drop(f);
	}
}

int nvme_front_start(struct nvme_front *f, struct nvme_ctrl *c, struct loop *l, const char *path,
		     int fd, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	f->f_c = c;
	f->f_loop = l;
	f->f_listen = f->f_sock = f->f_bdev_fd = -1;
	for (unsigned i = 0; i < NVME_MAX_QIDS; i++)
		f->f_kick[i] = -1;
	gm_init(&f->f_mem);
	c->c_mem = &f->f_mem;
	f->f_shared = c->c_shared = &f->f_dummy;
	f->f_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (f->f_timer < 0 || loop_add(l, f->f_timer, on_timer, f, err, errlen) < 0)
		RETURN_ERR(-EIO, "nvme: timerfd: %s", strerror(errno));
	watch_bdev(f);
	if (!path) {
		f->f_once = true;
		return attach(f, fd, err, errlen);
	}
	int s = listen_renamed(path, err, errlen);
	if (s < 0)
		return s;
	f->f_listen = s;
	snprintf(f->f_path, sizeof(f->f_path), "%s", path);
	return loop_add(l, s, on_listen, f, err, errlen);
}

void nvme_front_stop(struct nvme_front *f)
{
	f->f_once = true;
	if (f->f_sock >= 0)
		drop(f);
	else
		nvme_disable(f->f_c);
	if (f->f_listen >= 0) {
		loop_del(f->f_loop, f->f_listen);
		close_fd(&f->f_listen);
	}
	if (f->f_path[0])
		unlink(f->f_path);
	if (f->f_timer >= 0) {
		loop_del(f->f_loop, f->f_timer);
		close_fd(&f->f_timer);
	}
}

/* The control socket's pause (blkctl.h): the I/O queues wait, then go on; what the
 * resumed commands need (the QoS timer, the back end's fd) is armed as after any work. */
static void ctl_quiet(void *ctl)
{
	blkctl_quiet(ctl);
}

static void ctl_pause(void *dev, struct blkctl *ctl)
{
	struct nvme_front *f = dev;
	nvme_pause_io(f->f_c, ctl_quiet, ctl);
}

static void ctl_resume(void *dev)
{
	struct nvme_front *f = dev;
	nvme_unpause_io(f->f_c);
	after_work(f);
}

const struct blkctl_ops nvme_front_ctl_ops = {.co_pause = ctl_pause, .co_resume = ctl_resume};
