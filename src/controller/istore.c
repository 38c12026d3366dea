/* Instance-store folders opened beneath their served folder (see istore.h). */
#include "controller/istore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "controller/spec.h"

/* The default folder (STATE/instance-store) when dir is "". */
static void dir_of(const char *dir, char *out, size_t len)
{
	if (dir[0])
		sfmt(out, len, "%s", dir);
	else
		sfmt(out, len, "%s/instance-store", g_ctl.c_state_dir);
}

/* A folder no one but root or nitrod may change. */
static int safe_dir(int fd, const char *path, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		RETURN_ERR(-1, "instance_store.dir %s: %s", path, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		RETURN_ERR(-1, "instance_store.dir %s: not a folder", path);
	if ((st.st_uid != 0 && st.st_uid != geteuid()) ||
	    ((st.st_mode & 022) && !(st.st_mode & S_ISVTX)))
		RETURN_ERR(-1,
			   "instance_store.dir %s: others may change it (a folder on the way is "
			   "not root's or nitrod's, or writable by others without the sticky bit); "
			   "refused",
			   path);
	return 0;
}

/* An O_PATH fd of dir ("" = default) after the checks of istore.h, or -1 with err. */
static int open_dir(const char *dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	dir_of(dir, path, sizeof(path));
	const char *rel = NULL, *root = NULL;
	for (unsigned i = 0; i < g_ctl.c_nistore_dirs && !root; i++) {
		size_t l = strlen(g_ctl.c_istore_dirs[i]);
		if (!strncmp(path, g_ctl.c_istore_dirs[i], l) && (path[l] == '/' || !path[l])) {
			root = g_ctl.c_istore_dirs[i];
			rel = path + l;
		}
	}
	if (!root)
		RETURN_ERR(-1,
			   "instance_store.dir %s: outside the folders nitrod serves instance "
			   "stores from (STATE/instance-store, --instance-store-dir)",
			   path);
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		RETURN_ERR(-1, "instance_store.dir %s: %s", root, strerror(errno));
	if (safe_dir(fd, root, err, errlen) < 0) {
		close(fd);
		return -1;
	}
	/* One component at a time, each checked, none followed. */
	char buf[PATH_MAX];
	sfmt(buf, sizeof(buf), "%s", rel);
	char *save = NULL;
	for (char *c = strtok_r(buf, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (!strcmp(c, ".") || !strcmp(c, "..") || spec_id_ok(c, "i-")) {
			close(fd);
			RETURN_ERR(
			    -1, "instance_store.dir %s: \"%s\" is not a folder a request may name",
			    path, c);
		}
		struct open_how how = {.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
				       .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
						  RESOLVE_NO_MAGICLINKS};
		int next = (int)syscall(SYS_openat2, fd, c, &how, sizeof(how));
		if (next < 0 && (errno == ENOSYS || errno == EPERM))
			next = openat(fd, c, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		int e = errno;
		close(fd);
		if (next < 0 && (e == ELOOP || e == ENOTDIR))
			RETURN_ERR(
			    -1,
			    "instance_store.dir %s: a symbolic link or not a folder on the way; "
			    "refused",
			    path);
		if (next < 0)
			RETURN_ERR(-1, "instance_store.dir %s: %s", path, strerror(e));
		fd = next;
		if (safe_dir(fd, path, err, errlen) < 0) {
			close(fd);
			return -1;
		}
	}
	return fd;
}

int istore_check(const char *dir, char *err, size_t errlen)
{
	int fd = open_dir(dir, err, errlen);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

void istore_path(const struct instance *in, char *out, size_t len)
{
	char d[PATH_MAX];
	dir_of(in->i_spec.s_istore_dir, d, sizeof(d));
	sfmt(out, len, "%s/%s", d, in->i_id);
}

/* Removes everything beneath the folder top (not top itself), nothing followed: the card
 * that owned it may have left folders nested to any depth. Depth first with one fd held at
 * a time (down by name with O_NOFOLLOW, never onto another file system, back up by ".."),
 * so neither the depth nor nitrod's fd limit stops it. Each folder's identity (device,
 * inode) on the way down is kept and every step back up must arrive at the same folder:
 * should a process still move folders meanwhile (none of the card's uid should be left),
 * ".." never leads the walk out of the tree (above top: other instances' stores, nitrod's
 * state); it stops. At most ISTORE_STEPS folder visits: what is left then stays (the
 * folder's removal warns). */
#define ISTORE_STEPS (1u << 16)
struct dir_id {
	dev_t dev;
	ino_t ino;
};

static bool same_dir(int fd, const struct dir_id *id)
{
	struct stat st;
	return fstat(fd, &st) == 0 && st.st_dev == id->dev && st.st_ino == id->ino;
}

static void empty_tree(int top)
{
	struct stat st;
	size_t cap = 64, depth = 0;
	struct dir_id *ids = malloc(cap * sizeof(*ids));
	int fd = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (!ids || fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		free(ids);
		return;
	}
	ids[0] = (struct dir_id){st.st_dev, st.st_ino};
	for (unsigned steps = 0; fd >= 0 && steps < ISTORE_STEPS; steps++) {
		DIR *d = fdopendir(fd);
		if (!d) {
			close(fd);
			break;
		}
		char sub[NAME_MAX + 1] = "";
		struct dirent *e;
		while ((e = readdir(d))) {
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno != EISDIR ||
			    unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) == 0)
				continue;
			sfmt(sub, sizeof(sub), "%s", e->d_name); /* a folder not empty: down */
			break;
		}
		if (sub[0] && depth + 1 >= cap) { /* room for one more identity */
			struct dir_id *more =
			    cap < ISTORE_STEPS ? reallocarray(ids, cap * 2, sizeof(*ids)) : NULL;
			if (more)
				ids = more, cap *= 2;
			else
				sub[0] = 0; /* no deeper: as if stuck */
		}
		int next = -1;
		if (sub[0]) {
			next =
			    openat(dirfd(d), sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (next >= 0 && fstat(next, &st) == 0 && st.st_dev == ids[0].dev)
				ids[++depth] = (struct dir_id){st.st_dev, st.st_ino};
			else if (next >= 0)
				close(next), next = -1;
		}
		if (next < 0 && depth > 0) { /* emptied (or stuck): back up, to the same folder */
			next = openat(dirfd(d), "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (next >= 0 && !same_dir(next, &ids[--depth]))
				close(next), next = -1;
		}
		closedir(d);
		fd = next;
	}
	if (fd >= 0)
		close(fd);
	free(ids);
}

/* Empties the folder name of parent (empty_tree) and removes it. */
static void remove_in(int parent, const char *name)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		empty_tree(fd);
		close(fd);
	}
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		warnmsg("%s: instance store folder: %s", name, strerror(errno));
}

int istore_prepare(const struct instance *in, char *err, size_t errlen)
{
	int fd = open_dir(in->i_spec.s_istore_dir, err, errlen);
	if (fd < 0)
		return -1;
	/* O_PATH fds take no *at() writes: the folder itself, now that it checked out. */
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(fd);
	if (dfd < 0)
		RETURN_ERR(-1, "instance store folder: %s", strerror(errno));
	remove_in(dfd, in->i_id); /* what a crash of nitrod left */
	int r = -1;
	if (mkdirat(dfd, in->i_id, 0700) < 0) {
		sfmt(err, errlen, "instance store folder %s: %s", in->i_id, strerror(errno));
		goto out;
	}
	int sub = openat(dfd, in->i_id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (sub < 0 || (g_ctl.c_jail && fchown(sub, in->i_uid, in->i_gid) < 0)) {
		sfmt(err, errlen, "instance store folder %s: %s", in->i_id, strerror(errno));
		if (sub >= 0)
			close(sub);
		goto out;
	}
	close(sub);
	r = 0;
out:
	close(dfd);
	return r;
}

void istore_remove(const struct instance *in)
{
	if (!in->i_spec.s_istore_mib)
		return;
	char err[PATH_MAX + 256];
	int fd = open_dir(in->i_spec.s_istore_dir, err, sizeof(err));
	if (fd < 0) {
		warnmsg("%s: %s", in->i_id, err);
		return;
	}
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(fd);
	if (dfd < 0)
		return;
	remove_in(dfd, in->i_id);
	close(dfd);
}
