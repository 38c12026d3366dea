/* The hostile guest drivers' PCI and memory helpers (guest_pci.h). */
#include "guest_pci.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/pci_regs.h>

volatile uint8_t *bar;

void fail(const char *what)
{
	printf("%s: %s: %s\n", program_invocation_short_name, what,
	       errno ? strerror(errno) : "unexpected");
	exit(1);
}

double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t phys_of(void *p)
{
	int fd = open("/proc/self/pagemap", O_RDONLY);
	uint64_t e = 0;
	if (fd < 0 || pread(fd, &e, 8, (off_t)((uintptr_t)p / 4096 * 8)) != 8)
		fail("pagemap");
	close(fd);
	if (!(e >> 63) || !(e & ((1ull << 55) - 1)))
		fail("pagemap: page not present or PFN hidden");
	return (e & ((1ull << 55) - 1)) * 4096;
}

void *locked_page(uint64_t *pa)
{
	uint8_t *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	if (p == MAP_FAILED)
		fail("mmap a locked page");
	memset(p, 0, 4096);
	*pa = phys_of(p);
	return p;
}

void pci_take(const char *sysfs_dir, size_t len)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/config", sysfs_dir);
	int cfg = open(path, O_RDWR);
	uint16_t cmd = PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER;
	if (cfg < 0 || pwrite(cfg, &cmd, 2, PCI_COMMAND) != 2)
		fail("PCI config");
	close(cfg);
	snprintf(path, sizeof(path), "%s/resource0", sysfs_dir);
	int fd = open(path, O_RDWR | O_SYNC);
	if (fd < 0)
		fail(path);
	bar = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (bar == MAP_FAILED)
		fail("mmap BAR 0");
}
