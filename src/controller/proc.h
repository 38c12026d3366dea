/* Starting one hypervisor or card process: through the jailer (jailer.h) when nitrod
 * runs with jailing on (the default), or as a plain child in its own session with
 * --no-jail (development; nitrod not root). Either way the process gets the fds in
 * ps_stdio and ps_fds (each at the number it names), an environment of ps_env, and is exec'd
 * from ps_exec_fd (the fd the security chip measured). Processes start in a new session so they
 * outlive nitrod.
 *
 * proc_start_time reads the start time (clock ticks since boot) of a pid from
 * /proc/PID/stat: with the pid it names one process for ever (pids are reused, start
 * times of a reused pid differ).
 */
#ifndef NITRO_CONTROLLER_PROC_H
#define NITRO_CONTROLLER_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "controller/jailer.h"

struct proc_spawn {
	const char *ps_kind; /* "hv", "card-ebs", "card-vpc" */
	uid_t ps_uid;
	gid_t ps_gid;
	const char *ps_jail_dir;
	const struct jail_bind *ps_binds;
	size_t ps_nbinds;
	int ps_stdio[3];
	char *const *ps_env;
	int ps_exec_fd;
	unsigned ps_jail_flags;
	const struct jail_fd *ps_fds; /* passed at the numbers given (>= 3), close-on-exec
					cleared (the caller may hold them O_CLOEXEC): boot
					files, key pipe, underlay */
	size_t ps_nfds;
	int ps_cgroup_fd; /* >= 0: the cgroup v2 leaf to start in (jailed only) */
};

/* Returns the pid, or -1 with err set. A warning from the jailer (chroot fallback) is
 * logged once. */
pid_t proc_spawn(const struct proc_spawn *ps, bool jail, char *const argv[], char *err,
		 size_t errlen);

/* 0 when the process is gone or unreadable. */
unsigned long long proc_start_time(pid_t pid);

#endif
