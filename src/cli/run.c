/* nitro run: fills in the default image, checks every argument, starts a card per
 * --volume, then runs nitro-hv here (hardware KVM) or the whole thing inside the
 * emulated host. nitro images: builds the images. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot/config.h"
#include "cli/cli.h"
#include "cli/nic.h"
#include "lib/util.h"

int cmd_images(int argc, char **argv)
{
	(void)argv;
	if (argc > 0)
		die_usage("images: takes no arguments");
	return images_ensure();
}

/* Options of nitro-hv that take a value: their values are never --volume. */
static bool takes_value(const char *a)
{
	static const char *const opts[] = {"--kernel",      "--initrd",    "--cmdline",
					   "--cpus",        "--memory",    "--console-log",
					   "--cache-dir",   "--vhost-user"};
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (!strcmp(a, opts[i]))
			return true;
	return false;
}

static pid_t hv_pid;

static void forward(int sig)
{
	if (hv_pid > 0)
		kill(hv_pid, sig);
}

/* With cards (already started): nitro-hv runs as a child, and the cards stop when it
 * ends. */
static int run_with_cards(char **hvargs, struct run_volume *vols, unsigned nvols,
			  const char *dir)
{
	struct sigaction sa = {.sa_handler = forward};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGINT, SIG_IGN); /* the hypervisor, in the same process group, decides */
	hv_pid = fork();
	if (hv_pid == 0) {
		signal(SIGINT, SIG_DFL);
		execv(hvargs[0], hvargs);
		fprintf(stderr, "nitro: run: cannot start %s: %s\n", hvargs[0], strerror(errno));
		_exit(127);
	}
	int st = 0;
	while (hv_pid > 0 && waitpid(hv_pid, &st, 0) < 0 && errno == EINTR)
		;
	cards_stop(vols, nvols, dir);
	nics_stop();
	if (hv_pid < 0)
		die("run: fork: %s", strerror(errno));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int cmd_run(int argc, char **argv)
{
	char kernel[PATH_MAX], initrd[PATH_MAX], cache[PATH_MAX], err[512];
	struct run_volume vols[RUN_MAX_VOLUMES];
	unsigned nvols = 0;
	static struct run_nics nics;
	/* --volume is nitro run's own; everything else is the hypervisor's. */
	char *user[argc + 1];
	int nuser = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--volume")) {
			if (i + 1 >= argc)
				die_usage("run: --volume: missing value (see `nitro run --help`)");
			if (nvols == RUN_MAX_VOLUMES)
				die_usage("run: --volume: at most %u volumes", RUN_MAX_VOLUMES);
			int r = volume_parse(argv[++i], &vols[nvols++], err, sizeof(err));
			if (r)
				r == 2 ? die_usage("run: %s", err) : die("run: %s", err);
			continue;
		}
		if (nic_arg(argc, argv, &i, &nics))
			continue;
		user[nuser++] = argv[i];
		if (takes_value(argv[i]) && i + 1 < argc)
			user[nuser++] = argv[++i];
	}
	user[nuser] = NULL;

	struct hv_config c;
	hv_config_defaults(&c);
	/* The user's options are parsed first, alone; the default image goes in front of
	 * them only when they name no kernel (and then no initrd). */
	c.kernel_optional = true;
	if (hv_config_parse(nuser, user, &c, err, sizeof(err)))
		die_usage("run: %s (see `nitro run --help`)", err);
	if (c.help) {
		printf("usage: nitro run [options]\n%s"
		       "  --volume VOLUME[,iops=N][,throughput=MiB][,gp2][,header=PATH][,readonly]\n"
		       "                       a volume served by its own EBS card (repeatable); VOLUME\n"
		       "                       is a volume file, nbd://HOST[:PORT]/EXPORT,\n"
		       "                       nbd+unix:///EXPORT?socket=PATH or null:SIZE\n"
		       "  --nic vpc=ID,ip=A.B.C.D[/PREFIX][,sg=FILE][,mac=MAC|random][,pps=N]\n"
		       "        [,bandwidth=MBIT]\n"
		       "                       a network interface served by its own VPC card (repeatable)\n"
		       "  --underlay ADDR      this host's VPC underlay address (default 127.0.0.1)\n"
		       "  --map PATH           VPC mapping folder or file (default $NITRO_STATE/vpc-map)\n",
		       hv_options_help);
		return 0;
	}
	bool has_kernel = c.kernel != NULL;
	char *args[nuser + 8];
	int n = 0;
	if (!has_kernel) {
		image_path("vmlinuz", kernel, sizeof(kernel));
		args[n++] = "--kernel";
		args[n++] = kernel;
		if (!c.initrd) {
			image_path("guest.img", initrd, sizeof(initrd));
			args[n++] = "--initrd";
			args[n++] = initrd;
		}
	}
	for (int i = 0; i < nuser; i++)
		args[n++] = user[i];
	args[n] = NULL;
	hv_config_defaults(&c);
	if (hv_config_parse(n, args, &c, err, sizeof(err)))
		die_usage("run: %s (see `nitro run --help`)", err);
	if (!has_kernel && access(kernel, R_OK) != 0) {
		fprintf(stderr, "nitro: the default guest image is missing; fetching it\n");
		if (images_ensure())
			die("run: cannot prepare the default guest image (see above)");
	}
	struct hv_images img;
	if (hv_config_check(&c, &img, err, sizeof(err)))
		die("%s", err);
	free(img.kernel);

	char why[256];
	if (!getenv("NITRO_EMULATED_HOST") && !kvm_usable(why, sizeof(why))) {
		if (c.require_kvm)
			die("run: %s, and --require-kvm was given", why);
		fprintf(stderr,
			"nitro: %s: running in an emulated host (QEMU TCG, -cpu max, kvm_amd)\n",
			why);
		char self[PATH_MAX];
		exe_sibling("nitro", self, sizeof(self));
		char *inner[argc + 4];
		int k = 0;
		inner[k++] = self;
		inner[k++] = "run";
		for (int i = 0; i < argc; i++)
			inner[k++] = argv[i];
		inner[k] = NULL;
		/* Volumes must stay writable in there: their folders are shared so. */
		char dirs[RUN_MAX_VOLUMES][PATH_MAX];
		const char *rw[RUN_MAX_VOLUMES];
		unsigned nrw = 0;
		for (unsigned i = 0; i < nvols; i++) {
			if (!vols[i].rv_file)
				continue; /* nbd:// and null: have no folder to share */
			if (!realpath(vols[i].rv_path, dirs[nrw]))
				die("run: volume %s: %s", vols[i].rv_path, strerror(errno));
			rw[nrw] = dirname(dirs[nrw]);
			nrw++;
		}
		unsigned mem = (unsigned)c.mem_mib + 768;
		return emuhost_exec(inner, mem < 1536 ? 1536 : mem, EMUHOST_CPUS, rw, nrw);
	}
	/* nitro-hv gets the same arguments plus the kernel cache and the cards. */
	char hv[PATH_MAX], cards[RUN_MAX_VOLUMES][PATH_MAX + 8];
	exe_sibling("nitro-hv", hv, sizeof(hv));
	snprintf(cache, sizeof(cache), "%s/kernels", cache_dir());
	mkdir(cache_dir(), 0755);
	char *hvargs[n + 8 + 2 * RUN_MAX_VOLUMES + 2 * RUN_MAX_NICS];
	int k = 0;
	hvargs[k++] = hv;
	for (int i = 0; i < n; i++)
		hvargs[k++] = args[i];
	if (mkdir(cache, 0755) == 0 || errno == EEXIST) {
		hvargs[k++] = "--cache-dir";
		hvargs[k++] = cache;
	}
	if (nvols == 0 && nics.n_count == 0) {
		hvargs[k] = NULL;
		execv(hv, hvargs); /* same process: stdio, signals and status are the guest's */
		die("run: cannot start %s: %s", hv, strerror(errno));
	}
	char dir[PATH_MAX];
	cards_start(vols, nvols, dir, sizeof(dir));
	for (unsigned i = 0; i < nvols; i++) {
		snprintf(cards[i], sizeof(cards[i]), "blk,%s", vols[i].rv_socket);
		hvargs[k++] = "--vhost-user";
		hvargs[k++] = cards[i];
	}
	nics.n_cpus = c.cpus;
	k = nics_start(&nics, hvargs, k);
	hvargs[k] = NULL;
	return run_with_cards(hvargs, vols, nvols, dir);
}
