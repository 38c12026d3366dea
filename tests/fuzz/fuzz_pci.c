/* libFuzzer target for the PCI host bridge and MMIO bus (src/hv/pci.c, src/hv/mmio.c):
 * one bus with one plain device (two capabilities, a 4 KiB BAR 0), driven by a sequence
 * of config space accesses through pci_ecam_access and of MMIO accesses around the BAR.
 *
 * Input: records of 8 bytes: op, offset (2 bytes), value (4 bytes), one spare byte
 * used as the high BAR dword for BAR writes. op bit 0: 0 = ECAM, 1 = MMIO; bits 1-2:
 * size 1, 2, 4 or 8; bit 3: write; bits 4-5 (MMIO): address base (0 = where the BAR
 * decodes now, 1 = where it is programmed, 2 = where it last decoded, 3 = ECAM).
 * ECAM offsets: reg = offset & 0xfff, slot = bit 12 (slot 1 is empty), function = bit 13.
 *
 * Invariants: BAR 0 decodes exactly where the header says it should (memory bit set,
 * address non-zero, below 1 TiB, not over ECAM); bar_access is reached only while the
 * memory bit is set, only at the address the BAR decodes at, never past the BAR; reads
 * of an empty slot or another function are all ones; ids never change; the capability
 * list stays intact.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "hv/acpi.h"
#include "hv/mmio.h"
#include "hv/pci.h"
#include "lib/le.h"

#define BAR_SZ 0x1000ull

static struct mmio_bus mmio;
static struct pci_bus bus;
static struct pci_dev dev;
static uint64_t cur_addr; /* the MMIO address being accessed */
static unsigned bar_calls;
static uint64_t moved_to;    /* last bar_moved argument */
static uint64_t last_decode; /* the last non-zero place the BAR decoded at */

static void f_bar_access(struct pci_dev *d, uint64_t off, uint8_t *data, unsigned size, bool write)
{
	CHECK(d == &dev);
	CHECK(size <= 8);
	CHECK(off < BAR_SZ && size <= BAR_SZ - off);
	CHECK(d->pd_cfg[PCI_COMMAND] & PCI_COMMAND_MEMORY);
	CHECK(d->pd_bar_addr != 0);
	CHECK(cur_addr == d->pd_bar_addr + off);
	if (!write)
		memset(data, 0x5a, size);
	bar_calls++;
}

static void f_bar_moved(struct pci_dev *d, uint64_t addr)
{
	CHECK(d == &dev);
	CHECK(addr == 0 || (d->pd_cfg[PCI_COMMAND] & PCI_COMMAND_MEMORY));
	moved_to = addr;
	if (addr)
		last_decode = addr;
}

static const struct pci_dev_ops f_ops = {
    .bar_access = f_bar_access,
    .bar_moved = f_bar_moved,
};

static uint64_t programmed(void)
{
	return (le32_get(dev.pd_cfg + PCI_BAR0) & ~0xfull) |
	       (uint64_t)le32_get(dev.pd_cfg + PCI_BAR0 + 4) << 32;
}

static uint64_t expected_decode(void)
{
	uint64_t a = programmed();
	if (!(dev.pd_cfg[PCI_COMMAND] & PCI_COMMAND_MEMORY) || !a || a > (1ull << 40) - BAR_SZ)
		return 0;
	if (a < ACPI_PCI_ECAM_BASE + ACPI_PCI_ECAM_SIZE && ACPI_PCI_ECAM_BASE < a + BAR_SZ)
		return 0;
	return a;
}

static void reset(void)
{
	static const uint8_t cap1[8] = {0x09, 0, 8, 1, 2, 3, 4, 5};
	static const uint8_t cap2[12] = {0x11, 0, 3, 0, 0, 0x40, 0, 0, 0, 0x50, 0, 0};
	mmio_init(&mmio);
	CHECK(pci_init(&bus, &mmio) == 0);
	pci_dev_init(&dev, 0x1af4, 0x1042, 0x010000, 0x1af4, 0x42, BAR_SZ, &f_ops, NULL);
	CHECK(pci_cap_add(&dev, cap1, sizeof(cap1)) == 0x40);
	CHECK(pci_cap_add(&dev, cap2, sizeof(cap2)) == 0x48);
	dev.pd_wmask[0x48 + 3] = 0xc0; /* MSI-X enable and mask-all, like virtio_pci */
	CHECK(pci_add(&bus, &dev) == 0);
	bar_calls = 0;
	moved_to = last_decode = 0;
}

static void check_state(void)
{
	CHECK(le16_get(dev.pd_cfg + PCI_VENDOR_ID) == 0x1af4);
	CHECK(le16_get(dev.pd_cfg + PCI_DEVICE_ID) == 0x1042);
	CHECK(dev.pd_cfg[PCI_CAP_PTR] == 0x40 && dev.pd_cfg[0x41] == 0x48 && dev.pd_cfg[0x49] == 0);
	CHECK(dev.pd_cfg[PCI_STATUS] & PCI_STATUS_CAP_LIST);
	CHECK((dev.pd_cfg[PCI_BAR0] & 0xf) == 0x4);
	CHECK((le32_get(dev.pd_cfg + PCI_BAR0) & (BAR_SZ - 1) & ~0xfull) == 0);
	uint64_t want = expected_decode();
	CHECK(dev.pd_bar_addr == want);
	CHECK(moved_to == want);
	/* It decodes there, over its whole length. */
	uint8_t d[8];
	unsigned calls = bar_calls;
	if (want) {
		cur_addr = want + BAR_SZ - 4;
		CHECK(mmio_access(&mmio, cur_addr, d, 4, false));
		CHECK(bar_calls == calls + 1);
		cur_addr = want;
		CHECK(mmio_access(&mmio, cur_addr, d, 1, false));
		CHECK(bar_calls == calls + 2);
	}
	/* Not where it decoded before (bar_access checks the address). */
	if (last_decode && last_decode != want) {
		cur_addr = last_decode;
		mmio_access(&mmio, cur_addr, d, 4, false);
	}
	cur_addr = programmed();
	mmio_access(&mmio, cur_addr, d, 4, false);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned sizes[4] = {1, 2, 4, 8};
	reset();
	for (size_t i = 0; i + 8 <= size && i < 8 * 512; i += 8) {
		const uint8_t *r = data + i;
		unsigned op = r[0], sz = sizes[(op >> 1) & 3];
		bool write = op & 8;
		uint16_t off16 = le16_get(r + 1);
		uint8_t buf[16];
		memset(buf, 0xcc, sizeof(buf));
		memcpy(buf, r + 3, 4);
		buf[4] = r[7];
		if (!(op & 1)) {
			unsigned reg = off16 & 0xfff, slot = (off16 >> 12) & 1,
				 fn = (off16 >> 13) & 1;
			uint64_t off = (uint64_t)slot << 15 | fn << 12 | reg;
			uint8_t before[PCI_CFG_SIZE];
			memcpy(before, dev.pd_cfg, sizeof(before));
			pci_ecam_access(&bus, off, buf, sz, write);
			for (unsigned k = 8; k < sizeof(buf); k++)
				CHECK(buf[k] == 0xcc); /* never past the access */
			unsigned n = sz > 4 ? 4 : sz;
			if (!write && sz == 8) {
				/* No such config access: all ones, or (as now) one of 4 bytes. */
				bool ones = true;
				for (unsigned k = 0; k < 8; k++)
					ones = ones && buf[k] == 0xff;
				CHECK(ones || slot || fn || (reg & 3) || reg >= PCI_CFG_SIZE ||
				      memcmp(buf, dev.pd_cfg + reg, 4) == 0);
			} else if (!write) {
				if (slot || fn || (reg & (n - 1)))
					for (unsigned k = 0; k < n; k++)
						CHECK(buf[k] == 0xff);
				else if (reg >= PCI_CFG_SIZE)
					for (unsigned k = 0; k < n; k++)
						CHECK(buf[k] == 0);
				else
					CHECK(memcmp(buf, dev.pd_cfg + reg, n) == 0);
			} else {
				/* Only writable bits change. */
				for (unsigned k = 0; k < PCI_CFG_SIZE; k++)
					CHECK(((before[k] ^ dev.pd_cfg[k]) & ~dev.pd_wmask[k]) ==
					      0);
				if (slot || fn || (reg & (n - 1)) || reg >= PCI_CFG_SIZE)
					CHECK(memcmp(before, dev.pd_cfg, sizeof(before)) == 0);
			}
		} else {
			uint64_t base;
			switch ((op >> 4) & 3) {
			case 0:
				base = dev.pd_bar_addr;
				break;
			case 1:
				base = programmed();
				break;
			case 2:
				base = last_decode;
				break;
			default:
				base = ACPI_PCI_ECAM_BASE;
				break;
			}
			cur_addr = base + off16 - 0x100;
			unsigned calls = bar_calls;
			bool hit = mmio_access(&mmio, cur_addr, buf, sz, write);
			bool in_bar = dev.pd_bar_addr && cur_addr >= dev.pd_bar_addr &&
				      cur_addr - dev.pd_bar_addr < BAR_SZ &&
				      sz <= BAR_SZ - (cur_addr - dev.pd_bar_addr);
			CHECK(bar_calls == calls + (in_bar ? 1u : 0u));
			if (in_bar)
				CHECK(hit);
			if (!hit && !write)
				for (unsigned k = 0; k < sz; k++)
					CHECK(buf[k] == 0xff);
		}
		check_state();
	}
	return 0;
}
