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
    "vpc=ID,ip=A.B.C.D[/PREFIX][,sg=FILE][,mac=MAC|random][,pps=N][,bandwidth=MBIT]"
    "[,imds=required|optional|disabled]";

/* A.B.C.D[/P] checked against the VPC's reserved addresses (AWS: network, .1 router,
 * .2 DNS, .3 reserved, broadcast). */
static int parse_ip(const char *spec, const char *v, struct launch_nic *n, char *err, size_t errlen)
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
	snprintf(n->ln_ip, sizeof(n->ln_ip), "%s/%u", a, (unsigned)prefix);
	return 0;
}

int nic_parse(const char *spec, struct launch_nic *n, char *err, size_t errlen)
{
	launch_nic_init(n);
	char buf[PATH_MAX];
	if (strlen(spec) >= sizeof(buf))
		RETURN_ERR(2, "--nic: value too long");
	if (!*spec)
		RETURN_ERR(2, "--nic: empty value (%s)", nic_usage);
	snprintf(buf, sizeof(buf), "%s", spec);
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
			n->ln_vpc = (uint32_t)x;
		} else if (!strcmp(k, "ip")) {
			int r = parse_ip(spec, v, n, err, errlen);
			if (r)
				return r;
		} else if (!strcmp(k, "sg")) {
			if (!*v)
				RETURN_ERR(2, "--nic %s: sg= needs a file", spec);
			snprintf(n->ln_sg, sizeof(n->ln_sg), "%s", v);
		} else if (!strcmp(k, "mac") && !strcmp(v, "random")) {
			/* locally administered unicast: 02 + 5 random bytes */
			if (getrandom(mac, sizeof(mac), 0) != (ssize_t)sizeof(mac))
				RETURN_ERR(1, "--nic %s: mac=random: getrandom: %s", spec,
					   strerror(errno));
			mac[0] = 0x02;
			snprintf(n->ln_mac, sizeof(n->ln_mac), "%02x:%02x:%02x:%02x:%02x:%02x",
				 mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
		} else if (!strcmp(k, "mac")) {
			if (!map_parse_mac(v, mac))
				RETURN_ERR(2,
					   "--nic %s: mac=%s: expected a unicast xx:xx:xx:xx:xx:xx",
					   spec, v);
			snprintf(n->ln_mac, sizeof(n->ln_mac), "%s", v);
		} else if (!strcmp(k, "pps")) {
			if (!parse_u64(v, 0, LAUNCH_MAX_PPS, &x))
				RETURN_ERR(2, "--nic %s: pps=%s: expected 0 to %u", spec, v,
					   LAUNCH_MAX_PPS);
			n->ln_pps = (int64_t)x;
		} else if (!strcmp(k, "imds")) {
			if (strcmp(v, "required") && strcmp(v, "optional") && strcmp(v, "disabled"))
				RETURN_ERR(2,
					   "--nic %s: imds=%s: expected required, optional or "
					   "disabled",
					   spec, v);
			snprintf(n->ln_imds, sizeof(n->ln_imds), "%s", v);
		} else if (!strcmp(k, "bandwidth")) {
			if (!parse_u64(v, 0, LAUNCH_MAX_BANDWIDTH_MBIT, &x))
				RETURN_ERR(2, "--nic %s: bandwidth=%s: expected Mbit/s 0 to %u",
					   spec, v, LAUNCH_MAX_BANDWIDTH_MBIT);
			n->ln_bandwidth_mbit = (int64_t)x;
		} else {
			RETURN_ERR(2, "--nic %s: unknown key %s (%s)", spec, k, nic_usage);
		}
	}
	if (!n->ln_vpc || !n->ln_ip[0])
		RETURN_ERR(2, "--nic %s: vpc= and ip= are required (%s)", spec, nic_usage);
	if (n->ln_sg[0] && access(n->ln_sg, R_OK) != 0)
		RETURN_ERR(1, "--nic %s: security group file %s: %s", spec, n->ln_sg,
			   strerror(errno));
	return 0;
}

bool nic_arg(int argc, char **argv, int *i, struct launch_spec *s, struct launch_env *e)
{
	const char *a = argv[*i];
	if (strcmp(a, "--nic") && strcmp(a, "--underlay") && strcmp(a, "--map") &&
	    strcmp(a, "--user-data") && strcmp(a, "--ssh-key") && strcmp(a, "--region"))
		return false;
	if (*i + 1 >= argc)
		die_usage("run: %s: missing value (see `nitro run --help`)", a);
	const char *v = argv[++*i];
	char err[PATH_MAX + 256];
	if (!strcmp(a, "--nic")) {
		if (s->ls_nnics == LAUNCH_MAX_NICS)
			die_usage("run: --nic: at most %u interfaces", LAUNCH_MAX_NICS);
		struct launch_nic *n = &s->ls_nics[s->ls_nnics];
		int r = nic_parse(v, n, err, sizeof(err));
		if (r)
			r == 2 ? die_usage("run: %s", err) : die("run: %s", err);
		if (vpc_apply(n, err, sizeof(err)) < 0)
			die("run: %s", err);
		for (unsigned j = 0; j < s->ls_nnics; j++)
			if (s->ls_nics[j].ln_vpc == n->ln_vpc &&
			    !strcmp(s->ls_nics[j].ln_ip, n->ln_ip))
				die_usage("run: --nic %s: the same VPC address twice", v);
		s->ls_nnics++;
	} else if (!strcmp(a, "--region")) {
		if (!launch_region_ok(v))
			die_usage("run: --region %.40s: expected a name like eu-west-1 (1 to %d of "
				  "a-z, 0-9 and '-')",
				  v, LAUNCH_REGION_MAX);
		snprintf(s->ls_region, sizeof(s->ls_region), "%s", v);
	} else if (!strcmp(a, "--user-data") || !strcmp(a, "--ssh-key")) {
		/* read by the cards (opened once there); checked here for a clear message */
		if (access(v, R_OK) != 0)
			die("run: %s %s: %s", a, v, strerror(errno));
		char *dst = !strcmp(a, "--user-data") ? s->ls_user_data : s->ls_ssh_key;
		if (strlen(v) >= PATH_MAX)
			die_usage("run: %s: path too long", a);
		snprintf(dst, PATH_MAX, "%s", v);
	} else if (!strcmp(a, "--underlay")) {
		struct sockaddr_in sa;
		if (ul_parse_addr(v, &sa, err, sizeof(err)))
			die_usage("run: --underlay: %s", err);
		if (strlen(v) >= sizeof(e->le_underlay))
			die_usage("run: --underlay: %s: too long", v);
		snprintf(e->le_underlay, sizeof(e->le_underlay), "%s", v);
	} else {
		if (!*v)
			die_usage("run: --map: empty path");
		if (strlen(v) >= sizeof(e->le_vpc_map))
			die_usage("run: --map: path too long");
		snprintf(e->le_vpc_map, sizeof(e->le_vpc_map), "%s", v);
	}
	return true;
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
