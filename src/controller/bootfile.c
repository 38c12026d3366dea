/* Boot files opened once beneath their served folder, measured, handed over (see
 * bootfile.h). */
#include "controller/bootfile.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "controller/ctl.h"
#include "controller/kcache.h"

/* The served folder path lies in, and the rest of path below it ("" for the folder);
 * *files: one of the callers' folders (--files), not the images folder. */
static const char *served_root(const char *path, const char **rel, bool *files)
{
	const char *roots[ARRAY_SIZE(g_ctl.c_file_dirs) + 1];
	size_t n = 0;
	for (unsigned i = 0; i < g_ctl.c_nfile_dirs; i++)
		roots[n++] = g_ctl.c_file_dirs[i];
	roots[n++] = g_ctl.c_images_dir; /* as given: the default image's path uses it */
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(roots[i]);
		while (l > 1 && roots[i][l - 1] == '/')
			l--;
		if (l && !strncmp(path, roots[i], l) && path[l] == '/') {
			*rel = path + l + 1;
			while (**rel == '/')
				(*rel)++;
			*files = i < g_ctl.c_nfile_dirs;
			return roots[i];
		}
	}
	return NULL;
}

/* Without openat2 (Linux < 5.6): one component at a time, no link followed, no "..". */
static int open_walk(int dirfd, const char *rel)
{
	char buf[PATH_MAX];
	if (strlen(rel) >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, rel, strlen(rel) + 1);
	int dir = dup(dirfd);
	char *save = NULL;
	char *comp = strtok_r(buf, "/", &save);
	while (dir >= 0 && comp) {
		char *next = strtok_r(NULL, "/", &save);
		if (!strcmp(comp, ".") || !strcmp(comp, "..")) {
			close(dir);
			errno = EXDEV;
			return -1;
		}
		int fd = next ? openat(dir, comp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
			      : openat(dir, comp,
				       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
		int e = errno;
		close(dir);
		errno = e;
		dir = fd;
		comp = next;
	}
	return dir;
}

/* This thread's file-system identity while it opens a caller's file: fsuid and fsgid
 * (the owner's primary group, or 65534 when it has no passwd entry) and no supplementary
 * groups, all per thread (raw setgroups: glibc's would change every thread). Root's
 * identity again on leave. */
static int as_caller_enter(struct bootfile_creds *ac, uid_t uid)
{
	ac->bc_on = false;
	if (uid == 0 || geteuid() != 0)
		return 0;
	gid_t gid = 65534;
	struct passwd pw, *res = NULL;
	char buf[1024];
	if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res)
		gid = pw.pw_gid;
	ac->bc_ngroups = getgroups((int)ARRAY_SIZE(ac->bc_groups), ac->bc_groups);
	if (ac->bc_ngroups < 0 || syscall(SYS_setgroups, 0, NULL) < 0)
		return -1;
	setfsgid(gid);
	setfsuid(uid);
	ac->bc_on = true;
	if ((uid_t)setfsuid((uid_t)-1) != uid) {
		setfsuid(0);
		setfsgid(0);
		syscall(SYS_setgroups, (size_t)ac->bc_ngroups, ac->bc_groups);
		ac->bc_on = false;
		return -1;
	}
	return 0;
}

static void as_caller_leave(struct bootfile_creds *ac)
{
	if (!ac->bc_on)
		return;
	int e = errno;
	setfsuid(0); /* first: the file capabilities come back with fsuid 0 */
	setfsgid(0);
	if (syscall(SYS_setgroups, (size_t)ac->bc_ngroups, ac->bc_groups) < 0)
		die("bootfile: cannot restore nitrod's groups: %s", strerror(errno));
	errno = e;
}

int bootfile_as_owner(struct bootfile_creds *bc, uid_t owner)
{
	return as_caller_enter(bc, owner);
}

void bootfile_as_root(struct bootfile_creds *bc)
{
	as_caller_leave(bc);
}

int bootfile_open(const char *what, const char *path, uid_t owner, char *err, size_t errlen)
{
	const char *rel = NULL;
	bool files = false;
	const char *root = served_root(path, &rel, &files);
	if (!root)
		RETURN_ERR(-1,
			   "%s %s: outside the folders nitrod serves files from (--images, "
			   "--files)",
			   what, path);
	int dirfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		RETURN_ERR(-1, "%s %s: %s", what, path, strerror(errno));
	struct open_how how = {
	    .flags = O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	/* A file in a callers' folder is opened with its owner's rights (the images folder's
	 * are everyone's): root opens nothing there for a caller who could not read it. */
	struct bootfile_creds ac;
	if (files && as_caller_enter(&ac, owner) < 0) {
		close(dirfd);
		RETURN_ERR(-1, "%s %s: cannot take uid %u's rights: %s", what, path,
			   (unsigned)owner, strerror(errno));
	}
	int fd = *rel ? (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how))
		      : openat(dirfd, ".", O_RDONLY | O_CLOEXEC);
	if (fd < 0 && (errno == ENOSYS || errno == EPERM)) /* no openat2, or seccomp'd away */
		fd = open_walk(dirfd, rel);
	int e = errno;
	if (files)
		as_caller_leave(&ac);
	close(dirfd);
	if (fd < 0 && e == EACCES && files && owner != 0)
		RETURN_ERR(-1,
			   "%s %s: uid %u may not read it (files in --files folders are opened "
			   "with their caller's rights); refused",
			   what, path, (unsigned)owner);
	if (fd < 0 && e == ELOOP)
		RETURN_ERR(-1,
			   "%s %s: a symbolic link, or below one (boot files are opened without "
			   "following links); refused",
			   what, path);
	if (fd < 0 && e == EXDEV)
		RETURN_ERR(-1, "%s %s: leaves its served folder; refused", what, path);
	if (fd < 0)
		RETURN_ERR(-1, "%s %s: %s", what, path, strerror(e));
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		RETURN_ERR(-1, "%s %s: not a regular file", what, path);
	}
	return fd;
}

int bootfile_copy(const char *what, const char *path, uid_t owner, const char *dst, size_t max,
		  char *err, size_t errlen)
{
	int fd = bootfile_open(what, path, owner, err, errlen);
	if (fd < 0)
		return -1;
	uint8_t *buf = NULL;
	size_t len = 0;
	int e = read_fd(fd, max, &buf, &len);
	close(fd);
	if (e == EFBIG)
		RETURN_ERR(-1, "%s %s: larger than %zu bytes", what, path, max);
	if (e)
		RETURN_ERR(-1, "%s %s: %s", what, path, strerror(e));
	unlink(dst);
	int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	bool ok = out >= 0 && write(out, buf, len) == (ssize_t)len;
	e = errno;
	free(buf);
	if (out >= 0 && close(out) < 0 && ok) {
		ok = false;
		e = errno;
	}
	if (!ok)
		RETURN_ERR(-1, "%s %s: copy %s: %s", what, path, dst, strerror(e));
	return 0;
}

void boot_files_close(struct boot_files *bf)
{
	if (bf->bf_kernel >= 0)
		close(bf->bf_kernel);
	if (bf->bf_initrd >= 0)
		close(bf->bf_initrd);
	bf->bf_kernel = bf->bf_initrd = -1;
}

int boot_files_open(const struct instance *in, const char *kernel, const char *initrd,
		    const char *kcache_dir, struct boot_files *bf, char *err, size_t errlen)
{
	memset(bf, 0, sizeof(*bf));
	bf->bf_kernel = bf->bf_initrd = -1;
	struct chip *chip = g_ctl.c_chip;
	const char *cmdline = in->i_spec.s_cmdline;
	uint8_t cmd_d[CHIP_DIGEST_LEN];
	bf->bf_kernel = bootfile_open("kernel", kernel, in->i_owner, err, errlen);
	if (bf->bf_kernel < 0 ||
	    chip_measure_fd(chip, CHIP_PCR_KERNEL, "kernel", bf->bf_kernel, kernel, bf->bf_kernel_d,
			    bf->bf_kernel_s256, err, errlen))
		goto fail;
	if (initrd[0]) {
		bf->bf_initrd = bootfile_open("initrd", initrd, in->i_owner, err, errlen);
		if (bf->bf_initrd < 0 ||
		    chip_measure_fd(chip, CHIP_PCR_INITRD, "initrd", bf->bf_initrd, initrd,
				    bf->bf_initrd_d, bf->bf_initrd_s256, err, errlen))
			goto fail;
	}
	if (chip_measure_blob(chip, CHIP_PCR_CMDLINE, "cmdline", cmdline, cmdline, strlen(cmdline),
			      cmd_d, err, errlen))
		goto fail;
	/* The vmlinux nitro-hv may load from the cache, derived from these very bytes. */
	char why[512];
	if (kcache_prepare(kcache_dir, bf->bf_kernel, bf->bf_kernel_d, in->i_spec.s_mem_mib,
			   bf->bf_vmlinux_d, &bf->bf_vmlinux, why, sizeof(why))) {
		sfmt(err, errlen, "kernel %s: %s", kernel, why);
		goto fail;
	}
	char kh[2 * CHIP_DIGEST_LEN + 1],
	    ih[2 * CHIP_DIGEST_LEN + 1] = "none", ch[2 * CHIP_DIGEST_LEN + 1],
				     vh[2 * CHIP_DIGEST_LEN + 1] = "none";
	chip_hex(bf->bf_kernel_d, CHIP_DIGEST_LEN, kh);
	if (bf->bf_initrd >= 0)
		chip_hex(bf->bf_initrd_d, CHIP_DIGEST_LEN, ih);
	chip_hex(cmd_d, CHIP_DIGEST_LEN, ch);
	if (bf->bf_vmlinux) {
		chip_hex(bf->bf_vmlinux_d, CHIP_DIGEST_LEN, vh);
		char vdesc[2 * CHIP_DIGEST_LEN + 16];
		sfmt(vdesc, sizeof(vdesc), "from-kernel=%s", kh);
		if (chip_measure_digest(chip, CHIP_PCR_KERNEL, "vmlinux", vdesc, bf->bf_vmlinux_d,
					err, errlen))
			goto fail;
	}
	char desc[512];
	sfmt(desc, sizeof(desc), "%s,launch=%u,kernel=%s,initrd=%s,cmdline=%s,vmlinux=%s", in->i_id,
	     in->i_launches + 1, kh, ih, ch, vh);
	if (chip_measure_blob(chip, CHIP_PCR_CONFIG, "launch", desc, desc, strlen(desc), NULL, err,
			      errlen))
		goto fail;
	return 0;
fail:
	boot_files_close(bf);
	return -1;
}

int boot_files_argv(struct boot_files *bf, char **argv, int k)
{
	char(*a)[112] = bf->bf_args;
	int n = 0;
	sfmt(a[n], sizeof(a[n]), "%d", bf->bf_kernel);
	argv[k++] = "--kernel-fd";
	argv[k++] = a[n++];
	chip_hex(bf->bf_kernel_d, CHIP_DIGEST_LEN, a[n]);
	argv[k++] = "--kernel-sha384";
	argv[k++] = a[n++];
	chip_hex(bf->bf_kernel_s256, CHIP_SHA256_LEN, a[n]);
	argv[k++] = "--kernel-sha256";
	argv[k++] = a[n++];
	if (bf->bf_initrd >= 0) {
		sfmt(a[n], sizeof(a[n]), "%d", bf->bf_initrd);
		argv[k++] = "--initrd-fd";
		argv[k++] = a[n++];
		chip_hex(bf->bf_initrd_d, CHIP_DIGEST_LEN, a[n]);
		argv[k++] = "--initrd-sha384";
		argv[k++] = a[n++];
		chip_hex(bf->bf_initrd_s256, CHIP_SHA256_LEN, a[n]);
		argv[k++] = "--initrd-sha256";
		argv[k++] = a[n++];
	}
	if (bf->bf_vmlinux) {
		chip_hex(bf->bf_vmlinux_d, CHIP_DIGEST_LEN, a[n]);
		argv[k++] = "--vmlinux-sha384";
		argv[k++] = a[n++];
	}
	return k;
}

size_t boot_files_fds(const struct boot_files *bf, int fds[2])
{
	size_t n = 0;
	fds[n++] = bf->bf_kernel;
	if (bf->bf_initrd >= 0)
		fds[n++] = bf->bf_initrd;
	return n;
}
