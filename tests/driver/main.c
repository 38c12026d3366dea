/* vu-blk-driver: a vhost-user-blk frontend that plays the guest, for conformance checks and
 * benchmarks against any vhost-user-blk back end. */
#include "driver.h"
#include "vu_front.h"

#include "lib/util.h"

#include <getopt.h>
#include <signal.h>
#include <string.h>

static const char usage[] =
    "usage: vu-blk-driver --socket PATH [--queues N] [--mem MiB] check [--no-verify]\n"
    "       vu-blk-driver --socket PATH [--queues N] [--mem MiB] bench\n"
    "                     [--rw randread|randwrite|fill|zeroes|discard] [--bs BYTES] [--qd N]\n"
    "                     [--seconds S] [--poll]\n"
    "       vu-blk-driver --socket PATH [--mem MiB] hostile\n"
    "       vu-blk-driver --socket PATH write-flush|verify [--sectors N] [--first S] [--qd N]\n"
    "                    [--zero] [--no-flush] [--tag]\n"
    "  --no-seal  leave guest memory unsealed (a back end may refuse it)\n"
    "  write-flush  writes the check pattern to sectors [0, N) (default 2048), flushes,\n"
    "               prints \"flushed N sectors\" and exits (--no-flush: skips the flush and\n"
    "               prints \"written N sectors, not flushed\"); verify reads them back\n"
    "               (--zero: expects zeroes; --first S: sectors [S, S + N) instead;\n"
    "               --tag: each sector's number in its first 8 bytes, no two alike)\n"
    "  order  writes, a flush and reads in one batch: used entries must come back in\n"
    "         submission order (nitro's cards promise it; others need not)\n"
    "  scatter  a write and a read whose data descriptors split sectors, checked\n"
    "  check  conformance pass: one ok/FAIL/skip line per check, exit 0 when none failed\n"
    "         (--no-verify: check statuses only, for back ends that drop data)\n"
    "  bench  prints: rw= bs= qd= queues= seconds= ios= iops= p50_us= p99_us= errors=\n"
    "         (--qd is per queue; --poll busy-polls the used rings; fill writes the\n"
    "          whole disk once, in order, and ignores --seconds; zeroes and discard send\n"
    "          WRITE_ZEROES / DISCARD requests of one --bs range each at random offsets)\n"
    "  hostile  malformed descriptor chains, each on a fresh connection; passes when the\n"
    "           back end still serves a new connection afterwards\n"
    "  memholes  a 2 MiB range leaves the card's table (ADD/REM_MEM_REG, as for an enclave):\n"
    "            requests pointing there must fail with IOERR, the rest goes on; then it\n"
    "            comes back and they succeed\n";

int main(int argc, char **argv)
{
	util_set_prog("vu-blk-driver");
	signal(SIGPIPE, SIG_IGN);
	struct drv_opts o = {
	    .queues = 1, .mem = 64ull << 20, .bs = 4096, .qd = 1, .seconds = 5, .sectors = 2048};
	static const struct option longopts[] = {
	    {"socket", required_argument, NULL, 's'},
	    {"queues", required_argument, NULL, 'q'},
	    {"mem", required_argument, NULL, 'm'},
	    {"rw", required_argument, NULL, 'r'},
	    {"bs", required_argument, NULL, 'b'},
	    {"qd", required_argument, NULL, 'd'},
	    {"seconds", required_argument, NULL, 't'},
	    {"poll", no_argument, NULL, 'p'},
	    {"no-verify", no_argument, NULL, 'n'},
	    {"no-seal", no_argument, NULL, 'S'},
	    {"sectors", required_argument, NULL, 'N'},
	    {"zero", no_argument, NULL, 'z'},
	    {"first", required_argument, NULL, 'O'},
	    {"tag", no_argument, NULL, 'T'},
	    {"no-flush", no_argument, NULL, 'F'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.socket = optarg;
			break;
		case 'q':
			if (!parse_u64(optarg, 1, 64, &v))
				die_usage("--queues: expected 1..64, got '%s'", optarg);
			o.queues = (unsigned)v;
			break;
		case 'm':
			if (!parse_u64(optarg, 1, 65536, &v))
				die_usage("--mem: expected MiB in 1..65536, got '%s'", optarg);
			o.mem = v << 20;
			break;
		case 'r':
			if (strcmp(optarg, "randread") && strcmp(optarg, "randwrite") &&
			    strcmp(optarg, "fill") && strcmp(optarg, "zeroes") &&
			    strcmp(optarg, "discard"))
				die_usage("--rw: expected randread, randwrite, fill, zeroes or "
					  "discard, got '%s'",
					  optarg);
			o.fill = !strcmp(optarg, "fill");
			o.zeroes = !strcmp(optarg, "zeroes");
			o.discard = !strcmp(optarg, "discard");
			o.randwrite =
			    o.fill || o.zeroes || o.discard || !strcmp(optarg, "randwrite");
			break;
		case 'b':
			if (!parse_u64(optarg, 512, 1 << 20, &v) || v % 512)
				die_usage("--bs: expected a multiple of 512 up to 1 MiB, got '%s'",
					  optarg);
			o.bs = (uint32_t)v;
			break;
		case 'd':
			if (!parse_u64(optarg, 1, 1024, &v))
				die_usage("--qd: expected 1..1024, got '%s'", optarg);
			o.qd = (unsigned)v;
			break;
		case 't':
			if (!parse_u64(optarg, 1, 3600, &v))
				die_usage("--seconds: expected 1..3600, got '%s'", optarg);
			o.seconds = (unsigned)v;
			break;
		case 'p':
			o.poll = true;
			break;
		case 'n':
			o.no_verify = true;
			break;
		case 'S':
			vu_front_no_seal = true;
			break;
		case 'N':
			if (!parse_u64(optarg, 1, 1ull << 32, &o.sectors))
				die_usage("--sectors: expected 1..2^32, got '%s'", optarg);
			break;
		case 'z':
			o.expect_zero = true;
			break;
		case 'T':
			o.tag = true;
			break;
		case 'O':
			if (!parse_u64(optarg, 0, 1ull << 48, &o.first))
				die_usage("--first: expected a sector 0..2^48, got '%s'", optarg);
			break;
		case 'F':
			o.no_flush = true;
			break;
		case 'h':
			fputs(usage, stdout);
			return 0;
		default:
			fputs(usage, stderr);
			return 2;
		}
	}
	if (optind != argc - 1) {
		fputs(usage, stderr);
		die_usage("expected one subcommand: check, bench or hostile");
	}
	if (!o.socket)
		die_usage("--socket PATH is required");
	const char *cmd = argv[optind];
	if (!strcmp(cmd, "check"))
		return cmd_check(&o);
	if (!strcmp(cmd, "bench"))
		return cmd_bench(&o);
	if (!strcmp(cmd, "hostile"))
		return cmd_hostile(&o);
	if (!strcmp(cmd, "write-flush"))
		return cmd_write_flush(&o);
	if (!strcmp(cmd, "verify"))
		return cmd_verify(&o);
	if (!strcmp(cmd, "scatter"))
		return cmd_scatter(&o);
	if (!strcmp(cmd, "order"))
		return cmd_order(&o);
	if (!strcmp(cmd, "memholes"))
		return cmd_memholes(&o);
	die_usage("unknown subcommand '%s' (check, bench, hostile, write-flush, verify, scatter, "
		  "order, memholes)",
		  cmd);
}
