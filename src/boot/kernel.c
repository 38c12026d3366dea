/* Kernel loading: bzImage at 1 MiB, or the host-decompressed (and cached) vmlinux ELF. */
#include "boot/kernel.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/util.h"
#include <openssl/evp.h>
#include <zstd.h>

#define VMLINUX_MAX (512ull << 20)
#define ELF_MAX_PHDRS 64

#define FAIL(...) RETURN_ERR(-1, __VA_ARGS__)

/* A cache entry: this header, then the vmlinux. */
#define ENTRY_MAGIC "NITRO-VMLINUX-v2"
#define ENTRY_HDR 128
struct entry_hdr {
	char eh_magic[16];
	uint8_t eh_kernel[KERNEL_DIGEST_LEN];  /* SHA-384 of the whole kernel file */
	uint8_t eh_vmlinux[KERNEL_DIGEST_LEN]; /* SHA-384 of the vmlinux that follows */
	uint8_t eh_len[8];		       /* its length, little-endian */
	uint8_t eh_zero[8];
};
_Static_assert(sizeof(struct entry_hdr) == ENTRY_HDR, "cache entry header");

int kernel_sha384(const void *p, size_t len, uint8_t out[KERNEL_DIGEST_LEN])
{
	unsigned int n = 0;
	return EVP_Digest(len ? p : "", len, out, &n, EVP_sha384(), NULL) == 1 &&
		       n == KERNEL_DIGEST_LEN
		   ? 0
		   : -1;
}

void kernel_cache_name(const uint8_t kd[KERNEL_DIGEST_LEN], char *out, size_t len)
{
	static const char hx[] = "0123456789abcdef";
	char hex[2 * KERNEL_DIGEST_LEN + 1];
	for (size_t i = 0; i < KERNEL_DIGEST_LEN; i++) {
		hex[2 * i] = hx[kd[i] >> 4];
		hex[2 * i + 1] = hx[kd[i] & 15];
	}
	hex[2 * KERNEL_DIGEST_LEN] = 0;
	snprintf(out, len, "vmlinux-%s", hex);
}

/* Where an ELF file is read from: a buffer, or a file read straight into guest memory
 * (one copy from the page cache, no mapping faults). */
struct elf_src {
	const uint8_t *es_buf;
	int es_fd;
	uint64_t es_len;
};

static int src_read(const struct elf_src *s, uint64_t off, void *dst, uint64_t n)
{
	if (off > s->es_len || n > s->es_len - off)
		return -1;
	if (s->es_buf) {
		memcpy(dst, s->es_buf + off, n);
		return 0;
	}
	while (n > 0) {
		ssize_t r = pread(s->es_fd, dst, n > (1u << 30) ? (1u << 30) : n, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		dst = (uint8_t *)dst + r;
		off += (uint64_t)r;
		n -= (uint64_t)r;
	}
	return 0;
}

static int elf_load_src(const struct guest_mem *m, const struct elf_src *src,
			struct kernel_load *kl, char *err, size_t errlen)
{
	Elf64_Ehdr eh;
	Elf64_Phdr ph[ELF_MAX_PHDRS];
	uint64_t len = src->es_len;
	if (src_read(src, 0, &eh, sizeof(eh)) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB)
		FAIL("vmlinux: not a 64-bit little-endian ELF file");
	if (eh.e_machine != EM_X86_64 || eh.e_type != ET_EXEC)
		FAIL("vmlinux: not an x86-64 executable");
	if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 ||
	    eh.e_phnum > ELF_MAX_PHDRS || eh.e_phoff > len ||
	    (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr) > len - eh.e_phoff ||
	    src_read(src, eh.e_phoff, ph, eh.e_phnum * sizeof(Elf64_Phdr)) < 0)
		FAIL("vmlinux: bad program header table");
	uint64_t lo = UINT64_MAX, hi = 0;
	bool entry_ok = false;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		if (p->p_filesz > p->p_memsz || p->p_offset > len || p->p_filesz > len - p->p_offset ||
		    p->p_paddr < BOOT_HIGH || p->p_paddr >= MEM_HOLE_START ||
		    p->p_memsz > MEM_HOLE_START - p->p_paddr)
			FAIL("vmlinux: segment %u out of bounds", i);
		if (p->p_paddr < lo)
			lo = p->p_paddr;
		if (p->p_paddr + p->p_memsz > hi)
			hi = p->p_paddr + p->p_memsz;
		if (eh.e_entry >= p->p_paddr && eh.e_entry < p->p_paddr + p->p_filesz)
			entry_ok = true;
	}
	if (!entry_ok || hi == 0)
		FAIL("vmlinux: entry point 0x%llx is not in a loaded segment",
		     (unsigned long long)eh.e_entry);
	for (unsigned i = 0; i < eh.e_phnum && m->gm_base; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_type != PT_LOAD || p->p_memsz == 0)
			continue;
		uint8_t *dst = gpa_ptr(m, p->p_paddr, p->p_memsz);
		if (!dst)
			FAIL("vmlinux: segment at 0x%llx (%llu KiB) is outside guest memory",
			     (unsigned long long)p->p_paddr, (unsigned long long)(p->p_memsz >> 10));
		if (src_read(src, p->p_offset, dst, p->p_filesz) < 0)
			FAIL("vmlinux: cannot read segment %u", i);
		memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
	}
	kl->kl_entry = eh.e_entry;
	kl->kl_start = lo;
	kl->kl_end = hi;
	kl->kl_vmlinux = true;
	return 0;
}

int elf_load(const struct guest_mem *m, const uint8_t *elf, size_t len, struct kernel_load *kl,
	     char *err, size_t errlen)
{
	struct elf_src src = {.es_buf = elf, .es_fd = -1, .es_len = len};
	return elf_load_src(m, &src, kl, err, errlen);
}

static int decompress_zstd(const uint8_t *src, size_t len, uint8_t **out, size_t *outlen)
{
	unsigned long long want = ZSTD_getFrameContentSize(src, len);
	size_t cap = (want != ZSTD_CONTENTSIZE_UNKNOWN && want != ZSTD_CONTENTSIZE_ERROR &&
		      want <= VMLINUX_MAX)
			 ? (size_t)want
			 : 64u << 20;
	if (cap < 4096)
		cap = 4096; /* 0 * 2 == 0, and realloc(buf, 0) frees buf */
	uint8_t *buf = malloc(cap);
	ZSTD_DStream *ds = ZSTD_createDStream();
	if (!buf || !ds)
		goto fail;
	ZSTD_inBuffer in = {src, len, 0};
	ZSTD_outBuffer ob = {buf, cap, 0};
	for (;;) {
		size_t r = ZSTD_decompressStream(ds, &ob, &in);
		if (ZSTD_isError(r))
			goto fail;
		if (r == 0)
			break; /* frame done; the vmlinux.relocs that may follow are not needed */
		if (ob.pos == ob.size) {
			if (cap >= VMLINUX_MAX)
				goto fail;
			cap *= 2;
			uint8_t *nb = realloc(buf, cap);
			if (!nb)
				goto fail;
			buf = nb;
			ob.dst = buf;
			ob.size = cap;
		} else if (in.pos == in.size) {
			goto fail; /* truncated */
		}
	}
	ZSTD_freeDStream(ds);
	*out = buf;
	*outlen = ob.pos;
	return 0;
fail:
	ZSTD_freeDStream(ds);
	free(buf);
	return -1;
}

static bool payload_is_zstd(const struct bzimage *bz)
{
	const uint8_t *pl = bz->bz_data + bz->bz_payload_off;
	return bz->bz_payload_len >= 4 && pl[0] == 0x28 && pl[1] == 0xb5 && pl[2] == 0x2f &&
	       pl[3] == 0xfd;
}

int kernel_decompress(const struct bzimage *bz, uint8_t **elf, size_t *len)
{
	if (!payload_is_zstd(bz))
		return 1;
	return decompress_zstd(bz->bz_data + bz->bz_payload_off, bz->bz_payload_len, elf, len);
}

int kernel_cache_store(const char *dir, const uint8_t kd[KERNEL_DIGEST_LEN], const uint8_t *elf,
		       size_t len, const uint8_t vd[KERNEL_DIGEST_LEN])
{
	char name[128], path[4096], tmp[4200];
	kernel_cache_name(kd, name, sizeof(name));
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path) ||
	    (size_t)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= sizeof(tmp))
		return -1; /* no cache rather than a truncated name */
	struct entry_hdr h = {0};
	memcpy(h.eh_magic, ENTRY_MAGIC, sizeof(h.eh_magic));
	memcpy(h.eh_kernel, kd, KERNEL_DIGEST_LEN);
	memcpy(h.eh_vmlinux, vd, KERNEL_DIGEST_LEN);
	le64_put(h.eh_len, len);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	bool ok = write(fd, &h, sizeof(h)) == (ssize_t)sizeof(h);
	size_t done = 0;
	while (ok && done < len) {
		ssize_t w = write(fd, elf + done, len - done);
		if (w <= 0)
			ok = false;
		else
			done += (size_t)w;
	}
	if (close(fd) == 0 && ok && rename(tmp, path) == 0)
		return 0;
	unlink(tmp);
	return -1;
}

int kernel_cache_read(const char *dir, const uint8_t kd[KERNEL_DIGEST_LEN], const uint8_t *want,
		      uint8_t **elf, size_t *len, uint8_t vd[KERNEL_DIGEST_LEN], char *err,
		      size_t errlen)
{
	char name[128], path[4096];
	kernel_cache_name(kd, name, sizeof(name));
	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
		return 1;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 1;
	if (fd < 0)
		FAIL("cache entry %s: %s", name, strerror(errno));
	uint8_t *b = NULL;
	size_t n = 0;
	int e = read_fd(fd, VMLINUX_MAX + ENTRY_HDR, &b, &n);
	close(fd);
	if (e)
		FAIL("cache entry %s: %s", name, strerror(e));
	struct entry_hdr h;
	uint8_t d[KERNEL_DIGEST_LEN];
	const char *why = NULL;
	if (n < ENTRY_HDR)
		why = "shorter than its header";
	if (!why) {
		memcpy(&h, b, sizeof(h));
		if (memcmp(h.eh_magic, ENTRY_MAGIC, sizeof(h.eh_magic)))
			why = "not a cache entry of this version";
		else if (memcmp(h.eh_kernel, kd, KERNEL_DIGEST_LEN))
			why = "made from another kernel than its name says";
		else if (le64_get(h.eh_len) != n - ENTRY_HDR)
			why = "length differs from its header";
		else if (kernel_sha384(b + ENTRY_HDR, n - ENTRY_HDR, d) < 0)
			why = "SHA-384 unavailable";
		else if (memcmp(d, h.eh_vmlinux, KERNEL_DIGEST_LEN))
			why = "content differs from its digest (modified)";
		else if (want && memcmp(d, want, KERNEL_DIGEST_LEN))
			why = "not the vmlinux that was measured";
	}
	if (why) {
		free(b);
		FAIL("cache entry %s: %s", name, why);
	}
	memmove(b, b + ENTRY_HDR, n - ENTRY_HDR);
	*elf = b;
	*len = n - ENTRY_HDR;
	memcpy(vd, d, KERNEL_DIGEST_LEN);
	return 0;
}

static void load_bzimage(const struct guest_mem *m, const struct bzimage *bz,
			 struct kernel_load *kl)
{
	memcpy(gpa_ptr(m, BOOT_HIGH, bz->bz_pm_len), bz->bz_data + bz->bz_pm_off, bz->bz_pm_len);
	kl->kl_entry = BOOT_HIGH + 0x200; /* startup_64 of the decompressor */
	kl->kl_start = BOOT_HIGH;
	kl->kl_end = bz->bz_pref_address + bz->bz_init_size;
	if (BOOT_HIGH + bz->bz_pm_len > kl->kl_end)
		kl->kl_end = BOOT_HIGH + bz->bz_pm_len;
	kl->kl_vmlinux = false;
}

int kernel_load(const struct guest_mem *m, const struct bzimage *bz, bool decompress,
		const struct kernel_cache *kc, struct kernel_load *kl, char *err, size_t errlen)
{
	uint64_t need = bz->bz_pref_address + bz->bz_init_size;
	if (need > m->gm_regions[0].mr_size || BOOT_HIGH + bz->bz_pm_len > m->gm_regions[0].mr_size)
		FAIL("kernel needs %llu MiB of memory, the guest has %llu MiB",
		     (unsigned long long)(need >> 20),
		     (unsigned long long)(m->gm_regions[0].mr_size >> 20));
	if (!decompress || !payload_is_zstd(bz)) {
		load_bzimage(m, bz, kl);
		return 0;
	}
	const uint8_t *want = kc ? kc->kc_want : NULL;
	uint8_t *elf;
	size_t elflen;
	uint8_t vd[KERNEL_DIGEST_LEN];
	if (kc && kc->kc_dir) {
		char why[512];
		int r = kernel_cache_read(kc->kc_dir, kc->kc_kernel, want, &elf, &elflen, vd, why,
					  sizeof(why));
		if (r == 0) {
			r = elf_load(m, elf, elflen, kl, err, errlen);
			free(elf);
			if (r == 0)
				memcpy(kl->kl_digest, vd, KERNEL_DIGEST_LEN);
			return r;
		}
		if (r < 0) /* refused, never booted: decompress the kernel itself instead */
			warnmsg("kernel cache: %s; not used", why);
	}
	if (decompress_zstd(bz->bz_data + bz->bz_payload_off, bz->bz_payload_len, &elf, &elflen) <
	    0) {
		if (want)
			FAIL("the payload does not decompress, but a vmlinux was measured");
		load_bzimage(m, bz, kl); /* let the guest try (and report) */
		return 0;
	}
	if (kernel_sha384(elf, elflen, vd) < 0 || (want && memcmp(vd, want, KERNEL_DIGEST_LEN))) {
		free(elf);
		FAIL("the decompressed vmlinux is not the one that was measured");
	}
	int r = elf_load(m, elf, elflen, kl, err, errlen);
	if (r == 0) {
		memcpy(kl->kl_digest, vd, KERNEL_DIGEST_LEN);
		if (kc && kc->kc_dir && kc->kc_write)
			kernel_cache_store(kc->kc_dir, kc->kc_kernel, elf, elflen, vd);
	}
	free(elf);
	return r;
}
