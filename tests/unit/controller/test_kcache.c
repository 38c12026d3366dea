/* Unit tests for the kernel cache (src/boot/kernel.c, src/controller/kcache.c), issue 10
 * item 1: the cache of host-decompressed kernels was keyed by a 64-bit non-cryptographic
 * hash of the payload, so a caller could craft a kernel that collides with a victim's and
 * whose first zstd frame is their own vmlinux; reaching the cache first, the victim then
 * booted it. These tests perform that attack (a real collision under the old hash, and an
 * entry planted under the old key) and plant or modify entries under the new key: the
 * victim must always get its own vmlinux, and a bad entry is refused, never loaded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "boot/boot.h"
#include "boot/kernel.h"
#include "boot/memory.h"
#include "controller/kcache.h"
#include "lib/le.h"

#include "../testlib/bzimage.h"
#include "../testlib/tmpdir.h"

#define MiB (1ull << 20)
#define SEG1 0x1000000ull
#define SEG2 0x1200000ull
#define ELF_LEN 0x200
#define PAYLOAD_OFF 0x40

/* ---- the old key, to perform the attack against it ---- */

static uint64_t old_kernel_hash(const uint8_t *p, size_t len)
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

/* The state of old_kernel_hash after the first n words (len: the full length). */
static uint64_t old_state(const uint8_t *p, size_t n, size_t len)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	for (size_t i = 0; i < n; i++) {
		uint64_t w;
		memcpy(&w, p + 8 * i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return h;
}

/* Sets the last 8 bytes of p (len, a multiple of 8) so that old_kernel_hash(p) equals
 * old_kernel_hash(victim) (same length): the hash is invertible word by word. */
static void collide(uint8_t *p, const uint8_t *victim, size_t len)
{
	const uint64_t c = 0xff51afd7ed558ccdull;
	uint64_t inv = c;
	for (int i = 0; i < 6; i++)
		inv *= 2 - c * inv; /* Newton: c * inv == 1 mod 2^64 */
	uint64_t target = old_state(victim, len / 8, len);
	uint64_t x = target ^ (target >> 32); /* undo h ^= h >> 32 */
	uint64_t before = old_state(p, len / 8 - 1, len);
	uint64_t w = (x * inv) ^ before;
	memcpy(p + len - 8, &w, 8);
}

/* ---- synthetic kernels ---- */

/* An x86-64 vmlinux with two PT_LOAD segments; the first holds mark. */
static void make_elf(uint8_t *e, const char *mark)
{
	memset(e, 0, ELF_LEN);
	Elf64_Ehdr eh = {.e_type = ET_EXEC,
			 .e_machine = EM_X86_64,
			 .e_version = EV_CURRENT,
			 .e_entry = SEG1 + 0x10,
			 .e_phoff = sizeof(Elf64_Ehdr),
			 .e_ehsize = sizeof(Elf64_Ehdr),
			 .e_phentsize = sizeof(Elf64_Phdr),
			 .e_phnum = 2};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	Elf64_Phdr ph[2] = {
	    {.p_type = PT_LOAD,
	     .p_offset = 0x100,
	     .p_paddr = SEG1,
	     .p_filesz = 0x40,
	     .p_memsz = 0x40},
	    {.p_type = PT_LOAD,
	     .p_offset = 0x140,
	     .p_paddr = SEG2,
	     .p_filesz = 0x20,
	     .p_memsz = 0x2000},
	};
	memcpy(e, &eh, sizeof(eh));
	memcpy(e + sizeof(eh), ph, sizeof(ph));
	snprintf((char *)e + 0x100, 0x40, "%s", mark);
	memset(e + 0x140, 0x5a, 0x20);
}

/* A bzImage (protocol 2.15, runs at 16 MiB, needs 32 MiB) whose payload is payload. */
static uint8_t *make_bz(const uint8_t *payload, size_t plen, size_t *len)
{
	*len = BZ_PM_OFF + PAYLOAD_OFF + plen + 0x40;
	uint8_t *b = calloc(1, *len);
	assert_non_null(b);
	bz_header(b, (struct bz_shape){.payload_off = PAYLOAD_OFF,
				       .payload_len = (uint32_t)plen,
				       .cmdline_size = 2047,
				       .init_size = 32 * MiB});
	memcpy(b + BZ_PM_OFF + PAYLOAD_OFF, payload, plen);
	return b;
}

/* zstd(elf), then bytes up to plen (a frame ends where it ends: the rest is free). */
static size_t zstd_payload(uint8_t *out, size_t plen, const uint8_t *elf, uint8_t fill)
{
	size_t n = ZSTD_compress(out, plen, elf, ELF_LEN, 3);
	assert_false(ZSTD_isError(n));
	assert_true(n + 16 <= plen);
	memset(out + n, fill, plen - n);
	return n;
}

struct fx {
	char dir[64];
	struct guest_mem m;
	uint8_t victim_elf[ELF_LEN], evil_elf[ELF_LEN];
	uint8_t victim_vd[KERNEL_DIGEST_LEN], evil_vd[KERNEL_DIGEST_LEN];
	uint8_t *victim, *evil; /* whole bzImage files */
	size_t victim_len, evil_len;
	struct bzimage victim_bz, evil_bz;
	uint8_t victim_kd[KERNEL_DIGEST_LEN], evil_kd[KERNEL_DIGEST_LEN];
};

#define PLEN 0x400

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (tmpdir_make(f->dir, sizeof(f->dir), "kcache") || mem_create(&f->m, 128 * MiB) < 0)
		return -1;
	make_elf(f->victim_elf, "VICTIM: the kernel the chip measured");
	make_elf(f->evil_elf, "EVIL: the attacker's own vmlinux");
	kernel_sha384(f->victim_elf, ELF_LEN, f->victim_vd);
	kernel_sha384(f->evil_elf, ELF_LEN, f->evil_vd);
	uint8_t vp[PLEN], ep[PLEN];
	zstd_payload(vp, PLEN, f->victim_elf, 0);
	zstd_payload(ep, PLEN, f->evil_elf, 0xee);
	collide(ep, vp, PLEN); /* the attacker's payload: same old key, its own first frame */
	f->victim = make_bz(vp, PLEN, &f->victim_len);
	f->evil = make_bz(ep, PLEN, &f->evil_len);
	char err[256];
	if (bzimage_parse(f->victim, f->victim_len, &f->victim_bz, err, sizeof(err)) ||
	    bzimage_parse(f->evil, f->evil_len, &f->evil_bz, err, sizeof(err)))
		return -1;
	kernel_sha384(f->victim, f->victim_len, f->victim_kd);
	kernel_sha384(f->evil, f->evil_len, f->evil_kd);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	tmpdir_remove(f->dir);
	free(f->victim);
	free(f->evil);
	free(f);
	return 0;
}

/* Empties the cache folder before each test. */
static int clean(void **state)
{
	struct fx *f = *state;
	DIR *d = opendir(f->dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.') {
			char p[512];
			snprintf(p, sizeof(p), "%s/%s", f->dir, e->d_name);
			unlink(p);
		}
	if (d)
		closedir(d);
	kcache_forget();
	return 0;
}

/* Loads bz through the cache in f->dir the way nitro-hv does; returns kernel_load's status
 * and leaves in *loaded the mark found in guest memory at the first segment. */
static int load(struct fx *f, const struct bzimage *bz, const uint8_t *kd, const uint8_t *want,
		bool write, struct kernel_load *kl, const char **loaded)
{
	struct kernel_cache kc = {.kc_dir = f->dir, .kc_want = want, .kc_write = write};
	memcpy(kc.kc_kernel, kd, KERNEL_DIGEST_LEN);
	char err[512] = "";
	memset(f->m.gm_base + SEG1, 0, 0x40);
	memset(kl, 0, sizeof(*kl));
	int r = kernel_load(&f->m, bz, true, &kc, kl, err, sizeof(err));
	if (r)
		print_message("kernel_load: %s\n", err);
	*loaded = (const char *)f->m.gm_base + SEG1;
	return r;
}

static int count_entries(const char *dir)
{
	int n = 0;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)))
		n += !strncmp(e->d_name, "vmlinux-", 8);
	if (d)
		closedir(d);
	return n;
}

static void entry_path(struct fx *f, const uint8_t *kd, char *out, size_t len)
{
	char name[128];
	kernel_cache_name(kd, name, sizeof(name));
	snprintf(out, len, "%s/%s", f->dir, name);
}

/* The attack: the attacker's kernel collides with the victim's under the old key, and it
 * reaches the cache first. */
static void test_collision_attack(void **state)
{
	struct fx *f = *state;
	clean(state);
	const char *mark;
	struct kernel_load kl;

	/* The two payloads really collide under the old 64-bit key, and their first zstd
	 * frames hold different vmlinuxes. */
	assert_int_equal(f->victim_bz.bz_payload_len, f->evil_bz.bz_payload_len);
	assert_true(old_kernel_hash(f->victim + f->victim_bz.bz_payload_off, PLEN) ==
		    old_kernel_hash(f->evil + f->evil_bz.bz_payload_off, PLEN));
	assert_memory_not_equal(f->victim_kd, f->evil_kd, KERNEL_DIGEST_LEN);

	/* The attacker boots first and fills the cache with its vmlinux. */
	assert_int_equal(load(f, &f->evil_bz, f->evil_kd, NULL, true, &kl, &mark), 0);
	assert_true(kl.kl_vmlinux);
	assert_non_null(strstr(mark, "EVIL"));
	assert_int_equal(count_entries(f->dir), 1);
	/* ... and, for good measure, plants it under the old key name too. */
	char old[512];
	snprintf(
	    old, sizeof(old), "%s/vmlinux-%016llx", f->dir,
	    (unsigned long long)old_kernel_hash(f->victim + f->victim_bz.bz_payload_off, PLEN));
	int fd = open(old, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, f->evil_elf, ELF_LEN), ELF_LEN);
	close(fd);

	/* The victim boots its own vmlinux, and its digest is the victim's. */
	assert_int_equal(load(f, &f->victim_bz, f->victim_kd, NULL, true, &kl, &mark), 0);
	assert_true(kl.kl_vmlinux);
	if (!strstr(mark, "VICTIM"))
		fail_msg("the victim booted \"%.40s\"", mark);
	assert_memory_equal(kl.kl_digest, f->victim_vd, KERNEL_DIGEST_LEN);
	/* Again, now from its own entry. */
	char vpath[512];
	entry_path(f, f->victim_kd, vpath, sizeof(vpath));
	assert_int_equal(access(vpath, F_OK), 0);
	assert_int_equal(load(f, &f->victim_bz, f->victim_kd, f->victim_vd, false, &kl, &mark), 0);
	assert_non_null(strstr(mark, "VICTIM"));
	/* And the attacker still gets its own. */
	assert_int_equal(load(f, &f->evil_bz, f->evil_kd, NULL, false, &kl, &mark), 0);
	assert_non_null(strstr(mark, "EVIL"));
}

/* Two kernels with the same first zstd frame but different files: two keys, each its own
 * entry (both hold the same vmlinux). */
static void test_same_frame_other_file(void **state)
{
	struct fx *f = *state;
	clean(state);
	uint8_t p1[PLEN], p2[PLEN];
	zstd_payload(p1, PLEN, f->victim_elf, 0x11);
	zstd_payload(p2, PLEN, f->victim_elf, 0x22);
	size_t l1, l2;
	uint8_t *k1 = make_bz(p1, PLEN, &l1), *k2 = make_bz(p2, PLEN, &l2);
	struct bzimage b1, b2;
	char err[256];
	assert_int_equal(bzimage_parse(k1, l1, &b1, err, sizeof(err)), 0);
	assert_int_equal(bzimage_parse(k2, l2, &b2, err, sizeof(err)), 0);
	uint8_t d1[KERNEL_DIGEST_LEN], d2[KERNEL_DIGEST_LEN];
	kernel_sha384(k1, l1, d1);
	kernel_sha384(k2, l2, d2);
	assert_memory_not_equal(d1, d2, KERNEL_DIGEST_LEN);
	const char *mark;
	struct kernel_load kl;
	assert_int_equal(load(f, &b1, d1, NULL, true, &kl, &mark), 0);
	assert_int_equal(load(f, &b2, d2, NULL, true, &kl, &mark), 0);
	assert_non_null(strstr(mark, "VICTIM"));
	assert_int_equal(count_entries(f->dir), 2);
	free(k1);
	free(k2);
}

/* Entries that are not what their name says are refused and never loaded. */
static void test_bad_entries_refused(void **state)
{
	struct fx *f = *state;
	clean(state);
	const char *mark;
	struct kernel_load kl;
	char vpath[512], epath[512];
	entry_path(f, f->victim_kd, vpath, sizeof(vpath));
	entry_path(f, f->evil_kd, epath, sizeof(epath));

	/* 1. The attacker's entry copied (renamed) to the victim's name: its header names
	 *    another kernel. */
	assert_int_equal(load(f, &f->evil_bz, f->evil_kd, NULL, true, &kl, &mark), 0);
	assert_int_equal(rename(epath, vpath), 0);
	uint8_t *elf;
	size_t len;
	uint8_t vd[KERNEL_DIGEST_LEN];
	char err[512] = "";
	assert_int_equal(
	    kernel_cache_read(f->dir, f->victim_kd, NULL, &elf, &len, vd, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "another kernel"));
	assert_int_equal(load(f, &f->victim_bz, f->victim_kd, NULL, true, &kl, &mark), 0);
	assert_non_null(strstr(mark, "VICTIM")); /* decompressed again, entry rewritten */
	assert_int_equal(
	    kernel_cache_read(f->dir, f->victim_kd, f->victim_vd, &elf, &len, vd, err, sizeof(err)),
	    0);
	assert_memory_equal(elf, f->victim_elf, ELF_LEN);
	free(elf);

	/* 2. The entry's vmlinux modified in place (its header left alone). */
	int fd = open(vpath, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "EVIL", 4, 128 + 0x100), 4);
	close(fd);
	assert_int_equal(
	    kernel_cache_read(f->dir, f->victim_kd, NULL, &elf, &len, vd, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "modified"));
	assert_int_equal(load(f, &f->victim_bz, f->victim_kd, NULL, false, &kl, &mark), 0);
	assert_non_null(strstr(mark, "VICTIM"));

	/* 3. A planted, self-consistent entry under the victim's key (header and content
	 *    agree, but it is the attacker's vmlinux): refused against the measured digest. */
	assert_int_equal(kernel_cache_store(f->dir, f->victim_kd, f->evil_elf, ELF_LEN, f->evil_vd),
			 0);
	assert_int_equal(load(f, &f->victim_bz, f->victim_kd, f->victim_vd, false, &kl, &mark), 0);
	if (!strstr(mark, "VICTIM"))
		fail_msg("a planted entry was booted: \"%.40s\"", mark);
	assert_memory_equal(kl.kl_digest, f->victim_vd, KERNEL_DIGEST_LEN);

	/* 4. A vmlinux that is not what was measured is not loaded at all, cached or not. */
	uint8_t other[KERNEL_DIGEST_LEN];
	memcpy(other, f->victim_vd, sizeof(other));
	other[0] ^= 0xff;
	assert_int_equal(load(f, &f->victim_bz, f->victim_kd, other, false, &kl, &mark), -1);
	assert_null(strstr(mark, "VICTIM"));

	/* 5. An entry that is a symbolic link is not followed. */
	unlink(vpath);
	assert_int_equal(symlink(epath, vpath), 0);
	assert_int_equal(
	    kernel_cache_read(f->dir, f->victim_kd, NULL, &elf, &len, vd, err, sizeof(err)), -1);
}

static int write_tmp(struct fx *f, const char *name, const uint8_t *p, size_t n)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", f->dir, name);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	return fd;
}

/* nitrod's side: kcache_prepare decompresses the very bytes the chip measured, replaces
 * a planted entry, and refuses a kernel that changed after its measurement. */
static void test_kcache_prepare(void **state)
{
	struct fx *f = *state;
	clean(state);
	int kfd = write_tmp(f, "victim.bzImage", f->victim, f->victim_len);
	/* Planted before nitrod ever saw the kernel: self-consistent, the attacker's. */
	assert_int_equal(kernel_cache_store(f->dir, f->victim_kd, f->evil_elf, ELF_LEN, f->evil_vd),
			 0);
	uint8_t vd[KERNEL_DIGEST_LEN];
	bool have = false;
	char err[512] = "";
	if (kcache_prepare(f->dir, kfd, f->victim_kd, 128, vd, &have, err, sizeof(err)))
		fail_msg("kcache_prepare: %s", err);
	assert_true(have);
	assert_memory_equal(vd, f->victim_vd, KERNEL_DIGEST_LEN);
	uint8_t *elf;
	size_t len;
	uint8_t d[KERNEL_DIGEST_LEN];
	assert_int_equal(
	    kernel_cache_read(f->dir, f->victim_kd, vd, &elf, &len, d, err, sizeof(err)), 0);
	assert_memory_equal(elf, f->victim_elf, ELF_LEN); /* the planted entry is gone */
	free(elf);
	/* nitro-hv, given the measured digest, loads exactly that. */
	const char *mark;
	struct kernel_load kl;
	assert_int_equal(load(f, &f->victim_bz, f->victim_kd, vd, false, &kl, &mark), 0);
	assert_non_null(strstr(mark, "VICTIM"));

	/* The file changed after it was measured: refused. */
	kcache_forget();
	uint8_t stale[KERNEL_DIGEST_LEN];
	memcpy(stale, f->victim_kd, sizeof(stale));
	stale[1] ^= 1;
	assert_int_equal(kcache_prepare(f->dir, kfd, stale, 128, vd, &have, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "changed"));
	close(kfd);

	/* Not a zstd bzImage (here: not a bzImage at all): nothing to cache, no error. */
	const uint8_t text[] = "not a kernel";
	int tfd = write_tmp(f, "text", text, sizeof(text));
	uint8_t td[KERNEL_DIGEST_LEN];
	kernel_sha384(text, sizeof(text), td);
	assert_int_equal(kcache_prepare(f->dir, tfd, td, 128, vd, &have, err, sizeof(err)), 0);
	assert_false(have);
	close(tfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_collision_attack),
	    cmocka_unit_test(test_same_frame_other_file),
	    cmocka_unit_test(test_bad_entries_refused),
	    cmocka_unit_test(test_kcache_prepare),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
