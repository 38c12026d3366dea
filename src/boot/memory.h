/* Guest physical memory: one memfd (so cards can map it later), mapped once in this
 * process and split around the 32-bit PCI hole.
 *
 * Layout: RAM [0, low) with low = min(size, MEM_HOLE_START), and, for guests larger
 * than that, RAM [4 GiB, 4 GiB + size - low). gpa_ptr() is the only way to reach guest
 * memory: it returns NULL unless the whole range [gpa, gpa + len) is RAM in one region and
 * touches no hole (memory donated to an enclave: not mapped in this process meanwhile).
 */
#ifndef NITRO_BOOT_MEMORY_H
#define NITRO_BOOT_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MEM_HOLE_START 0xc0000000ull /* 3 GiB: the 32-bit PCI hole up to 4 GiB */
#define MEM_HIGH_START 0x100000000ull
#define MEM_MIN (64ull << 20)
#define MEM_MAX (1ull << 40)

struct mem_region {
	uint64_t mr_gpa;
	uint64_t mr_size;
	uint64_t mr_offset; /* offset in the mapping gm_base (the memfd offset without pieces) */
};

/* An enclave's RAM (mem_map_pieces): ranges of a memfd that belongs to another VM, mapped
 * one after the other at gm_base (mp_map: offset there; mp_fd_off: offset in the memfd). */
#define MEM_MAX_PIECES 256
struct mem_piece {
	uint64_t mp_map;
	uint64_t mp_fd_off;
	uint64_t mp_size;
};

/* Guest-physical ranges withheld from this process's own accesses (a parent's memory
 * donated to its enclaves, src/hv/enclave.c): sorted, not overlapping, not touching,
 * immutable once published with mem_set_holes. */
struct mem_hole {
	uint64_t gpa, size;
};
struct mem_holes {
	unsigned n;
	struct mem_hole h[];
};

struct guest_mem {
	int gm_fd;	  /* memfd; -1 for a test layout with no backing */
	uint8_t *gm_base; /* mapping of the whole memfd, or of the pieces one after the other */
	uint64_t gm_size; /* total RAM */
	unsigned gm_nregions;
	struct mem_region gm_regions[2];
	unsigned gm_npieces; /* 0: gm_base maps the memfd from offset 0 */
	struct mem_piece gm_pieces[MEM_MAX_PIECES];
	const struct mem_holes *gm_holes; /* NULL: none; atomic (mem_set_holes) */
};

/* A range of guest RAM as a vhost-user memory table entry needs it: contiguous in guest
 * physical space, in this process's mapping and in the memfd. */
struct mem_fd_region {
	uint64_t gpa, size;
	uint8_t *host;
	uint64_t fd_off;
};

/* Computes the region layout only (no memfd, no mapping): for unit tests and e820. */
void mem_layout(struct guest_mem *m, uint64_t size);
/* Creates the memfd (sealed against shrinking and growing) and maps it; returns 0 or an
 * errno value. */
int mem_create(struct guest_mem *m, uint64_t size);
/* An enclave's RAM: the pieces (memfd offset and size each, page aligned, in this order)
 * of memfd fd, laid out from guest-physical 0 as mem_layout(their total) lays out RAM (the
 * same PCI hole), each piece mapped MAP_SHARED from the memfd at its place (the same
 * pages, no copy). Keeps fd (closed by mem_destroy). 0, or an errno value: EINVAL for no
 * piece, more than MEM_MAX_PIECES, a misaligned or empty piece, a total under MEM_MIN or
 * over MEM_MAX, or a piece past the end of the memfd (ENXIO). */
int mem_map_pieces(struct guest_mem *m, int fd, const struct mem_piece *pieces, unsigned n);
/* Checks pieces as mem_map_pieces does, against a memfd of fd_size bytes, and fills the
 * layout (mp_map set; no mapping). For the unit tests and mem_map_pieces. */
int mem_layout_pieces(struct guest_mem *m, const struct mem_piece *pieces, unsigned n,
		      uint64_t fd_size);
/* The memory as up to max ranges contiguous in guest-physical space, mapping and memfd (a
 * region of the plain layout, or a piece cut at the PCI hole), without the holes; returns
 * how many, or -1 when more than max are needed. */
int mem_fd_regions(const struct guest_mem *m, struct mem_fd_region *out, unsigned max);
void mem_destroy(struct guest_mem *m);
/* A pointer to [gpa, gpa + len) in this process's mapping, or NULL unless it is RAM in one
 * region and touches no hole. */
void *gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

/* The holes from n ranges in any order (sorted, overlapping and touching ones merged;
 * empty ones dropped): malloc'd, or NULL when out of memory. Pure. */
struct mem_holes *mem_holes_make(const struct mem_hole *h, unsigned n);
/* Whether [gpa, gpa + len) touches a hole of h (NULL: none). */
bool mem_holes_touch(const struct mem_holes *h, uint64_t gpa, uint64_t len);
/* Publishes h (or NULL) for every later gpa_ptr and mem_fd_regions, on any thread; the
 * caller keeps h alive until no thread can still be using it. */
void mem_set_holes(struct guest_mem *m, const struct mem_holes *h);
const struct mem_holes *mem_get_holes(const struct guest_mem *m);

#endif
