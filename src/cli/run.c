/* nitro run: fills in the default image, checks every argument, starts a card per
 * --volume, then runs nitro-hv here (hardware KVM) or the whole thing inside the
 * emulated host. nitro images: builds the images. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <linux/virtio_ids.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot/config.h"
#include "cli/cli.h"
#include "cli/nic.h"
#include "launch/resolver.h"
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
	static const char *const opts[] = {
	    "--kernel",	       "--initrd",	   "--cmdline",	      "--cpus",
	    "--memory",	       "--console-log",	   "--console-max",   "--cache-dir",
	    "--vhost-user",    "--kernel-fd",	   "--initrd-fd",     "--kernel-sha384",
	    "--initrd-sha384", "--vmlinux-sha384", "--kernel-sha256", "--initrd-sha256",
	    "--instance-type", "--instance-id",	   "--enclave-hello"};
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if (!strcmp(a, opts[i]))
			return true;
	return false;
}

static pid_t hv_pid;
static struct run_tpm tpm;
static char tpm_state_dir[PATH_MAX];

static void forward(int sig)
{
	if (hv_pid > 0)
		kill(hv_pid, sig);
}

/* With cards: start them, run nitro-hv as a child, stop the cards when it ends. */
static int run_with_cards(const struct launch_plan *p, const struct launch_env *e)
{
	static pid_t cards[LAUNCH_MAX_CARDS];
	cards_start(p, e, cards);
	for (unsigned i = 0; i < p->pl_ncards; i++) /* a new TPM is endorsed before the guest */
		if (launch_plan_card(p, i)->lp_kind == LAUNCH_CARD_TPM)
			tpm_provision(launch_plan_card(p, i)->lp_socket, tpm_state_dir);
	const struct launch_proc *hv = launch_plan_hv(p);
	struct sigaction sa = {.sa_handler = forward};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGINT, SIG_IGN); /* the hypervisor, in the same process group, decides */
	hv_pid = fork();
	if (hv_pid == 0) {
		signal(SIGINT, SIG_DFL);
		proc_stdio(hv);
		execv(hv->lp_exe, hv->lp_argv);
		fprintf(stderr, "nitro: run: cannot start %s: %s\n", hv->lp_exe, strerror(errno));
		_exit(127);
	}
	int st = 0;
	while (hv_pid > 0) {
		pid_t w = waitpid(tpm.rt_on ? -1 : hv_pid, &st, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 || w == hv_pid)
			break;
		for (unsigned i = 0; i < p->pl_ncards; i++) /* the TPM card died: restart it */
			if (w == cards[i] && launch_plan_card(p, i)->lp_kind == LAUNCH_CARD_TPM) {
				fprintf(stderr, "nitro: run: the TPM card ended; restarting it\n");
				cards[i] = 0;
				if (!cards_respawn(p, i, cards))
					fprintf(stderr,
						"nitro: run: the TPM card did not restart\n");
			}
	}
	cards_stop(p, e, cards);
	if (tpm.rt_temp) {
		tpm_state_remove(tpm_state_dir);
		rmdir(e->le_run_dir);
	}
	if (hv_pid < 0)
		die("run: fork: %s", strerror(errno));
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void copy_path(char *dst, size_t len, const char *src, const char *what)
{
	if (strlen(src) >= len)
		die_usage("run: %s: too long", what);
	snprintf(dst, len, "%s", src);
}

/* The launch description of a checked hv_config (the devices are in s already). */
static void spec_from_config(const struct hv_config *c, struct launch_spec *s)
{
	copy_path(s->ls_kernel, sizeof(s->ls_kernel), c->kernel, "--kernel");
	copy_path(s->ls_initrd, sizeof(s->ls_initrd), c->initrd ? c->initrd : "", "--initrd");
	copy_path(s->ls_cmdline, sizeof(s->ls_cmdline), c->cmdline, "--cmdline");
	copy_path(s->ls_console_log, sizeof(s->ls_console_log),
		  c->console_log ? c->console_log : "", "--console-log");
	s->ls_cpus = c->cpus;
	s->ls_mem_mib = c->mem_mib;
	s->ls_console_max = c->console_max;
	s->ls_no_reboot = c->no_reboot;
	s->ls_no_decompress = c->no_decompress;
	s->ls_stats = c->stats;
	s->ls_require_kvm = c->require_kvm;
	s->ls_enclaves = c->enclaves;
	/* One instance id for SMBIOS (nitro-hv) and the IMDS (the cards): made here when the
	 * user gave none. */
	if (c->instance_id) {
		snprintf(s->ls_instance_id, sizeof(s->ls_instance_id), "%s", c->instance_id);
	} else {
		uint8_t r[9];
		if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
			die("run: getrandom: %s", strerror(errno));
		snprintf(s->ls_instance_id, sizeof(s->ls_instance_id),
			 "i-0%02x%02x%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4], r[5],
			 r[6], r[7]);
	}
	if (c->instance_type)
		snprintf(s->ls_instance_type, sizeof(s->ls_instance_type), "%s", c->instance_type);
	if (c->have_hello)
		snprintf(s->ls_enclave_hello, sizeof(s->ls_enclave_hello), "cid=%llu%s",
			 (unsigned long long)c->hello.cid,
			 c->hello.flags & ENW_FLAG_DEBUG ? ",debug" : "");
	for (unsigned i = 0; i < c->ncards; i++) {
		if (s->ls_nexternal == LAUNCH_MAX_EXTERNAL)
			die_usage("run: --vhost-user: at most %u", LAUNCH_MAX_EXTERNAL);
		struct launch_external *x = &s->ls_external[s->ls_nexternal++];
		snprintf(x->lx_type, sizeof(x->lx_type), "%s",
			 c->cards[i].type == VIRTIO_ID_NET     ? "net"
			 : c->cards[i].type == VIRTIO_ID_VSOCK ? "vsock"
			 : c->cards[i].type == HV_CARD_NVME    ? "nvme"
							       : "blk");
		copy_path(x->lx_socket, sizeof(x->lx_socket), c->cards[i].socket, "--vhost-user");
	}
}

int cmd_run(int argc, char **argv)
{
	char kernel[PATH_MAX], initrd[PATH_MAX], err[512];
	static struct launch_spec spec;
	static struct launch_env env;
	static struct launch_plan plan;
	launch_spec_init(&spec);
	memset(&env, 0, sizeof(env));
	bool dry_run = false;
	/* --volume, --nic, --underlay, --map and --dry-run are nitro run's own; everything
	 * else is the hypervisor's. */
	char *user[argc + 1];
	int nuser = 0;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--volume")) {
			if (i + 1 >= argc)
				die_usage("run: --volume: missing value (see `nitro run --help`)");
			if (spec.ls_nvols == LAUNCH_MAX_VOLUMES)
				die_usage("run: --volume: at most %u volumes", LAUNCH_MAX_VOLUMES);
			int r = volume_parse(argv[++i], &spec.ls_vols[spec.ls_nvols++], err,
					     sizeof(err));
			if (r)
				r == 2 ? die_usage("run: %s", err) : die("run: %s", err);
			continue;
		}
		if (!strcmp(argv[i], "--instance-store")) {
			if (i + 1 >= argc)
				die_usage("run: --instance-store: missing value (see `nitro run "
					  "--help`)");
			if (spec.ls_nvols == LAUNCH_MAX_VOLUMES)
				die_usage("run: at most %u volumes and instance stores",
					  LAUNCH_MAX_VOLUMES);
			if (instance_store_parse(argv[++i], &spec.ls_vols[spec.ls_nvols++], err,
						 sizeof(err)))
				die_usage("run: %s", err);
			continue;
		}
		if (!strcmp(argv[i], "--dry-run")) {
			dry_run = true;
			continue;
		}
		if (!strcmp(argv[i], "--nsm")) {
			spec.ls_nsm = true;
			continue;
		}
		if (!strcmp(argv[i], "--vsock")) {
			spec.ls_vsock = true;
			continue;
		}
		if (nic_arg(argc, argv, &i, &spec, &env))
			continue;
		if (tpm_arg(argc, argv, &i, &tpm))
			continue;
		user[nuser++] = argv[i];
		if (takes_value(argv[i]) && i + 1 < argc)
			user[nuser++] = argv[++i];
	}
	user[nuser] = NULL;
	if (launch_check_volumes(&spec, err, sizeof(err)))
		die_usage("run: --volume: %s", err);

	struct hv_config c;
	hv_config_defaults(&c);
	/* The user's options are parsed first, alone; the default image goes in front of
	 * them only when they name no kernel (and then no initrd). */
	c.kernel_optional = true;
	if (hv_config_parse(nuser, user, &c, err, sizeof(err)))
		die_usage("run: %s (see `nitro run --help`)", err);
	if (c.help) {
		printf(
		    "usage: nitro run [options]\n%s"
		    "  --volume VOLUME[,iops=N][,throughput=MiB][,gp2][,header=PATH][,readonly]\n"
		    "           [,ctl=PATH]\n"
		    "                       a volume served by its own EBS card (repeatable); "
		    "VOLUME\n"
		    "                       is a volume file, nbd://HOST[:PORT]/EXPORT,\n"
		    "                       nbd+unix:///EXPORT?socket=PATH or null:SIZE; ctl=PATH\n"
		    "                       names the card's control socket (`nitro snapshot "
		    "create\n"
		    "                       --card PATH` pauses it for a consistent snapshot)\n"
		    "        [,bus=nvme|virtio][,device=NAME]\n"
		    "                       an NVMe controller (default; EC2's device name sda1,\n"
		    "                       then sdf, sdg, ...) or virtio-blk\n"
		    "  --instance-store SIZE[,dir=DIR]\n"
		    "                       a local NVMe disk (the instance storage card): a "
		    "nameless\n"
		    "                       sparse file in DIR (default $TMPDIR or /tmp) under a "
		    "key\n"
		    "                       that exists only in the card; gone when the guest "
		    "stops\n"
		    "  --nic vpc=ID,ip=A.B.C.D[/PREFIX][,sg=FILE][,mac=MAC|random][,pps=N]\n"
		    "        [,bandwidth=MBIT][,imds=required|optional|disabled]\n"
		    "                       a network interface served by its own VPC card "
		    "(repeatable)\n"
		    "  --underlay ADDR      this host's VPC underlay address (default 127.0.0.1)\n"
		    "  --map PATH           VPC mapping folder or file (default "
		    "$NITRO_STATE/vpc-map)\n"
		    "  --user-data FILE     the instance's user data (IMDS /latest/user-data)\n"
		    "  --ssh-key FILE       its SSH public key (IMDS public-keys/0/openssh-key)\n"
		    "  --region R           the VPC cards' region (IMDS placement, DNS names\n"
		    "                       ip-A-B-C-D.R.compute.internal; default us-east-1)\n"
		    "  --vsock              a virtio-vsock device, guest CID 3 (nitro-card-vsock:\n"
		    "                       reaches only this instance's enclaves; docs/vsock.md)\n"
		    "  --nsm                a Nitro Secure Module card (nitro-card-nsm) for "
		    "enclaves,\n"
		    "                       its chain from the state folder (`nitro enclave "
		    "root-cert`);\n"
		    "                       with --enclave-hello the guest uses it as an enclave "
		    "would\n"
		    "  --dry-run            print the processes this would start (JSON: "
		    "executable,\n"
		    "                       argv, socket, kept fds of each card and nitro-hv) and "
		    "exit\n",
		    hv_options_help);
		return 0;
	}
	if (c.kernel_fd >= 0 || c.initrd_fd >= 0)
		die_usage("run: --kernel-fd and --initrd-fd are nitrod's; give --kernel PATH, "
			  "--initrd PATH");
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
	tpm_check_state(&tpm);
	if (!dry_run && !has_kernel && access(kernel, R_OK) != 0) {
		fprintf(stderr, "nitro: the default guest image is missing; fetching it\n");
		if (images_ensure())
			die("run: cannot prepare the default guest image (see above)");
	}
	struct hv_images img;
	if (hv_config_check(&c, &img, err, sizeof(err)))
		die("%s", err);
	hv_images_release(&c, &img);
	spec_from_config(&c, &spec);

	/* Where: the executables beside this one, the kernel cache, a private run folder. */
	char cache[PATH_MAX];
	exe_sibling("nitro-hv", env.le_bin_dir, sizeof(env.le_bin_dir));
	char *slash = strrchr(env.le_bin_dir, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(env.le_bin_dir, sizeof(env.le_bin_dir), ".");
	snprintf(cache, sizeof(cache), "%s/kernels", cache_dir());
	if (c.cache_dir)
		copy_path(env.le_kernel_cache, sizeof(env.le_kernel_cache), c.cache_dir,
			  "--cache-dir");
	else if (dry_run)
		copy_path(env.le_kernel_cache, sizeof(env.le_kernel_cache), cache, "cache");
	const char *rt = getenv("XDG_RUNTIME_DIR");
	snprintf(env.le_run_dir, sizeof(env.le_run_dir), "%s/nitro-run-XXXXXX",
		 rt && *rt ? rt : "/tmp");
	/* As nitrod: each VPC card's underlay socket is made here (on --underlay's address)
	 * and passed as fd 3 (src/cli/cards.c). */
	env.le_underlay_fd = true;
	/* The VPC resolver forwards to the host's (none reachable: it refuses those names). */
	launch_usable_resolver(LAUNCH_RESOLV_CONF, env.le_dns, sizeof(env.le_dns));
	spec.ls_tpm = tpm.rt_on;
	if (tpm.rt_state_arg && !realpath(tpm.rt_state_arg, tpm_state_dir))
		die("run: --tpm-state %s: %s", tpm.rt_state_arg, strerror(errno));
	if (tpm.rt_on && !tpm.rt_state_arg) /* made in the run folder below */
		snprintf(tpm_state_dir, sizeof(tpm_state_dir), "%.*s/tpm-state", PATH_MAX - 16,
			 env.le_run_dir);
	copy_path(spec.ls_tpm_state, sizeof(spec.ls_tpm_state), tpm_state_dir, "--tpm-state");
	bool cards = spec.ls_nvols || spec.ls_nnics || spec.ls_tpm || spec.ls_vsock ||
		     spec.ls_nsm || spec.ls_enclaves;
	if (dry_run) {
		if (launch_plan(&spec, &env, &plan, err, sizeof(err)))
			die("run: %s", err);
		char *json = launch_plan_json(&plan, &env);
		if (!json)
			die("run: out of memory");
		printf("%s\n", json);
		free(json);
		return 0;
	}

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
		char dirs[LAUNCH_MAX_VOLUMES][PATH_MAX];
		const char *rw[LAUNCH_MAX_VOLUMES + 1];
		unsigned nrw = 0;
		if (tpm.rt_state_arg) /* the TPM's state folder too */
			rw[nrw++] = tpm_state_dir;
		for (unsigned i = 0; i < spec.ls_nvols; i++) {
			if (!spec.ls_vols[i].lv_file)
				continue; /* nbd:// and null: have no folder to share */
			if (!realpath(spec.ls_vols[i].lv_path, dirs[nrw]))
				die("run: volume %s: %s", spec.ls_vols[i].lv_path, strerror(errno));
			rw[nrw] = dirname(dirs[nrw]);
			nrw++;
		}
		unsigned mem = (unsigned)c.mem_mib + 768;
		return emuhost_exec(inner, mem < 1536 ? 1536 : mem, EMUHOST_CPUS, rw, nrw);
	}
	if (!c.cache_dir) {
		mkdir(cache_dir(), 0755);
		if (mkdir(cache, 0755) == 0 || errno == EEXIST)
			copy_path(env.le_kernel_cache, sizeof(env.le_kernel_cache), cache, "cache");
	}
	if (cards && !mkdtemp(env.le_run_dir))
		die("run: cannot create a folder for the card sockets in %s: %s",
		    rt && *rt ? rt : "/tmp", strerror(errno));
	if (spec.ls_nnics && getenv("NITRO_EMULATED_HOST") && !env.le_underlay[0])
		loopback_up("run: ");
	if (tpm.rt_on && !tpm.rt_state_arg) {
		snprintf(tpm_state_dir, sizeof(tpm_state_dir), "%.*s/tpm-state", PATH_MAX - 16,
			 env.le_run_dir);
		copy_path(spec.ls_tpm_state, sizeof(spec.ls_tpm_state), tpm_state_dir, "state");
		if (mkdir(tpm_state_dir, 0700) < 0)
			die("run: %s: %s", tpm_state_dir, strerror(errno));
		tpm.rt_temp = true;
	}
	if (tpm.rt_on) /* measured here, checked and extended by nitro-hv (docs/tpm.md) */
		tpm_boot_digests(spec.ls_kernel, spec.ls_initrd, &spec);
	if (launch_plan(&spec, &env, &plan, err, sizeof(err))) {
		if (cards)
			rmdir(env.le_run_dir);
		die("run: %s", err);
	}
	if (!cards) {
		const struct launch_proc *hv = launch_plan_hv(&plan);
		/* same process: stdio, signals and status are the guest's */
		execv(hv->lp_exe, hv->lp_argv);
		die("run: cannot start %s: %s", hv->lp_exe, strerror(errno));
	}
	return run_with_cards(&plan, &env);
}
