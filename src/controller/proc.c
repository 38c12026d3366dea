/* Starting one hypervisor or card process (see proc.h). */
#include "controller/proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/util.h"

unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* The command name may hold spaces and parentheses: fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return 0;
	p++; /* the space before field 3 (the state); the start time is field 22 */
	for (int field = 3; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p)
		return 0;
	return strtoull(p + 1, NULL, 10);
}

/* Without the jailer: a plain child in its own session. */
static pid_t spawn_plain(const struct proc_spawn *ps, char *const argv[], char *err, size_t errlen)
{
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		RETURN_ERR(-1, "%s: pipe: %s", ps->ps_kind, strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		close(pipefd[0]);
		close(pipefd[1]);
		RETURN_ERR(-1, "%s: fork: %s", ps->ps_kind, strerror(errno));
	}
	if (pid == 0) {
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		int null = open("/dev/null", O_RDWR | O_CLOEXEC);
		for (int i = 0; i < 3; i++) {
			int fd = ps->ps_stdio[i] >= 0 ? ps->ps_stdio[i] : null;
			if (fd == i)
				fcntl(fd, F_SETFD, 0);
			else
				dup2(fd, i);
		}
		/* Passed fds: parked above every number in play, then put in place. */
		int parked[JAIL_MAX_FDS], base = 3;
		for (size_t i = 0; i < ps->ps_nfds && i < JAIL_MAX_FDS; i++) {
			base = ps->ps_fds[i].jf_to >= base ? ps->ps_fds[i].jf_to + 1 : base;
			base = ps->ps_fds[i].jf_from >= base ? ps->ps_fds[i].jf_from + 1 : base;
		}
		base = ps->ps_exec_fd >= base ? ps->ps_exec_fd + 1 : base;
		base = pipefd[1] >= base ? pipefd[1] + 1 : base;
		for (size_t i = 0; i < ps->ps_nfds && i < JAIL_MAX_FDS; i++)
			parked[i] = fcntl(ps->ps_fds[i].jf_from, F_DUPFD_CLOEXEC, base);
		int exec_fd = ps->ps_exec_fd, efd = pipefd[1];
		for (size_t i = 0; i < ps->ps_nfds && i < JAIL_MAX_FDS; i++) {
			if (exec_fd == ps->ps_fds[i].jf_to)
				exec_fd = fcntl(exec_fd, F_DUPFD_CLOEXEC, base);
			if (efd == ps->ps_fds[i].jf_to)
				efd = fcntl(efd, F_DUPFD_CLOEXEC, base);
		}
		for (size_t i = 0; i < ps->ps_nfds && i < JAIL_MAX_FDS; i++)
			if (parked[i] >= 0)
				dup2(parked[i], ps->ps_fds[i].jf_to);
		int e;
		if (exec_fd >= 0)
			syscall(SYS_execveat, exec_fd, "", argv, ps->ps_env, AT_EMPTY_PATH);
		else
			execve(argv[0], argv, ps->ps_env);
		e = errno;
		if (write(efd, &e, sizeof(e)) < 0)
			_exit(126);
		_exit(127);
	}
	close(pipefd[1]);
	int e = 0;
	ssize_t n;
	while ((n = read(pipefd[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close(pipefd[0]);
	if (n == (ssize_t)sizeof(e)) {
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		RETURN_ERR(-1, "%s: cannot start %s: %s", ps->ps_kind, argv[0], strerror(e));
	}
	return pid;
}

pid_t proc_spawn(const struct proc_spawn *ps, bool jail, char *const argv[], char *err,
		 size_t errlen)
{
	if (!jail)
		return spawn_plain(ps, argv, err, errlen);
	struct jail_spec js;
	jail_spec_init(&js, ps->ps_kind, ps->ps_uid, ps->ps_gid, ps->ps_jail_dir);
	js.js_binds = ps->ps_binds;
	js.js_nbinds = ps->ps_nbinds;
	for (int i = 0; i < 3; i++)
		js.js_stdio[i] = ps->ps_stdio[i];
	js.js_env = ps->ps_env;
	js.js_seccomp = true;
	js.js_exec_fd = ps->ps_exec_fd;
	js.js_flags = ps->ps_jail_flags | JAIL_CHROOT_FALLBACK;
	js.js_fds = ps->ps_fds;
	js.js_nfds = ps->ps_nfds;
	js.js_cgroup_fd = ps->ps_cgroup_fd;
	static const struct jail_rlimit lim[] = {
	    {RLIMIT_NOFILE, 1024, 1024},
	    {RLIMIT_CORE, 0, 0},
	};
	js.js_rlimits = lim;
	js.js_nrlimits = ARRAY_SIZE(lim);
	err[0] = 0;
	pid_t pid = jail_spawn(&js, argv, err, errlen);
	if (pid > 0 && err[0]) {
		static bool warned;
		if (!warned)
			warnmsg("%s", err);
		warned = true;
		err[0] = 0;
	}
	return pid;
}
