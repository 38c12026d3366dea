/* PCI: one host bridge with ECAM (bus 0, function 0 of up to 32 devices) as described
 * by the ACPI MCFG table and \_SB.PCI0. Config space is 256 bytes per device, emulated
 * with per-byte write masks; extended config space reads as zero. BARs are memory BARs
 * (64-bit; one per device, BAR 0 unless pci_dev_bar_index says another), pre-assigned
 * from the 32-bit window like firmware would, and decode (on the
 * MMIO bus) only while the command register's memory bit is set; a guest that moves a
 * BAR is followed, and the device told through bar_moved.
 */
#ifndef NITRO_HV_PCI_H
#define NITRO_HV_PCI_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "hv/mmio.h"

#define PCI_SLOTS 32
#define PCI_CFG_SIZE 256
#define PCI_CAP_START 0x40

#define PCI_VENDOR_ID 0x00
#define PCI_DEVICE_ID 0x02
#define PCI_COMMAND 0x04
#define PCI_STATUS 0x06
#define PCI_REVISION 0x08
#define PCI_CLASS_PROG 0x09
#define PCI_HEADER_TYPE 0x0e
#define PCI_BAR0 0x10
#define PCI_SUBSYS_VENDOR 0x2c
#define PCI_SUBSYS_ID 0x2e
#define PCI_CAP_PTR 0x34
#define PCI_INT_PIN 0x3d
#define PCI_COMMAND_MEMORY 0x02
#define PCI_COMMAND_MASTER 0x04
#define PCI_STATUS_CAP_LIST 0x10

struct pci_dev;

struct pci_dev_ops {
	void (*bar_access)(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size,
			   bool write);
	/* The BAR now decodes at addr (0: it does not decode). */
	void (*bar_moved)(struct pci_dev *d, uint64_t addr);
	/* After a config write at [off, off + size) was applied. */
	void (*cfg_written)(struct pci_dev *d, unsigned off, unsigned size);
};

struct pci_dev {
	uint8_t pd_cfg[PCI_CFG_SIZE];
	uint8_t pd_wmask[PCI_CFG_SIZE];
	uint64_t pd_bar_size; /* the BAR (64-bit memory, two BAR registers); a power of two */
	unsigned pd_bar_reg;  /* its config offset: PCI_BAR0 unless pci_dev_bar_index moved it */
	uint64_t pd_bar_addr; /* where it decodes now, 0 when not */
	int pd_mmio;
	unsigned pd_slot;
	uint8_t pd_cap_last; /* offset of the last capability, 0 for none */
	unsigned pd_cap_end; /* first free byte after the capabilities */
	const struct pci_dev_ops *pd_ops;
	void *pd_opaque;
	struct pci_bus *pd_bus;
};

struct pci_bus {
	struct mmio_bus *pb_mmio;
	pthread_mutex_t pb_lock; /* config space of all devices */
	struct pci_dev *pb_devs[PCI_SLOTS];
	uint64_t pb_next_bar;
};

int pci_init(struct pci_bus *b, struct mmio_bus *mmio);
/* Sets up the header (ids, class, BAR 0 of bar_size); call before adding capabilities. */
void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint16_t subsys_vendor, uint16_t subsys, uint64_t bar_size,
		  const struct pci_dev_ops *ops, void *opaque);
/* Makes the BAR BAR n (n + 1 its high half; n <= 4) instead of BAR 0; before pci_add. */
void pci_dev_bar_index(struct pci_dev *d, unsigned n);
/* Appends a capability of len bytes (first byte the id); returns its offset or 0. */
unsigned pci_cap_add(struct pci_dev *d, const uint8_t *cap, unsigned len);
/* Puts d in the next free slot and assigns its BAR; 0 or -1. */
int pci_add(struct pci_bus *b, struct pci_dev *d);
/* One ECAM access (exported for tests and fuzzing). */
void pci_ecam_access(void *bus, uint64_t off, uint8_t *data, unsigned size, bool write);

#endif
