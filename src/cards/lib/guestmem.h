/* The guest memory table a vhost-user back-end receives in SET_MEM_TABLE: up to
 * GM_MAX_REGIONS regions, each mapped MAP_SHARED from the frontend's fd.
 *
 * gm_gpa() (guest-physical) and gm_uva() (frontend virtual, for ring addresses) are the
 * only ways to reach guest memory: each returns NULL unless the whole range [addr,
 * addr + len) lies inside ONE region, with overflow-safe checks. A table that is replaced
 * or cleared is unmapped, so pointers obtained from it must not outlive it.
 */
#ifndef NITRO_CARDS_GUESTMEM_H
#define NITRO_CARDS_GUESTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 8

/* One region as the frontend describes it (the vhost-user wire layout, host order). */
struct gm_region_desc {
	uint64_t rd_gpa;
	uint64_t rd_size;
	uint64_t rd_uva;	 /* frontend virtual address */
	uint64_t rd_mmap_offset; /* offset of the region in its fd */
};

struct gm_region {
	uint64_t gr_gpa;
	uint64_t gr_size;
	uint64_t gr_uva;
	uint8_t *gr_host; /* first byte of the region in this process */
	void *gr_map;	  /* what to munmap (NULL: borrowed memory, not ours) */
	size_t gr_map_len;
};

struct gmem {
	unsigned gm_nregions;
	struct gm_region gm_regions[GM_MAX_REGIONS];
};

void gm_init(struct gmem *m);
/* Maps n regions from fds[i] and replaces the table (the old one is unmapped only on
 * success). Always takes ownership of the n fds: they are closed before returning (the
 * mappings stay). Rejects empty, overflowing and guest-physically overlapping regions,
 * fds that are not regular files (memfds are), and regions running past the end of their
 * file.
 * Returns 0 or a negative errno value with a message in err. */
int gm_set_table(struct gmem *m, const struct gm_region_desc *rd, unsigned n, const int *fds,
		 char *err, size_t errlen);
/* Adds a region backed by memory the caller owns (tests, fuzzing); never unmapped. */
int gm_add_borrowed(struct gmem *m, uint64_t gpa, uint64_t uva, void *host, uint64_t size,
		    char *err, size_t errlen);
/* Unmaps every region and empties the table. */
void gm_clear(struct gmem *m);

void *gm_gpa(const struct gmem *m, uint64_t gpa, uint64_t len);
void *gm_uva(const struct gmem *m, uint64_t uva, uint64_t len);

#endif
