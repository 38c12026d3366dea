/* The jailer: starts a hypervisor or card process locked down (issue 5).
 *
 * jail_spawn clones a child (clone3) that is pid 1 of its own PID namespace (it sees and
 * can signal no host process; nitrod keeps its real pid) and, with js_cgroup_fd >= 0,
 * starts inside that cgroup v2 directory (CLONE_INTO_CGROUP: limited from its first
 * page; see cgroup.h). Before exec the child:
 *   1. gets its own mount, IPC and UTS namespaces (and network namespace with
 *      JAIL_NEWNET: no interfaces but loopback, no abstract unix sockets of the host);
 *   2. mounts a fresh tmpfs on js_dir (created 0755 if missing; nothing persists), makes
 *      inside it the mount points for each bind and bind-mounts them nosuid, nodev and
 *      read-only (JAIL_BIND_RW: writable but noexec), recursively: every mount below a
 *      bound folder gets the same attributes (mount_setattr AT_RECURSIVE), so a
 *      writable submount is read-only in the jail too; a device with JAIL_BIND_DEV
 *      (e.g. /dev/kvm) is not bound but made afresh in the jail (mknod, same device
 *      number and mode) owned by js_uid:js_gid, so the host's node keeps its root-only
 *      mode. The executable, its ELF interpreter and every DT_NEEDED library (found
 *      like ld.so, cached per binary) are bound read-only; /dev/null is always there;
 *   3. pivot_root(js_dir) and detaches the old root, then remounts the jail root
 *      read-only: the process sees only what was bound (no /etc, /proc, /home ...).
 *      If pivot_root fails (e.g. EINVAL when the host itself runs in a chroot), spawn
 *      fails with a clear error, unless js_flags has JAIL_CHROOT_FALLBACK: then it moves
 *      the jail onto / and chroots (still a private mount namespace and no capabilities
 *      after the uid switch) and writes a warning into err while returning the pid;
 *   4. dup2s js_stdio onto fds 0..2 (-1: /dev/null), keeps the js_keep_fds at their
 *      numbers (each >= 3; close-on-exec cleared: they are for the new program), puts
 *      each js_fds source at its number (>= 3, distinct, none a kept fd: e.g. the 3 a
 *      card's --key-fd names, whatever number the caller's fd has; close-on-exec
 *      cleared, so the caller may hold the source O_CLOEXEC) and closes every other fd;
 *   5. starts a new session, applies js_rlimits (RLIMIT_CORE 0 unless given),
 *      setgroups(js_groups, none by default), setresgid(gid), setresuid(uid) (uid, gid and
 *      groups must not be 0), PR_SET_NO_NEW_PRIVS, then execs argv
 *      with envp = js_env plus, if js_seccomp, NITRO_SECCOMP=<js_kind> so the binary
 *      installs its own seccomp allow-list after its set-up (src/sandbox/sandbox.h).
 * The exec is by js_exec_fd when >= 0 (execveat AT_EMPTY_PATH of the fd the security
 * chip measured), else by the path argv[0] as seen inside the jail (it is bound at the
 * same path). Errors from any step come back synchronously: jail_spawn returns -1 with
 * "jail hv: pivot_root(/run/nitro/i-1/hv): Invalid argument" and reaps the child.
 * The caller owns the returned pid (waitpid it). Safe to call from a threaded daemon:
 * everything is prepared before fork; the child only makes system calls.
 */
#ifndef NITRO_CONTROLLER_JAILER_H
#define NITRO_CONTROLLER_JAILER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/resource.h>
#include <sys/types.h>

enum {
	JAIL_BIND_RW = 1 << 0,	     /* writable (default read-only) */
	JAIL_BIND_DEV = 1 << 1,	     /* a device: own node in the jail owned by js_uid */
	JAIL_BIND_OPTIONAL = 1 << 2, /* skip silently when src does not exist */
};

struct jail_bind {
	const char *jb_src; /* host path (file, directory or device) */
	const char *jb_dst; /* path inside the jail; NULL = same as jb_src */
	unsigned jb_flags;  /* JAIL_BIND_* */
};

#define JAIL_MAX_FDS 8

struct jail_fd {
	int jf_from; /* an open fd of the caller */
	int jf_to;   /* its number in the jailed process (>= 3) */
};

struct jail_rlimit {
	int jr_resource; /* RLIMIT_* */
	rlim_t jr_cur, jr_max;
};

enum {
	JAIL_NEWNET = 1 << 0,	       /* own network namespace (nitrod: every process) */
	JAIL_CHROOT_FALLBACK = 1 << 1, /* see step 3 above */
};

struct jail_spec {
	const char *js_kind; /* "hv", "card-ebs", "card-vpc": messages and NITRO_SECCOMP */
	uid_t js_uid;	     /* unprivileged, per instance (never 0) */
	gid_t js_gid;
	const gid_t *js_groups; /* supplementary groups (e.g. kvm for /dev/kvm); none by default */
	size_t js_ngroups;
	const char *js_dir; /* jail root mount point, e.g. /run/nitro/jail/i-1/hv */
	const struct jail_bind *js_binds;
	size_t js_nbinds;
	const int *js_keep_fds; /* kept at the same numbers, each >= 3 */
	size_t js_nkeep;
	const struct jail_fd *js_fds; /* moved to the numbers given (at most JAIL_MAX_FDS) */
	size_t js_nfds;
	int js_stdio[3]; /* fds for the child's 0, 1, 2; -1 = /dev/null */
	const struct jail_rlimit *js_rlimits;
	size_t js_nrlimits;
	char *const *js_env; /* environment (NULL = empty) */
	bool js_seccomp;     /* add NITRO_SECCOMP=<js_kind> */
	int js_exec_fd;	     /* >= 0: exec this fd; -1: exec argv[0] */
	unsigned js_flags;   /* JAIL_NEWNET, JAIL_CHROOT_FALLBACK */
	int js_cgroup_fd;    /* >= 0: a cgroup v2 directory to start in; -1: the caller's */
};

/* A spec with everything empty: js_stdio, js_exec_fd and js_cgroup_fd -1. */
void jail_spec_init(struct jail_spec *js, const char *kind, uid_t uid, gid_t gid, const char *dir);

/* Starts argv[0] jailed as above. Returns the child's pid, or -1 with err set. On success
 * err holds "" or a warning (chroot fallback) the caller should log. */
pid_t jail_spawn(const struct jail_spec *js, char *const argv[], char *err, size_t errlen);

#endif
