/* cmocka tests of the launch plan (src/launch/launch.c): the processes a launch_spec on a
 * launch_env turns into, their order, argv, kept fds, paths and environment, and that
 * every QoS and allowance field of a volume or NIC reaches its card's argv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "launch/launch.h"
#include "launch/resolver.h"

static struct launch_plan plan;

static void env_init(struct launch_env *e)
{
	memset(e, 0, sizeof(*e));
	snprintf(e->le_bin_dir, sizeof(e->le_bin_dir), "/opt/nitro");
	snprintf(e->le_run_dir, sizeof(e->le_run_dir), "/run/i-1");
}

static void spec_init(struct launch_spec *s)
{
	launch_spec_init(s);
	snprintf(s->ls_kernel, sizeof(s->ls_kernel), "/img/vmlinuz");
	snprintf(s->ls_cmdline, sizeof(s->ls_cmdline), "console=ttyS0");
}

/* A spec and env as every test starts from. */
static void fresh(struct launch_spec *s, struct launch_env *e)
{
	spec_init(s);
	env_init(e);
}

/* The plan of s on e, into plan; it must succeed. */
static void plan_ok(const struct launch_spec *s, const struct launch_env *e)
{
	char err[256];
	int rc = launch_plan(s, e, &plan, err, sizeof(err));
	if (rc)
		print_error("launch_plan: %s\n", err);
	assert_int_equal(rc, 0);
}

/* NIC i, in VPC vpc with address ip. */
static void nic(struct launch_spec *s, unsigned i, uint32_t vpc, const char *ip)
{
	launch_nic_init(&s->ls_nics[i]);
	s->ls_nics[i].ln_vpc = vpc;
	snprintf(s->ls_nics[i].ln_ip, sizeof(s->ls_nics[i].ln_ip), "%s", ip);
}

/* NitroTPM on, its state in /var/i-1/tpm. */
static void tpm(struct launch_spec *s)
{
	s->ls_tpm = true;
	snprintf(s->ls_tpm_state, sizeof(s->ls_tpm_state), "/var/i-1/tpm");
}

/* argv as one string: "a b c" */
static const char *joined(const struct launch_proc *p)
{
	static char buf[8192];
	buf[0] = 0;
	for (unsigned i = 0; i < p->lp_argc; i++)
		snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", i ? " " : "",
			 p->lp_argv[i]);
	assert_null(p->lp_argv[p->lp_argc]);
	return buf;
}

static void test_no_devices_is_only_the_hypervisor(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	fresh(&s, &e);
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_nprocs, 1);
	assert_int_equal(plan.pl_ncards, 0);
	const struct launch_proc *hv = launch_plan_hv(&plan);
	assert_int_equal(hv->lp_kind, LAUNCH_HV);
	assert_string_equal(joined(hv), "/opt/nitro/nitro-hv --kernel /img/vmlinuz --cmdline "
					"console=ttyS0 --cpus 1 --memory 256");
	assert_string_equal(hv->lp_exe, "/opt/nitro/nitro-hv");
	assert_null(hv->lp_socket);
	assert_int_equal(launch_proc_fd(hv, LAUNCH_FD_CONSOLE_IN, 0), 0);
	assert_int_equal(launch_proc_fd(hv, LAUNCH_FD_CONSOLE_OUT, 0), 1);
	assert_int_equal(launch_proc_fd(hv, LAUNCH_FD_LOG, 0), 2);
	/* Without cards the run folder is no concern of nitro-hv's. */
	for (unsigned i = 0; i < hv->lp_npaths; i++)
		assert_string_not_equal(hv->lp_paths[i].lpa_path, "/run/i-1");
}

static void full_spec(struct launch_spec *s, struct launch_env *e)
{
	fresh(s, e);
	snprintf(s->ls_initrd, sizeof(s->ls_initrd), "/img/guest.img");
	s->ls_cpus = 9;
	s->ls_mem_mib = 1024;
	s->ls_require_kvm = true;
	s->ls_console_max = 65536;
	snprintf(e->le_kernel_cache, sizeof(e->le_kernel_cache), "/var/kcache");
	snprintf(e->le_card_state, sizeof(e->le_card_state), "/run/i-1-key");
	snprintf(e->le_vpc_map, sizeof(e->le_vpc_map), "/var/vpc-map");
	s->ls_nvols = 2;
	launch_volume_init(&s->ls_vols[0]);
	snprintf(s->ls_vols[0].lv_path, PATH_MAX, "/vol/a.vol");
	s->ls_vols[0].lv_file = true;
	s->ls_vols[0].lv_iops = 500;
	s->ls_vols[0].lv_throughput_mib = 40;
	launch_volume_init(&s->ls_vols[1]);
	snprintf(s->ls_vols[1].lv_path, PATH_MAX, "nbd://h:1/x");
	snprintf(s->ls_vols[1].lv_header, PATH_MAX, "/vol/hdr.vol");
	s->ls_vols[1].lv_gp2 = true;
	s->ls_vols[1].lv_readonly = true;
	s->ls_nnics = 2;
	nic(s, 0, 7, "10.0.0.5/24");
	nic(s, 1, 8, "10.1.0.5/16");
	snprintf(s->ls_nics[1].ln_mac, sizeof(s->ls_nics[1].ln_mac), "02:00:00:00:00:01");
	snprintf(s->ls_nics[1].ln_sg, sizeof(s->ls_nics[1].ln_sg), "/sg/web");
	s->ls_nics[1].ln_pps = 1000;
	s->ls_nics[1].ln_bandwidth_mbit = 0;
}

static bool has_path(const struct launch_proc *p, const char *path, unsigned flags)
{
	for (unsigned i = 0; i < p->lp_npaths; i++)
		if (!strcmp(p->lp_paths[i].lpa_path, path))
			return p->lp_paths[i].lpa_flags == flags;
	return false;
}

static void test_cards_first_then_the_hypervisor(void **state)
{
	(void)state;
	static struct launch_spec s;
	struct launch_env e;
	full_spec(&s, &e);
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_nprocs, 5);
	assert_int_equal(plan.pl_ncards, 4);
	const struct launch_proc *c0 = launch_plan_card(&plan, 0), *c1 = launch_plan_card(&plan, 1),
				 *c2 = launch_plan_card(&plan, 2), *c3 = launch_plan_card(&plan, 3);
	assert_null(launch_plan_card(&plan, 4));
	assert_int_equal(c0->lp_kind, LAUNCH_CARD_EBS);
	assert_int_equal(c1->lp_kind, LAUNCH_CARD_EBS);
	assert_int_equal(c2->lp_kind, LAUNCH_CARD_VPC);
	assert_int_equal(c3->lp_kind, LAUNCH_CARD_VPC);
	assert_int_equal(c2->lp_item, 0);
	assert_int_equal(c3->lp_item, 1);
	assert_int_equal(c3->lp_card, 3);
	assert_string_equal(joined(c0), "/opt/nitro/nitro-card-ebs --socket-path /run/i-1/c0.sock "
					"--ctl /run/i-1/c0.sock.ctl --iops 500 --throughput 40 "
					"/vol/a.vol");
	assert_string_equal(joined(c1), "/opt/nitro/nitro-card-ebs --socket-path /run/i-1/c1.sock "
					"--ctl /run/i-1/c1.sock.ctl --gp2 --readonly --header "
					"/vol/hdr.vol nbd://h:1/x");
	assert_string_equal(joined(c2),
			    "/opt/nitro/nitro-card-vpc --socket-path /run/i-1/c2.sock --ctl "
			    "/run/i-1/c2.sock.ctl --vpc 7 --ip 10.0.0.5/24 --queue-pairs 7 --map "
			    "/var/vpc-map --instance-type t3.micro");
	assert_string_equal(joined(c3),
			    "/opt/nitro/nitro-card-vpc --socket-path /run/i-1/c3.sock --ctl "
			    "/run/i-1/c3.sock.ctl --vpc 8 --ip 10.1.0.5/16 --queue-pairs 7 --mac "
			    "02:00:00:00:00:01 --sg /sg/web --pps 1000 --bandwidth 0 --map "
			    "/var/vpc-map --instance-type t3.micro");
	assert_string_equal(c2->lp_ctl, "/run/i-1/c2.sock.ctl");
	assert_string_equal(c0->lp_ctl, "/run/i-1/c0.sock.ctl"); /* snapshots pause it */
	assert_string_equal(c0->lp_vhost, "blk");
	assert_string_equal(c2->lp_vhost, "net");
	assert_string_equal(c0->lp_profile, "card-ebs");
	assert_string_equal(c2->lp_profile, "card-vpc");
	assert_int_equal(c0->lp_flags, 0);
	assert_int_equal(c2->lp_flags, LAUNCH_HOST_NET);
	/* What a jail binds: the run folder and a volume file writable, a read-only volume's
	 * header read-only, no path for an NBD export; the key folder. */
	assert_true(has_path(c0, "/run/i-1", LAUNCH_PATH_RW));
	assert_true(has_path(c0, "/vol/a.vol", LAUNCH_PATH_RW));
	assert_true(has_path(c0, "/run/i-1-key", 0));
	assert_true(has_path(c1, "/vol/hdr.vol", 0));
	assert_false(has_path(c1, "nbd://h:1/x", 0) || has_path(c1, "nbd://h:1/x", LAUNCH_PATH_RW));
	assert_true(has_path(c3, "/sg/web", 0));
	assert_true(has_path(c3, "/var/vpc-map", LAUNCH_PATH_RW));
	assert_int_equal(c0->lp_nenv, 1);
	assert_string_equal(c0->lp_env[0], "NITRO_STATE=/run/i-1-key");
	assert_int_equal(c2->lp_nenv, 0);
	/* Cards log on 1 and 2 and have no console. */
	assert_int_equal(c0->lp_nfds, 2);
	assert_int_equal(c0->lp_fds[0].lf_fd, 1);
	assert_int_equal(c0->lp_fds[0].lf_role, LAUNCH_FD_LOG);
	assert_int_equal(c0->lp_fds[1].lf_fd, 2);
	assert_int_equal(c0->lp_fds[1].lf_role, LAUNCH_FD_LOG);
	assert_int_equal(launch_proc_fd(c0, LAUNCH_FD_CONSOLE_IN, 0), -1);
	const struct launch_proc *hv = launch_plan_hv(&plan);
	assert_ptr_equal(hv, &plan.pl_procs[4]);
	assert_string_equal(
	    joined(hv),
	    "/opt/nitro/nitro-hv --kernel /img/vmlinuz --initrd /img/guest.img --cmdline "
	    "console=ttyS0 --cpus 9 --memory 1024 --console-max 65536 --require-kvm --cache-dir "
	    "/var/kcache "
	    "--vhost-user blk,/run/i-1/c0.sock --vhost-user blk,/run/i-1/c1.sock --vhost-user "
	    "net,/run/i-1/c2.sock --vhost-user net,/run/i-1/c3.sock");
	assert_true(has_path(hv, "/dev/kvm", LAUNCH_PATH_RW | LAUNCH_PATH_DEV));
	assert_true(has_path(hv, "/img/vmlinuz", 0));
	assert_true(has_path(hv, "/img/guest.img", 0));
	assert_true(has_path(hv, "/var/kcache", 0));
	assert_true(has_path(hv, "/run/i-1", LAUNCH_PATH_RW));
}

/* Each QoS/allowance field alone changes its card's argv by exactly its flag: a field
 * the plan dropped would fail here. */
static void test_every_qos_field_reaches_the_card(void **state)
{
	(void)state;
	static struct launch_spec s;
	struct launch_env e;
	char base[8192];
	static const struct {
		const char *what, *want;
	} cases[] = {
	    {"iops", "--iops 123"},
	    {"throughput", "--throughput 45"},
	    {"gp2", "--gp2"},
	    {"readonly", "--readonly"},
	    {"header", "--header /h.vol"},
	    {"pps", "--pps 9"},
	    {"bandwidth", "--bandwidth 77"},
	    {"mac", "--mac 02:aa:bb:cc:dd:ee"},
	    {"sg", "--sg /sg/x"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		fresh(&s, &e);
		s.ls_nvols = s.ls_nnics = 1;
		launch_volume_init(&s.ls_vols[0]);
		snprintf(s.ls_vols[0].lv_path, PATH_MAX, "null:1G");
		nic(&s, 0, 1, "10.0.0.9/24");
		plan_ok(&s, &e);
		const char *w = cases[i].what;
		unsigned card = 0;
		snprintf(base, sizeof(base), "%s", joined(&plan.pl_procs[0]));
		if (!strcmp(w, "iops"))
			s.ls_vols[0].lv_iops = 123;
		else if (!strcmp(w, "throughput"))
			s.ls_vols[0].lv_throughput_mib = 45;
		else if (!strcmp(w, "gp2"))
			s.ls_vols[0].lv_gp2 = true;
		else if (!strcmp(w, "readonly"))
			s.ls_vols[0].lv_readonly = true;
		else if (!strcmp(w, "header"))
			snprintf(s.ls_vols[0].lv_header, PATH_MAX, "/h.vol");
		else {
			card = 1;
			snprintf(base, sizeof(base), "%s", joined(&plan.pl_procs[1]));
			if (!strcmp(w, "pps"))
				s.ls_nics[0].ln_pps = 9;
			else if (!strcmp(w, "bandwidth"))
				s.ls_nics[0].ln_bandwidth_mbit = 77;
			else if (!strcmp(w, "mac"))
				snprintf(s.ls_nics[0].ln_mac, 24, "02:aa:bb:cc:dd:ee");
			else
				snprintf(s.ls_nics[0].ln_sg, PATH_MAX, "/sg/x");
		}
		plan_ok(&s, &e);
		const char *now = joined(&plan.pl_procs[card]);
		assert_non_null(strstr(now, cases[i].want));
		assert_null(strstr(base, cases[i].want));
		/* Nothing but the flag was added. */
		assert_int_equal(strlen(now), strlen(base) + strlen(cases[i].want) + 1);
	}
}

static void test_queue_pairs_follow_the_vcpus(void **state)
{
	(void)state;
	static struct launch_spec s;
	struct launch_env e;
	static const unsigned cpus[][2] = {{1, 1}, {3, 3}, {7, 7}, {8, 7}, {254, 7}};
	for (size_t i = 0; i < sizeof(cpus) / sizeof(cpus[0]); i++) {
		fresh(&s, &e);
		s.ls_cpus = cpus[i][0];
		s.ls_nnics = 1;
		nic(&s, 0, 1, "10.0.0.9/24");
		plan_ok(&s, &e);
		char want[32];
		snprintf(want, sizeof(want), " --queue-pairs %u ", cpus[i][1]);
		char got[8192];
		snprintf(got, sizeof(got), "%s$", joined(&plan.pl_procs[0]));
		assert_non_null(strstr(got, want));
	}
}

/* The instance metadata: nitro-hv's SMBIOS gets the id and type, each VPC card the same
 * and its IMDS files, bound read-only (issue 15). */
static void test_instance_metadata_reaches_hv_and_cards(void **state)
{
	(void)state;
	static struct launch_spec s;
	static struct launch_env e;
	static struct launch_plan plan;
	char err[256];
	fresh(&s, &e);
	snprintf(s.ls_instance_id, sizeof(s.ls_instance_id), "i-0123456789abcdef0");
	snprintf(s.ls_instance_type, sizeof(s.ls_instance_type), "c5.large");
	snprintf(s.ls_user_data, sizeof(s.ls_user_data), "/files/ud");
	snprintf(s.ls_ssh_key, sizeof(s.ls_ssh_key), "/files/key.pub");
	s.ls_nnics = 1;
	nic(&s, 0, 1, "10.0.0.9/24");
	snprintf(s.ls_nics[0].ln_imds, 12, "optional");
	snprintf(s.ls_nics[0].ln_identity, PATH_MAX, "/state/instances/i-1/identity-nic0");
	assert_int_equal(launch_plan(&s, &e, &plan, err, sizeof(err)), 0);
	const struct launch_proc *c = launch_plan_card(&plan, 0), *hv = launch_plan_hv(&plan);
	char got[8192];
	snprintf(got, sizeof(got), "%s ", joined(c));
	assert_non_null(strstr(got,
			       " --imds optional --instance-id i-0123456789abcdef0 "
			       "--instance-type c5.large --user-data /files/ud --ssh-key "
			       "/files/key.pub --identity /state/instances/i-1/identity-nic0 "));
	static const char *const ro[] = {"/files/ud", "/files/key.pub",
					 "/state/instances/i-1/identity-nic0"};
	for (size_t i = 0; i < 3; i++) {
		bool found = false;
		for (unsigned k = 0; k < c->lp_npaths; k++)
			if (!strcmp(c->lp_paths[k].lpa_path, ro[i])) {
				found = true;
				assert_int_equal(c->lp_paths[k].lpa_flags, 0); /* read-only */
			}
		assert_true(found);
	}
	snprintf(got, sizeof(got), "%s ", joined(hv));
	assert_non_null(
	    strstr(got, " --instance-id i-0123456789abcdef0 --instance-type c5.large "));
	/* no type given: the card gets the one nitro-hv derives (same function) */
	s.ls_instance_type[0] = 0;
	assert_int_equal(launch_plan(&s, &e, &plan, err, sizeof(err)), 0);
	snprintf(got, sizeof(got), "%s ", joined(launch_plan_card(&plan, 0)));
	assert_non_null(strstr(got, " --instance-type t3.nano ")); /* 1 vCPU, 256 MiB */
	assert_null(strstr(joined(launch_plan_hv(&plan)), "--instance-type"));
	/* no host resolver: no --dns-fd; one: fd 4, a "dns" fd */
	assert_null(strstr(joined(launch_plan_card(&plan, 0)), "--dns-fd"));
	assert_int_equal(launch_proc_fd(launch_plan_card(&plan, 0), LAUNCH_FD_DNS, 0), -1);
	snprintf(e.le_dns, sizeof(e.le_dns), "127.0.0.53:53");
	assert_int_equal(launch_plan(&s, &e, &plan, err, sizeof(err)), 0);
	assert_non_null(strstr(joined(launch_plan_card(&plan, 0)), " --dns-fd 4 "));
	assert_int_equal(launch_proc_fd(launch_plan_card(&plan, 0), LAUNCH_FD_DNS, 0), 4);
	assert_string_equal(launch_fd_role_name(LAUNCH_FD_DNS), "dns");
}

/* resolv.conf as written by hand: comments, IPv6 first, options; the first IPv4 server. */
static void test_host_resolver(void **state)
{
	(void)state;
	char path[] = "/tmp/nitro-resolv-XXXXXX", out[64], err[256];
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	static const char conf[] = "# made by hand\nsearch example.com\n"
				   "nameserver fe80::1\nnameserver  bad\n"
				   "options edns0\n\tnameserver 127.0.0.53 # stub\n"
				   "nameserver 192.0.2.1\n";
	assert_int_equal(write(fd, conf, sizeof(conf) - 1), (ssize_t)sizeof(conf) - 1);
	close(fd);
	assert_int_equal(launch_host_resolver(path, out, sizeof(out)), 0);
	assert_string_equal(out, "127.0.0.53:53");
	fd = launch_dns_socket(out, err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(launch_dns_socket("127.0.0.53", err, sizeof(err)), -1);
	assert_int_equal(launch_dns_socket("nowhere:53", err, sizeof(err)), -1);
	assert_int_equal(launch_dns_socket("127.0.0.1:0", err, sizeof(err)), -1);
	FILE *f = fopen(path, "w");
	fputs("nameserver ::1\n", f);
	fclose(f);
	assert_int_equal(launch_host_resolver(path, out, sizeof(out)), -1);
	unlink(path);
	assert_int_equal(launch_host_resolver(path, out, sizeof(out)), -1);
}

static void test_limits(void **state)
{
	(void)state;
	static struct launch_spec s;
	struct launch_env e;
	char err[256];
	fresh(&s, &e);
	s.ls_nvols = LAUNCH_MAX_VOLUMES + 1;
	assert_int_equal(launch_plan(&s, &e, &plan, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "at most"));
	/* The largest everything fits. */
	spec_init(&s);
	memset(s.ls_cmdline, 'c', sizeof(s.ls_cmdline) - 1);
	memset(s.ls_kernel, 'k', sizeof(s.ls_kernel) - 1);
	s.ls_kernel[0] = '/';
	memset(e.le_run_dir, 'r', 200);
	s.ls_nvols = LAUNCH_MAX_VOLUMES;
	s.ls_nnics = LAUNCH_MAX_NICS;
	for (unsigned i = 0; i < LAUNCH_MAX_VOLUMES; i++) {
		launch_volume_init(&s.ls_vols[i]);
		memset(s.ls_vols[i].lv_path, 'v', PATH_MAX - 1);
		memset(s.ls_vols[i].lv_header, 'h', PATH_MAX - 1);
		s.ls_vols[i].lv_file = true;
		s.ls_vols[i].lv_iops = 1;
	}
	for (unsigned i = 0; i < LAUNCH_MAX_NICS; i++) {
		launch_nic_init(&s.ls_nics[i]);
		s.ls_nics[i].ln_vpc = 1;
		memset(s.ls_nics[i].ln_sg, 's', PATH_MAX - 1);
		s.ls_nics[i].ln_igw = true; /* each with its internet gateway's NAT */
	}
	s.ls_tpm = true;
	memset(s.ls_tpm_state, 't', PATH_MAX - 1);
	s.ls_vsock = true;
	s.ls_nsm = true;
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_nprocs, LAUNCH_MAX_PROCS);
	/* nitro-hv: --vhost-user per volume, NIC, vsock and the NSM, --tpm-card (the NATs are
	 * not devices) */
	assert_int_equal(launch_plan_hv(&plan)->lp_argc,
			 1 + 2 * 4 + 2 * (LAUNCH_MAX_VOLUMES + LAUNCH_MAX_NICS + 3));
}

static void test_json_carries_the_plan(void **state)
{
	(void)state;
	static struct launch_spec s;
	struct launch_env e;
	full_spec(&s, &e);
	plan_ok(&s, &e);
	char *text = launch_plan_json(&plan, &e);
	assert_non_null(text);
	json_error_t je;
	json_t *doc = json_loads(text, 0, &je);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "run_dir")), "/run/i-1");
	json_t *procs = json_object_get(doc, "processes");
	assert_int_equal(json_array_size(procs), plan.pl_nprocs);
	for (unsigned i = 0; i < plan.pl_nprocs; i++) {
		json_t *argv = json_object_get(json_array_get(procs, i), "argv");
		assert_int_equal(json_array_size(argv), plan.pl_procs[i].lp_argc);
		for (unsigned k = 0; k < plan.pl_procs[i].lp_argc; k++)
			assert_string_equal(json_string_value(json_array_get(argv, k)),
					    plan.pl_procs[i].lp_argv[k]);
	}
	json_t *hv = json_array_get(procs, 4);
	assert_string_equal(json_string_value(json_object_get(hv, "kind")), "hv");
	assert_true(json_is_null(json_object_get(hv, "socket")));
	json_t *c2 = json_array_get(procs, 2);
	assert_string_equal(json_string_value(json_object_get(c2, "vhost_user")), "net");
	assert_true(json_is_true(json_object_get(c2, "host_net")));
	json_decref(doc);
	free(text);
}

/* NitroTPM: one nitro-card-tpm after the other cards, its state folder (read-write) and
 * its key as fd 3 (role tpm-key); nitro-hv gets --tpm-card, not --vhost-user. */
static void test_tpm_card(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	fresh(&s, &e);
	s.ls_nvols = 1;
	launch_volume_init(&s.ls_vols[0]);
	snprintf(s.ls_vols[0].lv_path, sizeof(s.ls_vols[0].lv_path), "null:1G");
	tpm(&s);
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_ncards, 2);
	const struct launch_proc *t = launch_plan_card(&plan, 1);
	assert_int_equal(t->lp_kind, LAUNCH_CARD_TPM);
	assert_string_equal(t->lp_profile, "card-tpm");
	assert_null(t->lp_vhost);
	assert_string_equal(joined(t), "/opt/nitro/nitro-card-tpm --socket-path /run/i-1/c1.sock "
				       "--state /var/i-1/tpm --key-fd 3");
	assert_int_equal(launch_proc_fd(t, LAUNCH_FD_TPM_KEY, 0), 3);
	assert_string_equal(launch_fd_role_name(LAUNCH_FD_TPM_KEY), "tpm-key");
	bool rw = false;
	for (unsigned i = 0; i < t->lp_npaths; i++)
		rw |= !strcmp(t->lp_paths[i].lpa_path, "/var/i-1/tpm") &&
		      (t->lp_paths[i].lpa_flags & LAUNCH_PATH_RW);
	assert_true(rw);
	const char *hv = joined(launch_plan_hv(&plan));
	assert_non_null(
	    strstr(hv, "--vhost-user blk,/run/i-1/c0.sock --tpm-card /run/i-1/c1.sock"));
	/* Without ls_tpm: no TPM card. */
	s.ls_tpm = false;
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_ncards, 1);
	assert_null(strstr(joined(launch_plan_hv(&plan)), "--tpm-card"));
}

/* Nitro Enclaves: nitro-hv gets --enclaves (the NE PCI device), the vsock card (CID 3 on
 * its socket, the enclaves on S.enc) and the NSM card (its socket the enclaves' alone: no
 * NSM device in the parent), and --enclave-vsock / --enclave-nsm for its spawner; --vsock
 * or --nsm as well changes nothing (one card each). */
static void test_enclaves(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	fresh(&s, &e);
	plan_ok(&s, &e);
	assert_null(strstr(joined(launch_plan_hv(&plan)), "--enclave"));
	snprintf(s.ls_instance_id, sizeof(s.ls_instance_id), "i-0123456789abcdef0");
	for (int both = 0; both < 2; both++) {
		s.ls_enclaves = true;
		s.ls_vsock = s.ls_nsm = both;
		plan_ok(&s, &e);
		assert_int_equal(plan.pl_ncards, 2);
		const struct launch_proc *v = launch_plan_card(&plan, 0);
		assert_int_equal(v->lp_kind, LAUNCH_CARD_VSOCK);
		assert_string_equal(v->lp_vhost, "vsock");
		assert_string_equal(v->lp_socket, "/run/i-1/c0.sock");
		assert_string_equal(v->lp_enclave, "/run/i-1/c0.sock.enc");
		assert_string_equal(joined(v),
				    "/opt/nitro/nitro-card-vsock --socket-path "
				    "/run/i-1/c0.sock --enclave-socket /run/i-1/c0.sock.enc");
		const struct launch_proc *n = launch_plan_card(&plan, 1);
		assert_int_equal(n->lp_kind, LAUNCH_CARD_NSM);
		assert_null(n->lp_vhost);
		assert_string_equal(n->lp_enclave, "/run/i-1/c1.sock");
		assert_string_equal(joined(n), "/opt/nitro/nitro-card-nsm --socket-path "
					       "/run/i-1/c1.sock --chain-fd 3");
		assert_int_equal(launch_proc_fd(n, LAUNCH_FD_NSM_CHAIN, 0), 3);
		const char *hv = joined(launch_plan_hv(&plan));
		assert_non_null(strstr(hv, " --instance-id i-0123456789abcdef0 "));
		assert_non_null(strstr(hv, " --enclaves "));
		assert_non_null(strstr(hv, " --vhost-user vsock,/run/i-1/c0.sock --enclave-vsock "
					   "/run/i-1/c0.sock.enc --enclave-nsm /run/i-1/c1.sock"));
		assert_null(strstr(hv, "nsm,"));
		assert_non_null(strstr(hv, "/c1.sock --enclave-console-dir /run/i-1"));
		char *json = launch_plan_json(&plan, &e);
		assert_non_null(strstr(json, "\"enclave_socket\": \"/run/i-1/c0.sock.enc\""));
		assert_non_null(strstr(json, "\"enclave_socket\": \"/run/i-1/c1.sock\""));
		free(json);
	}
	/* --vsock alone: the card without an enclave socket, no NSM card. */
	s.ls_enclaves = s.ls_nsm = false;
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_ncards, 1);
	assert_null(launch_plan_card(&plan, 0)->lp_enclave);
	assert_null(strstr(joined(launch_plan_hv(&plan)), "--enclave"));
}

/* vsock (docs/vsock.md): nitro-card-vsock after the other cards, its own seccomp profile,
 * nitro-hv --vhost-user vsock; --enclave-hello reaches nitro-hv. */
static void test_vsock_card(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	fresh(&s, &e);
	tpm(&s);
	s.ls_vsock = true;
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_ncards, 2);
	const struct launch_proc *v = launch_plan_card(&plan, 1);
	assert_int_equal(v->lp_kind, LAUNCH_CARD_VSOCK);
	assert_string_equal(v->lp_profile, "card-vsock");
	assert_string_equal(v->lp_vhost, "vsock");
	assert_string_equal(joined(v),
			    "/opt/nitro/nitro-card-vsock --socket-path /run/i-1/c1.sock");
	const char *hv = joined(launch_plan_hv(&plan));
	assert_non_null(
	    strstr(hv, "--tpm-card /run/i-1/c0.sock --vhost-user vsock,/run/i-1/c1.sock"));
	assert_null(strstr(hv, "--enclave-hello"));
	snprintf(s.ls_enclave_hello, sizeof(s.ls_enclave_hello), "cid=16,debug");
	s.ls_vsock = false;
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_ncards, 1);
	assert_non_null(strstr(joined(launch_plan_hv(&plan)), "--enclave-hello cid=16,debug"));
}

/* The NSM card (`nitro run --nsm`): its chain on fd 3, nitro-hv's --vhost-user nsm and
 * the test identity --enclave-hello passed on. */
static void test_nsm_card(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	fresh(&s, &e);
	tpm(&s);
	s.ls_nsm = true;
	snprintf(s.ls_enclave_hello, sizeof(s.ls_enclave_hello), "cid=16,debug");
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_ncards, 2);
	const struct launch_proc *n = launch_plan_card(&plan, 1);
	assert_int_equal(n->lp_kind, LAUNCH_CARD_NSM);
	assert_string_equal(n->lp_profile, "card-nsm");
	assert_string_equal(n->lp_vhost, "nsm");
	assert_string_equal(
	    joined(n), "/opt/nitro/nitro-card-nsm --socket-path /run/i-1/c1.sock --chain-fd 3");
	assert_int_equal(launch_proc_fd(n, LAUNCH_FD_NSM_CHAIN, 0), 3);
	assert_string_equal(launch_fd_role_name(LAUNCH_FD_NSM_CHAIN), "nsm-chain");
	const char *hv = joined(launch_plan_hv(&plan));
	assert_non_null(strstr(hv, "--enclave-hello cid=16,debug"));
	assert_non_null(
	    strstr(hv, "--tpm-card /run/i-1/c0.sock --vhost-user nsm,/run/i-1/c1.sock"));
	s.ls_nsm = false;
	s.ls_enclave_hello[0] = 0;
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_ncards, 1);
	assert_null(strstr(joined(launch_plan_hv(&plan)), "nsm"));
	assert_null(strstr(joined(launch_plan_hv(&plan)), "--enclave-hello"));
}

/* NVMe device names: nitro run's defaults (sda1, then sdf, sdg ... counting only NVMe
 * volumes, not instance stores), a given name kept, and the shared checks both sides run
 * refusing a bad name, a name on virtio or an instance store, and a name used twice. */
static void test_nvme_device_names(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	char err[256], dev[LAUNCH_DEVICE_MAX + 1];
	fresh(&s, &e);
	const enum launch_bus bus[] = {LAUNCH_BUS_NVME, LAUNCH_BUS_VIRTIO, LAUNCH_BUS_NVME,
				       LAUNCH_BUS_NVME, LAUNCH_BUS_NVME};
	for (unsigned i = 0; i < 5; i++) {
		launch_volume_init(&s.ls_vols[i]);
		snprintf(s.ls_vols[i].lv_path, sizeof(s.ls_vols[i].lv_path), "/v/%u.vol", i);
		s.ls_vols[i].lv_bus = bus[i];
	}
	s.ls_vols[3].lv_instance = true; /* an instance store takes no name */
	snprintf(s.ls_vols[3].lv_path, sizeof(s.ls_vols[3].lv_path), "64M");
	snprintf(s.ls_vols[3].lv_dir, sizeof(s.ls_vols[3].lv_dir), "/tmp");
	s.ls_nvols = 5;
	const char *want[] = {"sda1", "", "sdf", "", "sdg"};
	for (unsigned i = 0; i < 5; i++) {
		launch_volume_device(&s, i, dev);
		assert_string_equal(dev, want[i]);
	}
	assert_int_equal(launch_check_volumes(&s, err, sizeof(err)), 0);
	plan_ok(&s, &e);
	assert_non_null(strstr(joined(&plan.pl_procs[0]), " --nvme --device sda1 --ctl "));
	assert_non_null(plan.pl_procs[0].lp_ctl); /* an NVMe volume's card pauses too */
	assert_null(plan.pl_procs[3].lp_ctl);	  /* an instance store has no snapshots */
	assert_null(strstr(joined(&plan.pl_procs[3]), "--ctl"));
	assert_null(strstr(joined(&plan.pl_procs[1]), "--device"));
	assert_non_null(strstr(joined(&plan.pl_procs[2]), " --nvme --device sdf "));
	assert_non_null(
	    strstr(joined(&plan.pl_procs[3]), "--nvme --instance-store 64M --dir /tmp"));
	assert_non_null(strstr(joined(&plan.pl_procs[4]), " --nvme --device sdg "));
	assert_string_equal(plan.pl_procs[3].lp_vhost, "nvme");
	assert_string_equal(plan.pl_procs[1].lp_vhost, "blk");
	/* a given name is kept; the same name as another volume's default is refused */
	snprintf(s.ls_vols[4].lv_device, sizeof(s.ls_vols[4].lv_device), "xvdb");
	assert_int_equal(launch_check_volumes(&s, err, sizeof(err)), 0);
	snprintf(s.ls_vols[4].lv_device, sizeof(s.ls_vols[4].lv_device), "sdf");
	assert_int_equal(launch_check_volumes(&s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "sdf is volume 2's already"));
	const char *bad[] = {"", "Sdf", "1sd", "sd-f", "sd f", "abcdefghijklmnopqrstuvwxyz0123456"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(launch_device_ok(bad[i]));
	assert_true(launch_device_ok("sda1") && launch_device_ok("xvdz"));
	snprintf(s.ls_vols[4].lv_device, sizeof(s.ls_vols[4].lv_device), "Sd;x");
	assert_int_equal(launch_check_volumes(&s, err, sizeof(err)), -1);
	s.ls_vols[4].lv_device[0] = 0;
	snprintf(s.ls_vols[1].lv_device, sizeof(s.ls_vols[1].lv_device), "sdq");
	assert_int_equal(launch_check_volumes(&s, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs bus nvme"));
	s.ls_vols[1].lv_device[0] = 0;
	snprintf(s.ls_vols[3].lv_device, sizeof(s.ls_vols[3].lv_device), "sdq");
	assert_int_equal(launch_check_volumes(&s, err, sizeof(err)), -1);
}

/* A NIC whose VPC has an internet gateway gets a nitro-vpc-igw before its card, joined
 * by the two ends of one socketpair (roles igw-nat / igw of that NIC); other NICs none. */
static void test_internet_gateway(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	fresh(&s, &e);
	snprintf(e.le_underlay, sizeof(e.le_underlay), "192.0.2.7:6081");
	s.ls_nnics = 2;
	nic(&s, 0, 1, "10.0.0.5/24");
	nic(&s, 1, 3, "10.3.1.5/24");
	snprintf(s.ls_nics[1].ln_vpc_cidr, sizeof(s.ls_nics[1].ln_vpc_cidr), "10.3.0.0/16");
	s.ls_nics[1].ln_igw = true;
	plan_ok(&s, &e);
	assert_int_equal(plan.pl_ncards, 3);
	const struct launch_proc *g = launch_plan_card(&plan, 0);
	assert_int_equal(g->lp_kind, LAUNCH_IGW);
	assert_string_equal(g->lp_profile, "igw");
	assert_null(g->lp_socket);
	assert_null(g->lp_vhost);
	assert_true(g->lp_flags & LAUNCH_HOST_NET);
	assert_int_equal(g->lp_item, 1);
	assert_string_equal(joined(g), "/opt/nitro/nitro-vpc-igw --fd 3 --ip 10.3.1.5/24 "
				       "--vpc-cidr 10.3.0.0/16 --deny 192.0.2.7/32");
	assert_int_equal(launch_proc_fd(g, LAUNCH_FD_IGW_NAT, 1), 3);
	const struct launch_proc *c0 = launch_plan_card(&plan, 1), *c1 = launch_plan_card(&plan, 2);
	assert_int_equal(c0->lp_kind, LAUNCH_CARD_VPC);
	assert_null(strstr(joined(c0), "--igw-fd"));
	assert_int_equal(launch_proc_fd(c0, LAUNCH_FD_IGW, 0), -1);
	assert_non_null(strstr(joined(c1), "--vpc-cidr 10.3.0.0/16 --igw-fd 5"));
	assert_int_equal(launch_proc_fd(c1, LAUNCH_FD_IGW, 1), 5);
	assert_string_equal(launch_fd_role_name(LAUNCH_FD_IGW), "igw");
	assert_string_equal(launch_fd_role_name(LAUNCH_FD_IGW_NAT), "igw-nat");
	/* nitro-hv sees the two NICs only */
	const char *hv = joined(launch_plan_hv(&plan));
	assert_non_null(
	    strstr(hv, "--vhost-user net,/run/i-1/c1.sock --vhost-user net,/run/i-1/c2.sock"));
	assert_null(strstr(hv, "c0.sock"));
}

/* The CIDRs of VPC records (nitro vpc, POST /v1/vpcs) and the subnets of NICs. */
static void test_cidrs(void **state)
{
	(void)state;
	uint32_t net;
	unsigned p;
	assert_true(launch_cidr_parse("10.3.0.0/16", 16, 28, false, &net, &p));
	assert_int_equal(net, 0x0a030000);
	assert_int_equal(p, 16);
	assert_true(launch_cidr_parse("192.168.7.240/28", 16, 28, false, &net, &p));
	static const char *const bad[] = {"10.3.0.1/16",  "10.0.0.0/15",	"10.0.0.0/29",
					  "10.0.0.0/016", "10.0.0.0/+16",	"10.0.0.0/ 16",
					  "10.0.0.0/16 ", " 10.0.0.0/16",	"10.0.0/16",
					  "010.0.0.0/16", "10.0.0.0.0/16",	"10.0.0.256/24",
					  "10.0.0.0",	  "10.0.0.0/",		"/16",
					  "::/16",	  "10.0.0.0/1a",	"",
					  "10.0.0.0//16", "1111111111111111/16"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(launch_cidr_parse(bad[i], 16, 28, false, &net, &p));
	/* a NIC's address keeps its host bits */
	assert_true(launch_cidr_parse("10.3.1.5/24", 1, 32, true, &net, &p));
	assert_true(launch_subnet_in("10.3.1.5/24", "10.3.0.0/16"));
	assert_true(launch_subnet_in("10.3.255.5/16", "10.3.0.0/16"));
	assert_false(launch_subnet_in("10.4.1.5/24", "10.3.0.0/16"));
	assert_false(launch_subnet_in("10.3.1.5/15", "10.3.0.0/16")); /* wider than the VPC */
	assert_false(launch_subnet_in("10.3.1.5", "10.3.0.0/16"));
	assert_false(launch_subnet_in("10.3.1.5/24", "10.3.0.1/16"));
}

/* The region reaches every VPC card (the IMDS's placement, DNS names); none: the card's
 * default. Region names are DNS labels. */
static void test_region(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	fresh(&s, &e);
	s.ls_nnics = 2;
	nic(&s, 0, 1, "10.0.0.5/24");
	nic(&s, 1, 1, "10.0.1.5/24");
	plan_ok(&s, &e);
	assert_null(strstr(joined(launch_plan_card(&plan, 0)), "--region"));
	snprintf(s.ls_region, sizeof(s.ls_region), "eu-west-1");
	plan_ok(&s, &e);
	for (int i = 0; i < 2; i++)
		assert_non_null(strstr(joined(launch_plan_card(&plan, i)), " --region eu-west-1 "));
	assert_null(strstr(joined(launch_plan_hv(&plan)), "--region"));
	assert_true(launch_region_ok("us-east-1") && launch_region_ok("ap-southeast-2") &&
		    launch_region_ok("x"));
	static const char *const bad[] = {
	    "",		 "-us",	      "us-",	     "US-EAST-1",
	    "us_east_1", "us.east.1", "us east",     "a/b",
	    "é",	 "..",	      "us-east-1\n", "0123456789012345678901234567890123"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(launch_region_ok(bad[i]));
}

/* A NIC with a gateway and a host resolver: each link on its own fd (4 DNS, 5 NAT). */
static void test_gateway_and_resolver_fds(void **state)
{
	(void)state;
	struct launch_spec s;
	struct launch_env e;
	fresh(&s, &e);
	e.le_underlay_fd = true;
	snprintf(e.le_dns, sizeof(e.le_dns), "192.0.2.53:53");
	s.ls_nnics = 1;
	nic(&s, 0, 3, "10.3.1.5/24");
	s.ls_nics[0].ln_igw = true;
	plan_ok(&s, &e);
	const struct launch_proc *c = launch_plan_card(&plan, 1);
	assert_int_equal(c->lp_kind, LAUNCH_CARD_VPC);
	assert_int_equal(launch_proc_fd(c, LAUNCH_FD_UNDERLAY, 0), 3);
	assert_int_equal(launch_proc_fd(c, LAUNCH_FD_DNS, 0), 4);
	assert_int_equal(launch_proc_fd(c, LAUNCH_FD_IGW, 0), 5);
	for (unsigned i = 0; i < c->lp_nfds; i++)
		for (unsigned k = 0; k < i; k++)
			assert_int_not_equal(c->lp_fds[i].lf_fd, c->lp_fds[k].lf_fd);
	assert_non_null(strstr(joined(c), "--igw-fd 5 --underlay-fd 3 --dns-fd 4"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_no_devices_is_only_the_hypervisor),
	    cmocka_unit_test(test_cards_first_then_the_hypervisor),
	    cmocka_unit_test(test_every_qos_field_reaches_the_card),
	    cmocka_unit_test(test_queue_pairs_follow_the_vcpus),
	    cmocka_unit_test(test_instance_metadata_reaches_hv_and_cards),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_json_carries_the_plan),
	    cmocka_unit_test(test_tpm_card),
	    cmocka_unit_test(test_vsock_card),
	    cmocka_unit_test(test_enclaves),
	    cmocka_unit_test(test_nsm_card),
	    cmocka_unit_test(test_nvme_device_names),
	    cmocka_unit_test(test_host_resolver),
	    cmocka_unit_test(test_internet_gateway),
	    cmocka_unit_test(test_cidrs),
	    cmocka_unit_test(test_gateway_and_resolver_fds),
	    cmocka_unit_test(test_region),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
