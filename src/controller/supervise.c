/* Supervision of instances: launch, watch, restart, stop (see supervise.h). */
#include "controller/supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "controller/audit.h"
#include "controller/kcache.h"
#include "controller/proc.h"
#include "controller/records.h"
#include "lib/util.h"
#include "securitychip/chip.h"

#define CARD_START_MS 5000
#define HV_EXIT_GUEST_REBOOT 4 /* nitro-hv's status for a guest reboot (src/hv/main.c) */
#define RESTART_WINDOW_MS 60000

static int timer_fd = -1;
static pthread_t sup_thread;

void inst_dir(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/instances/%s", g_ctl.c_state_dir, in->i_id);
}

void inst_console_path(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/instances/%s/console.log", g_ctl.c_state_dir, in->i_id);
}

/* The run folder holds the card sockets; short, for sun_path. */
static void run_dir(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/run/%s", g_ctl.c_state_dir, in->i_id);
}

static void key_dir(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/run/%s-key", g_ctl.c_state_dir, in->i_id);
}

static void card_socket(const struct instance *in, unsigned idx, char *out, size_t len)
{
	char rd[PATH_MAX];
	run_dir(in, rd, sizeof(rd));
	sfmt(out, len, "%s/c%u.sock", rd, idx);
}

static void audit_event(const struct instance *in, const char *what, int status, const char *detail)
{
	char route[64];
	sfmt(route, sizeof(route), "/v1/instances/%s", in->i_id);
	if (g_ctl.c_audit &&
	    audit_append(g_ctl.c_audit, geteuid(), what, route, status, detail) < 0)
		warnmsg("audit log: %s", strerror(errno));
}

/* --- watching --- */

static void watch(struct proc *p)
{
	p->p_pidfd = (int)syscall(SYS_pidfd_open, p->p_pid, 0);
	if (p->p_pidfd < 0) {
		warnmsg("pidfd_open %d: %s", (int)p->p_pid, strerror(errno));
		return;
	}
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = p->p_pidfd};
	epoll_ctl(g_ctl.c_epoll, EPOLL_CTL_ADD, p->p_pidfd, &ev);
}

static void unwatch(struct proc *p)
{
	if (p->p_pidfd >= 0) {
		epoll_ctl(g_ctl.c_epoll, EPOLL_CTL_DEL, p->p_pidfd, NULL);
		close(p->p_pidfd);
	}
	p->p_pidfd = -1;
}

static bool alive(const struct proc *p)
{
	return p->p_pid > 0;
}

static bool any_alive(const struct instance *in)
{
	if (alive(&in->i_hv))
		return true;
	for (unsigned i = 0; i < in->i_ncards; i++)
		if (alive(&in->i_cards[i]))
			return true;
	return false;
}

static void signal_proc(struct proc *p, int sig)
{
	if (!alive(p))
		return;
	if (p->p_pidfd >= 0 && syscall(SYS_pidfd_send_signal, p->p_pidfd, sig, NULL, 0) == 0)
		return;
	kill(p->p_pid, sig);
}

/* The last line a process wrote to its log (for failure reasons). */
static void last_line(const char *path, char *out, size_t len)
{
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[600];
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	char *nl = strrchr(buf, '\n');
	char *s = nl ? nl + 1 : buf;
	for (char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	sfmt(out, len, "%s", s);
}

/* Ends a stop: every process is gone. */
static void finish(struct instance *in)
{
	switch (in->i_goal) {
	case GOAL_TERMINATE:
		in->i_state = ST_TERMINATED;
		for (struct volrec *v = g_ctl.c_volumes; v; v = v->v_next)
			if (!strcmp(v->v_attached, in->i_id)) {
				v->v_attached[0] = 0;
				vol_save(v);
			}
		break;
	case GOAL_FAIL:
		in->i_state = ST_FAILED;
		break;
	default:
		in->i_state = ST_STOPPED;
	}
	in->i_goal = GOAL_RUN;
	in->i_stop_deadline = 0;
	in->i_hv.p_pid = 0;
	char rd[PATH_MAX];
	for (unsigned i = 0; i < in->i_ncards; i++) {
		card_socket(in, i, rd, sizeof(rd));
		unlink(rd);
		char ctl[PATH_MAX + 8];
		sfmt(ctl, sizeof(ctl), "%s.ctl", rd);
		unlink(ctl);
	}
	key_dir(in, rd, sizeof(rd));
	char key[PATH_MAX + 16];
	sfmt(key, sizeof(key), "%s/master.key", rd);
	unlink(key);
	rmdir(rd);
	run_dir(in, rd, sizeof(rd));
	rmdir(rd);
	inst_save(in);
}

static void stop_cards(struct instance *in)
{
	for (unsigned i = 0; i < in->i_ncards; i++)
		signal_proc(&in->i_cards[i], SIGTERM);
	if (!in->i_stop_deadline)
		in->i_stop_deadline = now_ms() + SUP_STOP_MS;
	if (!any_alive(in))
		finish(in);
}

void inst_stop(struct instance *in, int goal)
{
	in->i_goal = goal;
	if (goal != GOAL_REBOOT)
		in->i_state = ST_STOPPING;
	in->i_stop_deadline = now_ms() + SUP_STOP_MS;
	if (alive(&in->i_hv))
		signal_proc(&in->i_hv, SIGTERM);
	else if (goal == GOAL_REBOOT)
		in->i_goal = GOAL_RUN;
	else
		stop_cards(in);
	inst_save(in);
}

/* --- launching --- */

struct launch_paths {
	char lp_kernel[PATH_MAX], lp_initrd[PATH_MAX];
	char lp_hv[PATH_MAX], lp_ebs[PATH_MAX], lp_vpc[PATH_MAX], lp_map[PATH_MAX];
	char lp_dir[PATH_MAX], lp_run[PATH_MAX], lp_key[PATH_MAX];
	char lp_kcache[PATH_MAX];
};

static void paths_of(const struct instance *in, struct launch_paths *lp)
{
	const struct inst_spec *s = &in->i_spec;
	if (s->s_kernel[0])
		sfmt(lp->lp_kernel, sizeof(lp->lp_kernel), "%s", s->s_kernel);
	else
		sfmt(lp->lp_kernel, sizeof(lp->lp_kernel), "%s/vmlinuz", g_ctl.c_images_dir);
	lp->lp_initrd[0] = 0;
	if (s->s_initrd[0])
		sfmt(lp->lp_initrd, sizeof(lp->lp_initrd), "%s", s->s_initrd);
	else if (!s->s_kernel[0] && !s->s_no_initrd)
		sfmt(lp->lp_initrd, sizeof(lp->lp_initrd), "%s/guest.img", g_ctl.c_images_dir);
	sfmt(lp->lp_hv, sizeof(lp->lp_hv), "%s/nitro-hv", g_ctl.c_bin_dir);
	sfmt(lp->lp_ebs, sizeof(lp->lp_ebs), "%s/nitro-card-ebs", g_ctl.c_bin_dir);
	sfmt(lp->lp_vpc, sizeof(lp->lp_vpc), "%s/nitro-card-vpc", g_ctl.c_bin_dir);
	sfmt(lp->lp_map, sizeof(lp->lp_map), "%s/vpc-map", g_ctl.c_state_dir);
	inst_dir(in, lp->lp_dir, sizeof(lp->lp_dir));
	run_dir(in, lp->lp_run, sizeof(lp->lp_run));
	key_dir(in, lp->lp_key, sizeof(lp->lp_key));
	sfmt(lp->lp_kcache, sizeof(lp->lp_kcache), "%s/kcache", g_ctl.c_state_dir);
}

static int open_log(const char *dir, const char *name, bool truncate)
{
	char p[PATH_MAX + 64];
	sfmt(p, sizeof(p), "%s/%s", dir, name);
	return open(p, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0600);
}

/* Whether a socket bound to path is listening yet (flag __SO_ACCEPTCON in the card's
 * /proc/PID/net/unix: its network namespace may not be ours): the file appears at bind(),
 * a moment before listen(). */
static bool unix_listening(const char *path, pid_t pid)
{
	char proc[64];
	size_t n = strlen(path);
	sfmt(proc, sizeof(proc), "/proc/%d/net/unix", (int)pid);
	FILE *f = fopen(proc, "re");
	char line[PATH_MAX + 128];
	bool yes = false;
	if (!f)
		return true; /* cannot tell: the file's existence has to do */
	while (!yes && fgets(line, sizeof(line), f)) {
		unsigned long flags;
		char p[PATH_MAX + 1];
		/* PATH itself, or PATH.SUFFIX: a card that binds a temporary name and renames
		 * it into place once listening (the VPC card). */
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %4096s", &flags, p) == 2 &&
		    (flags & 0x10000) && !strncmp(p, path, n) && (p[n] == 0 || p[n] == '.'))
			yes = true;
	}
	fclose(f);
	return yes;
}

/* Waits for a card's socket; false when the card ended (*status set, else -1) or after
 * CARD_START_MS. */
static bool wait_socket(const char *path, pid_t pid, int *status)
{
	*status = -1;
	for (int ms = 0; ms < CARD_START_MS; ms++) {
		struct stat st;
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unix_listening(path, pid))
			return true;
		if (waitpid(pid, status, WNOHANG) == pid)
			return false;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return false;
}

/* The card's log and jail folder names. */
static void card_names(const struct instance *in, unsigned idx, char *logname, size_t ll,
		       char *jdir, size_t jl)
{
	sfmt(logname, ll, "card%u.log", idx);
	sfmt(jdir, jl, "%s/jail/%s-c%u", g_ctl.c_state_dir, in->i_id, idx);
	mkdir(jdir, 0755);
}

/* Starts the process of card idx, then waits for its socket. */
static int start_card(struct instance *in, unsigned idx, struct proc_spawn *ps, char **argv,
		      const char *sock, const char *what, char *err, size_t errlen)
{
	struct launch_paths lp;
	paths_of(in, &lp);
	char logname[32], jdir[PATH_MAX + 32];
	card_names(in, idx, logname, sizeof(logname), jdir, sizeof(jdir));
	int log = open_log(lp.lp_dir, logname, false);
	ps->ps_uid = in->i_uid;
	ps->ps_gid = in->i_gid;
	ps->ps_jail_dir = jdir;
	ps->ps_stdio[0] = -1;
	ps->ps_stdio[1] = ps->ps_stdio[2] = log;
	unlink(sock);
	pid_t pid = proc_spawn(ps, g_ctl.c_jail, argv, err, errlen);
	if (log >= 0)
		close(log);
	if (pid < 0)
		return -1;
	struct proc *p = &in->i_cards[idx];
	p->p_pid = pid;
	p->p_child = true;
	p->p_start = proc_start_time(pid);
	int status;
	if (!wait_socket(sock, pid, &status)) {
		char why[300], lpath[PATH_MAX + 40];
		sfmt(lpath, sizeof(lpath), "%s/%s", lp.lp_dir, logname);
		last_line(lpath, why, sizeof(why));
		if (status == -1) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		p->p_pid = 0;
		if (why[0])
			RETURN_ERR(-1, "the card of %s did not start: %s", what, why);
		if (status != -1 && WIFSIGNALED(status))
			RETURN_ERR(-1, "the card of %s did not start: killed by signal %d%s", what,
				   WTERMSIG(status),
				   WTERMSIG(status) == SIGSYS
				       ? " (a system call outside its seccomp "
					 "allow-list)"
				       : "");
		if (status != -1)
			RETURN_ERR(-1, "the card of %s did not start: exit status %d", what,
				   WEXITSTATUS(status));
		RETURN_ERR(-1, "the card of %s did not start: no socket after %d ms", what,
			   CARD_START_MS);
	}
	watch(p);
	return 0;
}

/* A volume's card (nitro-card-ebs). */
static int spawn_ebs(struct instance *in, unsigned idx, char *err, size_t errlen)
{
	struct launch_paths lp;
	paths_of(in, &lp);
	struct volrec *v = vol_find(in->i_spec.s_vols[idx]);
	if (!v)
		RETURN_ERR(-1, "volume %s no longer exists", in->i_spec.s_vols[idx]);
	int fd = -1;
	if (chip_measure_exec(g_ctl.c_chip, lp.lp_ebs, &fd, NULL, err, errlen))
		return -1;
	char sock[PATH_MAX], env0[PATH_MAX + 16];
	card_socket(in, idx, sock, sizeof(sock));
	sfmt(env0, sizeof(env0), "NITRO_STATE=%s", lp.lp_key);
	char *env[] = {env0, NULL};
	char *argv[] = {lp.lp_ebs, "--socket-path", sock, v->v_path, NULL};
	if (g_ctl.c_jail && chown(v->v_path, in->i_uid, in->i_gid) < 0) {
		close(fd);
		RETURN_ERR(-1, "volume %s: chown: %s", v->v_id, strerror(errno));
	}
	struct jail_bind binds[] = {
	    {lp.lp_run, NULL, JAIL_BIND_RW},
	    {lp.lp_key, NULL, 0},
	    {v->v_path, NULL, JAIL_BIND_RW},
	};
	struct proc_spawn ps = {
	    .ps_kind = "card-ebs",
	    .ps_binds = binds,
	    .ps_nbinds = ARRAY_SIZE(binds),
	    .ps_env = env,
	    .ps_exec_fd = fd,
	    .ps_jail_flags = JAIL_NEWNET,
	};
	in->i_cards[idx].p_kind = PK_CARD_EBS;
	char what[64];
	sfmt(what, sizeof(what), "volume %s", v->v_id);
	int r = start_card(in, idx, &ps, argv, sock, what, err, errlen);
	close(fd);
	return r;
}

/* A network interface's card (nitro-card-vpc): it needs the host network for its
 * underlay, and the mapping folder it registers in. */
static int spawn_vpc(struct instance *in, unsigned idx, char *err, size_t errlen)
{
	struct launch_paths lp;
	paths_of(in, &lp);
	const struct nic_spec *n = &in->i_spec.s_nics[idx - in->i_spec.s_nvols];
	int fd = -1;
	if (chip_measure_exec(g_ctl.c_chip, lp.lp_vpc, &fd, NULL, err, errlen))
		return -1;
	char sock[PATH_MAX], ctl[PATH_MAX + 8], vpc[16], pairs[16];
	card_socket(in, idx, sock, sizeof(sock));
	sfmt(ctl, sizeof(ctl), "%s.ctl", sock);
	sfmt(vpc, sizeof(vpc), "%u", n->n_vpc);
	unsigned qp = in->i_spec.s_cpus < 7 ? in->i_spec.s_cpus : 7; /* one pair per vCPU */
	sfmt(pairs, sizeof(pairs), "%u", qp);
	char *argv[24];
	int k = 0;
	argv[k++] = lp.lp_vpc;
	argv[k++] = "--socket-path";
	argv[k++] = sock;
	argv[k++] = "--ctl";
	argv[k++] = ctl;
	argv[k++] = "--vpc";
	argv[k++] = vpc;
	argv[k++] = "--ip";
	argv[k++] = (char *)n->n_ip;
	argv[k++] = "--queue-pairs";
	argv[k++] = pairs;
	argv[k++] = "--map";
	argv[k++] = lp.lp_map;
	if (n->n_mac[0]) {
		argv[k++] = "--mac";
		argv[k++] = (char *)n->n_mac;
	}
	if (n->n_sg[0]) {
		argv[k++] = "--sg";
		argv[k++] = (char *)n->n_sg;
	}
	argv[k] = NULL;
	struct jail_bind binds[4] = {
	    {lp.lp_run, NULL, JAIL_BIND_RW},
	    {lp.lp_map, NULL, JAIL_BIND_RW},
	};
	size_t nb = 2;
	if (n->n_sg[0])
		binds[nb++] = (struct jail_bind){n->n_sg, NULL, 0};
	char *env[] = {NULL};
	struct proc_spawn ps = {
	    .ps_kind = "card-vpc",
	    .ps_binds = binds,
	    .ps_nbinds = nb,
	    .ps_env = env,
	    .ps_exec_fd = fd,
	    .ps_jail_flags = 0, /* the underlay is on the host network */
	};
	in->i_cards[idx].p_kind = PK_CARD_VPC;
	char what[80];
	sfmt(what, sizeof(what), "nic %s in VPC %u", n->n_ip, n->n_vpc);
	int r = start_card(in, idx, &ps, argv, sock, what, err, errlen);
	close(fd);
	return r;
}

static int spawn_card(struct instance *in, unsigned idx, char *err, size_t errlen)
{
	return idx < in->i_spec.s_nvols ? spawn_ebs(in, idx, err, errlen)
					: spawn_vpc(in, idx, err, errlen);
}

static int spawn_hv(struct instance *in, char *err, size_t errlen)
{
	struct launch_paths lp;
	paths_of(in, &lp);
	const struct inst_spec *s = &in->i_spec;
	int fd = -1;
	if (chip_measure_exec(g_ctl.c_chip, lp.lp_hv, &fd, NULL, err, errlen))
		return -1;
	char cpus[16], mem[24], socks[INST_MAX_CARDS][PATH_MAX + 8];
	sfmt(cpus, sizeof(cpus), "%u", s->s_cpus);
	sfmt(mem, sizeof(mem), "%llu", (unsigned long long)s->s_mem_mib);
	char *argv[32 + 2 * INST_MAX_CARDS];
	int k = 0;
	argv[k++] = lp.lp_hv;
	argv[k++] = "--kernel";
	argv[k++] = lp.lp_kernel;
	if (lp.lp_initrd[0]) {
		argv[k++] = "--initrd";
		argv[k++] = lp.lp_initrd;
	}
	argv[k++] = "--cmdline";
	argv[k++] = (char *)s->s_cmdline;
	argv[k++] = "--cpus";
	argv[k++] = cpus;
	argv[k++] = "--memory";
	argv[k++] = mem;
	argv[k++] = "--require-kvm";
	argv[k++] = "--cache-dir"; /* nitrod's own, read-only in the jail (kcache.h) */
	argv[k++] = lp.lp_kcache;
	char conmax[24];
	if (s->s_console) { /* console.log stays under nitrod's --console-max */
		sfmt(conmax, sizeof(conmax), "%llu", (unsigned long long)g_ctl.c_console_max);
		argv[k++] = "--console-max";
		argv[k++] = conmax;
	}
	for (unsigned i = 0; i < in->i_ncards; i++) {
		char sock[PATH_MAX];
		card_socket(in, i, sock, sizeof(sock));
		sfmt(socks[i], sizeof(socks[i]), "%s,%s", i < s->s_nvols ? "blk" : "net", sock);
		argv[k++] = "--vhost-user";
		argv[k++] = socks[i];
	}
	argv[k] = NULL;
	char *env[3] = {NULL};
	int ne = 0;
	if (getenv("NITRO_TRACE"))
		env[ne++] = "NITRO_TRACE=1";
	int out = -1;
	if (s->s_console) {
		char cp[PATH_MAX];
		inst_console_path(in, cp, sizeof(cp));
		out = open(cp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	}
	int log = open_log(lp.lp_dir, "hv.log", false);
	char jdir[PATH_MAX + 32];
	sfmt(jdir, sizeof(jdir), "%s/jail/%s-hv", g_ctl.c_state_dir, in->i_id);
	mkdir(jdir, 0755);
	struct jail_bind binds[5] = {
	    {"/dev/kvm", NULL, JAIL_BIND_RW | JAIL_BIND_DEV},
	    {lp.lp_kernel, NULL, 0},
	    {lp.lp_run, NULL, JAIL_BIND_RW},
	    {lp.lp_kcache, NULL, 0},
	};
	size_t nb = 4;
	if (lp.lp_initrd[0])
		binds[nb++] = (struct jail_bind){lp.lp_initrd, NULL, 0};
	struct proc_spawn ps = {
	    .ps_kind = "hv",
	    .ps_uid = in->i_uid,
	    .ps_gid = in->i_gid, /* the jailer makes the jail's /dev/kvm node theirs */
	    .ps_jail_dir = jdir,
	    .ps_binds = binds,
	    .ps_nbinds = nb,
	    .ps_stdio = {-1, out, log},
	    .ps_env = env,
	    .ps_exec_fd = fd,
	    .ps_jail_flags = JAIL_NEWNET,
	};
	pid_t pid = proc_spawn(&ps, g_ctl.c_jail, argv, err, errlen);
	close(fd);
	if (out >= 0)
		close(out);
	if (log >= 0)
		close(log);
	if (pid < 0)
		return -1;
	in->i_hv.p_kind = PK_HV;
	in->i_hv.p_pid = pid;
	in->i_hv.p_child = true;
	in->i_hv.p_start = proc_start_time(pid);
	watch(&in->i_hv);
	return 0;
}

/* Measures the boot artifacts of in. */
static int measure_boot(struct instance *in, const struct launch_paths *lp, char *err,
			size_t errlen)
{
	if (chip_measure_file(g_ctl.c_chip, CHIP_PCR_KERNEL, "kernel", lp->lp_kernel, NULL, err,
			      errlen))
		return -1;
	if (lp->lp_initrd[0] && chip_measure_file(g_ctl.c_chip, CHIP_PCR_INITRD, "initrd",
						  lp->lp_initrd, NULL, err, errlen))
		return -1;
	return chip_measure_blob(g_ctl.c_chip, CHIP_PCR_CMDLINE, "cmdline", in->i_spec.s_cmdline,
				 in->i_spec.s_cmdline, strlen(in->i_spec.s_cmdline), NULL, err,
				 errlen);
}

static int mkdir_owned(const char *path, uid_t uid, gid_t gid)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	if (g_ctl.c_jail && chown(path, uid, gid) < 0)
		return -1;
	return 0;
}

/* The card's copy of the host master key, readable by the instance's uid only. */
static int copy_key(const struct launch_paths *lp, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char src[PATH_MAX + 16], dst[PATH_MAX + 16];
	sfmt(src, sizeof(src), "%s/master.key", g_ctl.c_state_dir);
	sfmt(dst, sizeof(dst), "%s/master.key", lp->lp_key);
	uint8_t *key = NULL;
	size_t len = 0;
	int r = read_file(src, 4096, &key, &len);
	if (r == ENOENT)
		return 0; /* no encrypted volume was ever created */
	if (r)
		RETURN_ERR(-1, "master key %s: %s", src, strerror(r));
	unlink(dst);
	int fd = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0400);
	bool ok = fd >= 0 && write(fd, key, len) == (ssize_t)len &&
		  (!g_ctl.c_jail || fchown(fd, uid, gid) == 0);
	int e = errno;
	explicit_bzero(key, len);
	free(key);
	if (fd >= 0)
		close(fd);
	if (!ok)
		RETURN_ERR(-1, "master key copy %s: %s", dst, strerror(e));
	return 0;
}

static void kill_all(struct instance *in)
{
	struct proc *all[INST_MAX_CARDS + 1];
	unsigned n = 0;
	all[n++] = &in->i_hv;
	for (unsigned i = 0; i < in->i_ncards; i++)
		all[n++] = &in->i_cards[i];
	for (unsigned i = 0; i < n; i++)
		if (alive(all[i])) {
			signal_proc(all[i], SIGKILL);
			if (all[i]->p_child)
				waitpid(all[i]->p_pid, NULL, 0);
			unwatch(all[i]);
			all[i]->p_pid = 0;
		}
}

int inst_launch(struct instance *in)
{
	char err[768];
	struct launch_paths lp;
	paths_of(in, &lp);
	in->i_state = ST_PENDING;
	in->i_goal = GOAL_RUN;
	in->i_reason[0] = 0;
	in->i_stop_deadline = 0;
	in->i_ncards = in->i_spec.s_nvols + in->i_spec.s_nnics;
	for (unsigned i = 0; i < in->i_ncards; i++) {
		memset(&in->i_cards[i], 0, sizeof(in->i_cards[i]));
		in->i_cards[i].p_pidfd = -1;
	}
	memset(&in->i_hv, 0, sizeof(in->i_hv));
	in->i_hv.p_pidfd = -1;
	char jail[PATH_MAX + 8], run[PATH_MAX + 8];
	sfmt(jail, sizeof(jail), "%s/jail", g_ctl.c_state_dir);
	sfmt(run, sizeof(run), "%s/run", g_ctl.c_state_dir);
	mkdir(jail, 0700);
	mkdir(run, 0711);
	if (mkdir(lp.lp_dir, 0700) < 0 && errno != EEXIST) {
		sfmt(err, sizeof(err), "%s: %s", lp.lp_dir, strerror(errno));
		goto fail;
	}
	/* Measure first: nothing starts unless everything verifies. */
	int fd = -1;
	if (chip_measure_exec(g_ctl.c_chip, lp.lp_hv, &fd, NULL, err, sizeof(err)))
		goto refuse;
	close(fd);
	if (in->i_spec.s_nvols) {
		if (chip_measure_exec(g_ctl.c_chip, lp.lp_ebs, &fd, NULL, err, sizeof(err)))
			goto refuse;
		close(fd);
	}
	if (in->i_spec.s_nnics) {
		if (chip_measure_exec(g_ctl.c_chip, lp.lp_vpc, &fd, NULL, err, sizeof(err)))
			goto refuse;
		close(fd);
		/* Every instance's card registers here: world-writable, sticky (each record
		 * stays its writer's). */
		if ((mkdir(lp.lp_map, 01777) < 0 && errno != EEXIST) ||
		    chmod(lp.lp_map, 01777) < 0) {
			sfmt(err, sizeof(err), "VPC mapping folder %s: %s", lp.lp_map,
			     strerror(errno));
			goto fail;
		}
	}
	if (measure_boot(in, &lp, err, sizeof(err)))
		goto refuse;
	if (kcache_prepare(lp.lp_kcache, lp.lp_kernel, in->i_spec.s_mem_mib, err, sizeof(err)))
		goto fail;
	if (mkdir_owned(lp.lp_run, in->i_uid, in->i_gid) < 0 ||
	    mkdir_owned(lp.lp_key, in->i_uid, in->i_gid) < 0) {
		sfmt(err, sizeof(err), "run folder %s: %s", lp.lp_run, strerror(errno));
		goto fail;
	}
	if (in->i_spec.s_nvols && copy_key(&lp, in->i_uid, in->i_gid, err, sizeof(err)))
		goto fail;
	for (unsigned i = 0; i < in->i_ncards; i++)
		if (spawn_card(in, i, err, sizeof(err)))
			goto fail;
	if (spawn_hv(in, err, sizeof(err)))
		goto fail;
	in->i_state = ST_RUNNING;
	in->i_launched = (int64_t)time(NULL);
	in->i_launches++;
	inst_save(in);
	return 0;
refuse:
	audit_event(in, "LAUNCH", 403, err);
fail:
	kill_all(in);
	in->i_state = ST_FAILED;
	sfmt(in->i_reason, sizeof(in->i_reason), "launch refused: %s", err);
	in->i_goal = GOAL_RUN;
	inst_save(in);
	return -1;
}

/* --- events --- */

static void restart_card(struct instance *in, unsigned idx)
{
	struct proc *p = &in->i_cards[idx];
	int64_t now = now_ms();
	if (!p->p_restart_window || now - p->p_restart_window > RESTART_WINDOW_MS) {
		p->p_restart_window = now;
		p->p_restarts_window = 0;
	}
	char err[768];
	if (++p->p_restarts_window > SUP_MAX_RESTARTS) {
		sfmt(err, sizeof(err), "card %u crashed more than %u times in a minute", idx,
		     SUP_MAX_RESTARTS);
	} else if (spawn_card(in, idx, err, sizeof(err)) == 0) {
		p->p_restarts++;
		warnmsg("%s: card %u restarted (pid %d)", in->i_id, idx, (int)p->p_pid);
		audit_event(in, "RESTART-CARD", 200, "card restarted");
		inst_save(in);
		return;
	}
	warnmsg("%s: %s", in->i_id, err);
	audit_event(in, "RESTART-CARD", 500, err);
	sfmt(in->i_reason, sizeof(in->i_reason), "%s", err);
	inst_stop(in, GOAL_FAIL);
}

static void on_hv_exit(struct instance *in, int status, bool known)
{
	char lp[PATH_MAX + 16], why[300];
	/* A jailed nitro-hv cannot exec itself: a guest reboot ends it with status 4, and the
	 * supervisor starts it again (the cards stay). */
	if (in->i_goal == GOAL_RUN && in->i_state == ST_RUNNING && known && WIFEXITED(status) &&
	    WEXITSTATUS(status) == HV_EXIT_GUEST_REBOOT)
		in->i_goal = GOAL_REBOOT;
	if (in->i_goal == GOAL_REBOOT && in->i_state == ST_RUNNING) {
		char err[768];
		in->i_goal = GOAL_RUN;
		in->i_stop_deadline = 0;
		if (spawn_hv(in, err, sizeof(err)) == 0) {
			in->i_launches++;
			inst_save(in);
			return;
		}
		sfmt(in->i_reason, sizeof(in->i_reason), "reboot: %s", err);
		in->i_goal = GOAL_FAIL;
	} else if (in->i_goal == GOAL_RUN) {
		if (!known) {
			in->i_goal = GOAL_STOP;
			sfmt(in->i_reason, sizeof(in->i_reason),
			     "nitro-hv ended (status unknown: it was adopted after a nitrod "
			     "restart)");
		} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
			in->i_goal = GOAL_STOP; /* the guest powered off */
		} else {
			inst_dir(in, lp, sizeof(lp));
			strcat(lp, "/hv.log");
			last_line(lp, why, sizeof(why));
			in->i_goal = GOAL_FAIL;
			if (WIFEXITED(status))
				sfmt(in->i_reason, sizeof(in->i_reason),
				     "nitro-hv exited with status %d%s%s", WEXITSTATUS(status),
				     why[0] ? ": " : "", why);
			else
				sfmt(in->i_reason, sizeof(in->i_reason),
				     "nitro-hv was killed by signal %d%s%s", WTERMSIG(status),
				     why[0] ? ": " : "", why);
		}
	}
	in->i_state = ST_STOPPING;
	stop_cards(in);
	inst_save(in);
}

static void on_exit_fd(int fd)
{
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next) {
		struct proc *p = NULL;
		int idx = -1;
		if (in->i_hv.p_pidfd == fd)
			p = &in->i_hv;
		for (unsigned i = 0; !p && i < in->i_ncards; i++)
			if (in->i_cards[i].p_pidfd == fd) {
				p = &in->i_cards[i];
				idx = (int)i;
			}
		if (!p)
			continue;
		int status = 0;
		bool known = false;
		if (p->p_child) {
			pid_t r;
			while ((r = waitpid(p->p_pid, &status, WNOHANG)) < 0 && errno == EINTR)
				;
			if (r == 0)
				return; /* not yet: a spurious wake-up */
			known = r == p->p_pid;
		}
		unwatch(p);
		p->p_pid = 0;
		if (idx < 0)
			on_hv_exit(in, status, known);
		else if (in->i_state == ST_RUNNING && in->i_goal == GOAL_RUN)
			restart_card(in, (unsigned)idx);
		else if (in->i_state == ST_STOPPING && !any_alive(in))
			finish(in);
		else
			inst_save(in);
		return;
	}
	/* An fd nobody owns any more: drop it. */
	epoll_ctl(g_ctl.c_epoll, EPOLL_CTL_DEL, fd, NULL);
}

static void on_tick(void)
{
	int64_t now = now_ms();
	for (struct instance *in = g_ctl.c_instances; in; in = in->i_next) {
		if (!in->i_stop_deadline || now < in->i_stop_deadline || !any_alive(in))
			continue;
		signal_proc(&in->i_hv, SIGKILL);
		for (unsigned i = 0; i < in->i_ncards; i++)
			signal_proc(&in->i_cards[i], SIGKILL);
		in->i_stop_deadline = now + SUP_STOP_MS;
	}
}

static void *sup_main(void *arg)
{
	(void)arg;
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct epoll_event ev[16];
		int n = epoll_wait(g_ctl.c_epoll, ev, 16, -1);
		if (n < 0 && errno != EINTR) {
			warnmsg("supervisor: epoll_wait: %s", strerror(errno));
			sleep(1);
			continue;
		}
		pthread_mutex_lock(&g_ctl.c_lock);
		for (int i = 0; i < n; i++) {
			if (ev[i].data.fd == timer_fd) {
				uint64_t ticks;
				if (read(timer_fd, &ticks, sizeof(ticks)) < 0)
					continue;
				on_tick();
			} else {
				on_exit_fd(ev[i].data.fd);
			}
		}
		pthread_mutex_unlock(&g_ctl.c_lock);
	}
	return NULL;
}

int sup_init(char *err, size_t errlen)
{
	g_ctl.c_epoll = epoll_create1(EPOLL_CLOEXEC);
	timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (g_ctl.c_epoll < 0 || timer_fd < 0)
		RETURN_ERR(-1, "supervisor: %s", strerror(errno));
	struct itimerspec its = {{0, 250000000}, {0, 250000000}};
	timerfd_settime(timer_fd, 0, &its, NULL);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = timer_fd};
	if (epoll_ctl(g_ctl.c_epoll, EPOLL_CTL_ADD, timer_fd, &ev) < 0)
		RETURN_ERR(-1, "supervisor: %s", strerror(errno));
	return 0;
}

int sup_start(char *err, size_t errlen)
{
	int r = pthread_create(&sup_thread, NULL, sup_main, NULL);
	if (r)
		RETURN_ERR(-1, "supervisor thread: %s", strerror(r));
	return 0;
}

/* --- after a restart --- */

static void adopt_proc(struct proc *p)
{
	p->p_pidfd = -1;
	p->p_child = false;
	if (p->p_pid <= 0 || !p->p_start || proc_start_time(p->p_pid) != p->p_start) {
		p->p_pid = 0;
		return;
	}
	watch(p);
	/* The pid may have ended between the check and pidfd_open: check again. */
	if (p->p_pidfd < 0 || proc_start_time(p->p_pid) != p->p_start) {
		unwatch(p);
		p->p_pid = 0;
	}
}

void inst_adopt(struct instance *in)
{
	adopt_proc(&in->i_hv);
	for (unsigned i = 0; i < in->i_ncards; i++)
		adopt_proc(&in->i_cards[i]);
	if (in->i_state != ST_RUNNING && in->i_state != ST_STOPPING && in->i_state != ST_PENDING)
		return;
	if (alive(&in->i_hv) && in->i_state == ST_RUNNING) {
		/* Re-adopted; a card that ended meanwhile is restarted now. */
		for (unsigned i = 0; i < in->i_ncards; i++)
			if (!alive(&in->i_cards[i]))
				restart_card(in, i);
		inst_save(in);
		return;
	}
	if (alive(&in->i_hv)) { /* a stop in progress: carry on */
		in->i_stop_deadline = now_ms() + SUP_STOP_MS;
		signal_proc(&in->i_hv, SIGTERM);
		inst_save(in);
		return;
	}
	if (in->i_goal == GOAL_RUN || in->i_goal == GOAL_REBOOT) {
		in->i_goal = GOAL_STOP;
		sfmt(in->i_reason, sizeof(in->i_reason),
		     "nitro-hv ended while nitrod was not running");
	}
	in->i_state = ST_STOPPING;
	stop_cards(in);
	inst_save(in);
}
