/* nitro vpc create|list|delete: the VPC records of this host (issue 15 item 5).
 *
 * A VPC needs no record: `--nic vpc=ID,...` works without one, the subnet standing for
 * the VPC, no internet gateway (as before). A record, $NITRO_STATE/vpcs/ID, one line
 * "vpc=ID cidr=A.B.C.D/P igw=0|1", names the VPC's CIDR (every interface's subnet must lie
 * in it; its addresses never go to the gateway) and whether it has an internet gateway:
 * `nitro run` then starts a nitro-vpc-igw NAT beside each of the VPC's cards (docs/vpc.md).
 * Records are written atomically (temporary file + rename) and parsed strictly.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/nic.h"
#include "lib/util.h"
#include "vpcmap/mapsvc.h"

static const char vpc_usage[] = "usage: nitro vpc create ID --cidr A.B.C.D/P [--internet-gateway]\n"
				"       nitro vpc list\n"
				"       nitro vpc delete ID\n";

static void vpcs_dir(char *out, size_t len)
{
	const char *st = getenv("NITRO_STATE"), *home = getenv("HOME");
	if (st && *st)
		snprintf(out, len, "%s/vpcs", st);
	else
		snprintf(out, len, "%s/.local/state/nitro/vpcs", home && *home ? home : "/root");
}

/* "A.B.C.D/P" with P in lo..hi and no host bits -> net (host order), prefix. */
static bool parse_cidr(const char *s, unsigned lo, unsigned hi, uint32_t *net, unsigned *prefix)
{
	return launch_cidr_parse(s, lo, hi, false, net, prefix);
}

struct vpc_rec {
	uint32_t vr_id;
	char vr_cidr[24];
	bool vr_igw;
};

/* 1 with *r filled, 0 when there is no record, -1 (err) when it is bad. */
static int rec_read(uint32_t id, struct vpc_rec *r, char *err, size_t errlen)
{
	char dir[PATH_MAX], path[PATH_MAX + 16], line[128];
	vpcs_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/%u", dir, id);
	FILE *f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return 0;
		RETURN_ERR(-1, "VPC record %s: %s", path, strerror(errno));
	}
	bool ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	char cidr[24];
	unsigned long long v;
	int igw, end = 0;
	uint32_t net;
	unsigned p;
	if (!ok || sscanf(line, "vpc=%llu cidr=%19s igw=%d%n", &v, cidr, &igw, &end) != 3 ||
	    (line[end] != '\n' && line[end]) || v != id || (igw != 0 && igw != 1) ||
	    !parse_cidr(cidr, LAUNCH_VPC_PREFIX_MIN, LAUNCH_VPC_PREFIX_MAX, &net, &p))
		RETURN_ERR(-1, "VPC record %s: malformed (expected vpc=ID cidr=A.B.C.D/P igw=0|1)",
			   path);
	r->vr_id = id;
	snprintf(r->vr_cidr, sizeof(r->vr_cidr), "%s", cidr);
	r->vr_igw = igw;
	return 1;
}

int vpc_apply(struct launch_nic *n, char *err, size_t errlen)
{
	struct vpc_rec r;
	int got = rec_read(n->ln_vpc, &r, err, errlen);
	if (got <= 0)
		return got;
	if (!launch_subnet_in(n->ln_ip, r.vr_cidr))
		RETURN_ERR(-1, "--nic %s: the subnet is not inside VPC %u's CIDR %s", n->ln_ip,
			   n->ln_vpc, r.vr_cidr);
	snprintf(n->ln_vpc_cidr, sizeof(n->ln_vpc_cidr), "%s", r.vr_cidr);
	n->ln_igw = r.vr_igw;
	return 1;
}

static int vpc_create(int argc, char **argv)
{
	uint64_t id = 0;
	const char *cidr = NULL;
	bool igw = false;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--cidr") && i + 1 < argc)
			cidr = argv[++i];
		else if (!strcmp(argv[i], "--internet-gateway"))
			igw = true;
		else if (!id && parse_u64(argv[i], 1, MAP_VPC_MAX, &id))
			continue;
		else
			die_usage("vpc create: unexpected %s (see `nitro vpc --help`)", argv[i]);
	}
	uint32_t net;
	unsigned p;
	if (!id || !cidr)
		die_usage("vpc create: ID (1..%u) and --cidr are required", MAP_VPC_MAX);
	if (!parse_cidr(cidr, LAUNCH_VPC_PREFIX_MIN, LAUNCH_VPC_PREFIX_MAX, &net, &p))
		die_usage("vpc create: --cidr %s: expected A.B.C.D/16..28 with no host bits", cidr);
	(void)net;
	(void)p;
	char dir[PATH_MAX], path[PATH_MAX + 16], tmp[PATH_MAX + 32];
	vpcs_dir(dir, sizeof(dir));
	for (char *c = dir + 1; *c; c++) /* the state folder and its parents */
		if (*c == '/') {
			*c = 0;
			mkdir(dir, 0700);
			*c = '/';
		}
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		die("vpc create: %s: %s", dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/%u", dir, (unsigned)id);
	if (access(path, F_OK) == 0)
		die("vpc create: VPC %u exists (nitro vpc delete %u first)", (unsigned)id,
		    (unsigned)id);
	snprintf(tmp, sizeof(tmp), "%s/.%u.tmp", dir, (unsigned)id);
	FILE *f = fopen(tmp, "we");
	if (!f || fprintf(f, "vpc=%u cidr=%s igw=%d\n", (unsigned)id, cidr, igw) < 0 ||
	    fclose(f) != 0 || rename(tmp, path) < 0)
		die("vpc create: %s: %s", path, strerror(errno));
	printf("vpc=%u cidr=%s igw=%d\n", (unsigned)id, cidr, igw);
	return 0;
}

int cmd_vpc(int argc, char **argv)
{
	char err[PATH_MAX + 128], dir[PATH_MAX];
	uint64_t id;
	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		fputs(vpc_usage, argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	if (!strcmp(argv[0], "create"))
		return vpc_create(argc - 1, argv + 1);
	if (!strcmp(argv[0], "delete")) {
		if (argc != 2 || !parse_u64(argv[1], 1, MAP_VPC_MAX, &id))
			die_usage("vpc delete: expected one ID 1..%u", MAP_VPC_MAX);
		char path[PATH_MAX + 16];
		vpcs_dir(dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/%u", dir, (unsigned)id);
		if (unlink(path) < 0)
			die("vpc delete: %u: %s", (unsigned)id, strerror(errno));
		return 0;
	}
	if (!strcmp(argv[0], "list") && argc == 1) {
		vpcs_dir(dir, sizeof(dir));
		DIR *d = opendir(dir);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			struct vpc_rec r;
			if (!parse_u64(de->d_name, 1, MAP_VPC_MAX, &id))
				continue;
			int got = rec_read((uint32_t)id, &r, err, sizeof(err));
			if (got < 0)
				warnmsg("%s", err);
			else if (got)
				printf("vpc=%u cidr=%s igw=%d\n", r.vr_id, r.vr_cidr, r.vr_igw);
		}
		if (d)
			closedir(d);
		return 0;
	}
	die_usage("vpc: unknown subcommand %s (create, list, delete)", argv[0]);
}
