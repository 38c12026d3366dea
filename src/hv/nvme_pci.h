/* An NVMe controller (PCI class 010802) whose queues a card serves (docs/nvme.md). The
 * hypervisor owns the PCI function, the register file (CAP, VS 1.4, CC, CSTS, AQA, ASQ,
 * ACQ), the MSI-X table and the doorbell registers; the card owns every queue, the admin
 * queue included, and talks to the hypervisor with src/lib/nvme_wire.h.
 *
 * Doorbells: each queue id has one eventfd. A doorbell write that reaches this process
 * (the admin queue's, and the I/O queues' until the driver sets up shadow doorbells) is
 * stored in the shared page and then signals the eventfd; once the card reports shadow
 * doorbells (NVW_F_DBBUF), the I/O queues' doorbell registers become KVM ioeventfds on the
 * same eventfds, so I/O causes no exit here. MSI-X vectors are KVM irqfds. CC.EN, CC.SHN
 * and CSTS.CFS travel as requests to the card (answered within 5 s, or the controller
 * fails: CFS). A card that goes away while the controller runs pauses it (doorbells
 * still land in the shared memfd and the kick eventfds); the card that comes back on the
 * same socket resumes from the state the last one saved in the shared memfd (NVW_RESUME),
 * so the driver sees a pause. When it cannot, or the controller was not running, the
 * controller fails (CFS) and the driver's reset starts it again.
 *
 * BAR 0: registers 0x0000, doorbells 0x1000 (stride 4), MSI-X table 0x2000, PBA 0x3000.
 * Threads: vCPU threads (register accesses, under np_lock) and one watcher per device.
 */
#ifndef NITRO_HV_NVME_PCI_H
#define NITRO_HV_NVME_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/mem_table.h"
#include "hv/pci.h"
#include "hv/vm.h"
#include "lib/nvme_wire.h"

#define NP_MAX_VECTORS 32

struct nvme_pci {
	struct pci_dev np_pci;
	struct vm *np_vm;
	pthread_mutex_t np_lock;
	int np_sock;
	char np_path[108];
	struct nvw_hello np_hello;
	uint32_t np_cc, np_csts, np_aqa;
	uint64_t np_asq, np_acq;
	int np_shared_fd;
	struct nvw_shared *np_shared;
	int np_kick[NVW_MAX_QIDS];
	bool np_io_evfd; /* ioeventfds on the I/O queues' doorbells */
	int np_call[NP_MAX_VECTORS];
	int np_gsi[NP_MAX_VECTORS];
	bool np_irqfd[NP_MAX_VECTORS];
	int np_note;
	unsigned np_msix_cap;
	uint8_t np_msix_table[NP_MAX_VECTORS * 16];
	uint64_t np_bar;
	bool np_card_gone;
	pthread_t np_thread;
	int np_stop;
	struct mem_table np_table; /* what the card maps, as last told */
};

/* Connects to the card at socket, builds the controller and adds it to the bus. */
int nvme_pci_create(struct nvme_pci *np, struct vm *vm, struct pci_bus *bus, const char *socket,
		    char *err, size_t errlen);
void nvme_pci_destroy(struct nvme_pci *np);
/* Guest memory changed (holes made or filled): the card's table follows (NVW_MEM_ADD and
 * NVW_MEM_REM, each answered); under the device's lock. 0 once the card answered, -1 with
 * err when it refused or did not answer; no card connected: 0 (its reconnect sends the
 * table as it is then). */
int nvme_pci_sync_mem(struct nvme_pci *np, char *err, size_t errlen);

/* One BAR access (exported for tests and fuzzing). */
void nvme_pci_bar_access(struct nvme_pci *np, uint64_t off, uint8_t *data, unsigned size,
			 bool write);

#endif
