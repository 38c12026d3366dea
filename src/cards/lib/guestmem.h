/* The guest memory table a vhost-user back-end receives: SET_MEM_TABLE (up to
 * GM_MAX_REGIONS regions at once) and, with VHOST_USER_PROTOCOL_F_CONFIGURE_MEM_SLOTS,
 * ADD_MEM_REG / REM_MEM_REG one region at a time (up to GM_MAX_SLOTS in all). Each region
 * is mapped MAP_SHARED from the frontend's fd, only its own pages: what is not in the
 * table is not mapped in this process.
 *
 * gm_gpa() (guest-physical) and gm_uva() (frontend virtual, for ring addresses) are the
 * only ways to reach guest memory: each returns NULL unless the whole range [addr,
 * addr + len) lies inside ONE region, with overflow-safe checks. A table that is replaced
 * or cleared, or a region that is removed, is unmapped, so pointers obtained from it must
 * not outlive it.
 *
 * Revoked memory: a region removed by gm_remove_region() is remembered (merged, up to
 * GM_MAX_REVOKED ranges; SET_MEM_TABLE and gm_clear forget them) so that gm_revoked() can
 * tell an address the frontend took away (a parent's memory donated to an enclave: the
 * request fails, the queue goes on) from one that never was guest memory (a ring
 * violation). Overlapping regions are accepted from gm_add_region only when they are the
 * same view of the same file (same file, same gpa -> offset and gpa -> uva), so that a
 * frontend can add the pieces of a region before it removes the region: every address is
 * then always in the old or the new table, never in neither.
 * Not thread-safe: one thread per table.
 */
#ifndef NITRO_CARDS_GUESTMEM_H
#define NITRO_CARDS_GUESTMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GM_MAX_REGIONS 8 /* in one SET_MEM_TABLE */
#define GM_MAX_SLOTS 512 /* in the table (GET_MAX_MEM_SLOTS) */
#define GM_MAX_REVOKED 32

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
	uint64_t gr_off;	 /* offset in its file */
	uint64_t gr_dev, gr_ino; /* the file (0, 0: borrowed memory) */
	uint8_t *gr_host;	 /* first byte of the region in this process */
	void *gr_map;		 /* what to munmap (NULL: borrowed memory, not ours) */
	size_t gr_map_len;
};

struct gm_range {
	uint64_t gpa, size;
};

struct gmem {
	unsigned gm_nregions;
	struct gm_region gm_regions[GM_MAX_SLOTS];
	unsigned gm_nrevoked;
	struct gm_range gm_revoked[GM_MAX_REVOKED];
};

void gm_init(struct gmem *m);
/* Maps n (<= GM_MAX_REGIONS) regions from fds[i] and replaces the table (the old one is
 * unmapped only on success; revoked ranges are forgotten). Always takes ownership of the n
 * fds: they are closed before returning (the mappings stay). Rejects empty, overflowing
 * and guest-physically overlapping regions, fds that are not regular files (memfds are),
 * and regions running past the end of their file.
 * Returns 0 or a negative errno value with a message in err. */
int gm_set_table(struct gmem *m, const struct gm_region_desc *rd, unsigned n, const int *fds,
		 char *err, size_t errlen);
/* ADD_MEM_REG: maps one more region from fd (always taken and closed). The checks of
 * gm_set_table; a region that overlaps one already there is accepted only as the same view
 * of the same file (see above). -E2BIG when the table is full. */
int gm_add_region(struct gmem *m, const struct gm_region_desc *rd, int fd, char *err,
		  size_t errlen);
/* REM_MEM_REG: removes and unmaps the region with exactly this gpa, size and uva, and
 * records [gpa, gpa + size) as revoked. -ENOENT when there is none. */
int gm_remove_region(struct gmem *m, uint64_t gpa, uint64_t size, uint64_t uva, char *err,
		     size_t errlen);
/* Adds a region backed by memory the caller owns (tests, fuzzing); never unmapped. */
int gm_add_borrowed(struct gmem *m, uint64_t gpa, uint64_t uva, void *host, uint64_t size,
		    char *err, size_t errlen);
/* Unmaps every region and empties the table. */
void gm_clear(struct gmem *m);

void *gm_gpa(const struct gmem *m, uint64_t gpa, uint64_t len);
void *gm_uva(const struct gmem *m, uint64_t uva, uint64_t len);
/* Whether [gpa, gpa + len) touches memory the frontend removed (gm_remove_region) and
 * that is not wholly in the table again. */
bool gm_revoked(const struct gmem *m, uint64_t gpa, uint64_t len);

#endif
