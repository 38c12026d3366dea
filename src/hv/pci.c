/* PCI host bridge (ECAM), config space and BAR decoding. */
#include "hv/pci.h"

#include <string.h>

#include "hv/acpi.h"
#include "lib/le.h"

static void bar_access(void *opaque, uint64_t off, uint8_t *data, unsigned size, bool write)
{
	struct pci_dev *d = opaque;
	d->pd_ops->bar_access(d, off, data, size, write);
}

int pci_init(struct pci_bus *b, struct mmio_bus *mmio)
{
	memset(b, 0, sizeof(*b));
	b->pb_mmio = mmio;
	pthread_mutex_init(&b->pb_lock, NULL);
	b->pb_next_bar = ACPI_PCI_MMIO_BASE;
	return mmio_register(mmio, ACPI_PCI_ECAM_BASE, ACPI_PCI_ECAM_SIZE, pci_ecam_access, b) < 0
		   ? -1
		   : 0;
}

void pci_dev_init(struct pci_dev *d, uint16_t vendor, uint16_t device, uint32_t class_code,
		  uint16_t subsys_vendor, uint16_t subsys, uint64_t bar_size,
		  const struct pci_dev_ops *ops, void *opaque)
{
	memset(d, 0, sizeof(*d));
	le16_put(d->pd_cfg + PCI_VENDOR_ID, vendor);
	le16_put(d->pd_cfg + PCI_DEVICE_ID, device);
	d->pd_cfg[PCI_REVISION] = 1;
	d->pd_cfg[PCI_CLASS_PROG] = (uint8_t)class_code;
	d->pd_cfg[PCI_CLASS_PROG + 1] = (uint8_t)(class_code >> 8);
	d->pd_cfg[PCI_CLASS_PROG + 2] = (uint8_t)(class_code >> 16);
	le16_put(d->pd_cfg + PCI_SUBSYS_VENDOR, subsys_vendor);
	le16_put(d->pd_cfg + PCI_SUBSYS_ID, subsys);
	/* Command: memory space and bus master are the guest's to set. */
	d->pd_wmask[PCI_COMMAND] = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	d->pd_wmask[PCI_COMMAND + 1] = 0x04; /* INTx disable */
	/* BAR 0: 64-bit memory, non-prefetchable; size sets the writable address bits. */
	d->pd_bar_size = bar_size;
	d->pd_bar_reg = PCI_BAR0;
	le32_put(d->pd_cfg + PCI_BAR0, 0x4);
	uint64_t mask = ~(bar_size - 1);
	le32_put(d->pd_wmask + PCI_BAR0, (uint32_t)mask & 0xfffffff0u);
	le32_put(d->pd_wmask + PCI_BAR0 + 4, (uint32_t)(mask >> 32));
	d->pd_wmask[0x3c] = 0xff; /* interrupt line: scratch for the OS */
	d->pd_mmio = -1;
	d->pd_ops = ops;
	d->pd_opaque = opaque;
}

void pci_dev_bar_index(struct pci_dev *d, unsigned n)
{
	if (n > 4)
		return;
	uint8_t cfg[8], mask[8];
	memcpy(cfg, d->pd_cfg + d->pd_bar_reg, 8);
	memcpy(mask, d->pd_wmask + d->pd_bar_reg, 8);
	memset(d->pd_cfg + d->pd_bar_reg, 0, 8);
	memset(d->pd_wmask + d->pd_bar_reg, 0, 8);
	d->pd_bar_reg = PCI_BAR0 + 4 * n;
	memcpy(d->pd_cfg + d->pd_bar_reg, cfg, 8);
	memcpy(d->pd_wmask + d->pd_bar_reg, mask, 8);
}

unsigned pci_cap_add(struct pci_dev *d, const uint8_t *cap, unsigned len)
{
	unsigned off = d->pd_cap_end ? d->pd_cap_end : PCI_CAP_START;
	if (len < 2 || off + len > PCI_CFG_SIZE)
		return 0;
	memcpy(d->pd_cfg + off, cap, len);
	d->pd_cfg[off + 1] = 0;
	if (d->pd_cap_last)
		d->pd_cfg[d->pd_cap_last + 1] = (uint8_t)off;
	else
		d->pd_cfg[PCI_CAP_PTR] = (uint8_t)off;
	d->pd_cfg[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->pd_cap_last = (uint8_t)off;
	d->pd_cap_end = (off + len + 3) & ~3u;
	return off;
}

static uint64_t bar_programmed(const struct pci_dev *d)
{
	return (le32_get(d->pd_cfg + d->pd_bar_reg) & ~0xfull) |
	       (uint64_t)le32_get(d->pd_cfg + d->pd_bar_reg + 4) << 32;
}

/* Re-evaluates where the BAR decodes after a command or BAR write. */
static void bar_update(struct pci_dev *d)
{
	uint64_t addr = bar_programmed(d);
	bool on = (d->pd_cfg[PCI_COMMAND] & PCI_COMMAND_MEMORY) && addr &&
		  addr + d->pd_bar_size > addr && addr + d->pd_bar_size <= (1ull << 40);
	uint64_t want = on ? addr : 0;
	if (want == d->pd_bar_addr)
		return;
	if (mmio_move(d->pd_bus->pb_mmio, d->pd_mmio, want, want ? d->pd_bar_size : 0) < 0) {
		/* overlapping another range: do not decode, not even where it was */
		want = 0;
		mmio_move(d->pd_bus->pb_mmio, d->pd_mmio, 0, 0);
	}
	if (want != d->pd_bar_addr) {
		d->pd_bar_addr = want;
		if (d->pd_ops->bar_moved)
			d->pd_ops->bar_moved(d, want);
	}
}

int pci_add(struct pci_bus *b, struct pci_dev *d)
{
	unsigned slot = 0;
	while (slot < PCI_SLOTS && b->pb_devs[slot])
		slot++;
	uint64_t base = (b->pb_next_bar + d->pd_bar_size - 1) & ~(d->pd_bar_size - 1);
	if (slot == PCI_SLOTS || base + d->pd_bar_size > ACPI_PCI_MMIO_BASE + ACPI_PCI_MMIO_SIZE)
		return -1;
	d->pd_bus = b;
	d->pd_slot = slot;
	d->pd_mmio = mmio_register(b->pb_mmio, 0, 0, bar_access, d);
	if (d->pd_mmio < 0)
		return -1;
	b->pb_next_bar = base + d->pd_bar_size;
	le32_put(d->pd_cfg + d->pd_bar_reg, (uint32_t)base | 0x4);
	le32_put(d->pd_cfg + d->pd_bar_reg + 4, (uint32_t)(base >> 32));
	b->pb_devs[slot] = d;
	return 0;
}

void pci_ecam_access(void *opaque, uint64_t off, uint8_t *data, unsigned size, bool write)
{
	struct pci_bus *b = opaque;
	unsigned bus = (unsigned)(off >> 20), slot = (unsigned)(off >> 15) & 31;
	unsigned fn = (unsigned)(off >> 12) & 7, reg = (unsigned)off & 0xfff;
	struct pci_dev *d = bus == 0 && fn == 0 ? b->pb_devs[slot] : NULL;
	if (!d || (size != 1 && size != 2 && size != 4) || (reg & (size - 1))) {
		if (!write)
			memset(data, 0xff, size);
		return;
	}
	if (reg >= PCI_CFG_SIZE) { /* no extended capabilities */
		if (!write)
			memset(data, 0, size);
		return;
	}
	pthread_mutex_lock(&b->pb_lock);
	if (!write) {
		memcpy(data, d->pd_cfg + reg, size);
	} else {
		for (unsigned i = 0; i < size; i++) {
			uint8_t m = d->pd_wmask[reg + i];
			d->pd_cfg[reg + i] = (uint8_t)((d->pd_cfg[reg + i] & ~m) | (data[i] & m));
		}
		if (reg < d->pd_bar_reg + 8 && reg + size > PCI_COMMAND)
			bar_update(d);
		if (d->pd_ops->cfg_written)
			d->pd_ops->cfg_written(d, reg, size);
	}
	pthread_mutex_unlock(&b->pb_lock);
}
