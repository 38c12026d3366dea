/* The Nitro Enclaves PCI device: BAR 3 registers, MSI-X, commands through ne_cmd.c. */
#include "hv/ne_pci.h"

#include <string.h>

#include "lib/le.h"
#include "lib/util.h"

#define PCI_CAP_ID_MSIX 0x11
#define MSIX_ENABLE 0x8000
#define MSIX_MASKALL 0x4000
#define MSIX_ENTRY_MASKED 1u /* vector control, bit 0 */

/* ---- MSI-X ---- */

static uint16_t msix_ctl(const struct ne_dev *d)
{
	return le16_get(d->nd_pci.pd_cfg + d->nd_msix_cap + 2);
}

static bool vector_masked(const struct ne_dev *d, unsigned v)
{
	uint16_t ctl = msix_ctl(d);
	return !(ctl & MSIX_ENABLE) || (ctl & MSIX_MASKALL) ||
	       (le32_get(d->nd_msix_table + v * 16 + 12) & MSIX_ENTRY_MASKED);
}

static void send_msi(struct ne_dev *d, unsigned v)
{
	const uint8_t *e = d->nd_msix_table + v * 16;
	d->nd_msis[v]++;
	if (d->nd_vm && d->nd_vm->vm_fd >= 0)
		vm_signal_msi(d->nd_vm, le64_get(e), le32_get(e + 8));
}

static void raise_vector(struct ne_dev *d, unsigned v)
{
	if (vector_masked(d, v))
		d->nd_pba |= (uint8_t)(1u << v);
	else
		send_msi(d, v);
}

/* After a change of a mask: what is pending and no longer masked goes out. */
static void deliver_pending(struct ne_dev *d)
{
	for (unsigned v = 0; v < NE_VECTORS; v++)
		if ((d->nd_pba & (1u << v)) && !vector_masked(d, v)) {
			d->nd_pba &= (uint8_t) ~(1u << v);
			send_msi(d, v);
		}
}

/* ---- registers ---- */

static void regs_image(const struct ne_dev *d, uint8_t *r)
{
	memset(r, 0, NE_R_END);
	r[NE_R_ENABLE] = d->nd_enable;
	le16_put(r + NE_R_VERSION, d->nd_version);
	le32_put(r + NE_R_EVTCNT, (uint32_t)d->nd_replies | (uint32_t)d->nd_events << 16);
	memcpy(r + NE_R_SEND, d->nd_send, NE_DATA_SIZE);
	memcpy(r + NE_R_RECV, d->nd_recv, NE_DATA_SIZE);
}

static void command(struct ne_dev *d, uint32_t type)
{
	if (!d->nd_enable)
		return;
	ne_cmd_handle(&d->nd_cmd, type, d->nd_send, d->nd_recv);
	d->nd_replies++;
	raise_vector(d, NE_VEC_REPLY);
}

static void reg_write(struct ne_dev *d, unsigned off, const uint8_t *data, unsigned size)
{
	if (off >= NE_R_SEND && off < NE_R_SEND + NE_DATA_SIZE) {
		unsigned n = NE_R_SEND + NE_DATA_SIZE - off;
		memcpy(d->nd_send + (off - NE_R_SEND), data, size < n ? size : n);
		return;
	}
	if (off == NE_R_ENABLE && size == 1) {
		if (data[0] == 0) {
			ne_cmd_reset(&d->nd_cmd);
			d->nd_enable = 0;
		} else if (data[0] == 1 && d->nd_version == 1) {
			d->nd_enable = 1;
		}
	} else if (off == NE_R_VERSION && size == 2) {
		d->nd_version = le16_get(data) == 1 ? 1 : 0;
	} else if (off == NE_R_COMMAND && size == 4) {
		command(d, le32_get(data));
	}
}

void ne_pci_bar_access(struct ne_dev *d, uint64_t off, uint8_t *data, unsigned size, bool write)
{
	pthread_mutex_lock(&d->nd_lock);
	if (size == 0 || size > 8 || off >= NE_BAR_SIZE || size > NE_BAR_SIZE - off) {
		if (!write)
			memset(data, 0xff, size > 8 ? 8 : size);
	} else if (off < NE_R_END) {
		if (write) {
			reg_write(d, (unsigned)off, data, size);
		} else {
			uint8_t r[NE_R_END + 8];
			regs_image(d, r);
			memset(r + NE_R_END, 0, 8);
			memcpy(data, r + off, size);
		}
	} else if (off >= NE_OFF_MSIX && off + size <= NE_OFF_MSIX + sizeof(d->nd_msix_table)) {
		unsigned o = (unsigned)(off - NE_OFF_MSIX);
		if (write) {
			memcpy(d->nd_msix_table + o, data, size);
			deliver_pending(d);
		} else {
			memcpy(data, d->nd_msix_table + o, size);
		}
	} else if (off >= NE_OFF_PBA && off + size <= NE_OFF_PBA + 8) {
		if (!write) {
			uint8_t pba[8] = {d->nd_pba};
			memcpy(data, pba + (off - NE_OFF_PBA), size);
		}
	} else if (!write) {
		memset(data, 0, size);
	}
	pthread_mutex_unlock(&d->nd_lock);
}

static void bar_access(struct pci_dev *p, uint64_t off, uint8_t *data, unsigned size, bool write)
{
	ne_pci_bar_access(p->pd_opaque, off, data, size, write);
}

/* Called under the bus lock after a config write: MSI-X enable or mask-all changed. */
static void cfg_written(struct pci_dev *p, unsigned off, unsigned size)
{
	struct ne_dev *d = p->pd_opaque;
	if (off < d->nd_msix_cap + 4 && off + size > d->nd_msix_cap + 2) {
		pthread_mutex_lock(&d->nd_lock);
		deliver_pending(d);
		pthread_mutex_unlock(&d->nd_lock);
	}
}

static const struct pci_dev_ops ne_ops = {
    .bar_access = bar_access,
    .cfg_written = cfg_written,
};

int ne_pci_create(struct ne_dev *d, struct vm *vm, struct pci_bus *bus, char *err, size_t errlen)
{
	memset(d, 0, sizeof(*d));
	pthread_mutex_init(&d->nd_lock, NULL);
	d->nd_vm = vm;
	struct ne_mem_range ram[2];
	unsigned nram = vm->vm_mem.gm_nregions > 2 ? 2 : vm->vm_mem.gm_nregions;
	for (unsigned i = 0; i < nram; i++)
		ram[i] = (struct ne_mem_range){.gpa = vm->vm_mem.gm_regions[i].mr_gpa,
					       .size = vm->vm_mem.gm_regions[i].mr_size};
	ne_cmd_init(&d->nd_cmd, vm->vm_ncpus, ram, nram);
	pci_dev_init(&d->nd_pci, NE_PCI_VENDOR, NE_PCI_DEVICE, NE_PCI_CLASS, NE_PCI_VENDOR,
		     NE_PCI_DEVICE, NE_BAR_SIZE, &ne_ops, d);
	pci_dev_bar_index(&d->nd_pci, NE_PCI_BAR);
	uint8_t msix[12] = {PCI_CAP_ID_MSIX, 0};
	le16_put(msix + 2, NE_VECTORS - 1);
	le32_put(msix + 4, NE_OFF_MSIX | NE_PCI_BAR);
	le32_put(msix + 8, NE_OFF_PBA | NE_PCI_BAR);
	d->nd_msix_cap = pci_cap_add(&d->nd_pci, msix, sizeof(msix));
	if (!d->nd_msix_cap)
		RETURN_ERR(-1, "enclaves device: no room for its MSI-X capability");
	d->nd_pci.pd_wmask[d->nd_msix_cap + 3] = (MSIX_ENABLE | MSIX_MASKALL) >> 8;
	/* Every vector starts masked (PCI spec). */
	for (unsigned v = 0; v < NE_VECTORS; v++)
		le32_put(d->nd_msix_table + v * 16 + 12, MSIX_ENTRY_MASKED);
	if (pci_add(bus, &d->nd_pci) < 0)
		RETURN_ERR(-1, "enclaves device: no room on the PCI bus");
	return 0;
}

void ne_pci_set_ops(struct ne_dev *d, const struct ne_ops *ops)
{
	pthread_mutex_lock(&d->nd_lock);
	ne_cmd_set_ops(&d->nd_cmd, ops);
	pthread_mutex_unlock(&d->nd_lock);
}

void ne_pci_shutdown(struct ne_dev *d)
{
	pthread_mutex_lock(&d->nd_lock);
	ne_cmd_reset(&d->nd_cmd);
	pthread_mutex_unlock(&d->nd_lock);
}

void ne_enclave_exited(struct ne_dev *d, uint64_t slot_uid)
{
	pthread_mutex_lock(&d->nd_lock);
	if (ne_cmd_exited(&d->nd_cmd, slot_uid)) {
		d->nd_events++;
		raise_vector(d, NE_VEC_EVENT);
	}
	pthread_mutex_unlock(&d->nd_lock);
}
