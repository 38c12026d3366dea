/* virtio-pci modern transport in front of a vhost-user card. */
#include "hv/virtio_pci.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "lib/le.h"
#include "lib/util.h"

#define BAR_SIZE 0x8000
#define OFF_COMMON 0x0000
#define OFF_ISR 0x1000
#define OFF_DEVICE 0x2000
#define OFF_NOTIFY 0x3000
#define OFF_MSIX 0x4000
#define OFF_PBA 0x5000
#define NOTIFY_MULT 4
#define VP_QUEUE_SIZE 256 /* offered; the driver may pick a smaller power of two */
#define COMMON_LEN sizeof(struct virtio_pci_common_cfg) /* 0x38: virtio 1.0 fields */

#define PCI_CAP_ID_VNDR 0x09
#define PCI_CAP_ID_MSIX 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000

/* Feature bits the transport passes on: device-specific 0..23, INDIRECT_DESC, EVENT_IDX,
 * VERSION_1. No ACCESS_PLATFORM (no IOMMU), no packed rings yet. (The kernel's VIRTIO_F_*
 * and VIRTIO_RING_F_* are bit numbers.) */
#define TRANSPORT_FEATURES                                                                         \
	(((1ull << 24) - 1) | 1ull << VIRTIO_RING_F_INDIRECT_DESC |                                \
	 1ull << VIRTIO_RING_F_EVENT_IDX | 1ull << VIRTIO_F_VERSION_1)

static void vp_fail(struct virtio_pci *vp, const char *why)
{
	if (!vp->vp_failed)
		fprintf(stderr, "%s: %s card %s failed: %s\n", util_prog(),
			vp->vp_type == VIRTIO_ID_BLOCK	 ? "block"
			: vp->vp_type == VIRTIO_ID_NET	 ? "net"
			: vp->vp_type == VIRTIO_ID_VSOCK ? "vsock"
							 : "virtio",
			vp->vp_card.vf_path, why);
	vp->vp_failed = true;
	vp->vp_status |= VIRTIO_CONFIG_S_NEEDS_RESET;
}

static uint64_t msix_addr(const struct virtio_pci *vp, unsigned v)
{
	return le64_get(vp->vp_msix_table + v * 16);
}

static void route_vector(struct virtio_pci *vp, struct vp_queue *q)
{
	if (q->vq_gsi < 0 || q->vq_msix == VIRTIO_MSI_NO_VECTOR || q->vq_msix > vp->vp_nqueues)
		return;
	const uint8_t *e = vp->vp_msix_table + q->vq_msix * 16;
	vm_msi_set(vp->vp_vm, q->vq_gsi, msix_addr(vp, q->vq_msix), le32_get(e + 8));
}

static void notify_addr_update(struct virtio_pci *vp, uint64_t old, uint64_t now)
{
	for (unsigned i = 0; i < vp->vp_nqueues; i++) {
		struct vp_queue *q = &vp->vp_q[i];
		if (!q->vq_started)
			continue;
		if (old)
			vm_ioeventfd(vp->vp_vm, old + OFF_NOTIFY + i * NOTIFY_MULT, 2, q->vq_kick,
				     false);
		if (now)
			vm_ioeventfd(vp->vp_vm, now + OFF_NOTIFY + i * NOTIFY_MULT, 2, q->vq_kick,
				     true);
	}
}

static void stop_queues(struct virtio_pci *vp)
{
	uint64_t bar = vp->vp_bar;
	for (unsigned i = 0; i < vp->vp_nqueues; i++) {
		struct vp_queue *q = &vp->vp_q[i];
		if (q->vq_started) {
			vhost_front_stop_queue(&vp->vp_card, i);
			if (bar)
				vm_ioeventfd(vp->vp_vm, bar + OFF_NOTIFY + i * NOTIFY_MULT, 2,
					     q->vq_kick, false);
			vm_irqfd(vp->vp_vm, q->vq_gsi, q->vq_call, false);
		}
		int gsi = q->vq_gsi, kick = q->vq_kick, call = q->vq_call, errfd = q->vq_err;
		memset(q, 0, sizeof(*q));
		q->vq_gsi = gsi;
		q->vq_kick = kick;
		q->vq_call = call;
		q->vq_err = errfd;
		q->vq_msix = VIRTIO_MSI_NO_VECTOR;
		q->vq_size = VP_QUEUE_SIZE;
	}
}

static void reset(struct virtio_pci *vp)
{
	stop_queues(vp);
	vp->vp_status = 0;
	vp->vp_driver_features = 0;
	vp->vp_dfselect = vp->vp_gfselect = 0;
	vp->vp_msix_config = VIRTIO_MSI_NO_VECTOR;
	vp->vp_qsel = 0;
	vp->vp_failed = false;
	vp->vp_early = false;
}

/* Hands queue i to the card: its rings as pointers into guest memory, starting at ring
 * index 0 (a fresh queue) or, with resume, where the guest's used index says the last
 * card stopped. -1 when a ring lies outside guest memory or the card refuses. */
static int give_queue(struct virtio_pci *vp, unsigned i, bool resume)
{
	struct guest_mem *m = &vp->vp_vm->vm_mem;
	struct vp_queue *q = &vp->vp_q[i];
	uint64_t n = q->vq_size;
	void *desc = gpa_ptr(m, q->vq_desc, 16 * n);
	void *avail = gpa_ptr(m, q->vq_avail, 6 + 2 * n);
	uint8_t *used = gpa_ptr(m, q->vq_used, 6 + 8 * n);
	if (!desc || !avail || !used)
		return -1;
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	uint16_t base = resume ? le16_get(used + 2) : 0; /* used->idx */
	return vhost_front_start_queue(&vp->vp_card, i, q->vq_size, base, desc, avail, used,
				       q->vq_kick, q->vq_call, q->vq_err);
}

/* Hands enabled queue i to the card: interrupt route, irqfd, ioeventfd, rings. 0, or -1
 * (the device failed). */
static int start_queue(struct virtio_pci *vp, unsigned i)
{
	struct guest_mem *m = &vp->vp_vm->vm_mem;
	struct vp_queue *q = &vp->vp_q[i];
	uint64_t bar = vp->vp_bar, n = q->vq_size;
	if (!gpa_ptr(m, q->vq_desc, 16 * n) || !gpa_ptr(m, q->vq_avail, 6 + 2 * n) ||
	    !gpa_ptr(m, q->vq_used, 6 + 8 * n))
		return vp_fail(vp, "a ring lies outside guest memory"), -1;
	route_vector(vp, q);
	if (vm_irqfd(vp->vp_vm, q->vq_gsi, q->vq_call, true) < 0)
		return vp_fail(vp, "KVM irqfd set-up failed"), -1;
	if (bar &&
	    vm_ioeventfd(vp->vp_vm, bar + OFF_NOTIFY + i * NOTIFY_MULT, 2, q->vq_kick, true) < 0) {
		vm_irqfd(vp->vp_vm, q->vq_gsi, q->vq_call, false);
		return vp_fail(vp, "KVM ioeventfd set-up failed"), -1;
	}
	q->vq_started = true;
	if (give_queue(vp, i, false) < 0)
		return vp_fail(vp, "the card refused a queue"), -1;
	return 0;
}

/* DRIVER_OK: hand every enabled queue to the card (those an early kick started are
 * there already). */
static void start(struct virtio_pci *vp)
{
	if (!vp->vp_early && vhost_front_set_features(&vp->vp_card, vp->vp_driver_features) < 0)
		return vp_fail(vp, "SET_FEATURES refused");
	for (unsigned i = 0; i < vp->vp_nqueues; i++)
		if (vp->vp_q[i].vq_enable && !vp->vp_q[i].vq_started && start_queue(vp, i) < 0)
			return;
}

/* A notification before DRIVER_OK. The spec forbids it, but Linux's nsm driver sends a
 * GetRandom from its probe (hwrng registration), before the core sets DRIVER_OK, and
 * waits two minutes for the answer with its lock held; real devices answer it. So a kick
 * of an enabled queue once the features are negotiated (FEATURES_OK) hands that queue to
 * the card now, and is passed on. Other kicks before DRIVER_OK are dropped. */
static void early_kick(struct virtio_pci *vp, unsigned i)
{
	if (i >= vp->vp_nqueues || vp->vp_failed || !(vp->vp_status & VIRTIO_CONFIG_S_FEATURES_OK))
		return;
	struct vp_queue *q = &vp->vp_q[i];
	if (!q->vq_enable)
		return;
	if (!q->vq_started) {
		if (!vp->vp_early &&
		    vhost_front_set_features(&vp->vp_card, vp->vp_driver_features) < 0)
			return vp_fail(vp, "SET_FEATURES refused");
		vp->vp_early = true;
		if (start_queue(vp, i) < 0)
			return;
	}
	uint64_t one = 1;
	if (write(q->vq_kick, &one, sizeof(one)) != sizeof(one))
		return; /* the counter is already non-zero: the card will look anyway */
}

static uint64_t common_read(struct virtio_pci *vp, unsigned off)
{
	struct vp_queue *q = vp->vp_qsel < vp->vp_nqueues ? &vp->vp_q[vp->vp_qsel] : NULL;
	uint64_t features = vp->vp_card.vf_features & TRANSPORT_FEATURES;
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		return vp->vp_dfselect;
	case VIRTIO_PCI_COMMON_DF:
		return vp->vp_dfselect < 2 ? (uint32_t)(features >> (32 * vp->vp_dfselect)) : 0;
	case VIRTIO_PCI_COMMON_GFSELECT:
		return vp->vp_gfselect;
	case VIRTIO_PCI_COMMON_GF:
		return vp->vp_gfselect < 2
			   ? (uint32_t)(vp->vp_driver_features >> (32 * vp->vp_gfselect))
			   : 0;
	case VIRTIO_PCI_COMMON_MSIX:
		return vp->vp_msix_config;
	case VIRTIO_PCI_COMMON_NUMQ:
		return vp->vp_nqueues;
	case VIRTIO_PCI_COMMON_STATUS:
		return vp->vp_status;
	case VIRTIO_PCI_COMMON_CFGGENERATION:
		return vp->vp_cfg_gen;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		return vp->vp_qsel;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		return q ? q->vq_size : 0;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		return q ? q->vq_msix : VIRTIO_MSI_NO_VECTOR;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		return q ? q->vq_enable : 0;
	case VIRTIO_PCI_COMMON_Q_NOFF:
		return q ? vp->vp_qsel : 0; /* queue_notify_off */
	case VIRTIO_PCI_COMMON_Q_DESCLO:
		return q ? q->vq_desc : 0;
	case VIRTIO_PCI_COMMON_Q_DESCHI:
		return q ? q->vq_desc >> 32 : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
		return q ? q->vq_avail : 0;
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
		return q ? q->vq_avail >> 32 : 0;
	case VIRTIO_PCI_COMMON_Q_USEDLO:
		return q ? q->vq_used : 0;
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		return q ? q->vq_used >> 32 : 0;
	default:
		return 0;
	}
}

static void common_write(struct virtio_pci *vp, unsigned off, uint64_t v, unsigned size)
{
	struct vp_queue *q = vp->vp_qsel < vp->vp_nqueues ? &vp->vp_q[vp->vp_qsel] : NULL;
	bool live = vp->vp_status & VIRTIO_CONFIG_S_DRIVER_OK;
	switch (off) {
	case VIRTIO_PCI_COMMON_DFSELECT:
		vp->vp_dfselect = (uint32_t)v;
		break;
	case VIRTIO_PCI_COMMON_GFSELECT:
		vp->vp_gfselect = (uint32_t)v;
		break;
	case VIRTIO_PCI_COMMON_GF:
		if (vp->vp_gfselect < 2 && !(vp->vp_status & VIRTIO_CONFIG_S_FEATURES_OK)) {
			uint64_t mask = 0xffffffffull << (32 * vp->vp_gfselect);
			vp->vp_driver_features =
			    (vp->vp_driver_features & ~mask) |
			    (((uint64_t)(uint32_t)v << (32 * vp->vp_gfselect)) &
			     vp->vp_card.vf_features & TRANSPORT_FEATURES);
		}
		break;
	case VIRTIO_PCI_COMMON_MSIX:
		vp->vp_msix_config =
		    (uint16_t)v <= vp->vp_nqueues ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
		break;
	case VIRTIO_PCI_COMMON_STATUS:
		if ((uint8_t)v == 0) {
			reset(vp);
			break;
		}
		if ((v & VIRTIO_CONFIG_S_FEATURES_OK) &&
		    !(vp->vp_driver_features & (1ull << VIRTIO_F_VERSION_1)))
			v &= ~(uint64_t)
				 VIRTIO_CONFIG_S_FEATURES_OK; /* legacy drivers are not served */
		if ((v & VIRTIO_CONFIG_S_DRIVER_OK) && !live) {
			vp->vp_status = (uint8_t)v;
			start(vp);
			break;
		}
		vp->vp_status = (uint8_t)(v | (vp->vp_status & VIRTIO_CONFIG_S_NEEDS_RESET));
		break;
	case VIRTIO_PCI_COMMON_Q_SELECT:
		vp->vp_qsel = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_SIZE:
		/* A power of two up to what the card can take (checked again by the card). */
		if (q && !live && v && v <= 1024 && !(v & (v - 1)))
			q->vq_size = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_MSIX:
		if (q) {
			q->vq_msix =
			    (uint16_t)v <= vp->vp_nqueues ? (uint16_t)v : VIRTIO_MSI_NO_VECTOR;
			if (q->vq_started)
				route_vector(vp, q);
		}
		break;
	case VIRTIO_PCI_COMMON_Q_ENABLE:
		if (q && !live)
			q->vq_enable = (uint16_t)v;
		break;
	case VIRTIO_PCI_COMMON_Q_DESCLO:
	case VIRTIO_PCI_COMMON_Q_DESCHI:
	case VIRTIO_PCI_COMMON_Q_AVAILLO:
	case VIRTIO_PCI_COMMON_Q_AVAILHI:
	case VIRTIO_PCI_COMMON_Q_USEDLO:
	case VIRTIO_PCI_COMMON_Q_USEDHI:
		if (q && !live) {
			uint64_t *f = off < VIRTIO_PCI_COMMON_Q_AVAILLO	 ? &q->vq_desc
				      : off < VIRTIO_PCI_COMMON_Q_USEDLO ? &q->vq_avail
									 : &q->vq_used;
			unsigned shift = (off & 4) ? 32 : 0;
			if (size == 8)
				*f = v;
			else
				*f = (*f & ~(0xffffffffull << shift)) |
				     ((uint64_t)(uint32_t)v << shift);
		}
		break;
	default:
		break;
	}
}

static void bar_access(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size, bool write)
{
	struct virtio_pci *vp = d->pd_opaque;
	pthread_mutex_lock(&vp->vp_lock);
	uint64_t v = 0;
	if (write)
		memcpy(&v, data, size);
	if (off < OFF_COMMON + COMMON_LEN) {
		if (write)
			common_write(vp, (unsigned)off, v, size);
		else
			v = common_read(vp, (unsigned)off);
	} else if (off == OFF_ISR) {
		v = 0; /* MSI-X only: no INTx status to report */
	} else if (off >= OFF_DEVICE && off < OFF_DEVICE + vp->vp_card.vf_config_len) {
		unsigned o = (unsigned)(off - OFF_DEVICE);
		unsigned n =
		    size <= vp->vp_card.vf_config_len - o ? size : vp->vp_card.vf_config_len - o;
		if (write)
			vhost_front_set_config(&vp->vp_card, o, data, n);
		else
			memcpy(&v, vp->vp_card.vf_config + o, n);
	} else if (off >= OFF_MSIX && off + size <= OFF_MSIX + (vp->vp_nqueues + 1) * 16u) {
		unsigned o = (unsigned)(off - OFF_MSIX);
		if (write) {
			memcpy(vp->vp_msix_table + o, data, size);
			for (unsigned i = 0; i < vp->vp_nqueues; i++)
				if (vp->vp_q[i].vq_started && vp->vp_q[i].vq_msix == o / 16)
					route_vector(vp, &vp->vp_q[i]);
		} else {
			memcpy(&v, vp->vp_msix_table + o, size);
		}
	}
	/* notify writes land here only before DRIVER_OK (or after a failure: nothing to do) */
	else if (write && off >= OFF_NOTIFY && off < OFF_NOTIFY + vp->vp_nqueues * NOTIFY_MULT &&
		 !(vp->vp_status & VIRTIO_CONFIG_S_DRIVER_OK))
		early_kick(vp, (unsigned)(off - OFF_NOTIFY) / NOTIFY_MULT);
	if (!write)
		memcpy(data, &v, size);
	pthread_mutex_unlock(&vp->vp_lock);
}

static void bar_moved(struct pci_dev *d, uint64_t addr)
{
	struct virtio_pci *vp = d->pd_opaque;
	pthread_mutex_lock(&vp->vp_lock);
	notify_addr_update(vp, vp->vp_bar, addr);
	vp->vp_bar = addr;
	pthread_mutex_unlock(&vp->vp_lock);
}

/* The card failed a queue: NEEDS_RESET, and tell the driver (config change interrupt). */
static void card_failed_queue(struct virtio_pci *vp, unsigned q)
{
	char why[64];
	snprintf(why, sizeof(why), "it failed queue %u (bad descriptors from the guest)", q);
	vp_fail(vp, why);
	vp->vp_cfg_gen++;
	unsigned v = vp->vp_msix_config;
	bool enabled = le16_get(vp->vp_pci.pd_cfg + vp->vp_msix_cap + 2) & MSIX_ENABLE;
	if (enabled && v <= vp->vp_nqueues)
		vm_signal_msi(vp->vp_vm, msix_addr(vp, v),
			      le32_get(vp->vp_msix_table + v * 16 + 8));
}

/* The card came back after a restart: give it the running queues again, each starting
 * where the guest's used ring says the old card stopped (exact for cards that complete a
 * queue's requests in order, as nitro's do; requests taken but not completed are
 * served again), then kick every queue so requests queued meanwhile are seen. */
static void restore_queues(struct virtio_pci *vp)
{
	if (!(vp->vp_status & VIRTIO_CONFIG_S_DRIVER_OK) || vp->vp_failed)
		return;
	if (vhost_front_set_features(&vp->vp_card, vp->vp_driver_features) < 0)
		return vp_fail(vp, "SET_FEATURES refused after the card restarted");
	for (unsigned i = 0; i < vp->vp_nqueues; i++) {
		struct vp_queue *q = &vp->vp_q[i];
		if (!q->vq_started)
			continue;
		if (give_queue(vp, i, true) < 0)
			return vp_fail(vp, "the restarted card refused a queue");
		uint64_t one = 1;
		if (write(q->vq_kick, &one, sizeof(one)) != sizeof(one))
			continue; /* the counter is already non-zero: the card will look anyway */
	}
}

/* The card's connection dropped: wait for a supervisor to restart it (the socket path is
 * the same), then reconnect and restore. Returns false when the device is being destroyed. */
static bool await_card(struct virtio_pci *vp)
{
	char err[256];
	fprintf(stderr, "%s: card %s: connection lost; waiting for it to restart\n", util_prog(),
		vp->vp_card.vf_path);
	vhost_front_disconnect(&vp->vp_card);
	struct pollfd stop = {.fd = vp->vp_stop, .events = POLLIN};
	if (vp->vp_card.vf_handed) { /* an enclave's: nothing can make it again */
		fprintf(stderr, "%s: card %s: an enclave's connection, not made again\n",
			util_prog(), vp->vp_card.vf_path);
		return false; /* the watcher ends; the device's requests fail from now on */
	}
	for (unsigned delay = 10;; delay = delay < 200 ? delay * 2 : 200) {
		if (poll(&stop, 1, (int)delay) > 0)
			return false;
		/* The handshake runs without vp_lock (a slow card must not stall vCPUs). */
		int r = vhost_front_reconnect(&vp->vp_card, err, sizeof(err));
		if (r == 0) {
			pthread_mutex_lock(&vp->vp_lock);
			restore_queues(vp);
			pthread_mutex_unlock(&vp->vp_lock);
			fprintf(stderr, "%s: card %s: reconnected\n", util_prog(),
				vp->vp_card.vf_path);
			return true;
		}
	}
}

static void *err_watch(void *arg)
{
	struct virtio_pci *vp = arg;
	unsigned nq = vp->vp_nqueues;
	struct pollfd p[VP_MAX_QUEUES + 2];
	pthread_setname_np(pthread_self(), "card-watch");
	for (unsigned i = 0; i < nq; i++)
		p[i] = (struct pollfd){.fd = vp->vp_q[i].vq_err, .events = POLLIN};
	p[nq] = (struct pollfd){.fd = vp->vp_stop, .events = POLLIN};
	for (;;) {
		/* Only hang-ups are watched on the card's socket; replies are read by requests. */
		p[nq + 1] = (struct pollfd){.fd = vp->vp_card.vf_sock, .events = POLLRDHUP};
		if (poll(p, nq + 2, -1) < 0)
			continue;
		if (p[nq].revents)
			return NULL; /* virtio_pci_destroy */
		if (p[nq + 1].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
			if (!await_card(vp))
				return NULL;
			continue;
		}
		for (unsigned i = 0; i < nq; i++) {
			uint64_t n;
			if ((p[i].revents & POLLIN) && read(p[i].fd, &n, sizeof(n)) == sizeof(n)) {
				pthread_mutex_lock(&vp->vp_lock);
				card_failed_queue(vp, i);
				pthread_mutex_unlock(&vp->vp_lock);
			}
		}
	}
}

int virtio_pci_sync_mem(struct virtio_pci *vp, char *err, size_t errlen)
{
	/* vp_lock: nothing of this device is between gpa_ptr and its use meanwhile */
	pthread_mutex_lock(&vp->vp_lock);
	int r = vhost_front_sync_mem(&vp->vp_card, err, errlen);
	pthread_mutex_unlock(&vp->vp_lock);
	return r;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	uint64_t one = 1;
	if (vp->vp_stop < 0)
		return;
	if (write(vp->vp_stop, &one, sizeof(one)) == sizeof(one))
		pthread_join(vp->vp_err_thread, NULL);
	close(vp->vp_stop);
	vp->vp_stop = -1;
	for (unsigned i = 0; i < vp->vp_nqueues; i++) {
		struct vp_queue *q = &vp->vp_q[i];
		close(q->vq_kick);
		close(q->vq_call);
		close(q->vq_err);
		q->vq_kick = q->vq_call = q->vq_err = -1;
	}
	vhost_front_disconnect(&vp->vp_card); /* the socket and the memory table it kept */
}

static const struct pci_dev_ops vp_ops = {
    .bar_access = bar_access,
    .bar_moved = bar_moved,
};

static void add_vcap(struct pci_dev *d, uint8_t type, uint32_t off, uint32_t len, bool notify)
{
	uint8_t c[20] = {PCI_CAP_ID_VNDR, 0, notify ? 20 : 16, type, 0 /* BAR 0 */};
	le32_put(c + 8, off);
	le32_put(c + 12, len);
	if (notify)
		le32_put(c + 16, NOTIFY_MULT);
	pci_cap_add(d, c, notify ? 20 : 16);
}

/* Bytes of device configuration space per device type (virtio 1.x, 5.2.4, 5.1.4, 5.10.4). */
static unsigned config_len(unsigned type)
{
	switch (type) {
	case VIRTIO_ID_BLOCK:
		return 60;
	case VIRTIO_ID_VSOCK:
		return 8; /* guest_cid */
	case VIRTIO_ID_NITRO_SEC_MOD:
		return 0; /* none (and the card offers none) */
	default:
		return 12;
	}
}

/* PCI class code: storage, network, or communication (other). */
static uint32_t class_code_of(unsigned type)
{
	return type == VIRTIO_ID_BLOCK ? 0x010000 : type == VIRTIO_ID_NET ? 0x020000 : 0x078000;
}

int virtio_pci_create(struct virtio_pci *vp, struct vm *vm, struct pci_bus *bus, unsigned type,
		      const struct vhost_open *o, char *err, size_t errlen)
{
	memset(vp, 0, sizeof(*vp));
	vp->vp_stop = -1;
	pthread_mutex_init(&vp->vp_lock, NULL);
	vp->vp_vm = vm;
	vp->vp_type = type;
	unsigned cfg_len = config_len(type);
	if (vhost_front_connect(&vp->vp_card, o, &vm->vm_mem, cfg_len, err, errlen) < 0)
		return -1;
	const char *socket = vp->vp_card.vf_path;
	if (!(vp->vp_card.vf_features & (1ull << VIRTIO_F_VERSION_1)))
		RETURN_ERR(-1, "card %s: does not offer VIRTIO_F_VERSION_1", socket);
	vp->vp_nqueues =
	    vp->vp_card.vf_queues < VP_MAX_QUEUES ? vp->vp_card.vf_queues : VP_MAX_QUEUES;
	for (unsigned i = 0; i < vp->vp_nqueues; i++) {
		struct vp_queue *q = &vp->vp_q[i];
		q->vq_size = VP_QUEUE_SIZE;
		q->vq_msix = VIRTIO_MSI_NO_VECTOR;
		q->vq_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->vq_call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->vq_err = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		q->vq_gsi = vm_msi_alloc(vm);
		if (q->vq_kick < 0 || q->vq_call < 0 || q->vq_err < 0 || q->vq_gsi < 0)
			RETURN_ERR(-1, "card %s: out of eventfds or interrupt routes", socket);
	}
	vp->vp_msix_config = VIRTIO_MSI_NO_VECTOR;
	uint32_t class_code = class_code_of(type);
	pci_dev_init(&vp->vp_pci, 0x1af4, (uint16_t)(0x1040 + type), class_code, 0x1af4,
		     (uint16_t)(0x40 + type), BAR_SIZE, &vp_ops, vp);
	add_vcap(&vp->vp_pci, VIRTIO_PCI_CAP_COMMON_CFG, OFF_COMMON, COMMON_LEN, false);
	add_vcap(&vp->vp_pci, VIRTIO_PCI_CAP_ISR_CFG, OFF_ISR, 1, false);
	if (cfg_len) /* Linux refuses a device configuration capability of length 0 */
		add_vcap(&vp->vp_pci, VIRTIO_PCI_CAP_DEVICE_CFG, OFF_DEVICE, cfg_len, false);
	add_vcap(&vp->vp_pci, VIRTIO_PCI_CAP_NOTIFY_CFG, OFF_NOTIFY, vp->vp_nqueues * NOTIFY_MULT,
		 true);
	uint8_t msix[12] = {PCI_CAP_ID_MSIX, 0};
	le16_put(msix + 2, (uint16_t)vp->vp_nqueues); /* table size - 1: queues + config */
	le32_put(msix + 4, OFF_MSIX);
	le32_put(msix + 8, OFF_PBA);
	vp->vp_msix_cap = pci_cap_add(&vp->vp_pci, msix, sizeof(msix));
	vp->vp_pci.pd_wmask[vp->vp_msix_cap + 3] = (MSIX_ENABLE | MSIX_MASKALL) >> 8;
	if (!vp->vp_msix_cap || pci_add(bus, &vp->vp_pci) < 0)
		RETURN_ERR(-1, "card %s: no room on the PCI bus", socket);
	vp->vp_stop = eventfd(0, EFD_CLOEXEC);
	if (vp->vp_stop < 0 || pthread_create(&vp->vp_err_thread, NULL, err_watch, vp) != 0)
		RETURN_ERR(-1, "card %s: cannot start its error watcher", socket);
	return 0;
}
