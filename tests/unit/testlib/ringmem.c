/* Guarded guest memory holding a split virtqueue, for the unit tests (ringmem.h). */
#include "ringmem.h"

#include <sys/mman.h>
#include <unistd.h>

int ringmem_map(struct ringmem *r, uint64_t base, size_t size, unsigned qsz)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	r->res = mmap(NULL, size + 2 * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->res == MAP_FAILED)
		return -1;
	r->mem = r->res + page;
	if (mprotect(r->mem, size, PROT_READ | PROT_WRITE) < 0) {
		munmap(r->res, size + 2 * page);
		return -1;
	}
	r->size = size;
	r->base = base;
	r->qsz = qsz;
	r->desc = (struct virtq_desc *)(r->mem + RINGMEM_DESC);
	r->avail = (struct virtq_avail *)(r->mem + RINGMEM_AVAIL);
	r->used = (struct virtq_used *)(r->mem + RINGMEM_USED);
	return 0;
}

void ringmem_unmap(struct ringmem *r)
{
	munmap(r->res, r->size + 2 * (size_t)sysconf(_SC_PAGESIZE));
}

void *ringmem_host(const struct ringmem *r, uint64_t gpa)
{
	return r->mem + (gpa - r->base);
}

void ringmem_make_avail(struct ringmem *r, uint16_t head)
{
	struct virtq_avail *a = r->avail;
	a->ring[a->idx % r->qsz] = head;
	__atomic_store_n(&a->idx, (uint16_t)(a->idx + 1), __ATOMIC_RELEASE);
}
