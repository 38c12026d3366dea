/* nitro-card-ebs: an EBS volume as a vhost-user-blk device.
 *
 *   nitro-card-ebs --socket-path PATH | --fd N [--queues N] [--iops N] [--throughput MiB]
 *                  [--readonly] VOLUME
 *   nitro-card-ebs --print-capabilities
 *
 * Runs in the foreground until SIGTERM/SIGINT (exit 0); SIGUSR1 prints the counters to
 * stderr, as does the exit. With --socket-path the card keeps its socket and serves one
 * frontend at a time: when a frontend leaves (or is dropped for a protocol error), the next
 * one waiting in the backlog is accepted, so a misbehaving frontend never ends the card.
 * With --fd the card serves that one connection and exits when it closes.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cards/ebs/ebs.h"
#include "cards/lib/backend.h"
#include "lib/util.h"

static const char usage_text[] =
    "usage: nitro-card-ebs --socket-path PATH | --fd N [--queues N] [--iops N]\n"
    "                      [--throughput MiB] [--readonly] VOLUME\n"
    "       nitro-card-ebs --print-capabilities\n"
    "  --iops N          IOPS limit (default 3000; 0 = unlimited)\n"
    "  --throughput MiB  MiB/s limit (default 125; 0 = unlimited)\n"
    "  --queues N        virtqueues (1..64, default 1)\n";

struct card {
	struct ebs c_ebs;
	struct loop c_loop;
	struct backend c_backend;
	int c_usr1;
};

/* The frontend left: take the next one (socket mode) or end (--fd). */
static struct card *the_card;

static void on_disconnected(struct vu_dev *d)
{
	(void)d;
	if (backend_next(&the_card->c_backend) < 0)
		loop_stop(&the_card->c_loop);
}

static void on_usr1(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct card *c = opaque;
	struct signalfd_siginfo si;
	(void)l;
	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si))
		ebs_print_stats(&c->c_ebs, stderr);
}

/* --name VALUE or --name=VALUE; NULL when argv[*i] is not --name. */
static const char *opt_arg(const char *name, int argc, char **argv, int *i)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n))
		return NULL;
	if (argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (argv[*i][n])
		return NULL;
	if (*i + 1 >= argc)
		die_usage("%s needs a value\n%s", name, usage_text);
	return argv[++*i];
}

int main(int argc, char **argv)
{
	static struct card card = {.c_usr1 = -1};
	struct card *c = &card;
	struct backend_opts bo;
	struct volume vol;
	const char *path = NULL, *v;
	uint64_t iops = QOS_DEFAULT_IOPS, mibps = QOS_DEFAULT_MIBPS, queues = 1;
	bool readonly = false;
	char err[512];

	util_set_prog("nitro-card-ebs");
	the_card = c;
	backend_opts_init(&bo);
	for (int i = 1; i < argc; i++) {
		int r = backend_parse_opt(&bo, argc, argv, &i, err, sizeof(err));
		if (r < 0)
			die_usage("%s", err);
		if (r > 0)
			continue;
		if ((v = opt_arg("--iops", argc, argv, &i))) {
			if (!parse_u64(v, 0, 10000000, &iops))
				die_usage("--iops: expected 0..10000000, got '%s'", v);
		} else if ((v = opt_arg("--throughput", argc, argv, &i))) {
			if (!parse_u64(v, 0, 1000000, &mibps))
				die_usage("--throughput: expected MiB/s 0..1000000, got '%s'", v);
		} else if ((v = opt_arg("--queues", argc, argv, &i))) {
			if (!parse_u64(v, 1, 64, &queues))
				die_usage("--queues: expected 1..64, got '%s'", v);
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
	if (bo.bo_print_caps) {
		backend_print_capabilities(stdout, "blk", NULL);
		return 0;
	}
	if (backend_check_opts(&bo, err, sizeof(err)) < 0)
		die_usage("%s\n%s", err, usage_text);
	if (!path)
		die_usage("VOLUME is required\n%s", usage_text);
	signal(SIGPIPE, SIG_IGN);

	if (vol_open(path, readonly, &vol, err, sizeof(err)) < 0)
		die("%s", err);
	/* The data key's schedule now lives in OpenSSL's heap: keep what is mapped so far out
	 * of swap (guest memory, mapped later, is not locked) and the process out of core
	 * dumps and same-user ptrace. Best effort: RLIMIT_MEMLOCK may forbid it. */
	if (vol.v_encrypted) {
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		mlockall(MCL_CURRENT);
	}
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	if (loop_init(&c->c_loop, true, err, sizeof(err)) < 0)
		die("%s", err);
	c->c_usr1 = signalfd(-1, &usr1, SFD_NONBLOCK | SFD_CLOEXEC);
	if (c->c_usr1 < 0 || loop_add(&c->c_loop, c->c_usr1, on_usr1, c, err, sizeof(err)) < 0)
		die("SIGUSR1 signalfd: %s", c->c_usr1 < 0 ? strerror(errno) : err);
	if (ebs_init(&c->c_ebs, &vol, &c->c_loop, (unsigned)queues, iops, mibps << 20, err,
		     sizeof(err)) < 0)
		die("volume %s: %s", path, err);
	c->c_ebs.e_ops.vo_disconnected = on_disconnected;

	bo.bo_serial = true;
	int r = backend_start(&c->c_backend, &c->c_ebs.e_dev, &c->c_loop, &bo, err, sizeof(err));
	if (r < 0)
		die("%s", err);
	r = loop_run(&c->c_loop);
	if (r < 0)
		warnmsg("event loop: %s", strerror(-r));

	ebs_print_stats(&c->c_ebs, stderr);
	ebs_fini(&c->c_ebs);
	backend_stop(&c->c_backend);
	close(c->c_usr1);
	loop_fini(&c->c_loop);
	vol_close(&vol);
	return r < 0 ? 1 : 0;
}
