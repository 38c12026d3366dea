/* The Nitro Enclaves PCI device of a parent instance (`nitro-hv --enclaves`): vendor 0x1d0f,
 * device 0xe4c1, class 0x088000 (system peripheral), driven by the stock `nitro_enclaves`
 * module (reference enclaves.md §1; docs/enclaves.md "The NE device").
 *
 * BAR 3 (4 KiB, 64-bit memory): the registers ENABLE 0x00 (u8), VERSION 0x02 (u16),
 * COMMAND 0x04 (u32, write-only), EVTCNT 0x0c (u32, read-only: low half replies, high half
 * events), SEND_DATA 0x10 and RECV_DATA 0x100 (240 bytes each), then the MSI-X table (2
 * vectors: 0 = command reply, 1 = enclave event) at 0x800 and its PBA at 0xc00.
 * Probe: ENABLE 0 reads back 0 at once (and ends every slot); VERSION takes only 1
 * (anything else reads back 0); ENABLE 1 takes only once VERSION is 1. A COMMAND write
 * while enabled runs the command synchronously on the writing vCPU's thread (ne_cmd.c),
 * fills RECV_DATA, counts a reply in EVTCNT and raises vector 0; while disabled it is
 * dropped. Accesses of any size at any offset are safe; writes to read-only registers and
 * unaligned/odd-sized ENABLE, VERSION or COMMAND writes are ignored. An MSI is sent with
 * KVM_SIGNAL_MSI from the vector's table entry; a masked vector (entry or function mask,
 * or MSI-X off) sets its PBA bit and is sent when unmasked.
 *
 * Threads: vCPU threads (BAR and config accesses) and the enclave glue
 * (ne_enclave_exited, ne_pci_set_ops); all under nd_lock.
 */
#ifndef NITRO_HV_NE_PCI_H
#define NITRO_HV_NE_PCI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "hv/ne_cmd.h"
#include "hv/pci.h"
#include "hv/vm.h"

#define NE_PCI_VENDOR 0x1d0f
#define NE_PCI_DEVICE 0xe4c1
#define NE_PCI_CLASS 0x088000
#define NE_PCI_BAR 3
#define NE_BAR_SIZE 0x1000

#define NE_R_ENABLE 0x00
#define NE_R_VERSION 0x02
#define NE_R_COMMAND 0x04
#define NE_R_EVTCNT 0x0c
#define NE_R_SEND 0x10
#define NE_R_RECV 0x100
#define NE_R_END (NE_R_RECV + NE_DATA_SIZE)
#define NE_OFF_MSIX 0x800
#define NE_OFF_PBA 0xc00
#define NE_VECTORS 2
#define NE_VEC_REPLY 0
#define NE_VEC_EVENT 1

struct ne_dev {
	struct pci_dev nd_pci;
	struct vm *nd_vm;
	pthread_mutex_t nd_lock;
	struct ne_cmd nd_cmd;
	uint8_t nd_enable;
	uint16_t nd_version;
	uint16_t nd_replies, nd_events; /* EVTCNT */
	uint8_t nd_send[NE_DATA_SIZE];
	uint8_t nd_recv[NE_DATA_SIZE];
	unsigned nd_msix_cap;
	uint8_t nd_msix_table[NE_VECTORS * 16];
	uint8_t nd_pba;
	unsigned long nd_msis[NE_VECTORS]; /* MSIs sent per vector (stats, tests) */
};

/* Builds the device for vm (its vCPU count and RAM layout bound the slots) and adds it to
 * bus; 0, or -1 with err set. */
int ne_pci_create(struct ne_dev *d, struct vm *vm, struct pci_bus *bus, char *err, size_t errlen);
/* Installs the enclave glue (NULL: none; START then answers -EOPNOTSUPP). */
void ne_pci_set_ops(struct ne_dev *d, const struct ne_ops *ops);
/* Ends every running enclave through the glue (the parent's own shutdown). */
void ne_pci_shutdown(struct ne_dev *d);

/* One BAR 3 access (exported for tests and fuzzing). */
void ne_pci_bar_access(struct ne_dev *d, uint64_t off, uint8_t *data, unsigned size, bool write);

#endif
