/* A hostile guest driver, run as root inside a stock guest (tests/system/test_hostile.py):
 * it takes a virtio-blk PCI device away from the kernel's driver, drives it from user
 * space through the device's sysfs BAR and a ring in its own locked page (physical address
 * from /proc/self/pagemap), and then posts a descriptor chain that points outside guest
 * RAM. A correct card fails that queue without touching anything, and nitro-hv then shows
 * NEEDS_RESET in the device status; after a reset the device serves valid requests again.
 *
 * usage: hostile-vq PCI-SYSFS-DIR   (e.g. /sys/bus/pci/devices/0000:00:01.0)
 * Prints one line per step; exits 0 when every step saw what it expected.
 * BAR 0 layout is nitro-hv's (src/hv/virtio_pci.h): common config at 0x0, notify at
 * 0x3000 with a multiplier of 4.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest_pci.h"

#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

/* common config offsets, device status bits, descriptor flags */
#define C_DFSELECT VIRTIO_PCI_COMMON_DFSELECT
#define C_GFSELECT VIRTIO_PCI_COMMON_GFSELECT
#define C_GF VIRTIO_PCI_COMMON_GF
#define C_STATUS VIRTIO_PCI_COMMON_STATUS
#define C_QSEL VIRTIO_PCI_COMMON_Q_SELECT
#define C_QSIZE VIRTIO_PCI_COMMON_Q_SIZE
#define C_QENABLE VIRTIO_PCI_COMMON_Q_ENABLE
#define C_QDESC VIRTIO_PCI_COMMON_Q_DESCLO
#define C_QDRIVER VIRTIO_PCI_COMMON_Q_AVAILLO
#define C_QDEVICE VIRTIO_PCI_COMMON_Q_USEDLO
#define OFF_NOTIFY 0x3000

#define S_ACK VIRTIO_CONFIG_S_ACKNOWLEDGE
#define S_DRIVER VIRTIO_CONFIG_S_DRIVER
#define S_DRIVER_OK VIRTIO_CONFIG_S_DRIVER_OK
#define S_FEATURES_OK VIRTIO_CONFIG_S_FEATURES_OK
#define S_NEEDS_RESET VIRTIO_CONFIG_S_NEEDS_RESET

#define QSIZE 8
#define D_NEXT VRING_DESC_F_NEXT
#define D_WRITE VRING_DESC_F_WRITE

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};

static uint8_t *page;	 /* the ring and the buffers, one locked page */
static uint64_t page_pa; /* its guest-physical address */
static uint16_t avail_idx;

/* Page layout: descriptors 0x000, avail 0x100, used 0x200, request header 0x400, status
 * 0x480, data 0x800 (512 bytes). */
static void init_device(void)
{
	w8(C_STATUS, 0);
	for (int i = 0; i < 1000 && r8(C_STATUS) != 0; i++)
		usleep(1000);
	if (r8(C_STATUS) != 0)
		fail("reset did not complete");
	memset(page, 0, 4096);
	avail_idx = 0;
	w8(C_STATUS, S_ACK | S_DRIVER);
	w32(C_GFSELECT, 0);
	w32(C_GF, 0);
	w32(C_GFSELECT, 1);
	w32(C_GF, 1u << (VIRTIO_F_VERSION_1 - 32));
	w8(C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
	if (!(r8(C_STATUS) & S_FEATURES_OK))
		fail("FEATURES_OK refused");
	w16(C_QSEL, 0);
	w16(C_QSIZE, QSIZE);
	w64(C_QDESC, page_pa);
	w64(C_QDRIVER, page_pa + 0x100);
	w64(C_QDEVICE, page_pa + 0x200);
	w16(C_QENABLE, 1);
	w8(C_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	if (r8(C_STATUS) & S_NEEDS_RESET)
		fail("NEEDS_RESET right after DRIVER_OK");
}

/* Posts a read of sector 0 whose header lies at hdr_pa; returns when the used index moved
 * (1) or after timeout seconds (0). */
static int post_read(uint64_t hdr_pa, double timeout)
{
	struct desc *d = (struct desc *)page;
	volatile uint16_t *avail = (uint16_t *)(page + 0x100);
	volatile uint16_t *used_idx = (uint16_t *)(page + 0x202);
	uint8_t *hdr = page + 0x400;
	memset(hdr, 0, 16); /* type IN, sector 0 */
	page[0x480] = 0xff;
	d[0] = (struct desc){hdr_pa, 16, D_NEXT, 1};
	d[1] = (struct desc){page_pa + 0x800, 512, D_NEXT | D_WRITE, 2};
	d[2] = (struct desc){page_pa + 0x480, 1, D_WRITE, 0};
	uint16_t before = *used_idx;
	avail[2 + avail_idx % QSIZE] = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail[1] = ++avail_idx;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	w16(OFF_NOTIFY, 0);
	for (double end = now() + timeout; now() < end;) {
		if (*used_idx != before)
			return 1;
		usleep(1000);
	}
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc != 2) {
		fprintf(stderr, "usage: hostile-vq PCI-SYSFS-DIR\n");
		return 2;
	}
	pci_take(argv[1], 0x8000);
	page = locked_page(&page_pa);
	init_device();
	if (!post_read(page_pa + 0x400, 5) || page[0x480] != 0)
		fail("a valid read before the attack did not complete");
	printf("valid read: %.16s\n", (char *)page + 0x800);

	/* The attack: the request header lies far outside guest RAM. */
	int done = post_read(0x7fff00000000ull, 2);
	uint8_t st = 0;
	for (double end = now() + 5; now() < end && !((st = r8(C_STATUS)) & S_NEEDS_RESET);)
		usleep(1000);
	printf("hostile chain: %s, status 0x%02x%s\n", done ? "completed" : "not completed", st,
	       (st & S_NEEDS_RESET) ? " NEEDS_RESET" : "");
	if (!(st & S_NEEDS_RESET))
		return 1;

	/* A reset brings the device back. */
	init_device();
	if (!post_read(page_pa + 0x400, 5) || page[0x480] != 0)
		fail("a valid read after the reset did not complete");
	printf("after reset: %.16s\n", (char *)page + 0x800);
	return 0;
}
