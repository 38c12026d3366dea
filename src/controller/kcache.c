/* The controller's kernel cache (see kcache.h). */
#include "controller/kcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "boot/boot.h"
#include "boot/config.h"
#include "boot/kernel.h"
#include "boot/memory.h"
#include "controller/ctl.h"

/* The kernel files already prepared (by identity), newest first. */
#define KC_SLOTS 16
static struct kc_slot {
	dev_t ks_dev;
	ino_t ks_ino;
	off_t ks_size;
	struct timespec ks_mtime, ks_ctime;
} slots[KC_SLOTS];
static unsigned next_slot;

static struct kc_slot *find(const struct stat *st)
{
	for (unsigned i = 0; i < KC_SLOTS; i++) {
		struct kc_slot *s = &slots[i];
		if (s->ks_ino && s->ks_dev == st->st_dev && s->ks_ino == st->st_ino &&
		    s->ks_size == st->st_size && s->ks_mtime.tv_sec == st->st_mtim.tv_sec &&
		    s->ks_mtime.tv_nsec == st->st_mtim.tv_nsec &&
		    s->ks_ctime.tv_sec == st->st_ctim.tv_sec &&
		    s->ks_ctime.tv_nsec == st->st_ctim.tv_nsec)
			return s;
	}
	return NULL;
}

int kcache_prepare(const char *cache_dir, const char *kernel, uint64_t mem_mib, char *err,
		   size_t errlen)
{
	struct stat st;
	if (stat(kernel, &st) < 0)
		RETURN_ERR(-1, "kernel %s: %s", kernel, strerror(errno));
	if (find(&st))
		return 0;
	uint8_t *data = NULL;
	size_t len = 0;
	int r = read_file(kernel, HV_KERNEL_MAX, &data, &len);
	if (r)
		RETURN_ERR(-1, "kernel %s: %s", kernel, strerror(r));
	struct bzimage bz;
	char why[256];
	int ret = 0;
	if (bzimage_parse(data, len, &bz, why, sizeof(why)) == 0) {
		const uint8_t *pl = bz.bz_data + bz.bz_payload_off;
		bool zstd = bz.bz_payload_len >= 4 && pl[0] == 0x28 && pl[1] == 0xb5 &&
			    pl[2] == 0x2f && pl[3] == 0xfd;
		if (zstd) {
			/* Scratch guest RAM (never touched beyond what the kernel fills):
			 * kernel_load checks the ELF, loads it as nitro-hv would, and writes
			 * the cache. */
			struct guest_mem m;
			mem_layout(&m, mem_mib << 20);
			m.gm_base = mmap(NULL, m.gm_size, PROT_READ | PROT_WRITE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
			struct kernel_load kl;
			if (m.gm_base == MAP_FAILED) {
				sfmt(err, errlen, "kernel %s: scratch memory: %s", kernel,
				     strerror(errno));
				ret = -1;
			} else if (kernel_load(&m, &bz, true, cache_dir, &kl, why, sizeof(why)) <
				   0) {
				sfmt(err, errlen, "kernel %s: %s", kernel, why);
				ret = -1;
			}
			if (m.gm_base != MAP_FAILED)
				munmap(m.gm_base, m.gm_size);
		}
	} /* not a bzImage: nitro-hv says why, in the instance's reason */
	free(data);
	if (ret == 0) {
		struct kc_slot *s = &slots[next_slot++ % KC_SLOTS];
		*s = (struct kc_slot){st.st_dev, st.st_ino, st.st_size, st.st_mtim, st.st_ctim};
	}
	return ret;
}
