/* What the hostile guest drivers (hostile_vq.c, hostile_nvme.c) share: they run as root in a
 * stock guest, take a PCI device the kernel's driver let go of, map its BAR 0 from sysfs and
 * give the device pages of their own, locked, by guest-physical address. Single-threaded;
 * any failure prints "PROGRAM: what: why" and exits 1.
 */
#ifndef NITRO_TESTS_SYSTEM_GUEST_PCI_H
#define NITRO_TESTS_SYSTEM_GUEST_PCI_H

#include <stddef.h>
#include <stdint.h>

/* BAR 0, mapped by pci_take. */
extern volatile uint8_t *bar;

/* Turns memory decoding and bus mastering on for the device at sysfs_dir
 * (e.g. /sys/bus/pci/devices/0000:00:01.0) and maps len bytes of its BAR 0 into bar. */
void pci_take(const char *sysfs_dir, size_t len);
/* A zeroed page locked in memory; *pa: its guest-physical address (/proc/self/pagemap). */
void *locked_page(uint64_t *pa);
_Noreturn void fail(const char *what);
double now(void); /* seconds, CLOCK_MONOTONIC */

static inline void w8(unsigned off, uint8_t v)
{
	*(volatile uint8_t *)(bar + off) = v;
}
static inline void w16(unsigned off, uint16_t v)
{
	*(volatile uint16_t *)(bar + off) = v;
}
static inline void w32(unsigned off, uint32_t v)
{
	*(volatile uint32_t *)(bar + off) = v;
}
static inline void w64(unsigned off, uint64_t v)
{
	w32(off, (uint32_t)v);
	w32(off + 4, (uint32_t)(v >> 32));
}
static inline uint8_t r8(unsigned off)
{
	return *(volatile uint8_t *)(bar + off);
}
static inline uint32_t r32(unsigned off)
{
	return *(volatile uint32_t *)(bar + off);
}

#endif
