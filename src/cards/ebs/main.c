/* nitro-card-ebs: an EBS volume as a vhost-user-blk device.
 *
 *   nitro-card-ebs --socket-path PATH | --fd N [--queues N] [--iops N | --gp2]
 *                  [--throughput MiB] [--readonly] [--poll-us N] [--header PATH]
 *                  [--encrypt] [--key-fd N] [--nvme [--device NAME]] [--ctl PATH] VOLUME
 *   nitro-card-ebs --print-capabilities
 *
 * --nvme serves the volume as an NVMe controller (src/cards/nvme: the queues here, the
 * register file in nitro-hv --nvme) instead of virtio-blk; --device is the block device
 * name EC2 puts in Identify Controller's vendor area (default sda1).
 *
 * VOLUME is a volume file (io_uring back end), nbd://HOST[:PORT]/EXPORT or
 * nbd+unix:///EXPORT?socket=PATH (NBD back end: unencrypted raw export, or with --header
 * the id, size and wrapped data key of a local volume file, data in the export), or
 * null:SIZE (reads zeroes, drops writes; --encrypt gives it an ephemeral key).
 * An encrypted volume's data key is read from fd N with --key-fd (64 bytes, then EOF; the
 * fd is closed: how nitrod hands it over, the card never sees the master key), else
 * unwrapped with the master key ($NITRO_STATE/master.key).
 * --ctl PATH: a control socket to pause the volume for a crash-consistent snapshot
 * (src/cards/bdev/blkctl.h), for the virtio-blk and the NVMe front alike.
 *
 * Runs in the foreground until SIGTERM/SIGINT (exit 0); SIGUSR1 prints the counters to
 * stderr, as does the exit. With --socket-path the card keeps its socket and serves one
 * frontend at a time: when a frontend leaves (or is dropped for a protocol error), the next
 * one waiting in the backlog is accepted, so a misbehaving frontend never ends the card.
 * With --fd the card serves that one connection and exits when it closes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cards/bdev/blkctl.h"
#include "cards/ebs/ebs.h"
#include "cards/lib/backend.h"
#include "cards/lib/cardmain.h"
#include "cards/nvme/front.h"
#include "lib/util.h"
#include "sandbox/sandbox.h"
#include "volume/xts.h"

static const char usage_text[] =
    "usage: nitro-card-ebs --socket-path PATH | --fd N [--queues N] [--iops N | --gp2]\n"
    "                      [--throughput MiB] [--readonly] [--poll-us N] [--header PATH]\n"
    "                      [--encrypt] [--key-fd N] [--nvme [--device NAME]] [--ctl PATH]\n"
    "                      VOLUME\n"
    "       nitro-card-ebs --print-capabilities\n"
    "  VOLUME            a volume file, nbd://HOST[:PORT]/EXPORT,\n"
    "                    nbd+unix:///EXPORT?socket=PATH, or null:SIZE\n"
    "  --iops N          IOPS limit (default 3000; 0 = unlimited)\n"
    "  --gp2             gp2-style limit instead: 3 IOPS/GiB (min 100) with burst credits\n"
    "                    to 3000 IOPS (bucket: 5.4M, or $NITRO_GP2_CREDITS)\n"
    "  --throughput MiB  MiB/s limit (default 125; 0 = unlimited)\n"
    "  --queues N        virtqueues (1..64, default 1)\n"
    "  --poll-us N       after work, busy-poll the rings for N us before sleeping (0..1000;\n"
    "                    default 0, with --nvme 20 unless the card has a single CPU)\n"
    "  --header PATH     NBD: id, size and wrapped data key from this local volume file\n"
    "  --encrypt         null: encrypt with an ephemeral random key\n"
    "  --key-fd N        read the volume's 64-byte data key from fd N (a pipe), then close\n"
    "                    it (default: unwrap it with $NITRO_STATE/master.key)\n"
    "  --nvme            an NVMe controller (nitro-hv --nvme) instead of virtio-blk;\n"
    "                    --queues is then the number of I/O queue pairs (1..16, default 16)\n"
    "  --device NAME     NVMe: the device name in the vendor area (default sda1)\n"
    "  --instance-store SIZE  with --nvme, instead of VOLUME: the instance storage card,\n"
    "                    a nameless sparse file in --dir DIR (default /tmp) under a key\n"
    "                    that never leaves this process\n"
    "  --ctl PATH        control socket: pause (drain + flush) and resume, for snapshots\n";

#define NVME_POLL_US_DEFAULT 20

#define CARD_SECURE_HEAP (128u << 10) /* key schedules and XTS tweak buffers: ~40 KiB */

struct card {
	struct ebs c_ebs;
	struct loop c_loop;
	struct backend c_backend;
	struct bdev c_bdev;
	struct blkctl c_ctl;
	int c_usr1;
	struct nvme_ctrl c_nvme;
	struct nvme_front c_front;
	struct qos c_qos;
};

/* The frontend left: take the next one (socket mode) or end (--fd). */
static struct card *the_card;

static void on_disconnected(struct vu_dev *d)
{
	(void)d;
	if (backend_next(&the_card->c_backend) < 0)
		loop_stop(&the_card->c_loop);
}

static bool nvme_mode;
static bool instance_mode; /* the instance storage card (--instance-store) */

static void nvme_print_stats(const struct nvme_ctrl *n, FILE *f)
{
	const struct nvme_smart *s = &n->c_smart;
	fprintf(f,
		"nitro-card-ebs: nvme %s: %llu reads (%llu bytes), %llu writes (%llu bytes), "
		"%llu errors, throttled %llu times, %llu queue kicks, %llu doorbell writes, "
		"%llu interrupts, %llu polls that found commands\n",
		n->c_info.ni_serial, (unsigned long long)s->sm_read_cmds,
		(unsigned long long)s->sm_read_bytes, (unsigned long long)s->sm_write_cmds,
		(unsigned long long)s->sm_written_bytes, (unsigned long long)s->sm_err_entries,
		(unsigned long long)n->c_throttled, (unsigned long long)n->c_kicks,
		(unsigned long long)n->c_rings, (unsigned long long)n->c_irqs,
		(unsigned long long)n->c_polled);
}

static void on_usr1(void *opaque)
{
	struct card *c = opaque;
	if (nvme_mode)
		nvme_print_stats(&c->c_nvme, stderr);
	else
		ebs_print_stats(&c->c_ebs, stderr);
}

/* --nvme: the volume behind an NVMe controller; runs the loop until the end. */
static int run_nvme(struct card *c, struct volume *vol, const struct backend_opts *bo,
		    const char *device, unsigned queues, bool gp2, double credits, uint64_t iops,
		    uint64_t mibps, const char *ctl, unsigned poll_us)
{
	char err[512], serial[VOL_ID_LEN + 1];
	/* the serial: the volume id without its dash ("vol0123...") */
	snprintf(serial, sizeof(serial), "%.3s%s", vol->v_id,
		 strncmp(vol->v_id, "vol-", 4) ? vol->v_id + 3 : vol->v_id + 4);
	if (instance_mode) {
		iops = mibps = 0; /* local storage: no EBS QoS */
		gp2 = false;
		device = "ephemeral0";
	}
	struct nvme_info info = {.ni_device = instance_mode ? 0xcd01 : 0x8061,
				 .ni_model = instance_mode ? "Amazon EC2 NVMe Instance Storage"
							   : "Amazon Elastic Block Store",
				 .ni_serial = serial,
				 .ni_bdev_name = device,
				 .ni_nqids = queues + 1};
	struct gmem none;
	gm_init(&none);
	if (nvme_init(&c->c_nvme, &info, &none, vol, &c->c_bdev, err, sizeof(err)) < 0)
		die("%s", err);
	uint64_t now = ebs_now_ns();
	if (gp2) {
		qos_init_gp2(&c->c_qos, vol->v_size, credits, mibps << 20, now);
		c->c_nvme.c_qos = &c->c_qos;
	} else if (iops || mibps) {
		qos_init(&c->c_qos, iops, mibps << 20, now);
		c->c_nvme.c_qos = &c->c_qos;
	}
	c->c_nvme.c_now = ebs_now_ns;
	if (nvme_front_start(&c->c_front, &c->c_nvme, &c->c_loop, bo->bo_socket_path, bo->bo_fd,
			     err, sizeof(err)) < 0)
		die("%s", err);
	if (ctl && blkctl_open(&c->c_ctl, &nvme_front_ctl_ops, &c->c_front, &c->c_bdev, &c->c_loop,
			       ctl, err, sizeof(err)) < 0)
		die("%s", err);
	if (sandbox_enter_from_env(err, sizeof(err)) < 0)
		die("%s", err);
	int r = nvme_front_run(&c->c_front, poll_us);
	if (r < 0)
		warnmsg("event loop: %s", strerror(-r));
	blkctl_close(&c->c_ctl);
	nvme_front_stop(&c->c_front);
	nvme_print_stats(&c->c_nvme, stderr);
	nvme_fini(&c->c_nvme);
	return r;
}

static const char *opt_arg(const char *name, int argc, char **argv, int *i)
{
	return card_opt(name, argc, argv, i, usage_text);
}

/* The CPUs this process may run on (before the jail: sched_getaffinity only). */
static unsigned cpus_usable(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) < 0)
		return 1;
	int n = CPU_COUNT(&set);
	return n > 0 ? (unsigned)n : 1;
}

/* The loop, with an optional busy-poll phase after each wake-up (kicks off meanwhile). */
static int run(struct card *c, unsigned poll_us)
{
	struct loop *l = &c->c_loop;
	if (!poll_us)
		return loop_run(l);
	uint64_t span = (uint64_t)poll_us * 1000;
	bool sleep = true;
	while (!l->lp_stop) {
		int r = loop_run_once(l, sleep ? -1 : 0);
		if (r < 0)
			return r;
		ebs_set_polling(&c->c_ebs, true);
		uint64_t deadline = 0;
		unsigned idle = 0;
		for (unsigned spins = 1; !l->lp_stop; spins++) {
			if (ebs_poll(&c->c_ebs))
				idle = 0; /* work: the span starts again when it stops */
			else if (idle++ == 0)
				deadline = ebs_now_ns() + span;
			else if (idle % 16 == 0 && ebs_now_ns() >= deadline)
				break;
			if (spins % 512 == 0 && (r = loop_run_once(l, 0)) < 0)
				return r;
		}
		/* Work that raced in is polled for at once, unless the card cannot take it now
		 * (QoS timer, or every request slot busy): then an event wakes it. */
		sleep = !ebs_set_polling(&c->c_ebs, false) || ebs_blocked(&c->c_ebs);
	}
	return 0;
}

/* Opens VOLUME on its back end; fills vol and c->c_bdev. */
/* The data key from fd: exactly VOL_KEY_BYTES then end of file, into a locked page. */
static uint8_t *read_key(int fd)
{
	uint8_t *k = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (k == MAP_FAILED)
		die("--key-fd: out of memory");
	madvise(k, 4096, MADV_DONTDUMP);
	mlock(k, 4096);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(fd, k + got, 4096 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("--key-fd %d: %s", fd, strerror(errno));
		if (n == 0 || (got += (size_t)n) > VOL_KEY_BYTES)
			break;
	}
	close(fd);
	if (got != VOL_KEY_BYTES)
		die("--key-fd %d: expected a %d-byte data key, got %zu bytes", fd, VOL_KEY_BYTES,
		    got);
	return k;
}

static void drop_key(uint8_t *k)
{
	if (!k)
		return;
	explicit_bzero(k, 4096);
	munlock(k, 4096);
	munmap(k, 4096);
}

static void open_volume(struct card *c, const char *path, const char *header, bool readonly,
			bool encrypt, const uint8_t *key, struct volume *vol)
{
	char err[512];
	struct bdev *b = &c->c_bdev;
	if (bdev_is_nbd_uri(path)) {
		if (encrypt)
			die_usage("--encrypt is for null volumes (NBD: --header)");
		if (bdev_nbd_open(b, path, readonly, err, sizeof(err)) < 0)
			die("%s", err);
		if (header) {
			if (vol_open_key(header, true, key, vol, err, sizeof(err)) < 0)
				die("%s", err);
			if (vol->v_size > b->bd_size)
				die("volume %s: the export holds %llu bytes, the header %s says "
				    "%llu",
				    path, (unsigned long long)b->bd_size, header,
				    (unsigned long long)vol->v_size);
			vol->v_readonly = readonly;
			snprintf(vol->v_path, sizeof(vol->v_path), "%s", path);
		} else {
			vol_init_raw(vol, path, b->bd_size, readonly);
		}
		return;
	}
	if (header)
		die_usage("--header is for NBD volumes");
	if (key && !strncmp(path, "null:", 5))
		die_usage("--key-fd is for volume files and NBD volumes with --header");
	if (!strncmp(path, "null:", 5)) {
		uint64_t size;
		if (!parse_size(path + 5, &size) || size == 0 || size % VOL_SECTOR)
			die_usage("volume %s: expected null:SIZE, SIZE a positive multiple of 512 "
				  "(like null:1G)",
				  path);
		if (bdev_null_open(b, size, err, sizeof(err)) < 0)
			die("%s", err);
		vol_init_raw(vol, path, size, readonly);
		if (encrypt && vol_set_ephemeral_key(vol, err, sizeof(err)) < 0)
			die("%s", err);
		return;
	}
	if (encrypt)
		die_usage("--encrypt is for null volumes (a volume file says whether it is "
			  "encrypted)");
	if (vol_open_key(path, readonly, key, vol, err, sizeof(err)) < 0)
		die("%s", err);
	if (bdev_file_open(b, vol->v_fd, VOL_DATA_OFFSET, vol->v_size, path, err, sizeof(err)) < 0)
		die("%s", err);
}

/* --instance-store: a nameless sparse file in dir (O_TMPFILE, or a file unlinked at once
 * where the file system has no O_TMPFILE) encrypted with a key made here and kept only in
 * this process: when the card ends, however it ends, the kernel frees the blocks and the
 * key is gone (crypto-erase). */
static void open_instance_store(struct card *c, const char *dir, uint64_t size, struct volume *vol)
{
	char err[512];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s/.nitro-instance-XXXXXX", dir);
		fd = mkostemp(path, O_CLOEXEC);
		if (fd >= 0)
			unlink(path);
	}
	if (fd < 0)
		die("--instance-store: cannot create its file in %s: %s", dir, strerror(errno));
	if (ftruncate(fd, (off_t)size) < 0)
		die("--instance-store: %s", strerror(errno));
	/* the serial: "AWS" and 17 random hex digits, new at every attach */
	uint8_t rnd[9];
	if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
		die("--instance-store: no random bytes");
	char name[32];
	int k = snprintf(name, sizeof(name), "AWS");
	for (unsigned i = 0; i < sizeof(rnd); i++)
		k += snprintf(name + k, sizeof(name) - (size_t)k, "%02x", rnd[i]);
	name[20] = '\0';
	vol_init_raw(vol, name, size, false);
	snprintf(vol->v_id, sizeof(vol->v_id), "%.20s", name);
	if (vol_set_ephemeral_key(vol, err, sizeof(err)) < 0 ||
	    bdev_file_open(&c->c_bdev, fd, 0, size, "instance store", err, sizeof(err)) < 0)
		die("%s", err);
	close(fd);
	instance_mode = true;
}

int main(int argc, char **argv)
{
	static struct card card = {.c_usr1 = -1};
	struct card *c = &card;
	struct backend_opts bo;
	struct volume vol;
	const char *path = NULL, *header = NULL, *device = "sda1", *ctl = NULL, *v;
	uint64_t iops = QOS_DEFAULT_IOPS, mibps = QOS_DEFAULT_MIBPS, queues = 1, poll_us = 0;
	uint64_t key_fd = 0;
	bool key_given = false;
	bool readonly = false, gp2 = false, iops_given = false, encrypt = false;
	bool queues_given = false, poll_given = false;
	uint64_t instance = 0;
	const char *instance_dir = "/tmp";
	char err[512];

	util_set_prog("nitro-card-ebs");
	/* Before OpenSSL allocates anything: the key schedules go to a small locked heap
	 * instead of locking every mapped library (mlockall locked ~52 MiB and took seconds
	 * in an emulated host). */
	if (xts_secure_init(CARD_SECURE_HEAP) < 0)
		warnmsg("OpenSSL secure heap unavailable: keys are not locked in memory");
	the_card = c;
	blkctl_init(&c->c_ctl);
	backend_opts_init(&bo);
	for (int i = 1; i < argc; i++) {
		if (card_backend_opt(&bo, argc, argv, &i))
			continue;
		if ((v = opt_arg("--iops", argc, argv, &i))) {
			if (!parse_u64(v, 0, 10000000, &iops))
				die_usage("--iops: expected 0..10000000, got '%s'", v);
			iops_given = true;
		} else if ((v = opt_arg("--throughput", argc, argv, &i))) {
			if (!parse_u64(v, 0, 1000000, &mibps))
				die_usage("--throughput: expected MiB/s 0..1000000, got '%s'", v);
		} else if ((v = opt_arg("--queues", argc, argv, &i))) {
			if (!parse_u64(v, 1, 64, &queues))
				die_usage("--queues: expected 1..64, got '%s'", v);
			queues_given = true;
		} else if ((v = opt_arg("--poll-us", argc, argv, &i))) {
			if (!parse_u64(v, 0, 1000, &poll_us))
				die_usage("--poll-us: expected 0..1000, got '%s'", v);
			poll_given = true;
		} else if ((v = opt_arg("--key-fd", argc, argv, &i))) {
			if (!parse_u64(v, 3, 1 << 20, &key_fd))
				die_usage("--key-fd: expected an fd number >= 3, got '%s'", v);
			key_given = true;
		} else if ((v = opt_arg("--header", argc, argv, &i))) {
			header = v;
		} else if ((v = opt_arg("--device", argc, argv, &i))) {
			if (!*v || strlen(v) > 32)
				die_usage("--device: expected a name of 1..32 bytes, got '%s'", v);
			device = v;
		} else if ((v = opt_arg("--instance-store", argc, argv, &i))) {
			if (!parse_size(v, &instance) || !instance || instance % VOL_SECTOR)
				die_usage("--instance-store: expected SIZE, a multiple of 512, got "
					  "'%s'",
					  v);
		} else if ((v = opt_arg("--dir", argc, argv, &i))) {
			instance_dir = v;
		} else if (!strcmp(argv[i], "--nvme")) {
			nvme_mode = true;
		} else if ((v = opt_arg("--ctl", argc, argv, &i))) {
			ctl = v;
		} else if (!strcmp(argv[i], "--gp2")) {
			gp2 = true;
		} else if (!strcmp(argv[i], "--encrypt")) {
			encrypt = true;
		} else if (!strcmp(argv[i], "--readonly")) {
			readonly = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else if (argv[i][0] == '-' && argv[i][1]) {
			die_usage("unknown option %s\n%s", argv[i], usage_text);
		} else if (!path) {
			path = argv[i];
		} else {
			die_usage("unexpected argument %s (one VOLUME)\n%s", argv[i], usage_text);
		}
	}
	card_backend_opts_done(&bo, "blk", usage_text);
	if (ctl && instance)
		die_usage("--ctl: not with --instance-store (instance storage has no snapshots)");
	if (instance && (path || !nvme_mode || header || encrypt))
		die_usage("--instance-store: with --nvme, instead of VOLUME\n%s", usage_text);
	if (!path && !instance)
		die_usage("VOLUME is required\n%s", usage_text);
	if (gp2 && iops_given)
		die_usage("--gp2 and --iops exclude each other (gp2 sets the IOPS from the size)");
	double credits = 0;
	const char *cenv = getenv("NITRO_GP2_CREDITS");
	if (gp2 && cenv && *cenv) {
		uint64_t n;
		if (!parse_u64(cenv, 1, 1000000000, &n))
			die_usage("NITRO_GP2_CREDITS: expected 1..1000000000, got '%s'", cenv);
		credits = (double)n;
	}
	signal(SIGPIPE, SIG_IGN);

	uint8_t *key = key_given ? read_key((int)key_fd) : NULL;
	if (instance)
		open_instance_store(c, instance_dir, instance, &vol);
	else
		open_volume(c, path, header, readonly, encrypt, key, &vol);
	drop_key(key); /* the cipher contexts hold their own copy, in the secure heap */
	/* Keys live in locked memory (the secure heap set up first thing in main); keep the
	 * process out of core dumps and same-user ptrace too. */
	if (vol.v_encrypted)
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (card_loop_init(&c->c_loop, &c->c_usr1, on_usr1, c, err, sizeof(err)) < 0)
		die("%s", err);
	/* SCHED_BATCH: a doorbell that wakes the card does not preempt the vCPU that rang it
	 * on the same CPU, so the guest finishes its burst of submissions (one doorbell: the
	 * EventIdx is not moved meanwhile) and the card takes them, and posts their
	 * completions, in one batch with one interrupt. With a CPU of its own the card runs
	 * at once as before. Not fatal when refused. */
	if (sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){0}) < 0)
		warnmsg("SCHED_BATCH: %s", strerror(errno));
	if (nvme_mode) {
		if (!queues_given)
			queues = NVME_MAX_QIDS - 1; /* the driver takes one pair per vCPU */
		if (queues > NVME_MAX_QIDS - 1)
			die_usage("--queues: at most %u with --nvme", NVME_MAX_QIDS - 1);
		/* NVMe polls a short window after work by default (the EventIdx keeps the
		 * guest from ringing meanwhile), unless the card has one CPU only: there
		 * polling would take the CPU the vCPU needs to submit the next commands */
		if (!poll_given)
			poll_us = cpus_usable() > 1 ? NVME_POLL_US_DEFAULT : 0;
		int rn = run_nvme(c, &vol, &bo, device, (unsigned)queues, gp2, credits,
				  gp2 ? 0 : iops, mibps, ctl, (unsigned)poll_us);
		bdev_close(&c->c_bdev);
		close(c->c_usr1);
		loop_fini(&c->c_loop);
		vol_close(&vol);
		return rn < 0 ? 1 : 0;
	}
	if (ebs_init(&c->c_ebs, &vol, &c->c_bdev, &c->c_loop, (unsigned)queues, gp2 ? 0 : iops,
		     mibps << 20, err, sizeof(err)) < 0)
		die("volume %s: %s", path, err);
	if (gp2)
		ebs_set_gp2(&c->c_ebs, credits);
	c->c_ebs.e_ops.vo_disconnected = on_disconnected;
	if (ctl && blkctl_open(&c->c_ctl, &ebs_ctl_ops, &c->c_ebs, &c->c_bdev, &c->c_loop, ctl, err,
			       sizeof(err)) < 0)
		die("%s", err);

	bo.bo_serial = true;
	int r = backend_start(&c->c_backend, &c->c_ebs.e_dev, &c->c_loop, &bo, err, sizeof(err));
	if (r < 0)
		die("%s", err);
	/* Jailed by nitrod (NITRO_SECCOMP=card-ebs): the seccomp allow-list from here on. */
	if (sandbox_enter_from_env(err, sizeof(err)) < 0)
		die("%s", err);
	r = run(c, (unsigned)poll_us);
	if (r < 0)
		warnmsg("event loop: %s", strerror(-r));

	ebs_print_stats(&c->c_ebs, stderr);
	blkctl_close(&c->c_ctl);
	ebs_fini(&c->c_ebs);
	bdev_close(&c->c_bdev);
	backend_stop(&c->c_backend);
	close(c->c_usr1);
	loop_fini(&c->c_loop);
	vol_close(&vol);
	return r < 0 ? 1 : 0;
}
