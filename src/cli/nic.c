/* nitro run --nic (one nitro-card-vpc per interface) and nitro net stats. */
#include "cli/nic.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util.h"
#include "vpcmap/mapsvc.h"
#include "vpcmap/underlay.h"

static const char nic_usage[] =
    "vpc=ID,ip=A.B.C.D[/PREFIX][,sg=FILE][,mac=MAC|random][,pps=N][,bandwidth=MBIT]";

/* A.B.C.D[/P] checked against the VPC's reserved addresses (AWS: network, .1 router,
 * .2 DNS, .3 reserved, broadcast). */
static int parse_ip(const char *spec, const char *v, struct run_nic *n, char *err, size_t errlen)
{
	char a[32];
	uint64_t prefix = 24;
	const char *slash = strchr(v, '/');
	size_t l = slash ? (size_t)(slash - v) : strlen(v);
	if (l == 0 || l >= sizeof(a))
		RETURN_ERR(2, "--nic %s: ip=%s: expected A.B.C.D[/PREFIX]", spec, v);
	memcpy(a, v, l);
	a[l] = 0;
	struct in_addr in;
	if (inet_pton(AF_INET, a, &in) != 1)
		RETURN_ERR(2, "--nic %s: ip=%s: %s is not an IPv4 address", spec, v, a);
	if (slash && !parse_u64(slash + 1, 16, 28, &prefix))
		RETURN_ERR(2, "--nic %s: ip=%s: the prefix must be 16 to 28 (as a VPC subnet)",
			   spec, v);
	uint32_t ip = ntohl(in.s_addr), mask = ~0u << (32 - prefix), host = ip & ~mask;
	const char *why = host == 0	  ? "the network address"
			  : host == 1	  ? "the VPC router's address"
			  : host == 2	  ? "the VPC DNS server's address"
			  : host == 3	  ? "reserved"
			  : host == ~mask ? "the broadcast address"
					  : NULL;
	if (why)
		RETURN_ERR(2, "--nic %s: ip=%s: %s is %s in its /%u subnet", spec, v, a, why,
			   (unsigned)prefix);
	uint8_t f = (uint8_t)(ip >> 24);
	if (f == 0 || f == 127 || f >= 224)
		RETURN_ERR(2, "--nic %s: ip=%s: not a unicast private address", spec, v);
	snprintf(n->rn_ip, sizeof(n->rn_ip), "%s/%u", a, (unsigned)prefix);
	return 0;
}

int nic_parse(const char *spec, struct run_nic *n, char *err, size_t errlen)
{
	memset(n, 0, sizeof(*n));
	if (strlen(spec) >= sizeof(n->rn_spec))
		RETURN_ERR(2, "--nic: value too long");
	if (!*spec)
		RETURN_ERR(2, "--nic: empty value (%s)", nic_usage);
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", spec);
	snprintf(n->rn_spec, sizeof(n->rn_spec), "%s", spec);
	char *rest = buf, *tok;
	while ((tok = strsep(&rest, ","))) {
		char *eq = strchr(tok, '=');
		if (!eq || eq == tok)
			RETURN_ERR(2, "--nic %s: '%s': expected key=value (%s)", spec, tok,
				   nic_usage);
		*eq = 0;
		const char *k = tok, *v = eq + 1;
		uint64_t x;
		uint8_t mac[6];
		if (!strcmp(k, "vpc")) {
			if (!parse_u64(v, 1, MAP_VPC_MAX, &x))
				RETURN_ERR(2, "--nic %s: vpc=%s: expected a number 1 to %u", spec,
					   v, MAP_VPC_MAX);
			n->rn_vpc = (uint32_t)x;
			snprintf(n->rn_vpc_s, sizeof(n->rn_vpc_s), "%u", n->rn_vpc);
		} else if (!strcmp(k, "ip")) {
			int r = parse_ip(spec, v, n, err, errlen);
			if (r)
				return r;
		} else if (!strcmp(k, "sg")) {
			if (!*v)
				RETURN_ERR(2, "--nic %s: sg= needs a file", spec);
			snprintf(n->rn_sg, sizeof(n->rn_sg), "%s", v);
		} else if (!strcmp(k, "mac") && !strcmp(v, "random")) {
			/* locally administered unicast: 02 + 5 random bytes */
			if (getrandom(mac, sizeof(mac), 0) != (ssize_t)sizeof(mac))
				RETURN_ERR(1, "--nic %s: mac=random: getrandom: %s", spec,
					   strerror(errno));
			mac[0] = 0x02;
			snprintf(n->rn_mac, sizeof(n->rn_mac), "%02x:%02x:%02x:%02x:%02x:%02x",
				 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		} else if (!strcmp(k, "mac")) {
			if (!map_parse_mac(v, mac))
				RETURN_ERR(2,
					   "--nic %s: mac=%s: expected a unicast xx:xx:xx:xx:xx:xx",
					   spec, v);
			snprintf(n->rn_mac, sizeof(n->rn_mac), "%s", v);
		} else if (!strcmp(k, "pps")) {
			if (!parse_u64(v, 0, 100000000, &x))
				RETURN_ERR(2, "--nic %s: pps=%s: expected 0 to 100000000", spec, v);
			snprintf(n->rn_pps, sizeof(n->rn_pps), "%llu", (unsigned long long)x);
		} else if (!strcmp(k, "bandwidth")) {
			if (!parse_u64(v, 0, 400000, &x))
				RETURN_ERR(2, "--nic %s: bandwidth=%s: expected Mbit/s 0 to 400000",
					   spec, v);
			snprintf(n->rn_bw, sizeof(n->rn_bw), "%llu", (unsigned long long)x);
		} else {
			RETURN_ERR(2, "--nic %s: unknown key %s (%s)", spec, k, nic_usage);
		}
	}
	if (!n->rn_vpc || !n->rn_ip[0])
		RETURN_ERR(2, "--nic %s: vpc= and ip= are required (%s)", spec, nic_usage);
	if (n->rn_sg[0] && access(n->rn_sg, R_OK) != 0)
		RETURN_ERR(1, "--nic %s: security group file %s: %s", spec, n->rn_sg,
			   strerror(errno));
	return 0;
}

bool nic_arg(int argc, char **argv, int *i, struct run_nics *ns)
{
	const char *a = argv[*i];
	if (strcmp(a, "--nic") && strcmp(a, "--underlay") && strcmp(a, "--map"))
		return false;
	if (*i + 1 >= argc)
		die_usage("run: %s: missing value (see `nitro run --help`)", a);
	const char *v = argv[++*i];
	char err[PATH_MAX + 256];
	if (!strcmp(a, "--nic")) {
		if (ns->n_count == RUN_MAX_NICS)
			die_usage("run: --nic: at most %u interfaces", RUN_MAX_NICS);
		int r = nic_parse(v, &ns->n_nic[ns->n_count], err, sizeof(err));
		if (r)
			r == 2 ? die_usage("run: %s", err) : die("run: %s", err);
		for (unsigned j = 0; j < ns->n_count; j++)
			if (ns->n_nic[j].rn_vpc == ns->n_nic[ns->n_count].rn_vpc &&
			    !strcmp(ns->n_nic[j].rn_ip, ns->n_nic[ns->n_count].rn_ip))
				die_usage("run: --nic %s: the same VPC address twice", v);
		ns->n_count++;
	} else if (!strcmp(a, "--underlay")) {
		struct sockaddr_in sa;
		if (ul_parse_addr(v, &sa, err, sizeof(err)))
			die_usage("run: --underlay: %s", err);
		ns->n_underlay = v;
	} else {
		if (!*v)
			die_usage("run: --map: empty path");
		ns->n_map = v;
	}
	return true;
}

static struct run_nics *started;

int nics_start(struct run_nics *ns, char **hvargs, int k)
{
	if (!ns->n_count)
		return k;
	if (getenv("NITRO_EMULATED_HOST") && !ns->n_underlay)
		loopback_up("run: ");
	const char *rt = getenv("XDG_RUNTIME_DIR");
	snprintf(ns->n_dir, sizeof(ns->n_dir), "%s/nitro-net-XXXXXX", rt && *rt ? rt : "/tmp");
	if (!mkdtemp(ns->n_dir))
		die("run: cannot create a folder for the network card sockets in %s: %s",
		    rt && *rt ? rt : "/tmp", strerror(errno));
	static char card[PATH_MAX], args[RUN_MAX_NICS][PATH_MAX + 48];
	exe_sibling("nitro-card-vpc", card, sizeof(card));
	started = ns;
	for (unsigned i = 0; i < ns->n_count; i++) {
		struct run_nic *n = &ns->n_nic[i];
		snprintf(n->rn_socket, sizeof(n->rn_socket), "%s/nic%u.sock", ns->n_dir, i);
		snprintf(n->rn_ctl, sizeof(n->rn_ctl), "%s/nic%u.ctl", ns->n_dir, i);
		char *argv[32];
		int a = 0;
		argv[a++] = card;
		argv[a++] = "--socket-path";
		argv[a++] = n->rn_socket;
		argv[a++] = "--ctl";
		argv[a++] = n->rn_ctl;
		argv[a++] = "--vpc";
		argv[a++] = n->rn_vpc_s;
		argv[a++] = "--ip";
		argv[a++] = n->rn_ip;
		/* As EC2: one queue pair per vCPU, up to what the device can carry. */
		static char pairs[16];
		snprintf(pairs, sizeof(pairs), "%u",
			 ns->n_cpus < 1		      ? 1
			 : ns->n_cpus > RUN_MAX_PAIRS ? RUN_MAX_PAIRS
						      : ns->n_cpus);
		argv[a++] = "--queue-pairs";
		argv[a++] = pairs;
		const char *opt[][2] = {{"--mac", n->rn_mac},
					{"--sg", n->rn_sg},
					{"--pps", n->rn_pps},
					{"--bandwidth", n->rn_bw},
					{"--underlay", ns->n_underlay ? ns->n_underlay : ""},
					{"--map", ns->n_map ? ns->n_map : ""}};
		for (size_t j = 0; j < ARRAY_SIZE(opt); j++)
			if (opt[j][1][0]) {
				argv[a++] = (char *)opt[j][0];
				argv[a++] = (char *)opt[j][1];
			}
		argv[a] = NULL;
		if (!card_spawn(card, argv, n->rn_socket, &n->rn_pid)) {
			nics_stop();
			die("run: the card for --nic %s did not start (see above)", n->rn_spec);
		}
		snprintf(args[i], sizeof(args[i]), "net,%s", n->rn_socket);
		hvargs[k++] = "--vhost-user";
		hvargs[k++] = args[i];
	}
	return k;
}

void nics_stop(void)
{
	struct run_nics *ns = started;
	if (!ns)
		return;
	started = NULL;
	for (unsigned i = 0; i < ns->n_count; i++)
		if (ns->n_nic[i].rn_pid > 0)
			kill(ns->n_nic[i].rn_pid, SIGTERM);
	for (unsigned i = 0; i < ns->n_count; i++)
		if (ns->n_nic[i].rn_pid > 0) {
			while (waitpid(ns->n_nic[i].rn_pid, NULL, 0) < 0 && errno == EINTR)
				;
			unlink(ns->n_nic[i].rn_socket);
			unlink(ns->n_nic[i].rn_ctl);
		}
	rmdir(ns->n_dir);
}

/* ---- nitro net stats ---- */

struct stats_walk {
	unsigned sw_found;
	char sw_host[64];
	uint32_t sw_vpc; /* 0: all */
};

static void show_one(const struct map_entry *e, void *arg)
{
	struct stats_walk *w = arg;
	if (!e->me_ctl[0] || strcmp(e->me_host, w->sw_host) ||
	    (w->sw_vpc && e->me_vpc != w->sw_vpc))
		return;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", e->me_ctl);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return;
	struct timeval tv = {.tv_sec = 2};
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	char buf[4096];
	size_t got = 0;
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		ssize_t r;
		while (got < sizeof(buf) - 1 && (r = read(s, buf + got, sizeof(buf) - 1 - got)) > 0)
			got += (size_t)r;
	}
	close(s);
	buf[got] = 0;
	char *nl = strchr(buf, '\n');
	if (nl)
		*nl = 0;
	if (!got || !nl) /* a stale record (the card is gone) or a card that did not answer */
		return;
	char rec[MAP_LINE_MAX];
	struct map_entry shown = *e;
	shown.me_ctl[0] = 0;
	shown.me_host[0] = 0;
	if (map_format(&shown, rec, sizeof(rec)) < 0)
		return;
	rec[strcspn(rec, "\n")] = 0;
	printf("%s %s\n", rec, buf);
	w->sw_found++;
}

int cmd_net(int argc, char **argv)
{
	static const char usage[] = "usage: nitro net stats [--map PATH] [--vpc ID]";
	if (argc < 1 || strcmp(argv[0], "stats"))
		die_usage("net: %s (%s)", argc < 1 ? "missing subcommand" : "unknown subcommand",
			  usage);
	char path[PATH_MAX], err[PATH_MAX + 128];
	struct stats_walk w = {0};
	map_default_path(path, sizeof(path));
	for (int i = 1; i < argc; i++) {
		uint64_t v;
		if (!strcmp(argv[i], "--map") && i + 1 < argc) {
			snprintf(path, sizeof(path), "%s", argv[++i]);
		} else if (!strcmp(argv[i], "--vpc") && i + 1 < argc) {
			if (!parse_u64(argv[++i], 1, MAP_VPC_MAX, &v))
				die_usage("net stats: --vpc %s: expected 1 to %u", argv[i],
					  MAP_VPC_MAX);
			w.sw_vpc = (uint32_t)v;
		} else {
			die_usage("net stats: %s: unknown option (%s)", argv[i], usage);
		}
	}
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "nitro: net stats: no interfaces (%s: %s)\n", path,
			strerror(errno));
		return 0;
	}
	static struct mapsvc m;
	if (mapsvc_open(&m, path, err, sizeof(err)))
		die("net stats: %s", err);
	gethostname(w.sw_host, sizeof(w.sw_host) - 1);
	mapsvc_each(&m, show_one, &w);
	mapsvc_close(&m);
	if (!w.sw_found)
		fprintf(stderr, "nitro: net stats: no running interfaces in %s\n", path);
	return 0;
}
