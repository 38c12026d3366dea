/* A virtio 1.x PCI device (modern transport, MSI-X) whose device side is a card reached
 * over vhost-user. The hypervisor emulates only the transport's control plane: common
 * configuration, device configuration (read from the card once, writes forwarded), the
 * MSI-X table and the capabilities. When the driver sets DRIVER_OK, each enabled queue is
 * handed to the card with a KVM ioeventfd on its notify address as the kick fd and a KVM
 * irqfd on its MSI-X vector as the call fd; from then on the guest and the card talk with
 * no exit to this process. A reset (status 0) stops the card's queues. When the card
 * fails a queue (a hostile descriptor chain) it signals the queue's error fd: the device
 * then reports NEEDS_RESET and raises its configuration-change interrupt.
 *
 * BAR 0 layout: common 0x0000, ISR 0x1000, device config 0x2000, notify 0x3000 (4 bytes
 * per queue), MSI-X table 0x4000, PBA 0x5000.
 */
#ifndef NITRO_HV_VIRTIO_PCI_H
#define NITRO_HV_VIRTIO_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/virtio_ids.h>

#include "hv/pci.h"
#include "hv/vhost_front.h"
#include "hv/vm.h"

#define VP_MAX_QUEUES 16

struct vp_queue {
	uint16_t vq_size;
	uint16_t vq_msix;
	uint16_t vq_enable;
	uint64_t vq_desc, vq_avail, vq_used;
	int vq_kick; /* eventfd: KVM ioeventfd while started */
	int vq_call; /* eventfd: KVM irqfd while started */
	int vq_err;  /* eventfd: the card signals that it failed the queue */
	int vq_gsi;
	bool vq_started;
};

struct virtio_pci {
	struct pci_dev vp_pci;
	struct vm *vp_vm;
	struct vhost_front vp_card;
	pthread_mutex_t vp_lock;
	unsigned vp_type;
	uint32_t vp_dfselect, vp_gfselect;
	uint64_t vp_driver_features;
	bool vp_early; /* a queue was handed to the card before DRIVER_OK (early_kick) */
	uint16_t vp_msix_config;
	uint8_t vp_status;
	uint8_t vp_cfg_gen;
	uint16_t vp_qsel;
	unsigned vp_nqueues;
	struct vp_queue vp_q[VP_MAX_QUEUES];
	unsigned vp_msix_cap; /* offset of the MSI-X capability */
	uint8_t vp_msix_table[(VP_MAX_QUEUES + 1) * 16];
	bool vp_failed;
	uint64_t vp_bar;	 /* where BAR 0 decodes, as last told by the bus */
	pthread_t vp_err_thread; /* watches the queues' error fds */
	int vp_stop;		 /* eventfd that ends the watcher */
};

/* Connects to the card as o says (vhost_front.h: a socket path, with an ENW_HELLO for an
 * enclave-facing card, or a connection handed over), builds the device and adds it to the
 * bus. A handed-over connection that drops is not made again: the device's queues stop. */
int virtio_pci_create(struct virtio_pci *vp, struct vm *vm, struct pci_bus *bus, unsigned type,
		      const struct vhost_open *o, char *err, size_t errlen);

/* Guest memory changed (holes made or filled, boot/memory.h): the card's memory table
 * follows (vhost_front_sync_mem), under the device's lock; 0 once the card answered, -1
 * with err. A ring that now lies in a hole is failed by the card (NEEDS_RESET). */
int virtio_pci_sync_mem(struct virtio_pci *vp, char *err, size_t errlen);

/* Stops the error watcher and closes the device's fds and card connection. */
void virtio_pci_destroy(struct virtio_pci *vp);

#endif
