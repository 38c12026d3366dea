/* nitro-hv: the hypervisor process. CPU and memory only: it builds the VM, loads the
 * kernel, writes the boot structures and ACPI tables, runs the vCPU threads, and keeps
 * the serial console. Exit status: 0 guest powered off (or rebooted, with --no-reboot),
 * 1 error or guest crash (triple fault, KVM failure), 2 usage, 3 guest kernel panic
 * with --no-reboot, 4 guest rebooted while sandboxed (a jailed nitro-hv cannot exec
 * itself again: its supervisor starts a fresh one), 128+N killed by signal N; in enclave
 * mode also 5 (the EIF was refused) and 6 (the memory ranges were refused): enclave_image.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_ids.h>

#include "boot/config.h"
#include "boot/kernel.h"
#include "hv/acpi.h"
#include "hv/enclave.h"
#include "hv/enclave_image.h"
#include "hv/enclave_spawn.h"
#include "hv/kvmstats.h"
#include "hv/ne_pci.h"
#include "hv/nvme_pci.h"
#include "hv/pci.h"
#include "hv/platform.h"
#include "hv/serial.h"
#include "hv/smbios.h"
#include "hv/tpm.h"
#include "hv/vhost_front.h"
#include "hv/virtio_pci.h"
#include "hv/vm.h"
#include "lib/util.h"
#include "sandbox/sandbox.h"

static struct vm vm;
static struct pci_bus pci;
static struct virtio_pci cards[HV_MAX_CARDS];
static struct tpm_dev tpm;
static struct nvme_pci nvme_cards[HV_MAX_CARDS];
/* --enclaves: the spawner's socket and the glue behind the NE device's ops (the device
 * takes enclave_glue_ops(&enclaves) and reports exits with ne_enclave_exited). */
static int spawner_sock = -1;
static struct enclave_glue enclaves;
static struct ne_dev ne_dev; /* --enclaves */
static bool trace;
static struct timespec t_start;

/* The enclave glue's view of a parent's card (enclave_glue_add_card). */
static int sync_virtio(void *dev, char *err, size_t errlen)
{
	return virtio_pci_sync_mem(dev, err, errlen);
}

static int sync_nvme(void *dev, char *err, size_t errlen)
{
	return nvme_pci_sync_mem(dev, err, errlen);
}

/* NITRO_TRACE=1: where start-up time goes, one stderr line per phase. */
static void trace_phase(const char *what)
{
	if (!trace)
		return;
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	fprintf(stderr, "nitro-hv: %8.3f ms %s\n",
		(double)(t.tv_sec - t_start.tv_sec) * 1e3 +
		    (double)(t.tv_nsec - t_start.tv_nsec) / 1e6,
		what);
}
static struct serial com1;
static struct hv_config cfg;
static char **saved_argv;
static struct termios saved_tty;
static int tty_raw;

static void tty_restore(void)
{
	if (tty_raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_tty);
}

static void tty_make_raw(void)
{
	if (!isatty(STDIN_FILENO) || tcgetattr(STDIN_FILENO, &saved_tty) < 0)
		return;
	struct termios t = saved_tty;
	cfmakeraw(&t);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &t) == 0)
		tty_raw = 1;
}

/* Exit counts over all vCPUs: with cards on vhost-user, guest I/O adds none. */
static void print_stats(void)
{
	unsigned long all = 0, io = 0, mmio = 0;
	for (unsigned i = 0; vm.vm_vcpus && i < vm.vm_ncpus; i++) {
		all += atomic_load(&vm.vm_vcpus[i].vc_exits);
		io += atomic_load(&vm.vm_vcpus[i].vc_io_exits);
		mmio += atomic_load(&vm.vm_vcpus[i].vc_mmio_exits);
	}
	fprintf(stderr, "%s: exits: %lu total, %lu port I/O, %lu MMIO, %lu other\n", util_prog(),
		all, io, mmio, all - io - mmio);
	/* KVM's own count: the exits it handled in the kernel too (ioeventfd doorbells,
	 * halts, interrupts), which never reach KVM_RUN's caller */
	static const char *const names[] = {"exits", "halt_exits", "irq_exits", "irq_injections"};
	uint64_t k[4] = {0};
	bool have = vm.vm_vcpus != NULL;
	for (unsigned i = 0; have && i < vm.vm_ncpus; i++)
		for (unsigned j = 0; j < 4; j++) {
			uint64_t n = 0;
			have = have && kvmstats_get(vm.vm_vcpus[i].vc_stats_fd, names[j], &n);
			k[j] += n;
		}
	if (have)
		fprintf(stderr,
			"%s: KVM exits: %llu total (%llu not seen by nitro-hv), %llu halts, %llu "
			"host interrupts; %llu interrupts injected\n",
			util_prog(), (unsigned long long)k[0],
			(unsigned long long)(k[0] > all ? k[0] - all : 0), (unsigned long long)k[1],
			(unsigned long long)k[2], (unsigned long long)k[3]);
}

static void on_exit_hook(void)
{
	serial_flush(&com1);
	tty_restore();
	if (cfg.stats)
		print_stats();
}

static void on_signal(int sig)
{
	tty_restore();
	_exit(128 + sig);
}

static void hook_poweroff(void)
{
	vm_exit(0);
}

static void hook_reset(const char *how)
{
	if (cfg.no_reboot)
		vm_exit(0);
	(void)how;
	if (getenv("NITRO_SECCOMP")) {
		fprintf(stderr,
			"%s: the guest rebooted; exiting (4) for the supervisor to restart it\n",
			util_prog());
		vm_exit(4);
	}
	on_exit_hook();
	execv("/proc/self/exe", saved_argv);
	fprintf(stderr, "%s: reboot: cannot restart myself: %s\n", util_prog(), strerror(errno));
	vm_exit(1);
}

static void hook_panic(void)
{
	serial_flush(&com1);
	fprintf(stderr, "%s: the guest kernel panicked\n", util_prog());
	if (cfg.no_reboot)
		vm_exit(3);
}

static const struct platform_hooks hooks = {hook_poweroff, hook_reset, hook_panic};

static void com1_irq(void *opaque, int level)
{
	vm_irq_line(opaque, ACPI_COM1_IRQ, level);
}

static void usage(void)
{
	printf("usage: nitro-hv --kernel PATH|--kernel-fd N [options]\n%s", hv_options_help);
}

/* Reads the initrd (opened once by hv_config_check, or handed over by nitrod) straight
 * into guest memory at its planned place; with --initrd-sha384 the bytes in guest memory
 * must be what was measured. */
static int load_initrd(const struct boot_plan *bp, int fd, char *err, size_t errlen)
{
	uint8_t *dst = gpa_ptr(&vm.vm_mem, bp->bp_initrd, bp->bp_initrd_size);
	if (!dst) {
		snprintf(err, errlen, "initrd %s: no room", cfg.initrd);
		return -1;
	}
	uint64_t got = 0;
	while (got < bp->bp_initrd_size) {
		ssize_t r = pread(fd, dst + got, bp->bp_initrd_size - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "initrd %s: %s", cfg.initrd,
				 r < 0 ? strerror(errno) : "file shrank while reading");
			return -1;
		}
		got += (uint64_t)r;
	}
	uint8_t d[HV_DIGEST_LEN];
	if (cfg.want_initrd && (kernel_sha384(dst, bp->bp_initrd_size, d) < 0 ||
				memcmp(d, cfg.initrd_sha384, HV_DIGEST_LEN))) {
		snprintf(err, errlen, "initrd %s: not the file that was measured (SHA-384 differs)",
			 cfg.initrd);
		return -1;
	}
	return 0;
}

/* The TPM card connect and power-on (tpm_open) run on a thread of their own from "VM
 * created" on, beside loading kernel and initrd. */
static struct {
	pthread_t th;
	bool started;
	int rc;
	char err[512];
} tpm_opener;

static void *tpm_open_run(void *arg)
{
	(void)arg;
	tpm_opener.rc = tpm_open(&tpm, &vm, cfg.tpm_card, tpm_opener.err, sizeof(tpm_opener.err));
	return NULL;
}

static void tpm_open_begin(void)
{
	tpm_opener.started = pthread_create(&tpm_opener.th, NULL, tpm_open_run, NULL) == 0;
}

/* The digests of a boot file the launcher gave (SHA-256 from the pass that measured it,
 * SHA-384 checked against the loaded bytes): the TPM banks need no pass of their own. */
static void known_digests(struct tpm2_digests *d, const uint8_t *sha256, const uint8_t *sha384)
{
	d->count = 0;
	if (sha256) {
		d->alg[d->count] = TPM2_ALG_SHA256;
		memcpy(d->digest[d->count++], sha256, 32);
	}
	if (sha384) {
		d->alg[d->count] = TPM2_ALG_SHA384;
		memcpy(d->digest[d->count++], sha384, 48);
	}
}

/* NitroTPM: wait for the card's power-on (tpm_open_begin), measure kernel (PCR 4), initrd
 * (PCR 9) and command line (PCR 8, no NUL) into it and into the event log, before any
 * vCPU exists (docs/tpm.md). */
static void measured_boot(const struct hv_images *img, const struct boot_plan *bp)
{
	char err[512];
	struct tpm_log log;
	uint8_t *area = gpa_ptr(&vm.vm_mem, BOOT_TPM_LOG, BOOT_TPM_LOG_SIZE);
	if (!area)
		die("TPM: no room for the event log");
	if (!tpm_opener.started)
		tpm_open_run(NULL);
	else
		pthread_join(tpm_opener.th, NULL);
	if (tpm_opener.rc < 0)
		die("%s", tpm_opener.err);
	trace_phase("TPM card connected, TPM started");
	tpm_log_init(&log, area, BOOT_TPM_LOG_SIZE, tpm.t_algs, tpm.t_nalgs);
	const uint8_t *initrd = bp->bp_initrd_size
				    ? gpa_ptr(&vm.vm_mem, bp->bp_initrd, bp->bp_initrd_size)
				    : (const uint8_t *)"";
	struct tpm2_digests kd, id;
	known_digests(&kd, cfg.have_kernel_sha256 ? cfg.kernel_sha256 : NULL,
		      img->have_sha384 ? img->kernel_sha384 : NULL);
	known_digests(&id, cfg.have_initrd_sha256 ? cfg.initrd_sha256 : NULL,
		      cfg.want_initrd ? cfg.initrd_sha384 : NULL);
	if (tpm_measure(&tpm, &log, 4, img->kernel, img->kernel_len, &kd, "kernel", err,
			sizeof(err)) < 0 ||
	    tpm_measure(&tpm, &log, 9, initrd, bp->bp_initrd_size, &id, "initrd", err,
			sizeof(err)) < 0 ||
	    tpm_measure(&tpm, &log, 8, cfg.cmdline, strlen(cfg.cmdline), NULL, cfg.cmdline, err,
			sizeof(err)) < 0 ||
	    tpm_seal_platform(&tpm, err, sizeof(err)) < 0 || tpm_start(&tpm, err, sizeof(err)) < 0)
		die("%s", err);
	trace_phase("TPM measurements extended");
}

/* SMBIOS: the entry point at BOOT_SMBIOS_EP, the table right after the ACPI tables (up to
 * acpi_end, the TPM event log's start with a TPM, and never past the entry point). */
static int smbios_install(struct guest_mem *m, long acpi_len, uint64_t acpi_end)
{
	uint64_t start = (BOOT_ACPI + (uint64_t)acpi_len + 15) & ~15ull;
	uint64_t end = acpi_end < BOOT_SMBIOS_EP ? acpi_end : BOOT_SMBIOS_EP;
	if (acpi_len < 0 || start >= end)
		return -1;
	uint8_t *ep = gpa_ptr(m, BOOT_SMBIOS_EP, SMBIOS_EP_LEN),
		*t = gpa_ptr(m, start, end - start);
	struct smbios_config sc = {.ncpus = cfg.cpus,
				   .mem_mib = cfg.mem_mib,
				   .instance_type = cfg.instance_type,
				   .instance_id = cfg.instance_id};
	return ep && t && smbios_build(ep, t, end - start, start, &sc) > 0 ? 0 : -1;
}

/* Console, signals, sandbox, vCPUs; then the console loop, for good. */
static _Noreturn void run_vm(int in_fd, int out_fd, int log_fd)
{
	char err[512];
	serial_init(&com1, in_fd, out_fd, log_fd, com1_irq, &vm);
	if (serial_set_cap(&com1, cfg.console_max) < 0)
		die("--console-max: out of memory");
	if (pio_register(&vm.vm_pio, ACPI_COM1_PORT, 8, serial_pio, &com1) < 0 ||
	    platform_register(&vm.vm_pio, &hooks) < 0)
		die("cannot register the platform devices");

	vm_set_exit_hook(on_exit_hook);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (in_fd == STDIN_FILENO)
		tty_make_raw();

	/* Jailed by nitrod (NITRO_SECCOMP=hv): the seccomp allow-list from here on; an
	 * enclave's own, narrower one (no sockets, no connect, no fallocate) whenever it is
	 * jailed, whatever kind it inherited from its parent. */
	const char *kind = getenv("NITRO_SECCOMP");
	if (kind && *kind && cfg.enclave &&
	    sandbox_enter(strstr(kind, ":log") ? "hv-enclave:log" : "hv-enclave", err,
			  sizeof(err)) < 0) {
		tty_restore();
		die("%s", err);
	} else if (!cfg.enclave && sandbox_enter_from_env(err, sizeof(err)) < 0) {
		tty_restore();
		die("%s", err);
	}
	if (vm_start(&vm, err, sizeof(err))) {
		tty_restore();
		die("%s", err);
	}
	trace_phase("vCPUs started");
	if (cfg.enclave_ready_fd >= 0) { /* the EIF is accepted and the enclave runs */
		uint8_t ok = 0;
		if (write(cfg.enclave_ready_fd, &ok, 1) != 1)
			warnmsg("--enclave-ready-fd: %s", strerror(errno));
		close(cfg.enclave_ready_fd);
	}
	while (serial_poll(&com1))
		;
	for (;;)
		serial_poll(&com1); /* stdin at EOF: keep flushing output */
}

/* A refused enclave: the reason on stderr, the status the parent maps to an NE reply. */
static _Noreturn void enclave_refuse(int status, const char *why)
{
	fprintf(stderr, "%s: enclave %llu: %s\n", util_prog(), (unsigned long long)cfg.enclave_slot,
		why);
	vm_exit(status);
}

/* nitro-hv --enclave: RAM = the donated ranges of the parent's memfd, the kernel, command
 * line and ramdisks from the EIF at 8 MiB in it (enclave_image.h), the cards with the
 * enclave's hello; console only in debug mode. */
static _Noreturn void enclave_main(void)
{
	char err[512];
	static struct enclave_image im;
	struct stat st;
	struct guest_mem probe;
	if (fstat(cfg.enclave_mem_fd, &st) < 0)
		enclave_refuse(ENCLAVE_EXIT_MEM, "--enclave-mem: the memfd is not open");
	int e =
	    mem_layout_pieces(&probe, cfg.enclave_mem, cfg.enclave_npieces, (uint64_t)st.st_size);
	if (e)
		enclave_refuse(ENCLAVE_EXIT_MEM,
			       e == ENXIO ? "--enclave-mem: a range lies past the end of the memfd"
					  : "--enclave-mem: a range is empty or misaligned, or the "
					    "total is under 64 MiB or over 1 TiB");
	if (vm_open(&vm, err, sizeof(err)))
		die("%s", err);
	if (vm_create_pieces(&vm, cfg.enclave_mem_fd, cfg.enclave_mem, cfg.enclave_npieces,
			     cfg.cpus, err, sizeof(err)))
		die("%s", err);
	cfg.mem_mib = vm.vm_mem.gm_size >> 20;
	trace_phase("enclave VM created");
	if (enclave_image_read(&vm.vm_mem, &im, err, sizeof(err)))
		enclave_refuse(ENCLAVE_EXIT_EIF, err);
	trace_phase("EIF copied, parsed and measured");
	struct kernel_load kl;
	struct kernel_cache kc = {.kc_dir = cfg.cache_dir, .kc_write = true};
	/* the key: the kernel section's digest, taken in the measuring pass (eif_measure) */
	if (im.pcrs.has_kernel)
		memcpy(kc.kc_kernel, im.pcrs.kernel, sizeof(kc.kc_kernel));
	else if (cfg.cache_dir && kernel_sha384(im.bz.bz_data, im.bz.bz_len, kc.kc_kernel) < 0)
		kc.kc_dir = NULL;
	if (kernel_load(&vm.vm_mem, &im.bz, !cfg.no_decompress, &kc, &kl, err, sizeof(err)))
		enclave_refuse(ENCLAVE_EXIT_EIF, err);
	trace_phase("enclave kernel loaded");
	struct boot_plan bp;
	uint64_t kend = im.bz.bz_pref_address + im.bz.bz_init_size;
	if (kl.kl_end > kend)
		kend = kl.kl_end;
	if (boot_plan(&im.bz, &vm.vm_mem, kl.kl_entry, kl.kl_start, kend, im.ramdisk_size, &bp, err,
		      sizeof(err)))
		enclave_refuse(ENCLAVE_EXIT_EIF, err);
	if (enclave_image_put_ramdisks(&im, &vm.vm_mem, bp.bp_initrd) < 0)
		enclave_refuse(ENCLAVE_EXIT_EIF, "the ramdisks do not fit in enclave memory");
	/* The cards' connections come from the spawner, opened and identified (cid, slot,
	 * flags, module id, PCR4); only this process knows the EIF's PCRs: the NSM card
	 * takes them once, on its already identified connection (enclave_wire.h). */
	enclave_pcrs_fill(&cfg.pcrs, &im.pcrs, cfg.enclave_debug);
	if (cfg.ncards && pci_init(&pci, &vm.vm_mmio) < 0)
		die("cannot set up the PCI host bridge");
	for (unsigned i = 0; i < cfg.ncards; i++) {
		if (cfg.cards[i].type != VIRTIO_ID_VSOCK &&
		    cfg.cards[i].type != VIRTIO_ID_NITRO_SEC_MOD)
			die("enclave: only vsock and nsm cards");
		struct vhost_open o = {
		    .fd = cfg.cards[i].fd,
		    .pcrs = cfg.cards[i].type == VIRTIO_ID_NITRO_SEC_MOD ? &cfg.pcrs : NULL};
		if (virtio_pci_create(&cards[i], &vm, &pci, cfg.cards[i].type, &o, err,
				      sizeof(err)) < 0)
			die("%s", err);
	}
	struct acpi_config ac = {.ncpus = cfg.cpus, .pci = cfg.ncards > 0};
	uint8_t *acpi = gpa_ptr(&vm.vm_mem, BOOT_ACPI, BOOT_ACPI_END - BOOT_ACPI);
	if (!acpi || acpi_build(acpi, BOOT_ACPI_END - BOOT_ACPI, BOOT_ACPI, &ac) < 0)
		die("cannot build the ACPI tables for %u vCPUs", cfg.cpus);
	bp.bp_rsdp = BOOT_ACPI;
	if (boot_write(&vm.vm_mem, &im.bz, &bp, im.cmdline, err, sizeof(err)))
		enclave_refuse(ENCLAVE_EXIT_EIF, err);
	enclave_image_free(&im);
	vm.vm_entry = bp.bp_entry;
	trace_phase("enclave boot structures written");
	/* no console outside debug mode: the serial port's output goes nowhere; in debug mode
	 * to stdout (the host's log) and the vsock card's console feed (the parent's), which
	 * the spawner opened (src/hv/enclave_console.h) and handed over */
	run_vm(-1, cfg.enclave_debug ? STDOUT_FILENO : -1,
	       cfg.enclave_debug ? cfg.enclave_feed_fd : -1);
}

int main(int argc, char **argv)
{
	util_set_prog("nitro-hv");
	saved_argv = argv;
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	trace = getenv("NITRO_TRACE") != NULL;
	char err[512];
	hv_config_defaults(&cfg);
	if (hv_config_parse(argc - 1, argv + 1, &cfg, err, sizeof(err)))
		die_usage("%s (see --help)", err);
	if (cfg.help) {
		usage();
		return 0;
	}
	if (cfg.enclave) {
		cfg.no_reboot = true; /* an enclave that reboots has ended */
		enclave_main();
	}
	if (cfg.enclaves) { /* forked first: nothing of the VM in it, no seccomp list yet */
		static struct enclave_spawner_config sc;
		sc = (struct enclave_spawner_config){.vsock = cfg.enclave_vsock,
						     .nsm = cfg.enclave_nsm,
						     .parent_id = cfg.instance_id,
						     .cache_dir = cfg.cache_dir,
						     .console_dir = cfg.enclave_console_dir,
						     .exe_fd = cfg.enclave_exe_fd};
		pid_t pid;
		spawner_sock = enclave_spawner_start(&sc, &pid, err, sizeof(err));
		if (spawner_sock < 0)
			die("%s", err);
	}
	struct hv_images img;
	if (hv_config_check(&cfg, &img, err, sizeof(err)))
		die("%s", err);
	int log_fd = -1;
	if (cfg.console_log) {
		log_fd = open(cfg.console_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (log_fd < 0)
			die("--console-log %s: %s", cfg.console_log, strerror(errno));
	}

	trace_phase("arguments checked, kernel read");
	if (vm_open(&vm, err, sizeof(err)))
		die("%s", err);
	if (vm_create(&vm, cfg.mem_mib << 20, cfg.cpus, err, sizeof(err)))
		die("%s", err);

	trace_phase("VM created");
	if (cfg.enclaves && enclave_glue_init(&enclaves, &vm, spawner_sock, ne_enclave_exited,
					      &ne_dev, err, sizeof(err)) < 0)
		die("%s", err);
	if (cfg.tpm_card)
		tpm_open_begin();
	struct kernel_load kl;
	struct kernel_cache kc = {.kc_dir = img.have_sha384 ? cfg.cache_dir : NULL,
				  .kc_want = cfg.want_vmlinux ? cfg.vmlinux_sha384 : NULL,
				  .kc_write = true};
	memcpy(kc.kc_kernel, img.kernel_sha384, sizeof(kc.kc_kernel));
	if (kernel_load(&vm.vm_mem, &img.bz, !cfg.no_decompress, &kc, &kl, err, sizeof(err)))
		die("kernel %s: %s", cfg.kernel, err);
	trace_phase(kl.kl_vmlinux ? "kernel loaded (host-decompressed vmlinux)"
				  : "kernel loaded (bzImage)");
	struct boot_plan bp;
	uint64_t kend = img.bz.bz_pref_address + img.bz.bz_init_size;
	if (kl.kl_end > kend)
		kend = kl.kl_end;
	if (boot_plan(&img.bz, &vm.vm_mem, kl.kl_entry, kl.kl_start, kend, img.initrd_size, &bp,
		      err, sizeof(err)))
		die("initrd %s: %s", cfg.initrd, err);
	if (cfg.initrd && load_initrd(&bp, img.initrd_fd, err, sizeof(err)))
		die("%s", err);
	trace_phase("initrd loaded");
	bool have_pci = cfg.ncards || cfg.enclaves;
	if (have_pci && pci_init(&pci, &vm.vm_mmio) < 0)
		die("cannot set up the PCI host bridge");
	for (unsigned i = 0; i < cfg.ncards; i++)
		if (cfg.cards[i].type == HV_CARD_NVME
			? nvme_pci_create(&nvme_cards[i], &vm, &pci, cfg.cards[i].socket, err,
					  sizeof(err)) < 0
			: virtio_pci_create(
			      &cards[i], &vm, &pci, cfg.cards[i].type,
			      &(struct vhost_open){
				  .path = cfg.cards[i].socket,
				  .fd = -1,
				  .hello =
				      cfg.have_hello && cfg.cards[i].enclave ? &cfg.hello : NULL,
				  .pcrs =
				      cfg.have_hello && cfg.cards[i].type == VIRTIO_ID_NITRO_SEC_MOD
					  ? &cfg.pcrs
					  : NULL},
			      err, sizeof(err)) < 0)
			die("%s", err);
	for (unsigned i = 0; cfg.enclaves && i < cfg.ncards; i++) /* enclave memory leaves them */
		if (enclave_glue_add_card(
			&enclaves, cfg.cards[i].type == HV_CARD_NVME ? sync_nvme : sync_virtio,
			cfg.cards[i].type == HV_CARD_NVME ? (void *)&nvme_cards[i]
							  : (void *)&cards[i]) < 0)
			die("--enclaves: too many cards");
	if (cfg.enclaves) { /* the NE device; START/STOP go to the glue (src/hv/enclave.c) */
		if (ne_pci_create(&ne_dev, &vm, &pci, err, sizeof(err)) < 0)
			die("%s", err);
		struct ne_ops ops = enclave_glue_ops(&enclaves);
		ne_pci_set_ops(&ne_dev, &ops);
	}
	trace_phase("cards connected");
	struct acpi_config ac = {.ncpus = cfg.cpus, .pci = have_pci};
	uint64_t acpi_end = BOOT_ACPI_END;
	if (cfg.tpm_card) {
		measured_boot(&img, &bp);
		ac.tpm = true;
		ac.tpm_base = TPM_CRB_BASE;
		ac.tpm_size = TPM_CRB_SIZE + TPM_CRB_BUF_SIZE;
		ac.tpm_ctrl = TPM_CRB_CTRL;
		ac.tpm_log = BOOT_TPM_LOG;
		ac.tpm_log_len = BOOT_TPM_LOG_SIZE;
		acpi_end = BOOT_TPM_LOG;
	}
	uint8_t *acpi = gpa_ptr(&vm.vm_mem, BOOT_ACPI, acpi_end - BOOT_ACPI);
	long acpi_len = -1;
	if (!acpi || (acpi_len = acpi_build(acpi, acpi_end - BOOT_ACPI, BOOT_ACPI, &ac)) < 0)
		die("cannot build the ACPI tables for %u vCPUs", cfg.cpus);
	bp.bp_rsdp = BOOT_ACPI;
	if (smbios_install(&vm.vm_mem, acpi_len, acpi_end) < 0)
		die("cannot build the SMBIOS tables");
	if (boot_write(&vm.vm_mem, &img.bz, &bp, cfg.cmdline, err, sizeof(err)))
		die("%s", err);
	hv_images_release(&cfg, &img);
	if (cfg.kernel_fd >= 0)
		close(cfg.kernel_fd); /* nothing of nitrod's stays open in the running hypervisor */
	if (cfg.initrd_fd >= 0)
		close(cfg.initrd_fd);
	vm.vm_entry = bp.bp_entry;

	run_vm(STDIN_FILENO, STDOUT_FILENO, log_fd);
}
