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

#include "lib/util.h"
#include <zstd.h>

#define VMLINUX_MAX (512ull << 20)
#define ELF_MAX_PHDRS 64

#define FAIL(...) RETURN_ERR(-1, __VA_ARGS__)

uint64_t kernel_hash(const uint8_t *p, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0xc4ceb9fe1a85ec53ull;
	return h ^ (h >> 29);
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

static void cache_store(const char *path, const uint8_t *p, size_t len)
{
	char tmp[4096];
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", path, (int)getpid()) >= sizeof(tmp))
		return; /* no cache rather than a truncated temporary name */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	size_t done = 0;
	while (done < len) {
		ssize_t w = write(fd, p + done, len - done);
		if (w <= 0)
			break;
		done += (size_t)w;
	}
	if (close(fd) == 0 && done == len)
		rename(tmp, path);
	else
		unlink(tmp);
}

static int load_cached(const struct guest_mem *m, const char *path, struct kernel_load *kl,
		       char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 1;
	struct stat st;
	int r = 1;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    (uint64_t)st.st_size <= VMLINUX_MAX) {
		struct elf_src src = {.es_buf = NULL, .es_fd = fd, .es_len = (uint64_t)st.st_size};
		r = elf_load_src(m, &src, kl, err, errlen);
	}
	close(fd);
	return r;
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
		const char *cache_dir, struct kernel_load *kl, char *err, size_t errlen)
{
	const uint8_t *pl = bz->bz_data + bz->bz_payload_off;
	bool zstd = bz->bz_payload_len >= 4 && pl[0] == 0x28 && pl[1] == 0xb5 && pl[2] == 0x2f &&
		    pl[3] == 0xfd;
	uint64_t need = bz->bz_pref_address + bz->bz_init_size;
	if (need > m->gm_regions[0].mr_size || BOOT_HIGH + bz->bz_pm_len > m->gm_regions[0].mr_size)
		FAIL("kernel needs %llu MiB of memory, the guest has %llu MiB",
		     (unsigned long long)(need >> 20),
		     (unsigned long long)(m->gm_regions[0].mr_size >> 20));
	if (!decompress || !zstd) {
		load_bzimage(m, bz, kl);
		return 0;
	}
	char path[4096] = "";
	if (cache_dir) {
		snprintf(path, sizeof(path), "%s/vmlinux-%016llx", cache_dir,
			 (unsigned long long)kernel_hash(pl, bz->bz_payload_len));
		int r = load_cached(m, path, kl, err, errlen);
		if (r <= 0)
			return r;
	}
	uint8_t *elf;
	size_t elflen;
	if (decompress_zstd(pl, bz->bz_payload_len, &elf, &elflen) < 0) {
		load_bzimage(m, bz, kl); /* let the guest try (and report) */
		return 0;
	}
	int r = elf_load(m, elf, elflen, kl, err, errlen);
	if (r == 0 && path[0])
		cache_store(path, elf, elflen);
	free(elf);
	return r;
}
