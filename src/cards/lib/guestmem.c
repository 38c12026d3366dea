/* Guest memory table of a vhost-user back-end: mapping and address translation. */
#include "cards/lib/guestmem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define PAGE 4096ull

void gm_init(struct gmem *m)
{
	m->gm_nregions = 0;
	m->gm_nrevoked = 0;
}

static void unmap_one(struct gm_region *r)
{
	if (r->gr_map)
		munmap(r->gr_map, r->gr_map_len);
	r->gr_map = NULL;
}

static void unmap_all(struct gmem *m)
{
	for (unsigned i = 0; i < m->gm_nregions; i++)
		unmap_one(&m->gm_regions[i]);
}

void gm_clear(struct gmem *m)
{
	unmap_all(m);
	gm_init(m);
}

/* [a, a + as) and [b, b + bs) intersect; sizes are non-zero and do not wrap. */
static bool overlaps(uint64_t a, uint64_t as, uint64_t b, uint64_t bs)
{
	return a <= b + (bs - 1) && b <= a + (as - 1);
}

/* The same pages at the same addresses: an overlap that changes nothing. */
static bool same_view(const struct gm_region *r, const struct gm_region *n)
{
	return r->gr_map && n->gr_dev == r->gr_dev && n->gr_ino == r->gr_ino &&
	       n->gr_gpa - n->gr_uva == r->gr_gpa - r->gr_uva &&
	       n->gr_gpa - n->gr_off == r->gr_gpa - r->gr_off;
}

/* A region is sane on its own: non-empty, no wrap-around in either address space, and
 * no clash with the regions already in t (overlaps allowed only as the same view, when
 * n is given). */
static int check_region(const struct gmem *t, uint64_t gpa, uint64_t uva, uint64_t size,
			const struct gm_region *n, char *err, size_t errlen)
{
	if (size == 0)
		RETURN_ERR(-EINVAL, "memory region at gpa 0x%llx is empty",
			   (unsigned long long)gpa);
	if (gpa + (size - 1) < gpa || uva + (size - 1) < uva)
		RETURN_ERR(-EINVAL, "memory region gpa 0x%llx size 0x%llx wraps around",
			   (unsigned long long)gpa, (unsigned long long)size);
	if (t->gm_nregions >= GM_MAX_SLOTS)
		RETURN_ERR(-E2BIG, "more than %d memory regions", GM_MAX_SLOTS);
	for (unsigned i = 0; i < t->gm_nregions; i++) {
		const struct gm_region *r = &t->gm_regions[i];
		if (overlaps(gpa, size, r->gr_gpa, r->gr_size) && !(n && same_view(r, n)))
			RETURN_ERR(-EINVAL, "memory regions at gpa 0x%llx and 0x%llx overlap",
				   (unsigned long long)gpa, (unsigned long long)r->gr_gpa);
	}
	return 0;
}

/* Maps region rd from fd (only its own pages) into *out. 0 or a negative errno. */
static int map_region(const struct gm_region_desc *rd, int fd, unsigned i, struct gm_region *out,
		      char *err, size_t errlen)
{
	uint64_t size = rd->rd_size, off = rd->rd_mmap_offset;
	if (off + size < off || off + size > SIZE_MAX)
		RETURN_ERR(-EINVAL, "memory region %u: mmap offset 0x%llx + size overflows", i,
			   (unsigned long long)off);
	/* Beyond the end of a file, touching the mapping raises SIGBUS: refuse a region the
	 * file does not cover. */
	struct stat st;
	if (fstat(fd, &st) < 0)
		RETURN_ERR(-errno, "memory region %u: fd: %s", i, strerror(errno));
	if (!S_ISREG(st.st_mode))
		RETURN_ERR(-EINVAL,
			   "memory region %u: backed by something other than a memfd or a file; "
			   "refused",
			   i);
	if ((uint64_t)st.st_size < off + size)
		RETURN_ERR(-EINVAL,
			   "memory region %u: offset 0x%llx + size 0x%llx past the end of its "
			   "file (0x%llx bytes)",
			   i, (unsigned long long)off, (unsigned long long)size,
			   (unsigned long long)st.st_size);
	/* From the page the region starts in: mmap_offset need not be page-aligned, and
	 * nothing of the file outside the region is mapped here. */
	uint64_t at = off & ~(PAGE - 1), delta = off - at;
	size_t len = (size_t)(delta + size);
	void *p =
	    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, (off_t)at);
	if (p == MAP_FAILED)
		RETURN_ERR(-errno, "memory region %u: mmap of %zu bytes: %s", i, len,
			   strerror(errno));
	*out = (struct gm_region){
	    .gr_gpa = rd->rd_gpa,
	    .gr_size = size,
	    .gr_uva = rd->rd_uva,
	    .gr_off = off,
	    .gr_dev = (uint64_t)st.st_dev,
	    .gr_ino = (uint64_t)st.st_ino,
	    .gr_host = (uint8_t *)p + delta,
	    .gr_map = p,
	    .gr_map_len = len,
	};
	return 0;
}

int gm_set_table(struct gmem *m, const struct gm_region_desc *rd, unsigned n, const int *fds,
		 char *err, size_t errlen)
{
	struct gmem *t = malloc(sizeof(*t)); /* the new table, 40 KiB: not on the stack */
	int ret = 0;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		ret = -ENOMEM;
		goto out;
	}
	gm_init(t);
	if (n > GM_MAX_REGIONS) {
		snprintf(err, errlen, "%u memory regions (at most %d)", n, GM_MAX_REGIONS);
		ret = -E2BIG;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		ret = check_region(t, rd[i].rd_gpa, rd[i].rd_uva, rd[i].rd_size, NULL, err, errlen);
		if (ret)
			goto out;
		ret = map_region(&rd[i], fds[i], i, &t->gm_regions[t->gm_nregions], err, errlen);
		if (ret)
			goto out;
		t->gm_nregions++;
	}
out:
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (ret) {
		if (t)
			unmap_all(t);
		free(t);
		return ret;
	}
	unmap_all(m);
	m->gm_nregions = t->gm_nregions;
	memcpy(m->gm_regions, t->gm_regions, t->gm_nregions * sizeof(t->gm_regions[0]));
	m->gm_nrevoked = 0;
	free(t);
	return 0;
}

int gm_add_region(struct gmem *m, const struct gm_region_desc *rd, int fd, char *err, size_t errlen)
{
	struct gm_region r;
	int ret = -E2BIG;
	if (m->gm_nregions >= GM_MAX_SLOTS)
		snprintf(err, errlen, "more than %d memory regions", GM_MAX_SLOTS);
	else
		ret = map_region(rd, fd, m->gm_nregions, &r, err, errlen);
	close(fd);
	if (ret)
		return ret;
	ret = check_region(m, r.gr_gpa, r.gr_uva, r.gr_size, &r, err, errlen);
	if (ret) {
		unmap_one(&r);
		return ret;
	}
	m->gm_regions[m->gm_nregions++] = r;
	return 0;
}

/* Remembers [gpa, gpa + size) as revoked, merged with what it touches. */
static void remember_revoked(struct gmem *m, uint64_t gpa, uint64_t size)
{
	uint64_t end = gpa + size;
	for (unsigned i = 0; i < m->gm_nrevoked;) {
		struct gm_range *r = &m->gm_revoked[i];
		if (r->gpa <= end && gpa <= r->gpa + r->size) { /* touching: merge */
			uint64_t rend = r->gpa + r->size;
			gpa = r->gpa < gpa ? r->gpa : gpa;
			end = rend > end ? rend : end;
			*r = m->gm_revoked[--m->gm_nrevoked];
			continue;
		}
		i++;
	}
	if (m->gm_nrevoked < GM_MAX_REVOKED) /* else: a ring violation instead, still safe */
		m->gm_revoked[m->gm_nrevoked++] = (struct gm_range){gpa, end - gpa};
}

int gm_remove_region(struct gmem *m, uint64_t gpa, uint64_t size, uint64_t uva, char *err,
		     size_t errlen)
{
	for (unsigned i = 0; i < m->gm_nregions; i++) {
		struct gm_region *r = &m->gm_regions[i];
		if (r->gr_gpa != gpa || r->gr_size != size || r->gr_uva != uva)
			continue;
		unmap_one(r);
		memmove(r, r + 1, (m->gm_nregions - i - 1) * sizeof(*r));
		m->gm_nregions--;
		remember_revoked(m, gpa, size);
		return 0;
	}
	RETURN_ERR(-ENOENT, "no memory region at gpa 0x%llx of 0x%llx bytes (uva 0x%llx) to remove",
		   (unsigned long long)gpa, (unsigned long long)size, (unsigned long long)uva);
}

int gm_add_borrowed(struct gmem *m, uint64_t gpa, uint64_t uva, void *host, uint64_t size,
		    char *err, size_t errlen)
{
	int ret = check_region(m, gpa, uva, size, NULL, err, errlen);
	if (ret)
		return ret;
	m->gm_regions[m->gm_nregions++] =
	    (struct gm_region){.gr_gpa = gpa, .gr_size = size, .gr_uva = uva, .gr_host = host};
	return 0;
}

/* base + off .. + len inside a region starting at base of size size, without overflow. */
static bool inside(uint64_t base, uint64_t size, uint64_t addr, uint64_t len)
{
	return addr >= base && addr - base <= size && len <= size - (addr - base);
}

void *gm_gpa(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->gm_nregions; i++) {
		const struct gm_region *r = &m->gm_regions[i];
		if (inside(r->gr_gpa, r->gr_size, gpa, len))
			return r->gr_host + (gpa - r->gr_gpa);
	}
	return NULL;
}

void *gm_uva(const struct gmem *m, uint64_t uva, uint64_t len)
{
	for (unsigned i = 0; i < m->gm_nregions; i++) {
		const struct gm_region *r = &m->gm_regions[i];
		if (inside(r->gr_uva, r->gr_size, uva, len))
			return r->gr_host + (uva - r->gr_uva);
	}
	return NULL;
}

bool gm_revoked(const struct gmem *m, uint64_t gpa, uint64_t len)
{
	if (gm_gpa(m, gpa, len))
		return false;
	uint64_t l = len ? len : 1;
	if (gpa + (l - 1) < gpa)
		return false; /* wraps: never guest memory */
	for (unsigned i = 0; i < m->gm_nrevoked; i++)
		if (overlaps(gpa, l, m->gm_revoked[i].gpa, m->gm_revoked[i].size))
			return true;
	return false;
}
