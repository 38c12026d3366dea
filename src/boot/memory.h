/* Guest physical memory: one memfd (so cards can map it later), mapped once in this
 * process and split around the 32-bit PCI hole.
 *
 * Layout: RAM [0, low) with low = min(size, MEM_HOLE_START), and, for guests larger
 * than that, RAM [4 GiB, 4 GiB + size - low). gpa_ptr() is the only way to reach guest
 * memory: it returns NULL unless the whole range [gpa, gpa + len) is RAM in one region.
 */
#ifndef NITRO_BOOT_MEMORY_H
#define NITRO_BOOT_MEMORY_H

#include <stddef.h>
#include <stdint.h>

#define MEM_HOLE_START 0xc0000000ull /* 3 GiB: the 32-bit PCI hole up to 4 GiB */
#define MEM_HIGH_START 0x100000000ull
#define MEM_MIN (64ull << 20)
#define MEM_MAX (1ull << 40)

struct mem_region {
	uint64_t mr_gpa;
	uint64_t mr_size;
	uint64_t mr_offset; /* offset in the memfd */
};

struct guest_mem {
	int gm_fd;         /* memfd; -1 for a test layout with no backing */
	uint8_t *gm_base;  /* mapping of the whole memfd */
	uint64_t gm_size;  /* total RAM */
	unsigned gm_nregions;
	struct mem_region gm_regions[2];
};

/* Computes the region layout only (no memfd, no mapping): for unit tests and e820. */
void mem_layout(struct guest_mem *m, uint64_t size);
/* Creates the memfd (sealed against shrinking and growing) and maps it; returns 0 or an
 * errno value. */
int mem_create(struct guest_mem *m, uint64_t size);
void mem_destroy(struct guest_mem *m);
void *gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

#endif
