/* The controller's kernel cache (see kcache.h). */
#include "controller/kcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/config.h"
#include "boot/kernel.h"
#include "boot/memory.h"
#include "controller/ctl.h"

/* The kernels already prepared (by SHA-384 of the whole file), newest first. */
#define KC_SLOTS 16
static struct kc_slot {
	bool ks_used;
	bool ks_vmlinux;
	uint8_t ks_kernel[KERNEL_DIGEST_LEN];
	uint8_t ks_vm[KERNEL_DIGEST_LEN];
} slots[KC_SLOTS];
static unsigned next_slot;

void kcache_forget(void)
{
	memset(slots, 0, sizeof(slots));
	next_slot = 0;
}

int kcache_prepare(const char *cache_dir, int kernel_fd, const uint8_t kd[KERNEL_DIGEST_LEN],
		   uint64_t mem_mib, uint8_t vd[KERNEL_DIGEST_LEN], bool *have, char *err,
		   size_t errlen)
{
	*have = false;
	for (unsigned i = 0; i < KC_SLOTS; i++) {
		struct kc_slot *s = &slots[i];
		if (s->ks_used && !memcmp(s->ks_kernel, kd, KERNEL_DIGEST_LEN)) {
			*have = s->ks_vmlinux;
			memcpy(vd, s->ks_vm, KERNEL_DIGEST_LEN);
			return 0;
		}
	}
	uint8_t *data = NULL, *elf = NULL, *cached = NULL;
	size_t len = 0, elflen = 0, clen = 0;
	int r = read_fd(kernel_fd, HV_KERNEL_MAX, &data, &len);
	if (r)
		RETURN_ERR(-1, "%s", strerror(r));
	uint8_t d[KERNEL_DIGEST_LEN];
	int ret = 0;
	struct bzimage bz;
	char why[512];
	/* The bytes decompressed here are the bytes the chip measured, or nothing is. */
	if (kernel_sha384(data, len, d) < 0 || memcmp(d, kd, KERNEL_DIGEST_LEN)) {
		sfmt(err, errlen, "changed while it was measured (SHA-384 differs)");
		ret = -1;
	} else if (bzimage_parse(data, len, &bz, why, sizeof(why)) < 0) {
		/* not a bzImage: nitro-hv says why, in the instance's reason */
	} else if ((r = kernel_decompress(&bz, &elf, &elflen)) < 0) {
		/* a zstd payload that does not decompress: the guest's own decompressor tries
		 * (and reports), as nitro-hv does */
	} else if (r == 0) {
		/* Checked as nitro-hv will load it (headers against a guest of this size). */
		struct guest_mem m;
		struct kernel_load kl;
		mem_layout(&m, mem_mib << 20);
		m.gm_base = NULL;
		if (elf_load(&m, elf, elflen, &kl, why, sizeof(why)) < 0 ||
		    kernel_sha384(elf, elflen, vd) < 0) {
			sfmt(err, errlen, "%s", why);
			ret = -1;
		} else {
			*have = true;
			/* An entry that is missing, refused, or is not exactly this vmlinux (a
			 * planted self-consistent one) is written afresh. */
			int c = kernel_cache_read(cache_dir, kd, vd, &cached, &clen, d, why,
						  sizeof(why));
			if (c < 0)
				warnmsg("kernel cache: %s; replaced", why);
			if (c != 0 && kernel_cache_store(cache_dir, kd, elf, elflen, vd) < 0)
				warnmsg("kernel cache %s: cannot write an entry: %s", cache_dir,
					strerror(errno));
		}
	}
	free(cached);
	free(elf);
	free(data);
	if (ret == 0) {
		struct kc_slot *s = &slots[next_slot++ % KC_SLOTS];
		s->ks_used = true;
		s->ks_vmlinux = *have;
		memcpy(s->ks_kernel, kd, KERNEL_DIGEST_LEN);
		memcpy(s->ks_vm, *have ? vd : kd, KERNEL_DIGEST_LEN);
	}
	return ret;
}
