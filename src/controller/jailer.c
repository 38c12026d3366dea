/* The jailer (contract in jailer.h). The parent plans every mount and string; the cloned
 * child only makes system calls and reports a failure through a close-on-exec pipe. */
#include "controller/jailer.h"
#include "controller/jail_elf.h"
#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct mnt {
	char *m_src;
	char *m_dst;  /* full path under the jail dir */
	size_t m_rel; /* offset in m_dst where the in-jail path starts (its '/') */
	bool m_dir;
	dev_t m_rdev; /* != 0: a device node made in the jail (mknod), not a bind */
	mode_t m_mode;
	unsigned m_flags;
};

struct plan {
	struct mnt *p_mnt;
	size_t p_n, p_cap;
};

/* Library closures are cached per executable identity: launches re-read nothing. */
struct deps_cache {
	dev_t dc_dev;
	ino_t dc_ino;
	struct timespec dc_mtime;
	char **dc_paths;
	size_t dc_n;
};
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;
static struct deps_cache cache[16];
static unsigned cache_next;

void jail_spec_init(struct jail_spec *js, const char *kind, uid_t uid, gid_t gid, const char *dir)
{
	memset(js, 0, sizeof(*js));
	js->js_kind = kind;
	js->js_uid = uid;
	js->js_gid = gid;
	js->js_dir = dir;
	js->js_stdio[0] = js->js_stdio[1] = js->js_stdio[2] = -1;
	js->js_exec_fd = -1;
	js->js_cgroup_fd = -1;
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; i < p->p_n; i++) {
		free(p->p_mnt[i].m_src);
		free(p->p_mnt[i].m_dst);
	}
	free(p->p_mnt);
}

static int plan_add(struct plan *p, const char *dir, const char *src, const char *dst,
		    unsigned flags, char *err, size_t errlen)
{
	if (!dst)
		dst = src;
	if (!src || src[0] != '/' || dst[0] != '/' || strstr(dst, "/../") ||
	    !strcmp(dst + strlen(dst) - (strlen(dst) >= 3 ? 3 : strlen(dst)), "/.."))
		RETURN_ERR(-1, "bind %s -> %s: paths must be absolute, without ..", src ? src : "?",
			   dst);
	struct stat st;
	if (stat(src, &st) < 0) {
		if (errno == ENOENT && (flags & JAIL_BIND_OPTIONAL))
			return 0;
		RETURN_ERR(-1, "bind %s: %s", src, strerror(errno));
	}
	for (size_t i = 0; i < p->p_n; i++)
		if (!strcmp(p->p_mnt[i].m_dst + p->p_mnt[i].m_rel, dst))
			return 0; /* already bound (a library named twice) */
	if (p->p_n == p->p_cap) {
		size_t cap = p->p_cap ? 2 * p->p_cap : 32;
		struct mnt *n = realloc(p->p_mnt, cap * sizeof(*n));
		if (!n)
			RETURN_ERR(-1, "jail: out of memory");
		p->p_mnt = n;
		p->p_cap = cap;
	}
	struct mnt *m = &p->p_mnt[p->p_n];
	m->m_src = strdup(src);
	m->m_rel = strlen(dir);
	if (asprintf(&m->m_dst, "%s%s", dir, dst) < 0)
		m->m_dst = NULL;
	if (!m->m_src || !m->m_dst) {
		free(m->m_src);
		RETURN_ERR(-1, "jail: out of memory");
	}
	m->m_dir = S_ISDIR(st.st_mode);
	m->m_rdev = 0;
	if ((flags & JAIL_BIND_DEV) && (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))) {
		m->m_rdev = st.st_rdev;
		m->m_mode = st.st_mode & (S_IFMT | 0666);
	}
	m->m_flags = flags;
	p->p_n++;
	return 0;
}

/* A private copy of a cached closure (another launch may evict the entry meanwhile). */
static int copy_paths(char **src, size_t n, char ***out, size_t *nout)
{
	*out = calloc(n + 1, sizeof(char *));
	*nout = 0;
	if (!*out)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (!((*out)[i] = strdup(src[i]))) {
			jail_elf_free(*out, i);
			*out = NULL;
			return -1;
		}
	}
	*nout = n;
	return 0;
}

static int deps_of(int fd, const char *path, char ***paths, size_t *n, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		RETURN_ERR(-1, "%s: %s", path, strerror(errno));
	pthread_mutex_lock(&cache_lock);
	for (size_t i = 0; i < ARRAY_SIZE(cache); i++) {
		struct deps_cache *c = &cache[i];
		if (c->dc_paths && c->dc_dev == st.st_dev && c->dc_ino == st.st_ino &&
		    c->dc_mtime.tv_sec == st.st_mtim.tv_sec &&
		    c->dc_mtime.tv_nsec == st.st_mtim.tv_nsec) {
			int rc = copy_paths(c->dc_paths, c->dc_n, paths, n);
			pthread_mutex_unlock(&cache_lock);
			if (rc < 0)
				RETURN_ERR(-1, "%s: out of memory", path);
			return 0;
		}
	}
	char **found = NULL;
	size_t nfound = 0;
	int rc = jail_elf_closure(fd, path, &found, &nfound, err, errlen);
	if (rc == 0) {
		struct deps_cache *c = &cache[cache_next++ % ARRAY_SIZE(cache)];
		jail_elf_free(c->dc_paths, c->dc_n);
		/* An executable without dependencies still gets an entry (an empty array). */
		if (!found)
			found = calloc(1, sizeof(char *));
		*c = (struct deps_cache){.dc_dev = st.st_dev,
					 .dc_ino = st.st_ino,
					 .dc_mtime = st.st_mtim,
					 .dc_paths = found,
					 .dc_n = nfound};
		if (!found || copy_paths(found, nfound, paths, n) < 0) {
			snprintf(err, errlen, "%s: out of memory", path);
			rc = -1;
		}
	}
	pthread_mutex_unlock(&cache_lock);
	return rc;
}

/* ---- child side: system calls only; a failure is reported through the pipe ---- */

static _Noreturn void child_fail(int pfd, const char *kind, const char *what, const char *arg,
				 int e)
{
	char msg[600];
	int n = snprintf(msg, sizeof(msg), "Ejail %s: %s(%s): %s", kind, what, arg ? arg : "",
			 strerror(e));
	if (n > 0 && write(pfd, msg, (size_t)n) < 0)
		_exit(126);
	_exit(127);
}

/* mkdir -p of the directories of path below its first `keep` bytes (which exist). */
static int mkdirs(char *path, size_t keep, bool last_too)
{
	for (char *s = path + keep + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		int rc = mkdir(path, 0755);
		*s = '/';
		if (rc < 0 && errno != EEXIST)
			return -1;
	}
	if (last_too && mkdir(path, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static void child(const struct jail_spec *js, const struct plan *p, char *const argv[],
		  char *const envp[], int pfd, const int *keep, size_t nkeep)
{
	const char *k = js->js_kind;
	sigset_t all;
	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	setsid();
	int ns = CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS;
	if (js->js_flags & JAIL_NEWNET)
		ns |= CLONE_NEWNET;
	if (unshare(ns) < 0)
		child_fail(pfd, k, "unshare", "mount/ipc/uts/net", errno);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		child_fail(pfd, k, "mount", "/ private", errno);
	if (mount("nitro-jail", js->js_dir, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=1m") <
	    0)
		child_fail(pfd, k, "mount tmpfs", js->js_dir, errno);
	size_t dl = strlen(js->js_dir);
	for (size_t i = 0; i < p->p_n; i++) {
		struct mnt *m = &p->p_mnt[i];
		if (mkdirs(m->m_dst, dl, m->m_dir) < 0)
			child_fail(pfd, k, "mkdir", m->m_dst, errno);
		if (m->m_rdev) {
			/* The jail's own node, owned by the jailed uid: host modes stay as they
			 * are. */
			if (mknod(m->m_dst, m->m_mode, m->m_rdev) < 0)
				child_fail(pfd, k, "mknod", m->m_dst, errno);
			if (chown(m->m_dst, js->js_uid, js->js_gid) < 0)
				child_fail(pfd, k, "chown", m->m_dst, errno);
			continue;
		}
		if (!m->m_dir) {
			int fd = open(m->m_dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
			if (fd < 0)
				child_fail(pfd, k, "create", m->m_dst, errno);
			close(fd);
		}
		if (mount(m->m_src, m->m_dst, NULL, MS_BIND | MS_REC, NULL) < 0)
			child_fail(pfd, k, "bind", m->m_src, errno);
		/* The attributes go on the bind and on every mount below it (AT_RECURSIVE): a
		 * plain remount would leave a writable submount of a read-only folder
		 * writable. */
		struct mount_attr ma = {.attr_set = MOUNT_ATTR_NOSUID};
		if (!(m->m_flags & JAIL_BIND_RW))
			ma.attr_set |= MOUNT_ATTR_RDONLY;
		else
			ma.attr_set |= MOUNT_ATTR_NOEXEC;
		if (!(m->m_flags & JAIL_BIND_DEV))
			ma.attr_set |= MOUNT_ATTR_NODEV;
		if (mount_setattr(AT_FDCWD, m->m_dst, AT_RECURSIVE | AT_SYMLINK_NOFOLLOW, &ma,
				  sizeof(ma)) < 0)
			child_fail(pfd, k, "mount_setattr", m->m_dst, errno);
	}
	if (chdir(js->js_dir) < 0)
		child_fail(pfd, k, "chdir", js->js_dir, errno);
	if (syscall(SYS_pivot_root, ".", ".") == 0) {
		if (umount2(".", MNT_DETACH) < 0)
			child_fail(pfd, k, "umount old root", js->js_dir, errno);
	} else {
		int e = errno;
		if (!(js->js_flags & JAIL_CHROOT_FALLBACK))
			child_fail(pfd, k, "pivot_root", js->js_dir, e);
		if (mount(js->js_dir, "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0)
			child_fail(pfd, k, "chroot fallback", js->js_dir, errno);
		char w[300];
		int n = snprintf(w, sizeof(w),
				 "Wjail %s: pivot_root(%s) failed (%s); fell back to a chroot in a "
				 "private mount namespace",
				 k, js->js_dir, strerror(e));
		if (write(pfd, w, (size_t)n) < 0)
			_exit(126);
	}
	if (chdir("/") < 0)
		child_fail(pfd, k, "chdir", "/", errno);
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NOEXEC, NULL) < 0)
		child_fail(pfd, k, "remount read-only", "/", errno);

	/* stdio: park the sources on fresh fds >= 3 (not kept ones), then dup2 onto 0..2. */
	int tmp[3];
	for (int i = 0; i < 3; i++) {
		if (js->js_stdio[i] >= 0)
			tmp[i] = fcntl(js->js_stdio[i], F_DUPFD_CLOEXEC, 3);
		else
			tmp[i] = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (tmp[i] < 0)
			child_fail(pfd, k, "stdio", i == 0 ? "0" : i == 1 ? "1" : "2", errno);
	}
	for (int i = 0; i < 3; i++)
		if (dup2(tmp[i], i) < 0)
			child_fail(pfd, k, "dup2", "stdio", errno);
	/* Close everything but 0..2, the kept fds (sorted), the exec fd and the pipe. */
	unsigned lo = 3;
	for (size_t i = 0; i <= nkeep; i++) {
		unsigned hi = i < nkeep ? (unsigned)keep[i] : ~0U;
		if (hi > lo) {
			unsigned a = lo, b = hi - 1;
			/* step around the pipe */
			if ((unsigned)pfd >= a && (unsigned)pfd <= b) {
				if ((unsigned)pfd > a)
					syscall(SYS_close_range, a, (unsigned)pfd - 1, 0);
				a = (unsigned)pfd + 1;
			}
			if (a <= b)
				syscall(SYS_close_range, a, b, 0);
		}
		lo = hi + 1;
		if (hi == ~0U)
			break;
	}

	/* Passed fds to their numbers: park every source (and the exec fd and the pipe when
	 * they sit on a target) above all numbers in play, then dup2 (which clears
	 * close-on-exec; the parked copies keep it and go at exec). */
	int exec_fd = js->js_exec_fd;
	if (js->js_nfds) {
		int base = pfd + 1, parked[JAIL_MAX_FDS];
		for (size_t i = 0; i < nkeep; i++)
			base = keep[i] >= base ? keep[i] + 1 : base;
		for (size_t i = 0; i < js->js_nfds; i++)
			base = js->js_fds[i].jf_to >= base ? js->js_fds[i].jf_to + 1 : base;
		for (size_t i = 0; i < js->js_nfds; i++) {
			if ((parked[i] = fcntl(js->js_fds[i].jf_from, F_DUPFD_CLOEXEC, base)) < 0)
				child_fail(pfd, k, "pass fd", "", errno);
			if (exec_fd == js->js_fds[i].jf_to &&
			    (exec_fd = fcntl(exec_fd, F_DUPFD_CLOEXEC, base)) < 0)
				child_fail(pfd, k, "pass fd", "exec", errno);
			if (pfd == js->js_fds[i].jf_to &&
			    (pfd = fcntl(pfd, F_DUPFD_CLOEXEC, base)) < 0)
				_exit(126);
		}
		for (size_t i = 0; i < js->js_nfds; i++)
			if (dup2(parked[i], js->js_fds[i].jf_to) < 0)
				child_fail(pfd, k, "dup2", "passed fd", errno);
		/* A source left at its own number (not a target, not kept) is not passed. */
		for (size_t i = 0; i < js->js_nfds; i++) {
			int f = js->js_fds[i].jf_from;
			bool stays = f == exec_fd;
			for (size_t j = 0; j < js->js_nfds; j++)
				stays |= f == js->js_fds[j].jf_to;
			for (size_t j = 0; j < js->js_nkeep; j++)
				stays |= f == js->js_keep_fds[j];
			if (!stays)
				close(f);
		}
	}
	/* The kept fds are meant for the new program: inheritable whatever their flag was. */
	for (size_t i = 0; i < js->js_nkeep; i++)
		if (fcntl(js->js_keep_fds[i], F_SETFD, 0) < 0)
			child_fail(pfd, k, "fcntl", "keep fd", errno);
	bool core = false;
	for (size_t i = 0; i < js->js_nrlimits; i++) {
		struct rlimit rl = {js->js_rlimits[i].jr_cur, js->js_rlimits[i].jr_max};
		if (setrlimit(js->js_rlimits[i].jr_resource, &rl) < 0)
			child_fail(pfd, k, "setrlimit", "", errno);
		core |= js->js_rlimits[i].jr_resource == RLIMIT_CORE;
	}
	if (!core) {
		struct rlimit rl = {0, 0};
		setrlimit(RLIMIT_CORE, &rl);
	}
	/* Raw system calls: glibc's wrappers would try to change the ids of the parent's
	 * other threads too (this child of clone3 is single-threaded, glibc does not know). */
	if (syscall(SYS_setgroups, js->js_ngroups, js->js_ngroups ? js->js_groups : NULL) < 0)
		child_fail(pfd, k, "setgroups", "", errno);
	if (syscall(SYS_setresgid, js->js_gid, js->js_gid, js->js_gid) < 0)
		child_fail(pfd, k, "setresgid", "", errno);
	if (syscall(SYS_setresuid, js->js_uid, js->js_uid, js->js_uid) < 0)
		child_fail(pfd, k, "setresuid", "", errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		child_fail(pfd, k, "prctl", "NO_NEW_PRIVS", errno);
	if (exec_fd >= 0)
		syscall(SYS_execveat, exec_fd, "", argv, envp, AT_EMPTY_PATH);
	else
		execve(argv[0], argv, envp);
	child_fail(pfd, k, "exec", argv[0], errno);
}

/* The child starts as pid 1 of a new PID namespace (it sees no host process and cannot
 * signal one), inside the cgroup of cgroup_fd when >= 0 (charged and limited from its
 * first page). Like fork() for the caller: 0 in the child, its pid (as nitrod sees it) in
 * the parent. clone3 bypasses glibc's fork handlers: the child only makes system calls. */
static pid_t clone_jailed(int cgroup_fd)
{
	struct clone_args ca = {.flags = CLONE_NEWPID, .exit_signal = SIGCHLD};
	if (cgroup_fd >= 0) {
		ca.flags |= CLONE_INTO_CGROUP;
		ca.cgroup = (uint64_t)cgroup_fd;
	}
	return (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
}

static int cmp_int(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

pid_t jail_spawn(const struct jail_spec *js, char *const argv[], char *err, size_t errlen)
{
	const char *k = js->js_kind ? js->js_kind : "?";
	if (err && errlen)
		err[0] = 0;
	if (!argv || !argv[0] || argv[0][0] != '/')
		RETURN_ERR(-1, "jail %s: argv[0] must be an absolute path", k);
	if (js->js_uid == 0 || js->js_gid == 0)
		RETURN_ERR(-1, "jail %s: refusing to run as uid or gid 0", k);
	for (size_t i = 0; i < js->js_ngroups; i++)
		if (js->js_groups[i] == 0)
			RETURN_ERR(-1, "jail %s: refusing supplementary group 0", k);
	if (!js->js_dir || js->js_dir[0] != '/' || strlen(js->js_dir) < 2)
		RETURN_ERR(-1, "jail %s: the jail dir must be an absolute path other than /", k);
	size_t nkeep = js->js_nkeep;
	if (js->js_nfds > JAIL_MAX_FDS)
		RETURN_ERR(-1, "jail %s: at most %d fds to pass", k, JAIL_MAX_FDS);
	for (size_t i = 0; i < js->js_nfds; i++) {
		const struct jail_fd *f = &js->js_fds[i];
		bool bad = f->jf_to < 3 || f->jf_to > (1 << 20) || fcntl(f->jf_from, F_GETFD) < 0;
		for (size_t j = 0; j < i; j++)
			bad |= js->js_fds[j].jf_to == f->jf_to;
		for (size_t j = 0; j < js->js_nkeep; j++)
			bad |= js->js_keep_fds[j] == f->jf_to;
		if (bad)
			RETURN_ERR(-1,
				   "jail %s: fd %d to pass as %d: not open, or a number below 3, "
				   "twice or kept",
				   k, f->jf_from, f->jf_to);
	}
	/* The sources of passed fds survive the closing of the rest until they are moved. */
	int *keep = calloc(nkeep + js->js_nfds + 1, sizeof(int));
	if (!keep)
		RETURN_ERR(-1, "jail %s: out of memory", k);
	for (size_t i = 0; i < nkeep; i++) {
		keep[i] = js->js_keep_fds[i];
		if (keep[i] < 3 || fcntl(keep[i], F_GETFD) < 0) {
			free(keep);
			RETURN_ERR(-1, "jail %s: fd %d to keep is not an open fd >= 3", k,
				   js->js_keep_fds[i]);
		}
	}
	if (js->js_exec_fd >= 0)
		keep[nkeep++] = js->js_exec_fd;
	for (size_t i = 0; i < js->js_nfds; i++)
		keep[nkeep++] = js->js_fds[i].jf_from;
	qsort(keep, nkeep, sizeof(int), cmp_int);
	size_t u = 0; /* one entry per number (a source may also be the exec fd) */
	for (size_t i = 0; i < nkeep; i++)
		if (!u || keep[u - 1] != keep[i])
			keep[u++] = keep[i];
	nkeep = u;

	/* Mounts: the executable and its libraries, /dev/null, then the caller's binds. */
	struct plan p = {0};
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s", js->js_dir);
	size_t dl = strlen(dir);
	while (dl > 1 && dir[dl - 1] == '/')
		dir[--dl] = 0;
	char **deps = NULL;
	size_t ndeps = 0;
	int efd = js->js_exec_fd >= 0 ? js->js_exec_fd : open(argv[0], O_RDONLY | O_CLOEXEC);
	if (efd < 0) {
		snprintf(err, errlen, "jail %s: %s: %s", k, argv[0], strerror(errno));
		goto fail;
	}
	char e2[400];
	int rc = deps_of(efd, argv[0], &deps, &ndeps, e2, sizeof(e2));
	if (efd != js->js_exec_fd)
		close(efd);
	if (rc < 0) {
		snprintf(err, errlen, "jail %s: %s", k, e2);
		goto fail;
	}
	if ((js->js_exec_fd < 0 && plan_add(&p, dir, argv[0], NULL, 0, err, errlen) < 0) ||
	    plan_add(&p, dir, "/dev/null", NULL, JAIL_BIND_DEV | JAIL_BIND_RW, err, errlen) < 0)
		goto fail;
	for (size_t i = 0; i < ndeps; i++)
		if (plan_add(&p, dir, deps[i], NULL, 0, err, errlen) < 0)
			goto fail;
	for (size_t i = 0; i < js->js_nbinds; i++)
		if (plan_add(&p, dir, js->js_binds[i].jb_src, js->js_binds[i].jb_dst,
			     js->js_binds[i].jb_flags, err, errlen) < 0)
			goto fail;

	/* Environment. */
	size_t nenv = 0;
	while (js->js_env && js->js_env[nenv])
		nenv++;
	char **envp = calloc(nenv + 2, sizeof(char *));
	char *sec = NULL;
	if (!envp)
		goto oom;
	memcpy(envp, js->js_env ? js->js_env : envp, nenv * sizeof(char *));
	if (js->js_seccomp) {
		if (asprintf(&sec, "NITRO_SECCOMP=%s", k) < 0) {
			free(envp);
			goto oom;
		}
		envp[nenv++] = sec;
	}

	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "jail %s: mkdir %s: %s", k, dir, strerror(errno));
		free(envp);
		free(sec);
		goto fail;
	}
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "jail %s: pipe: %s", k, strerror(errno));
		free(envp);
		free(sec);
		goto fail;
	}
	pid_t pid = clone_jailed(js->js_cgroup_fd);
	if (pid == 0) {
		close(pfd[0]);
		child(js, &p, argv, envp, pfd[1], keep, nkeep);
		_exit(127);
	}
	int fe = errno;
	close(pfd[1]);
	free(envp);
	free(sec);
	if (pid < 0) {
		close(pfd[0]);
		snprintf(err, errlen, "jail %s: clone3: %s", k, strerror(fe));
		goto fail;
	}
	/* EOF on the pipe = exec succeeded. */
	char msg[1024];
	size_t got = 0;
	for (;;) {
		ssize_t r = read(pfd[0], msg + got, sizeof(msg) - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof(msg) - 1)
			break;
	}
	close(pfd[0]);
	msg[got] = 0;
	char *e = strstr(msg, "Ejail");
	if (e) {
		waitpid(pid, NULL, 0);
		snprintf(err, errlen, "%s", e + 1);
		pid = -1;
	} else if (msg[0] == 'W') {
		snprintf(err, errlen, "%s", msg + 1);
	}
	plan_free(&p);
	jail_elf_free(deps, ndeps);
	free(keep);
	return pid;
oom:
	snprintf(err, errlen, "jail %s: out of memory", k);
fail:
	plan_free(&p);
	jail_elf_free(deps, ndeps);
	free(keep);
	return -1;
}
