/* Guest memory: memfd-backed RAM split around the 32-bit PCI hole. */
#include "boot/memory.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

int mem_layout_pieces(struct guest_mem *m, const struct mem_piece *pieces, unsigned n,
		      uint64_t fd_size)
{
	if (n == 0 || n > MEM_MAX_PIECES)
		return EINVAL;
	uint64_t total = 0;
	for (unsigned i = 0; i < n; i++) {
		const struct mem_piece *p = &pieces[i];
		if (!p->mp_size || (p->mp_size | p->mp_fd_off) & 0xfff || p->mp_size > MEM_MAX ||
		    total > MEM_MAX - p->mp_size)
			return EINVAL;
		if (p->mp_fd_off > fd_size || p->mp_size > fd_size - p->mp_fd_off)
			return ENXIO;
		total += p->mp_size;
	}
	if (total < MEM_MIN)
		return EINVAL;
	mem_layout(m, total);
	uint64_t at = 0;
	for (unsigned i = 0; i < n; i++) {
		m->gm_pieces[i] = (struct mem_piece){
		    .mp_map = at, .mp_fd_off = pieces[i].mp_fd_off, .mp_size = pieces[i].mp_size};
		at += pieces[i].mp_size;
	}
	m->gm_npieces = n;
	return 0;
}

int mem_map_pieces(struct guest_mem *m, int fd, const struct mem_piece *pieces, unsigned n)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return errno;
	int e = mem_layout_pieces(m, pieces, n, (uint64_t)st.st_size);
	if (e)
		return e;
	/* One reservation for the whole layout, then each piece mapped over its place. */
	uint8_t *base =
	    mmap(NULL, m->gm_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (base == MAP_FAILED)
		return errno;
	for (unsigned i = 0; i < n; i++) {
		const struct mem_piece *p = &m->gm_pieces[i];
		if (mmap(base + p->mp_map, p->mp_size, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, fd, (off_t)p->mp_fd_off) == MAP_FAILED) {
			e = errno;
			munmap(base, m->gm_size);
			return e;
		}
	}
	madvise(base, m->gm_size, MADV_HUGEPAGE);
	m->gm_fd = fd;
	m->gm_base = base;
	return 0;
}

/* The part [map, map + size) of the mapping in guest-physical terms: appends one entry per
 * RAM region it meets. */
static int fd_region_add(const struct guest_mem *m, uint64_t map, uint64_t size, uint64_t fd_off,
			 struct mem_fd_region *out, unsigned max, unsigned n)
{
	for (unsigned i = 0; i < m->gm_nregions; i++) {
		const struct mem_region *r = &m->gm_regions[i];
		uint64_t lo = map > r->mr_offset ? map : r->mr_offset;
		uint64_t hi =
		    map + size < r->mr_offset + r->mr_size ? map + size : r->mr_offset + r->mr_size;
		if (lo >= hi)
			continue;
		if (n >= max)
			return -1;
		out[n++] = (struct mem_fd_region){.gpa = r->mr_gpa + (lo - r->mr_offset),
						  .size = hi - lo,
						  .host = m->gm_base ? m->gm_base + lo : NULL,
						  .fd_off = fd_off + (lo - map)};
	}
	return (int)n;
}

/* The entries [0, n) of out without the holes: each cut where a hole meets it. */
static int cut_holes(const struct mem_holes *h, struct mem_fd_region *out, unsigned max, int n)
{
	if (n < 0 || !h || !h->n)
		return n;
	struct mem_fd_region *in = malloc((size_t)n * sizeof(*in));
	if (!in)
		return -1;
	memcpy(in, out, (size_t)n * sizeof(*in));
	unsigned k = 0;
	for (int i = 0; i < n; i++) {
		struct mem_fd_region e = in[i];
		uint64_t end = e.gpa + e.size;
		for (unsigned j = 0; j < h->n && e.gpa < end; j++) {
			uint64_t hs = h->h[j].gpa, he = hs + h->h[j].size;
			if (he <= e.gpa || hs >= end)
				continue;
			if (hs > e.gpa) { /* the part before the hole */
				if (k >= max)
					goto full;
				out[k] = e;
				out[k++].size = hs - e.gpa;
			}
			uint64_t skip = (he < end ? he : end) - e.gpa;
			e.gpa += skip;
			e.fd_off += skip;
			if (e.host)
				e.host += skip;
		}
		if (e.gpa < end) {
			if (k >= max)
				goto full;
			e.size = end - e.gpa;
			out[k++] = e;
		}
	}
	free(in);
	return (int)k;
full:
	free(in);
	return -1;
}

int mem_fd_regions(const struct guest_mem *m, struct mem_fd_region *out, unsigned max)
{
	if (!m->gm_npieces)
		return cut_holes(mem_get_holes(m), out, max,
				 fd_region_add(m, 0, m->gm_size, 0, out, max, 0));
	int n = 0;
	for (unsigned i = 0; i < m->gm_npieces; i++) {
		const struct mem_piece *p = &m->gm_pieces[i];
		struct mem_fd_region e[2];
		int k = fd_region_add(m, p->mp_map, p->mp_size, p->mp_fd_off, e, 2, 0);
		for (int j = 0; j < k; j++) {
			struct mem_fd_region *last = n ? &out[n - 1] : NULL;
			/* contiguous with the previous entry everywhere: one entry */
			if (last && last->gpa + last->size == e[j].gpa &&
			    last->fd_off + last->size == e[j].fd_off &&
			    (!last->host || last->host + last->size == e[j].host)) {
				last->size += e[j].size;
				continue;
			}
			if ((unsigned)n >= max)
				return -1;
			out[n++] = e[j];
		}
	}
	return cut_holes(mem_get_holes(m), out, max, n);
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

static int cmp_hole(const void *a, const void *b)
{
	const struct mem_hole *x = a, *y = b;
	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

struct mem_holes *mem_holes_make(const struct mem_hole *h, unsigned n)
{
	struct mem_holes *r = malloc(sizeof(*r) + (size_t)n * sizeof(r->h[0]) + 1);
	if (!r)
		return NULL;
	r->n = 0;
	for (unsigned i = 0; i < n; i++)
		if (h[i].size && h[i].gpa + h[i].size > h[i].gpa) /* empty or wrapping: dropped */
			r->h[r->n++] = h[i];
	qsort(r->h, r->n, sizeof(r->h[0]), cmp_hole);
	unsigned k = 0;
	for (unsigned i = 0; i < r->n; i++) {
		struct mem_hole *last = k ? &r->h[k - 1] : NULL;
		if (last && r->h[i].gpa <= last->gpa + last->size) { /* overlaps or touches */
			uint64_t end = r->h[i].gpa + r->h[i].size;
			if (end > last->gpa + last->size)
				last->size = end - last->gpa;
			continue;
		}
		r->h[k++] = r->h[i];
	}
	r->n = k;
	return r;
}

bool mem_holes_touch(const struct mem_holes *h, uint64_t gpa, uint64_t len)
{
	if (!h)
		return false;
	uint64_t l = len ? len : 1;
	for (unsigned i = 0; i < h->n; i++)
		if (h->h[i].gpa >= gpa ? h->h[i].gpa - gpa < l : gpa < h->h[i].gpa + h->h[i].size)
			return true;
	return false;
}

void mem_set_holes(struct guest_mem *m, const struct mem_holes *h)
{
	__atomic_store_n(&m->gm_holes, h, __ATOMIC_RELEASE);
}

const struct mem_holes *mem_get_holes(const struct guest_mem *m)
{
	return __atomic_load_n(&m->gm_holes, __ATOMIC_ACQUIRE);
}

void *gpa_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	if (!m->gm_base)
		return NULL;
	if (mem_holes_touch(mem_get_holes(m), gpa, len))
		return NULL;
	for (unsigned i = 0; i < m->gm_nregions; i++) {
		const struct mem_region *r = &m->gm_regions[i];
		if (gpa >= r->mr_gpa && gpa - r->mr_gpa <= r->mr_size &&
		    len <= r->mr_size - (gpa - r->mr_gpa))
			return m->gm_base + r->mr_offset + (gpa - r->mr_gpa);
	}
	return NULL;
}
