/* The emulated host: where /dev/kvm is missing, a QEMU TCG server with -cpu max (AMD
 * SVM + nested paging) boots Debian's kernel with the emuhost initramfs, which loads
 * kvm_amd, mounts this machine's / read-only over 9p (the working folder and the cache
 * writable), chroots into it and runs the command this file leaves in a run folder.
 * stdin/stdout ride on the emulated ttyS0, stderr on ttyS1; the exit status comes back
 * in the run folder. See tools/emuhost-init and docs/architecture.md.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util.h"

extern char **environ;

static pid_t child;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/* Writes s single-quoted for sh. */
static void put_quoted(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputs("'\\''", f);
		else
			fputc(*s, f);
	}
	fputc('\'', f);
}

static bool env_name_ok(const char *e)
{
	const char *eq = strchr(e, '=');
	if (!eq || eq == e)
		return false;
	for (const char *p = e; p < eq; p++)
		if (!(*p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (p > e && *p >= '0' && *p <= '9')))
			return false;
	return true;
}

static int write_run_files(const char *run, char **argv, const char *cwd, char **rw, unsigned nrw)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/cmd.sh", run);
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	for (char **e = environ; *e; e++) {
		if (!env_name_ok(*e))
			continue;
		const char *eq = strchr(*e, '=');
		fprintf(f, "export %.*s=", (int)(eq - *e), *e);
		put_quoted(f, eq + 1);
		fputc('\n', f);
	}
	/* The emulated host's cgroup v2 hierarchy, mounted where a systemd host has it (nitrod
	 * limits jailed processes there). Here rather than in tools/emuhost-init: the image
	 * built from that is shared by every checkout through the cache. */
	fprintf(f, "mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup\n");
	fprintf(f, "export NITRO_EMULATED_HOST=1 TMPDIR=/tmp\ncd ");
	put_quoted(f, cwd);
	fprintf(f, " || exit 1\nexec");
	for (char **a = argv; *a; a++) {
		fputc(' ', f);
		put_quoted(f, *a);
	}
	fputc('\n', f);
	if (fclose(f) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/mounts", run);
	f = fopen(path, "w");
	if (!f)
		return -1;
	for (unsigned i = 0; i < nrw; i++)
		fprintf(f, "rw%u %s\n", i, rw[i]);
	return fclose(f);
}

/* QEMU option values double their commas. */
static const char *qemu_escape(const char *s, char *out, size_t len)
{
	size_t o = 0;
	for (; *s && o + 2 < len; s++) {
		out[o++] = *s;
		if (*s == ',')
			out[o++] = ',';
	}
	out[o] = 0;
	return out;
}

/* Writable folders: the cache, the working folder (unless /), and the caller's. Nested
 * ones are left to their parent. */
static unsigned writable_dirs(const char *cwd, const char *const *extra, unsigned nextra,
			      char **out)
{
	const char *cand[EMUHOST_MAX_RW];
	unsigned n = 0, k = 0;
	cand[n++] = cache_dir();
	if (strcmp(cwd, "/") != 0)
		cand[n++] = cwd;
	for (unsigned i = 0; i < nextra && n < EMUHOST_MAX_RW; i++)
		if (strcmp(extra[i], "/") != 0)
			cand[n++] = extra[i];
	for (unsigned i = 0; i < n; i++) {
		bool covered = false;
		for (unsigned j = 0; j < n && !covered; j++) {
			size_t l = strlen(cand[j]);
			if (j != i && !strncmp(cand[i], cand[j], l) &&
			    (cand[i][l] == '/' || (cand[i][l] == 0 && j < i)))
				covered = true;
		}
		if (!covered)
			out[k++] = (char *)cand[i];
	}
	return k;
}

int emuhost_exec(char **argv, unsigned mem_mib, unsigned cpus, const char *const *rw_extra,
		 unsigned nrw_extra)
{
	char kernel[PATH_MAX], initrd[PATH_MAX], run[PATH_MAX + 16], cwd[PATH_MAX];
	if (images_ensure())
		die("emulated host: cannot prepare its images (see above)");
	image_path("vmlinuz", kernel, sizeof(kernel));
	image_path("emuhost.img", initrd, sizeof(initrd));
	if (!getcwd(cwd, sizeof(cwd)))
		die("emulated host: getcwd: %s", strerror(errno));
	snprintf(run, sizeof(run), "%s/run", cache_dir());
	mkdir(run, 0700);
	snprintf(run, sizeof(run), "%s/run/XXXXXX", cache_dir());
	if (!mkdtemp(run))
		die("emulated host: cannot create a run folder under %s: %s", cache_dir(),
		    strerror(errno));
	/* nitro's state folder (the host master key) is writable in there too. */
	char state[PATH_MAX];
	const char *nst = getenv("NITRO_STATE"), *home = getenv("HOME");
	if (nst && *nst)
		snprintf(state, sizeof(state), "%s", nst);
	else
		snprintf(state, sizeof(state), "%s/.local/state/nitro",
			 home && *home ? home : "/root");
	char mk[PATH_MAX + 32];
	snprintf(mk, sizeof(mk), "mkdir -p -m 0700 '%s'", state);
	if (!strchr(state, '\'') && system(mk) != 0)
		warnmsg("emulated host: cannot create %s", state);
	const char *extra[EMUHOST_MAX_RW];
	unsigned nextra = 0;
	extra[nextra++] = state;
	for (unsigned i = 0; i < nrw_extra && nextra < EMUHOST_MAX_RW; i++)
		extra[nextra++] = rw_extra[i];
	char *rw[EMUHOST_MAX_RW];
	unsigned nrw = writable_dirs(cwd, extra, nextra, rw);
	if (write_run_files(run, argv, cwd, rw, nrw) < 0)
		die("emulated host: cannot write to %s: %s", run, strerror(errno));

	static char opt[EMUHOST_MAX_RW + 2][2][2 * PATH_MAX + 96];
	char mem[32], smp[32], log[2 * PATH_MAX + 32], e[2 * PATH_MAX];
	snprintf(mem, sizeof(mem), "%u", mem_mib);
	snprintf(smp, sizeof(smp), "%u", cpus);
	snprintf(log, sizeof(log), "file:%s/console.log", qemu_escape(run, e, sizeof(e)));
	const char *append = getenv("NITRO_EMUHOST_VERBOSE")
				 ? "console=ttyS2 panic=-1 8250.nr_uarts=3"
				 : "console=ttyS2 quiet panic=-1 8250.nr_uarts=3";
	char *qemu[64 + 4 * (EMUHOST_MAX_RW + 2)];
	unsigned q = 0;
	const char *fixed[] = {"qemu-system-x86_64",
			       "-nodefaults",
			       "-no-user-config",
			       "-display",
			       "none",
			       "-M",
			       "pc",
			       "-accel",
			       "tcg,thread=multi",
			       "-cpu",
			       "max",
			       "-smp",
			       smp,
			       "-m",
			       mem,
			       "-kernel",
			       kernel,
			       "-initrd",
			       initrd,
			       "-append",
			       append};
	for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
		qemu[q++] = (char *)fixed[i];
	/* 9p shares: the host root read-only, the run folder, the writable folders. */
	for (unsigned i = 0; i < nrw + 2; i++) {
		char tag[16];
		const char *path = i == 0 ? "/" : i == 1 ? run : rw[i - 2];
		snprintf(tag, sizeof(tag),
			 i == 0	  ? "hostroot"
			 : i == 1 ? "nitrorun"
				  : "rw%u",
			 i - 2);
		snprintf(opt[i][0], sizeof(opt[i][0]), "local,id=%s,path=%s,security_model=none%s",
			 tag, qemu_escape(path, e, sizeof(e)),
			 i == 0 ? ",readonly=on,multidevs=remap" : "");
		snprintf(opt[i][1], sizeof(opt[i][1]), "virtio-9p-pci,fsdev=%s,mount_tag=%s", tag,
			 tag);
		qemu[q++] = "-fsdev";
		qemu[q++] = opt[i][0];
		qemu[q++] = "-device";
		qemu[q++] = opt[i][1];
	}
	const char *tail[] = {"-chardev",  "stdio,id=out,signal=off",
			      "-serial",   "chardev:out",
			      "-chardev",  "file,id=err,path=/proc/self/fd/2,append=on",
			      "-serial",   "chardev:err",
			      "-serial",   log,
			      "-no-reboot"};
	for (size_t i = 0; i < ARRAY_SIZE(tail); i++)
		qemu[q++] = (char *)tail[i];
	qemu[q] = NULL;

	struct sigaction sa = {.sa_handler = forward};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		execvp(qemu[0], qemu);
		fprintf(stderr,
			"nitro: emulated host: cannot run %s: %s (apt-get install "
			"qemu-system-x86)\n",
			qemu[0], strerror(errno));
		_exit(127);
	}
	int st;
	while (waitpid(child, &st, 0) < 0 && errno == EINTR)
		;
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/status", run);
	FILE *f = fopen(path, "r");
	int status = -1;
	if (f) {
		if (fscanf(f, "%d", &status) != 1)
			status = -1;
		fclose(f);
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	if (status < 0) {
		fprintf(stderr,
			"nitro: the emulated host stopped without a result (QEMU status %d);"
			" its console is in %s/console.log\n",
			WEXITSTATUS(st), run);
		return 1;
	}
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run);
	if (system(cmd) != 0)
		warnmsg("could not remove %s", run);
	return status;
}

int cmd_emuhost(int argc, char **argv)
{
	uint64_t mem = 4096, cpus = EMUHOST_CPUS;
	int i = 0;
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (!strcmp(argv[i], "--memory") && i + 1 < argc) {
			if (!parse_u64(argv[++i], 512, 65536, &mem))
				die_usage("emuhost: --memory %s: must be 512 to 65536 MiB",
					  argv[i]);
		} else if (!strcmp(argv[i], "--cpus") && i + 1 < argc) {
			if (!parse_u64(argv[++i], 1, 64, &cpus))
				die_usage("emuhost: --cpus %s: must be 1 to 64", argv[i]);
		} else {
			die_usage(
			    "emuhost: %s: unknown option (usage: nitro emuhost [--memory MiB] "
			    "[--cpus N] -- CMD [ARG...])",
			    argv[i]);
		}
	}
	if (i >= argc)
		die_usage("emuhost: no command (usage: nitro emuhost [--memory MiB] [--cpus N] "
			  "-- CMD [ARG...])");
	return emuhost_exec(argv + i, (unsigned)mem, (unsigned)cpus, NULL, 0);
}
