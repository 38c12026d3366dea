/* Boot files: what an instance boots is what the security chip measured (issue 10 item 2).
 *
 * A request may name host files (kernel, initrd) only inside the folders nitrod serves
 * them from (--images, --files). Such a file is never looked up by path twice: every
 * launch (create, start, a guest reboot, POST .../reboot) opens it once, with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS) relative to an fd
 * of its served folder (on kernels without openat2: one component at a time with
 * O_NOFOLLOW), checks it is a regular file, measures that open file with the chip and
 * hands the same fd to nitro-hv (--kernel-fd/--initrd-fd, with the measured digests in
 * --kernel-sha384/--initrd-sha384, so a file changed in place after the measurement is
 * refused by nitro-hv). A symbolic link anywhere below the served folder is refused, so
 * a caller who swaps a link in a folder they may write cannot make nitrod (root) open,
 * measure or hand over a file they may not read. The jail binds no boot file.
 *
 * Each launch also records one "launch" event (PCR 4) whose description names the
 * instance, its launch number and the SHA-384 of kernel, initrd, command line and the
 * host-decompressed vmlinux (the event's digest is the SHA-384 of that description), so
 * the event log shows a new measurement for every start and reboot even when the files
 * did not change (the per-file events are measured once, see chip.h).
 *
 * Call everything with g_ctl.c_lock held.
 */
#ifndef NITRO_CONTROLLER_BOOTFILE_H
#define NITRO_CONTROLLER_BOOTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "securitychip/chip.h"

struct instance;

/* Opens path (absolute) beneath the served folder it names, read-only, O_CLOEXEC, and
 * checks it is a regular file. In a --files folder the open is done with owner's rights
 * (fsuid/fsgid of the calling thread, no supplementary groups; root: nitrod's own), so a
 * caller cannot have root open a file it could not read itself (a hard link, a file in a
 * folder closed to it); the images folder is everyone's. Returns the fd, or -1 with err
 * "WHAT PATH: reason" (no such file, not a regular file, a symbolic link, outside the
 * served folders, owner may not read it). */
int bootfile_open(const char *what, const char *path, uid_t owner, char *err, size_t errlen);

/* The calling thread with owner's file-system rights (as bootfile_open takes them; nothing
 * for root) until bootfile_as_root: for a caller's file opened another way (from_image). */
struct bootfile_creds {
	bool bc_on;
	int bc_ngroups;
	gid_t bc_groups[64];
};
int bootfile_as_owner(struct bootfile_creds *bc, uid_t owner); /* 0, or -1 with errno */
void bootfile_as_root(struct bootfile_creds *bc);

/* Copies the file bootfile_open opens (at most max bytes) to dst, a new 0644 file in a
 * folder of nitrod's own (replaced if it exists): for a process that must read a caller's
 * file by path (a NIC's security group). 0, or -1 with err. */
int bootfile_copy(const char *what, const char *path, uid_t owner, const char *dst, size_t max,
		  char *err, size_t errlen);

struct boot_files {
	int bf_kernel, bf_initrd; /* -1: none */
	uint8_t bf_kernel_d[CHIP_DIGEST_LEN], bf_initrd_d[CHIP_DIGEST_LEN];
	/* their SHA-256, from the same pass (the TPM's SHA-256 bank: --kernel-sha256) */
	uint8_t bf_kernel_s256[CHIP_SHA256_LEN], bf_initrd_s256[CHIP_SHA256_LEN];
	uint8_t bf_vmlinux_d[CHIP_DIGEST_LEN];
	bool bf_vmlinux;       /* a host-decompressed vmlinux is measured (zstd kernel) */
	char bf_args[14][112]; /* nitro-hv's arguments (boot_files_argv) */
};

/* One launch's boot files (kernel and initrd paths as in the instance's launch, initrd ""
 * for none): open, measure (kernel, initrd, command line, vmlinux via the kernel cache in
 * kcache_dir) and record the launch event. 0, or -1 with err and nothing left open. */
int boot_files_open(const struct instance *in, const char *kernel, const char *initrd,
		    const char *kcache_dir, struct boot_files *bf, char *err, size_t errlen);
/* Appends nitro-hv's boot arguments (--kernel-fd N --kernel-sha384 HEX --kernel-sha256
 * HEX ...) to argv at k (at most 14 entries, pointing into bf); returns the new k. */
int boot_files_argv(struct boot_files *bf, char **argv, int k);
/* The fds nitro-hv must inherit; returns how many (0..2) were written to fds. */
size_t boot_files_fds(const struct boot_files *bf, int fds[2]);
void boot_files_close(struct boot_files *bf);

#endif
