/* Guest memory: memfd-backed RAM split around the 32-bit PCI hole. */
#include "boot/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void mem_layout(struct guest_mem *m, uint64_t size)
{
	uint64_t low = size < MEM_HOLE_START ? size : MEM_HOLE_START;
	memset(m, 0, sizeof(*m));
	m->gm_fd = -1;
	m->gm_size = size;
	m->gm_regions[0] = (struct mem_region){.mr_gpa = 0, .mr_size = low, .mr_offset = 0};
	m->gm_nregions = 1;
	if (size > low) {
		m->gm_regions[1] = (struct mem_region){
		    .mr_gpa = MEM_HIGH_START, .mr_size = size - low, .mr_offset = low};
		m->gm_nregions = 2;
	}
}

int mem_create(struct guest_mem *m, uint64_t size)
{
	mem_layout(m, size);
	int fd = memfd_create("nitro-guest-ram", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return errno;
	if (ftruncate(fd, (off_t)size) < 0) {
		int e = errno;
		close(fd);
		return e;
	}
	/* Sealed at its size: no process the memfd is shared with (a card) can shrink it
	 * under the others' mappings. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		int e = errno;
		close(fd);
		return e;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (p == MAP_FAILED) {
		int e = errno;
		close(fd);
		return e;
	}
	/* Huge pages where the host allows them for shmem (shmem_enabled = advise): far
	 * fewer nested-paging faults while the guest first touches its memory. */
	madvise(p, size, MADV_HUGEPAGE);
	m->gm_fd = fd;
	m->gm_base = p;
	return 0;
}

void mem_destroy(struct guest_mem *m)
{
	if (m->gm_base)
		munmap(m->gm_base, m->gm_size);
	if (m->gm_fd >= 0)
		close(m->gm_fd);
	m->gm_base = NULL;
	m->gm_fd = -1;
}

void *gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m->gm_base)
		return NULL;
	for (unsigned i = 0; i < m->gm_nregions; i++) {
		const struct mem_region *r = &m->gm_regions[i];
		if (gpa >= r->mr_gpa && gpa - r->mr_gpa <= r->mr_size &&
		    len <= r->mr_size - (gpa - r->mr_gpa))
			return m->gm_base + r->mr_offset + (gpa - r->mr_gpa);
	}
	return NULL;
}
