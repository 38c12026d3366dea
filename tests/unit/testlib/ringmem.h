/* Guest memory for the unit tests of split virtqueues (test_vring.c, test_nsm_card.c): a
 * region between two PROT_NONE guard pages, so that a read or write outside it crashes the
 * test, with the ring laid out at its start: descriptor table at base, avail ring at
 * base + 0x1000, used ring at base + 0x2000; buffers from base + 0x3000 on are the test's.
 * The test registers the region with its guest-memory table itself. Single-threaded: the
 * test plays the driver. */
#ifndef NITRO_TESTS_UNIT_TESTLIB_RINGMEM_H
#define NITRO_TESTS_UNIT_TESTLIB_RINGMEM_H

#include <stddef.h>
#include <stdint.h>

#include "cards/lib/vring.h"

#define RINGMEM_DESC 0x0
#define RINGMEM_AVAIL 0x1000
#define RINGMEM_USED 0x2000

struct ringmem {
	uint8_t *res; /* reservation: guard page, region, guard page */
	uint8_t *mem; /* the region, size bytes, guest-physical base */
	size_t size;
	uint64_t base;
	unsigned qsz; /* the ring's size, for make-available */
	struct virtq_desc *desc;
	struct virtq_avail *avail;
	struct virtq_used *used;
};

/* Maps size bytes (a multiple of the page size, at least 0x3000) at guest-physical base for a
 * ring of qsz entries, all zero: 0, or -1 with errno. */
int ringmem_map(struct ringmem *r, uint64_t base, size_t size, unsigned qsz);
void ringmem_unmap(struct ringmem *r);

/* Where guest-physical gpa (inside the region) is in this process. */
void *ringmem_host(const struct ringmem *r, uint64_t gpa);

/* The driver makes head available: the avail ring's next entry, then its index (release). */
void ringmem_make_avail(struct ringmem *r, uint16_t head);

#endif
