/* nitro-chip: the security chip and the jailer from the shell (tests, operators).
 *   nitro-chip [--state DIR] [--anchor PEM] exec PATH       measure + verify an executable
 *   nitro-chip [--state DIR] [--anchor PEM] file PCR TYPE PATH
 *   nitro-chip [--state DIR] [--anchor PEM] attest NONCE    print the attestation JSON
 *   nitro-chip jail --kind K --uid U --gid G [--group G]... [--keep-fd N]... [--pass-fd FROM:TO]...
 *              --dir D [--bind
 * SRC[=DST][,rw][,dev]]...
 *              [--seccomp|--seccomp-log] [--newnet] [--chroot-fallback] [--measure]
 *              [--cgroup INSTANCE/PROC [--cgroup-root DIR] [--memory-max BYTES]
 *               [--pids-max N] [--cpu-weight N]] -- CMD ARGS...
 *        runs CMD jailed (pid 1 of its own PID namespace) and waits: exit status of CMD,
 *        128+N when killed by signal N. With --cgroup, CMD starts in the cgroup v2 leaf
 *        ROOT/nitro/INSTANCE/PROC (cgroup.h; both levels get the limits given), named on
 *        stderr ("nitro-chip: cgroup DIR"), removed after CMD ends.
 * --log-max EVENTS bounds the event log (chip_set_log_max: past it, its older half becomes
 * a signed checkpoint; nitrod keeps the default, CHIP_LOG_MAX_EVENTS).
 * --measure has the chip (--state, default $NITRO_STATE/chip) verify CMD first and exec
 * the measured fd. */
#include "controller/cgroup.h"
#include "controller/jailer.h"
#include "lib/util.h"
#include "securitychip/chip.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static uint64_t log_max;

static struct chip *open_chip(const char *state, const char *anchor)
{
	char err[512];
	struct chip *c = chip_open(state, anchor, err, sizeof(err));
	if (!c)
		die("%s", err);
	if (log_max)
		chip_set_log_max(c, (size_t)log_max);
	return c;
}

static int jail_main(int argc, char **argv, const char *state, const char *anchor)
{
	struct jail_spec js;
	jail_spec_init(&js, NULL, 0, 0, NULL);
	struct jail_bind binds[64];
	size_t nb = 0;
	bool measure = false, seclog = false;
	gid_t groups[16];
	int keepfd[16];
	size_t nkeepfd = 0;
	struct jail_fd pass[JAIL_MAX_FDS];
	size_t npass = 0;
	size_t ngroups = 0;
	int i = 0;
	uint64_t v;
	const char *cg = NULL, *cg_root = CG_DEFAULT_ROOT;
	struct cg_limits lim = {0};
	for (; i < argc && strcmp(argv[i], "--"); i++) {
		const char *a = argv[i], *n = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--kind") && n)
			js.js_kind = argv[++i];
		else if (!strcmp(a, "--uid") && n && parse_u64(n, 1, 0xfffffffe, &v) && ++i)
			js.js_uid = (uid_t)v;
		else if (!strcmp(a, "--gid") && n && parse_u64(n, 1, 0xfffffffe, &v) && ++i)
			js.js_gid = (gid_t)v;
		else if (!strcmp(a, "--group") && n && ngroups < ARRAY_SIZE(groups) &&
			 parse_u64(n, 1, 0xfffffffe, &v) && ++i)
			groups[ngroups++] = (gid_t)v;
		else if (!strcmp(a, "--keep-fd") && n && nkeepfd < ARRAY_SIZE(keepfd) &&
			 parse_u64(n, 3, 1 << 20, &v) && ++i)
			keepfd[nkeepfd++] = (int)v;
		else if (!strcmp(a, "--dir") && n)
			js.js_dir = argv[++i];
		else if (!strcmp(a, "--pass-fd") && n && npass < ARRAY_SIZE(pass)) {
			int from, to, used = 0;
			if (sscanf(argv[++i], "%d:%d%n", &from, &to, &used) != 2 || argv[i][used])
				die_usage("--pass-fd %s: expected FROM:TO", argv[i]);
			pass[npass++] = (struct jail_fd){from, to};
		} else if (!strcmp(a, "--cgroup") && n)
			cg = argv[++i];
		else if (!strcmp(a, "--cgroup-root") && n)
			cg_root = argv[++i];
		else if (!strcmp(a, "--memory-max") && n &&
			 parse_u64(n, 4096, UINT64_MAX >> 1, &v) && ++i)
			lim.cl_memory_max = v;
		else if (!strcmp(a, "--pids-max") && n && parse_u64(n, 1, 1 << 22, &v) && ++i)
			lim.cl_pids_max = v;
		else if (!strcmp(a, "--cpu-weight") && n && parse_u64(n, 1, 10000, &v) && ++i)
			lim.cl_cpu_weight = (unsigned)v;
		else if (!strcmp(a, "--bind") && n && nb < ARRAY_SIZE(binds)) {
			char *s = strdup(argv[++i]);
			unsigned fl = 0;
			char *c;
			while ((c = strrchr(s, ','))) {
				if (!strcmp(c, ",rw"))
					fl |= JAIL_BIND_RW;
				else if (!strcmp(c, ",dev"))
					fl |= JAIL_BIND_DEV;
				else if (!strcmp(c, ",optional"))
					fl |= JAIL_BIND_OPTIONAL;
				else
					die_usage("--bind %s: unknown option %s", argv[i], c);
				*c = 0;
			}
			char *eq = strchr(s, '=');
			if (eq)
				*eq = 0;
			binds[nb++] = (struct jail_bind){s, eq ? eq + 1 : NULL, fl};
		} else if (!strcmp(a, "--seccomp"))
			js.js_seccomp = true;
		else if (!strcmp(a, "--seccomp-log")) /* development: log, do not kill */
			js.js_seccomp = seclog = true;
		else if (!strcmp(a, "--newnet"))
			js.js_flags |= JAIL_NEWNET;
		else if (!strcmp(a, "--chroot-fallback"))
			js.js_flags |= JAIL_CHROOT_FALLBACK;
		else if (!strcmp(a, "--measure"))
			measure = true;
		else
			die_usage("jail: bad argument %s", a);
	}
	if (i >= argc - 1 || !js.js_kind || !js.js_uid || !js.js_gid || !js.js_dir)
		die_usage("jail: --kind, --uid, --gid, --dir and -- CMD are needed");
	char logkind[64];
	if (seclog) {
		snprintf(logkind, sizeof(logkind), "%s:log", js.js_kind);
		js.js_kind = logkind;
	}
	js.js_keep_fds = keepfd;
	js.js_nkeep = nkeepfd;
	js.js_fds = pass;
	js.js_nfds = npass;
	js.js_groups = groups;
	js.js_ngroups = ngroups;
	js.js_binds = binds;
	js.js_nbinds = nb;
	js.js_stdio[0] = 0;
	js.js_stdio[1] = 1;
	js.js_stdio[2] = 2;
	char *env[] = {"PATH=/usr/bin:/bin", NULL};
	js.js_env = env;
	char err[512];
	struct chip *c = NULL;
	if (measure) {
		c = open_chip(state, anchor);
		if (chip_measure_exec(c, argv[i + 1], &js.js_exec_fd, NULL, err, sizeof(err)) < 0)
			die("%s", err);
	}
	char inst[128] = "";
	const char *leaf = NULL;
	if (cg) {
		const char *slash = strchr(cg, '/');
		if (!slash || slash == cg || (size_t)(slash - cg) >= sizeof(inst))
			die_usage("--cgroup %s: expected INSTANCE/PROC", cg);
		memcpy(inst, cg, (size_t)(slash - cg));
		leaf = slash + 1;
		if (cg_setup(cg_root, err, sizeof(err)) < 0)
			die("%s", err);
		js.js_cgroup_fd = cg_make(cg_root, inst, &lim, leaf, &lim, err, sizeof(err));
		if (js.js_cgroup_fd < 0)
			die("%s", err);
	}
	pid_t pid = jail_spawn(&js, argv + i + 1, err, sizeof(err));
	if (pid < 0) {
		if (cg)
			cg_remove(cg_root, inst, NULL);
		die("%s", err);
	}
	if (err[0])
		warnmsg("%s", err);
	if (cg) /* the process is in it now */
		fprintf(stderr, "nitro-chip: cgroup %s/%s/%s/%s\n", cg_root, CG_NITRO, inst, leaf);
	int st;
	while (waitpid(pid, &st, 0) < 0)
		;
	if (cg && cg_remove(cg_root, inst, NULL) < 0)
		warnmsg("cgroup %s/%s/%s: not removed: %s", cg_root, CG_NITRO, inst,
			strerror(errno));
	chip_close(c);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

int main(int argc, char **argv)
{
	util_set_prog("nitro-chip");
	const char *state = NULL, *anchor = NULL;
	int i = 1;
	for (; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--state"))
			state = argv[i + 1];
		else if (!strcmp(argv[i], "--anchor"))
			anchor = argv[i + 1];
		else if (!strcmp(argv[i], "--log-max")) {
			if (!parse_u64(argv[i + 1], 2, 1u << 30, &log_max))
				die_usage("--log-max: a number of events, at least 2");
		} else
			break;
	}
	char def[4096];
	if (!state) {
		const char *s = getenv("NITRO_STATE");
		snprintf(def, sizeof(def), "%s/chip", s && *s ? s : "/var/lib/nitro");
		state = def;
	}
	if (i >= argc)
		die_usage("usage: nitro-chip [--state DIR] [--anchor PEM] [--log-max EVENTS] "
			  "exec|file|attest|jail ...");
	const char *cmd = argv[i++];
	char err[512];
	if (!strcmp(cmd, "jail"))
		return jail_main(argc - i, argv + i, state, anchor);
	struct chip *c = NULL;
	if (!strcmp(cmd, "exec") && i + 1 == argc) {
		c = open_chip(state, anchor);
		uint8_t d[CHIP_DIGEST_LEN];
		char hex[2 * CHIP_DIGEST_LEN + 1];
		if (chip_measure_exec(c, argv[i], NULL, d, err, sizeof(err)) < 0)
			die("%s", err);
		chip_hex(d, sizeof(d), hex);
		printf("%s  %s\n", hex, argv[i]);
	} else if (!strcmp(cmd, "file") && i + 3 == argc) {
		uint64_t pcr;
		if (!parse_u64(argv[i], 0, CHIP_NR_PCRS - 1, &pcr))
			die_usage("file: PCR must be 0..%d", CHIP_NR_PCRS - 1);
		c = open_chip(state, anchor);
		if (chip_measure_file(c, (unsigned)pcr, argv[i + 1], argv[i + 2], NULL, err,
				      sizeof(err)) < 0)
			die("%s", err);
	} else if (!strcmp(cmd, "attest") && i + 1 == argc) {
		c = open_chip(state, anchor);
		char *j = chip_attestation(c, argv[i], err, sizeof(err));
		if (!j)
			die("%s", err);
		puts(j);
		free(j);
	} else {
		die_usage("unknown command or wrong arguments: %s", cmd);
	}
	chip_close(c);
	return 0;
}
