/* Guest memory table of a vhost-user back-end: mapping and address translation. */
#include "cards/lib/guestmem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

void gm_init(struct gmem *m)
{
	memset(m, 0, sizeof(*m));
}

static void unmap_all(struct gmem *m)
{
	for (unsigned i = 0; i < m->gm_nregions; i++) {
		struct gm_region *r = &m->gm_regions[i];
		if (r->gr_map)
			munmap(r->gr_map, r->gr_map_len);
	}
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

/* A region is sane on its own: non-empty, no wrap-around in either address space, and
 * no clash with the regions already in t. */
static int check_region(const struct gmem *t, uint64_t gpa, uint64_t uva, uint64_t size, char *err,
			size_t errlen)
{
	if (size == 0)
		RETURN_ERR(-EINVAL, "memory region at gpa 0x%llx is empty",
			   (unsigned long long)gpa);
	if (gpa + (size - 1) < gpa || uva + (size - 1) < uva)
		RETURN_ERR(-EINVAL, "memory region gpa 0x%llx size 0x%llx wraps around",
			   (unsigned long long)gpa, (unsigned long long)size);
	if (t->gm_nregions >= GM_MAX_REGIONS)
		RETURN_ERR(-E2BIG, "more than %d memory regions", GM_MAX_REGIONS);
	for (unsigned i = 0; i < t->gm_nregions; i++) {
		const struct gm_region *r = &t->gm_regions[i];
		if (overlaps(gpa, size, r->gr_gpa, r->gr_size))
			RETURN_ERR(-EINVAL, "memory regions at gpa 0x%llx and 0x%llx overlap",
				   (unsigned long long)gpa, (unsigned long long)r->gr_gpa);
	}
	return 0;
}

int gm_set_table(struct gmem *m, const struct gm_region_desc *rd, unsigned n, const int *fds,
		 char *err, size_t errlen)
{
	struct gmem t;
	int ret = 0;

	gm_init(&t);
	if (n > GM_MAX_REGIONS) {
		snprintf(err, errlen, "%u memory regions (at most %d)", n, GM_MAX_REGIONS);
		ret = -E2BIG;
		goto out;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t size = rd[i].rd_size, off = rd[i].rd_mmap_offset;
		ret = check_region(&t, rd[i].rd_gpa, rd[i].rd_uva, size, err, errlen);
		if (ret)
			goto out;
		/* Map from offset 0 so that mmap_offset need not be page-aligned. */
		if (off + size < off || off + size > SIZE_MAX) {
			snprintf(err, errlen,
				 "memory region %u: mmap offset 0x%llx + size overflows", i,
				 (unsigned long long)off);
			ret = -EINVAL;
			goto out;
		}
		size_t len = (size_t)(off + size);
		/* Beyond the end of a file, touching the mapping raises SIGBUS: refuse a
		 * region the file does not cover. */
		struct stat st;
		if (fstat(fds[i], &st) < 0) {
			ret = -errno;
			snprintf(err, errlen, "memory region %u: fd: %s", i, strerror(errno));
			goto out;
		}
		if (!S_ISREG(st.st_mode)) {
			snprintf(err, errlen,
				 "memory region %u: backed by something other than a memfd or a "
				 "file; refused",
				 i);
			ret = -EINVAL;
			goto out;
		}
		if ((uint64_t)st.st_size < off + size) {
			snprintf(
			    err, errlen,
			    "memory region %u: offset 0x%llx + size 0x%llx past the end of its "
			    "file (0x%llx bytes)",
			    i, (unsigned long long)off, (unsigned long long)size,
			    (unsigned long long)st.st_size);
			ret = -EINVAL;
			goto out;
		}
		void *p =
		    mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fds[i], 0);
		if (p == MAP_FAILED) {
			ret = -errno;
			snprintf(err, errlen, "memory region %u: mmap of %zu bytes: %s", i, len,
				 strerror(errno));
			goto out;
		}
		t.gm_regions[t.gm_nregions++] = (struct gm_region){
		    .gr_gpa = rd[i].rd_gpa,
		    .gr_size = size,
		    .gr_uva = rd[i].rd_uva,
		    .gr_host = (uint8_t *)p + off,
		    .gr_map = p,
		    .gr_map_len = len,
		};
	}
out:
	for (unsigned i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (ret) {
		unmap_all(&t);
		return ret;
	}
	unmap_all(m);
	*m = t;
	return 0;
}

int gm_add_borrowed(struct gmem *m, uint64_t gpa, uint64_t uva, void *host, uint64_t size,
		    char *err, size_t errlen)
{
	int ret = check_region(m, gpa, uva, size, err, errlen);
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
