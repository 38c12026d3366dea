/* cgroup v2 limits for jailed processes (see cgroup.h). */
#include "controller/cgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

static const char *const wanted[] = {"memory", "pids", "cpu"};

/* Writes s to dir/file (one write: cgroup files take one value per write). */
static int put(const char *dir, const char *file, const char *s, char *err, size_t errlen)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		RETURN_ERR(-1, "cgroup %s: %s", p, strerror(errno));
	ssize_t n = write(fd, s, strlen(s));
	int e = errno;
	close(fd);
	if (n != (ssize_t)strlen(s))
		RETURN_ERR(-1, "cgroup %s: writing '%s': %s", p, s, n < 0 ? strerror(e) : "short");
	return 0;
}

static bool has_word(const char *list, const char *w)
{
	size_t n = strlen(w);
	for (const char *p = list; (p = strstr(p, w)); p += n)
		if ((p == list || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || !p[n]))
			return true;
	return false;
}

static int read_small(const char *dir, const char *file, char *buf, size_t len)
{
	char p[PATH_MAX + 64];
	snprintf(p, sizeof(p), "%s/%s", dir, file);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

/* Enables memory, pids and cpu for the children of dir (skipping what already is). */
static int enable(const char *dir, char *err, size_t errlen)
{
	char cur[512];
	if (read_small(dir, "cgroup.subtree_control", cur, sizeof(cur)) < 0)
		RETURN_ERR(-1, "cgroup %s/cgroup.subtree_control: %s", dir, strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(wanted); i++) {
		char w[32];
		if (has_word(cur, wanted[i]))
			continue;
		snprintf(w, sizeof(w), "+%s", wanted[i]);
		if (put(dir, "cgroup.subtree_control", w, err, errlen) < 0)
			return -1;
	}
	return 0;
}

int cg_setup(const char *root, char *err, size_t errlen)
{
	struct statfs sf;
	char have[512], dir[PATH_MAX];
	if (statfs(root, &sf) < 0)
		RETURN_ERR(-1, "cgroups: %s: %s", root, strerror(errno));
	if (sf.f_type != CGROUP2_SUPER_MAGIC)
		RETURN_ERR(-1, "cgroups: %s is not a cgroup v2 hierarchy (mount -t cgroup2)", root);
	if (read_small(root, "cgroup.controllers", have, sizeof(have)) < 0)
		RETURN_ERR(-1, "cgroups: %s/cgroup.controllers: %s", root, strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(wanted); i++)
		if (!has_word(have, wanted[i]))
			RETURN_ERR(-1,
				   "cgroups: the %s controller is not available in %s (bound to a "
				   "cgroup v1 hierarchy, or not built)",
				   wanted[i], root);
	if (enable(root, err, errlen) < 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s/%s", root, CG_NITRO);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		RETURN_ERR(-1, "cgroups: %s: %s", dir, strerror(errno));
	return enable(dir, err, errlen);
}

static int apply(const char *dir, const struct cg_limits *l, char *err, size_t errlen)
{
	char v[32];
	if (l->cl_memory_max)
		snprintf(v, sizeof(v), "%llu", (unsigned long long)l->cl_memory_max);
	else
		snprintf(v, sizeof(v), "max");
	if (put(dir, "memory.max", v, err, errlen) < 0)
		return -1;
	/* No swap: absent when the kernel has no swap accounting (then nothing to limit). */
	char sw[PATH_MAX + 32];
	snprintf(sw, sizeof(sw), "%s/memory.swap.max", dir);
	if (access(sw, F_OK) == 0 && put(dir, "memory.swap.max", "0", err, errlen) < 0)
		return -1;
	if (l->cl_pids_max)
		snprintf(v, sizeof(v), "%llu", (unsigned long long)l->cl_pids_max);
	else
		snprintf(v, sizeof(v), "max");
	if (put(dir, "pids.max", v, err, errlen) < 0)
		return -1;
	if (l->cl_cpu_weight) {
		snprintf(v, sizeof(v), "%u", l->cl_cpu_weight);
		if (put(dir, "cpu.weight", v, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static bool bad_name(const char *s)
{
	return !s || !*s || strchr(s, '/') || !strcmp(s, ".") || !strcmp(s, "..") || strlen(s) > 64;
}

int cg_make(const char *root, const char *inst, const struct cg_limits *il, const char *name,
	    const struct cg_limits *l, char *err, size_t errlen)
{
	char idir[PATH_MAX], leaf[PATH_MAX + 80];
	if (bad_name(inst) || bad_name(name))
		RETURN_ERR(-1, "cgroups: bad instance or process name");
	snprintf(idir, sizeof(idir), "%s/%s/%s", root, CG_NITRO, inst);
	if (mkdir(idir, 0755) < 0 && errno != EEXIST)
		RETURN_ERR(-1, "cgroups: %s: %s", idir, strerror(errno));
	if (apply(idir, il, err, errlen) < 0 || enable(idir, err, errlen) < 0)
		return -1;
	snprintf(leaf, sizeof(leaf), "%s/%s", idir, name);
	if (mkdir(leaf, 0755) < 0 && errno != EEXIST)
		RETURN_ERR(-1, "cgroups: %s: %s", leaf, strerror(errno));
	if (apply(leaf, l, err, errlen) < 0)
		return -1;
	int fd = open(leaf, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		RETURN_ERR(-1, "cgroups: %s: %s", leaf, strerror(errno));
	return fd;
}

/* rmdir, retried while the cgroup still has exiting tasks (EBUSY). */
static int rmdir_wait(const char *dir)
{
	for (int i = 0; i < 200; i++) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -1;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return -1;
}

int cg_remove(const char *root, const char *inst, const char *name)
{
	char idir[PATH_MAX], leaf[PATH_MAX + 300];
	if (bad_name(inst) || (name && bad_name(name))) {
		errno = EINVAL;
		return -1;
	}
	snprintf(idir, sizeof(idir), "%s/%s/%s", root, CG_NITRO, inst);
	if (name) {
		snprintf(leaf, sizeof(leaf), "%s/%s", idir, name);
		return rmdir_wait(leaf);
	}
	DIR *d = opendir(idir);
	if (!d)
		return errno == ENOENT ? 0 : -1;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		snprintf(leaf, sizeof(leaf), "%s/%s", idir, de->d_name);
		if (rmdir_wait(leaf) < 0)
			rc = -1;
	}
	closedir(d);
	if (rmdir_wait(idir) < 0)
		rc = -1;
	return rc;
}

void cg_limits_hv(uint64_t mem_mib, unsigned cpus, struct cg_limits *l)
{
	*l = (struct cg_limits){.cl_memory_max = (mem_mib + CG_HV_OVERHEAD_MIB) << 20,
				.cl_pids_max = CG_HV_PIDS + cpus,
				.cl_cpu_weight = 100};
}

void cg_limits_card(uint64_t mem_mib, struct cg_limits *l)
{
	*l = (struct cg_limits){.cl_memory_max = (mem_mib + CG_CARD_OVERHEAD_MIB) << 20,
				.cl_pids_max = CG_CARD_PIDS,
				.cl_cpu_weight = 100};
}

void cg_limits_add_enclaves(unsigned cpus, struct cg_limits *l)
{
	uint64_t n = cpus > 1 ? cpus - 1 : 1;
	if (l->cl_memory_max)
		l->cl_memory_max += n * ((uint64_t)CG_ENCLAVE_OVERHEAD_MIB << 20);
	if (l->cl_pids_max)
		l->cl_pids_max += 1 + n * CG_HV_PIDS + cpus;
}

void cg_limits_instance(uint64_t mem_mib, unsigned cpus, unsigned ncards, struct cg_limits *l)
{
	unsigned w = 100 * (cpus ? cpus : 1);
	*l = (struct cg_limits){
	    .cl_memory_max =
		(mem_mib + CG_HV_OVERHEAD_MIB + (uint64_t)CG_CARD_OVERHEAD_MIB * ncards) << 20,
	    .cl_pids_max = CG_HV_PIDS + cpus + (uint64_t)CG_CARD_PIDS * ncards,
	    .cl_cpu_weight = w > 10000 ? 10000 : w};
}
