/* The launch plan: a launch_spec on a launch_env -> the processes (see launch.h). */
#include "launch/launch.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot/config.h" /* hv_default_instance_type */
#include "lib/util.h"

void launch_volume_init(struct launch_volume *v)
{
	memset(v, 0, sizeof(*v));
	v->lv_iops = v->lv_throughput_mib = LAUNCH_UNSET;
	v->lv_bus = LAUNCH_BUS_VIRTIO;
}

void launch_nic_init(struct launch_nic *n)
{
	memset(n, 0, sizeof(*n));
	n->ln_pps = n->ln_bandwidth_mbit = LAUNCH_UNSET;
}

void launch_spec_init(struct launch_spec *s)
{
	memset(s, 0, sizeof(*s));
	s->ls_cpus = 1;
	s->ls_mem_mib = 256;
}

bool launch_device_ok(const char *name)
{
	size_t n = strlen(name);
	if (n < 1 || n > LAUNCH_DEVICE_MAX || name[0] < 'a' || name[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}

void launch_default_device(unsigned nth, char *out)
{
	if (nth == 0)
		snprintf(out, LAUNCH_DEVICE_MAX + 1, "sda1");
	else
		snprintf(out, LAUNCH_DEVICE_MAX + 1, "sd%c", 'f' + (nth - 1) % 21);
}

void launch_volume_device(const struct launch_spec *s, unsigned item, char *out)
{
	const struct launch_volume *v = &s->ls_vols[item];
	out[0] = 0;
	if (v->lv_bus != LAUNCH_BUS_NVME || v->lv_instance)
		return;
	if (v->lv_device[0]) {
		snprintf(out, LAUNCH_DEVICE_MAX + 1, "%s", v->lv_device);
		return;
	}
	unsigned nth = 0;
	for (unsigned i = 0; i < item; i++)
		nth += s->ls_vols[i].lv_bus == LAUNCH_BUS_NVME && !s->ls_vols[i].lv_instance;
	launch_default_device(nth, out);
}

int launch_check_volumes(const struct launch_spec *s, char *err, size_t errlen)
{
	char dev[LAUNCH_MAX_VOLUMES][LAUNCH_DEVICE_MAX + 1];
	if (s->ls_nvols > LAUNCH_MAX_VOLUMES)
		RETURN_ERR(-1, "at most %u volumes and instance stores", LAUNCH_MAX_VOLUMES);
	for (unsigned i = 0; i < s->ls_nvols; i++) {
		const struct launch_volume *v = &s->ls_vols[i];
		if (v->lv_device[0] && (v->lv_bus != LAUNCH_BUS_NVME || v->lv_instance))
			RETURN_ERR(-1, "volume %u: a device name needs bus nvme (an EBS volume)",
				   i);
		if (v->lv_device[0] && !launch_device_ok(v->lv_device))
			RETURN_ERR(-1,
				   "volume %u: device \"%.40s\": expected 1 to %d of a-z and 0-9, "
				   "starting with a letter (like sdf)",
				   i, v->lv_device, LAUNCH_DEVICE_MAX);
		launch_volume_device(s, i, dev[i]);
		for (unsigned k = 0; k < i && dev[i][0]; k++)
			if (!strcmp(dev[k], dev[i]))
				RETURN_ERR(-1, "volume %u: device name %s is volume %u's already",
					   i, dev[i], k);
	}
	return 0;
}

/* --- building one process --- */

struct build {
	struct launch_proc *b_p;
	bool b_full; /* a string or a list overflowed */
};

/* A copy of the formatted string in the process's strings. */
static __attribute__((format(printf, 2, 3))) char *str(struct build *b, const char *fmt, ...)
{
	struct launch_proc *p = b->b_p;
	size_t room = sizeof(p->lp_strings) - p->lp_used;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(p->lp_strings + p->lp_used, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room) {
		b->b_full = true;
		return (char *)"";
	}
	char *s = p->lp_strings + p->lp_used;
	p->lp_used += (size_t)n + 1;
	return s;
}

static void arg(struct build *b, const char *a)
{
	struct launch_proc *p = b->b_p;
	if (p->lp_argc >= LAUNCH_MAX_ARGS) {
		b->b_full = true;
		return;
	}
	p->lp_argv[p->lp_argc++] = str(b, "%s", a);
	p->lp_argv[p->lp_argc] = NULL;
}

/* --flag VALUE */
static void opt(struct build *b, const char *flag, const char *v)
{
	arg(b, flag);
	arg(b, v);
}

/* --flag N, only when set */
static void opt_num(struct build *b, const char *flag, int64_t v)
{
	char n[24];
	if (v == LAUNCH_UNSET)
		return;
	snprintf(n, sizeof(n), "%" PRId64, v);
	opt(b, flag, n);
}

static void keep_fd(struct build *b, int fd, enum launch_fd_role r, unsigned item)
{
	struct launch_proc *p = b->b_p;
	if (p->lp_nfds >= LAUNCH_MAX_FDS) {
		b->b_full = true;
		return;
	}
	p->lp_fds[p->lp_nfds++] = (struct launch_fd){.lf_fd = fd, .lf_role = r, .lf_item = item};
}

static void uses_path(struct build *b, const char *path, unsigned flags)
{
	struct launch_proc *p = b->b_p;
	if (p->lp_npaths >= LAUNCH_MAX_PATHS) {
		b->b_full = true;
		return;
	}
	p->lp_paths[p->lp_npaths++] = (struct launch_path){str(b, "%s", path), flags};
}

static void env(struct build *b, const char *name, const char *value)
{
	struct launch_proc *p = b->b_p;
	if (p->lp_nenv >= LAUNCH_MAX_ENV) {
		b->b_full = true;
		return;
	}
	p->lp_env[p->lp_nenv++] = str(b, "%s=%s", name, value);
	p->lp_env[p->lp_nenv] = NULL;
}

/* --- the card table --- */

struct card_type {
	enum launch_kind ct_kind;
	const char *ct_exe;
	const char *ct_profile;
	const char *ct_vhost;
	unsigned ct_flags;
	unsigned (*ct_count)(const struct launch_spec *s);
	/* Appends the card's options after `EXE --socket-path SOCKET`. */
	void (*ct_args)(struct build *b, const struct launch_spec *s, unsigned item,
			const struct launch_env *e);
};

static unsigned ebs_count(const struct launch_spec *s)
{
	return s->ls_nvols;
}

/* nitro-card-ebs --socket-path S [--nvme --device NAME] --ctl S.ctl [--iops N]
 * [--throughput MiB] [--gp2] [--readonly] [--header FILE] VOLUME (the control socket
 * pauses the card, virtio-blk or NVMe, for a crash-consistent snapshot: docs/snapshots.md;
 * lv_ctl names it, else S.ctl); an instance store: --nvme --instance-store SIZE --dir DIR
 * (no snapshots, no control socket) */
static void ebs_args(struct build *b, const struct launch_spec *s, unsigned item,
		     const struct launch_env *e)
{
	const struct launch_volume *v = &s->ls_vols[item];
	if (v->lv_instance) {
		arg(b, "--nvme");
		opt(b, "--instance-store", v->lv_path);
		opt(b, "--dir", v->lv_dir);
		uses_path(b, v->lv_dir, LAUNCH_PATH_RW);
		return;
	}
	if (v->lv_bus == LAUNCH_BUS_NVME) {
		char dev[LAUNCH_DEVICE_MAX + 1];
		launch_volume_device(s, item, dev);
		arg(b, "--nvme");
		opt(b, "--device", dev);
	}
	struct launch_proc *p = b->b_p;
	p->lp_ctl = v->lv_ctl[0] ? str(b, "%s", v->lv_ctl) : str(b, "%s.ctl", p->lp_socket);
	opt(b, "--ctl", p->lp_ctl);
	opt_num(b, "--iops", v->lv_iops);
	opt_num(b, "--throughput", v->lv_throughput_mib);
	if (v->lv_gp2)
		arg(b, "--gp2");
	if (v->lv_readonly)
		arg(b, "--readonly");
	if (v->lv_header[0]) {
		opt(b, "--header", v->lv_header);
		uses_path(b, v->lv_header, 0);
	}
	if (v->lv_key_fd) {
		keep_fd(b, 3, LAUNCH_FD_VOLUME_KEY, item);
		opt(b, "--key-fd", "3");
	}
	arg(b, v->lv_path);
	if (v->lv_file)
		uses_path(b, v->lv_path, v->lv_readonly ? 0 : LAUNCH_PATH_RW);
	if (e->le_card_state[0]) {
		env(b, "NITRO_STATE", e->le_card_state);
		uses_path(b, e->le_card_state, 0);
	}
}

static unsigned vpc_count(const struct launch_spec *s)
{
	return s->ls_nnics;
}

/* nitro-card-vpc --socket-path S --ctl S.ctl --vpc ID --ip A.B.C.D/P --queue-pairs N
 * [--mac MAC] [--sg FILE] [--pps N] [--bandwidth MBIT] [--vpc-cidr C] [--igw-fd 5]
 * [--underlay ADDR] [--map PATH] [--imds MODE] [--instance-id ID] [--region R]
 * [--instance-type T] [--user-data FILE] [--ssh-key FILE]
 * [--identity DIR] [--dns-fd 4] */
static void vpc_args(struct build *b, const struct launch_spec *s, unsigned item,
		     const struct launch_env *e)
{
	const struct launch_nic *n = &s->ls_nics[item];
	struct launch_proc *p = b->b_p;
	p->lp_ctl = str(b, "%s.ctl", p->lp_socket);
	opt(b, "--ctl", p->lp_ctl);
	opt(b, "--vpc", str(b, "%u", n->ln_vpc));
	opt(b, "--ip", n->ln_ip);
	/* As EC2: one queue pair per vCPU, up to what the device can carry. */
	unsigned qp = s->ls_cpus < 1			    ? 1
		      : s->ls_cpus > LAUNCH_MAX_QUEUE_PAIRS ? LAUNCH_MAX_QUEUE_PAIRS
							    : s->ls_cpus;
	opt(b, "--queue-pairs", str(b, "%u", qp));
	if (n->ln_mac[0])
		opt(b, "--mac", n->ln_mac);
	if (n->ln_sg[0]) {
		opt(b, "--sg", n->ln_sg);
		uses_path(b, n->ln_sg, 0);
	}
	opt_num(b, "--pps", n->ln_pps);
	opt_num(b, "--bandwidth", n->ln_bandwidth_mbit);
	if (n->ln_vpc_cidr[0])
		opt(b, "--vpc-cidr", n->ln_vpc_cidr);
	if (n->ln_igw) { /* fd 4 is the resolver's socket (--dns-fd) */
		keep_fd(b, 5, LAUNCH_FD_IGW, item);
		opt(b, "--igw-fd", "5");
	}
	if (e->le_underlay_fd) {
		keep_fd(b, 3, LAUNCH_FD_UNDERLAY, item);
		opt(b, "--underlay-fd", "3");
		p->lp_flags &= ~LAUNCH_HOST_NET; /* its network is that socket */
	} else if (e->le_underlay[0]) {
		opt(b, "--underlay", e->le_underlay);
	}
	if (e->le_dns[0]) { /* the VPC resolver forwards to the host's */
		keep_fd(b, 4, LAUNCH_FD_DNS, item);
		opt(b, "--dns-fd", "4");
	}
	if (e->le_vpc_map[0]) {
		opt(b, "--map", e->le_vpc_map);
		uses_path(b, e->le_vpc_map, e->le_map_by_launcher ? 0 : LAUNCH_PATH_RW);
		if (e->le_map_by_launcher)
			arg(b, "--map-ro");
	}
	/* The IMDS: the same id and type as nitro-hv's SMBIOS, the files it serves. */
	if (n->ln_imds[0])
		opt(b, "--imds", n->ln_imds);
	if (s->ls_instance_id[0])
		opt(b, "--instance-id", s->ls_instance_id);
	if (s->ls_region[0])
		opt(b, "--region", s->ls_region);
	char deftype[32];
	opt(b, "--instance-type",
	    s->ls_instance_type[0] ? s->ls_instance_type
				   : hv_default_instance_type(s->ls_cpus, s->ls_mem_mib, deftype));
	const char *files[][2] = {{"--user-data", s->ls_user_data},
				  {"--ssh-key", s->ls_ssh_key},
				  {"--identity", n->ln_identity}};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i][1][0]) {
			opt(b, files[i][0], files[i][1]);
			uses_path(b, files[i][1], 0);
		}
}

static unsigned igw_count(const struct launch_spec *s)
{
	unsigned n = 0;
	for (unsigned i = 0; i < s->ls_nnics; i++)
		n += s->ls_nics[i].ln_igw;
	return n;
}

/* nitro-vpc-igw --fd 3 --ip A.B.C.D/P [--vpc-cidr C] [--deny UNDERLAY/32]: the
 * item-th NIC with a gateway; its fd item is the NIC's index. */
static void igw_args(struct build *b, const struct launch_spec *s, unsigned item,
		     const struct launch_env *e)
{
	unsigned nic = 0;
	for (unsigned seen = 0; nic < s->ls_nnics; nic++)
		if (s->ls_nics[nic].ln_igw && seen++ == item)
			break;
	const struct launch_nic *n = &s->ls_nics[nic];
	b->b_p->lp_item = nic;
	keep_fd(b, 3, LAUNCH_FD_IGW_NAT, nic);
	opt(b, "--fd", "3");
	opt(b, "--ip", n->ln_ip);
	if (n->ln_vpc_cidr[0])
		opt(b, "--vpc-cidr", n->ln_vpc_cidr);
	/* the underlay (when it is an address of its own) is never a destination */
	char ul[64];
	snprintf(ul, sizeof(ul), "%s", e->le_underlay);
	char *colon = strchr(ul, ':');
	if (colon)
		*colon = 0;
	if (ul[0])
		opt(b, "--deny", str(b, "%s/32", ul));
}

static unsigned tpm_count(const struct launch_spec *s)
{
	return s->ls_tpm ? 1 : 0;
}

/* nitro-card-tpm --socket-path S --state DIR --key-fd 3 */
static void tpm_args(struct build *b, const struct launch_spec *s, unsigned item,
		     const struct launch_env *e)
{
	(void)item;
	(void)e;
	opt(b, "--state", s->ls_tpm_state);
	uses_path(b, s->ls_tpm_state, LAUNCH_PATH_RW);
	opt(b, "--key-fd", "3");
	keep_fd(b, 3, LAUNCH_FD_TPM_KEY, 0);
}

static unsigned nsm_count(const struct launch_spec *s)
{
	return s->ls_nsm || s->ls_enclaves ? 1 : 0;
}

/* nitro-card-nsm --socket-path S --chain-fd 3. With enclaves S is theirs alone (nitro-hv
 * --enclave-nsm S: the parent has no NSM device); else (--nsm) the instance attaches to it
 * as a test enclave (--enclave-hello). */
static void nsm_args(struct build *b, const struct launch_spec *s, unsigned item,
		     const struct launch_env *e)
{
	(void)item;
	(void)e;
	opt(b, "--chain-fd", "3");
	keep_fd(b, 3, LAUNCH_FD_NSM_CHAIN, 0);
	if (s->ls_enclaves) {
		b->b_p->lp_enclave = b->b_p->lp_socket;
		b->b_p->lp_vhost = NULL;
	}
}

static unsigned vsock_count(const struct launch_spec *s)
{
	return s->ls_vsock || s->ls_enclaves ? 1 : 0;
}

/* nitro-card-vsock --socket-path S [--enclave-socket S.enc]: the instance's vsock device,
 * CID 3 (docs/vsock.md); with enclaves also theirs (nitro-hv --enclave-vsock S.enc). */
static void vsock_args(struct build *b, const struct launch_spec *s, unsigned item,
		       const struct launch_env *e)
{
	(void)item;
	(void)e;
	if (!s->ls_enclaves)
		return;
	struct launch_proc *p = b->b_p;
	p->lp_enclave = str(b, "%s.enc", p->lp_socket);
	opt(b, "--enclave-socket", p->lp_enclave);
}

/* In start order; nitro-hv sees the devices in this order too. */
static const struct card_type card_types[] = {
    {LAUNCH_CARD_EBS, "nitro-card-ebs", "card-ebs", "blk", 0, ebs_count, ebs_args},
    {LAUNCH_IGW, "nitro-vpc-igw", "igw", NULL, LAUNCH_HOST_NET, igw_count, igw_args},
    {LAUNCH_CARD_VPC, "nitro-card-vpc", "card-vpc", "net", LAUNCH_HOST_NET, vpc_count, vpc_args},
    {LAUNCH_CARD_TPM, "nitro-card-tpm", "card-tpm", NULL, 0, tpm_count, tpm_args},
    {LAUNCH_CARD_VSOCK, "nitro-card-vsock", "card-vsock", "vsock", 0, vsock_count, vsock_args},
    {LAUNCH_CARD_NSM, "nitro-card-nsm", "card-nsm", "nsm", 0, nsm_count, nsm_args},
};

static void proc_begin(struct build *b, struct launch_proc *p, enum launch_kind kind,
		       const char *name, const char *profile, const struct launch_env *e)
{
	memset(p, 0, offsetof(struct launch_proc, lp_strings));
	p->lp_strings[0] = 0;
	b->b_p = p;
	p->lp_kind = kind;
	p->lp_name = name;
	p->lp_profile = profile;
	p->lp_exe = str(b, "%s/%s", e->le_bin_dir, name);
	arg(b, p->lp_exe);
}

static void hv_args(struct build *b, const struct launch_spec *s, const struct launch_env *e,
		    const struct launch_plan *pl)
{
	opt(b, "--kernel", s->ls_kernel);
	uses_path(b, s->ls_kernel, 0);
	if (s->ls_initrd[0]) {
		opt(b, "--initrd", s->ls_initrd);
		uses_path(b, s->ls_initrd, 0);
	}
	static const struct {
		const char *opt;
		size_t off;
	} digests[] = {
	    {"--kernel-sha384", offsetof(struct launch_spec, ls_kernel_sha384)},
	    {"--kernel-sha256", offsetof(struct launch_spec, ls_kernel_sha256)},
	    {"--initrd-sha384", offsetof(struct launch_spec, ls_initrd_sha384)},
	    {"--initrd-sha256", offsetof(struct launch_spec, ls_initrd_sha256)},
	};
	for (size_t i = 0; i < sizeof(digests) / sizeof(digests[0]); i++)
		if (((const char *)s)[digests[i].off])
			opt(b, digests[i].opt, (const char *)s + digests[i].off);
	opt(b, "--cmdline", s->ls_cmdline);
	opt(b, "--cpus", str(b, "%u", s->ls_cpus));
	opt(b, "--memory", str(b, "%llu", (unsigned long long)s->ls_mem_mib));
	if (s->ls_instance_id[0]) /* SMBIOS: the system UUID and serial ec2... */
		opt(b, "--instance-id", s->ls_instance_id);
	if (s->ls_instance_type[0])
		opt(b, "--instance-type", s->ls_instance_type);
	if (s->ls_console_log[0]) {
		opt(b, "--console-log", s->ls_console_log);
		uses_path(b, s->ls_console_log, LAUNCH_PATH_RW);
	}
	if (s->ls_console_max)
		opt(b, "--console-max", str(b, "%llu", (unsigned long long)s->ls_console_max));
	if (s->ls_no_reboot)
		arg(b, "--no-reboot");
	if (s->ls_no_decompress)
		arg(b, "--no-host-decompress");
	if (s->ls_stats)
		arg(b, "--stats");
	if (s->ls_require_kvm)
		arg(b, "--require-kvm");
	if (s->ls_enclave_hello[0])
		opt(b, "--enclave-hello", s->ls_enclave_hello);
	if (s->ls_enclaves) /* the NE device; the spawner hands its enclaves the cards' sockets */
		arg(b, "--enclaves");
	if (e->le_kernel_cache[0]) {
		opt(b, "--cache-dir", e->le_kernel_cache);
		uses_path(b, e->le_kernel_cache, 0);
	}
	uses_path(b, "/dev/kvm", LAUNCH_PATH_RW | LAUNCH_PATH_DEV);
	if (pl->pl_ncards)
		uses_path(b, e->le_run_dir, LAUNCH_PATH_RW);
	for (unsigned i = 0; i < s->ls_nexternal; i++)
		opt(b, "--vhost-user",
		    str(b, "%s,%s", s->ls_external[i].lx_type, s->ls_external[i].lx_socket));
	for (unsigned i = 0; i < pl->pl_ncards; i++) {
		const struct launch_proc *c = &pl->pl_procs[i];
		if (c->lp_vhost)
			opt(b, "--vhost-user", str(b, "%s,%s", c->lp_vhost, c->lp_socket));
		else if (c->lp_kind == LAUNCH_CARD_TPM)
			opt(b, "--tpm-card", c->lp_socket);
	}
	for (unsigned i = 0; i < pl->pl_ncards; i++) {
		const struct launch_proc *c = &pl->pl_procs[i];
		if (s->ls_enclaves && c->lp_enclave && c->lp_kind == LAUNCH_CARD_VSOCK)
			opt(b, "--enclave-vsock", c->lp_enclave);
		else if (s->ls_enclaves && c->lp_enclave && c->lp_kind == LAUNCH_CARD_NSM)
			opt(b, "--enclave-nsm", c->lp_enclave);
	}
	if (s->ls_enclaves) /* debug-mode consoles: RUN/enclave-UID.log (nitro enclave console) */
		opt(b, "--enclave-console-dir", e->le_run_dir);
	keep_fd(b, 0, LAUNCH_FD_CONSOLE_IN, 0);
	keep_fd(b, 1, LAUNCH_FD_CONSOLE_OUT, 0);
	keep_fd(b, 2, LAUNCH_FD_LOG, 0);
}

int launch_plan(const struct launch_spec *s, const struct launch_env *e, struct launch_plan *pl,
		char *err, size_t errlen)
{
	struct build b = {0};
	pl->pl_nprocs = pl->pl_ncards = 0;
	if (s->ls_nvols > LAUNCH_MAX_VOLUMES || s->ls_nnics > LAUNCH_MAX_NICS ||
	    s->ls_nexternal > LAUNCH_MAX_EXTERNAL)
		RETURN_ERR(-1, "launch: at most %u volumes and %u network interfaces",
			   LAUNCH_MAX_VOLUMES, LAUNCH_MAX_NICS);
	for (size_t t = 0; t < ARRAY_SIZE(card_types); t++) {
		const struct card_type *ct = &card_types[t];
		unsigned n = ct->ct_count(s);
		for (unsigned item = 0; item < n; item++) {
			if (pl->pl_ncards >= LAUNCH_MAX_CARDS)
				RETURN_ERR(-1, "launch: at most %u cards", LAUNCH_MAX_CARDS);
			struct launch_proc *p = &pl->pl_procs[pl->pl_ncards];
			proc_begin(&b, p, ct->ct_kind, ct->ct_exe, ct->ct_profile, e);
			p->lp_vhost = ct->ct_vhost;
			p->lp_flags = ct->ct_flags;
			p->lp_card = pl->pl_ncards;
			p->lp_item = item;
			if (ct->ct_kind != LAUNCH_IGW) {
				p->lp_socket = str(&b, "%s/c%u.sock", e->le_run_dir, p->lp_card);
				opt(&b, "--socket-path", p->lp_socket);
				uses_path(&b, e->le_run_dir, LAUNCH_PATH_RW);
			}
			ct->ct_args(&b, s, item, e);
			if (ct->ct_kind == LAUNCH_CARD_EBS &&
			    s->ls_vols[item].lv_bus == LAUNCH_BUS_NVME)
				p->lp_vhost = "nvme";
			keep_fd(&b, 1, LAUNCH_FD_LOG, 0);
			keep_fd(&b, 2, LAUNCH_FD_LOG, 0);
			if (b.b_full)
				RETURN_ERR(-1, "launch: the arguments of %s %u are too long",
					   ct->ct_exe, item);
			pl->pl_ncards++;
		}
	}
	struct launch_proc *hv = &pl->pl_procs[pl->pl_ncards];
	proc_begin(&b, hv, LAUNCH_HV, "nitro-hv", "hv", e);
	hv_args(&b, s, e, pl);
	if (b.b_full)
		RETURN_ERR(-1, "launch: the arguments of nitro-hv are too long");
	pl->pl_nprocs = pl->pl_ncards + 1;
	return 0;
}

const struct launch_proc *launch_plan_card(const struct launch_plan *p, unsigned idx)
{
	return idx < p->pl_ncards ? &p->pl_procs[idx] : NULL;
}

const struct launch_proc *launch_plan_hv(const struct launch_plan *p)
{
	return p->pl_nprocs ? &p->pl_procs[p->pl_nprocs - 1] : NULL;
}

int launch_proc_fd(const struct launch_proc *p, enum launch_fd_role r, unsigned item)
{
	for (unsigned i = 0; i < p->lp_nfds; i++)
		if (p->lp_fds[i].lf_role == r && p->lp_fds[i].lf_item == item)
			return p->lp_fds[i].lf_fd;
	return -1;
}

const char *launch_fd_role_name(enum launch_fd_role r)
{
	switch (r) {
	case LAUNCH_FD_CONSOLE_IN:
		return "console-in";
	case LAUNCH_FD_CONSOLE_OUT:
		return "console-out";
	case LAUNCH_FD_LOG:
		return "log";
	case LAUNCH_FD_VOLUME_KEY:
		return "volume-key";
	case LAUNCH_FD_UNDERLAY:
		return "underlay";
	case LAUNCH_FD_TPM_KEY:
		return "tpm-key";
	case LAUNCH_FD_DNS:
		return "dns";
	case LAUNCH_FD_IGW:
		return "igw";
	case LAUNCH_FD_IGW_NAT:
		return "igw-nat";
	case LAUNCH_FD_NSM_CHAIN:
		return "nsm-chain";
	}
	return "?";
}

/* --- JSON --- */

static json_t *strings(char *const *v, unsigned n)
{
	json_t *a = json_array();
	for (unsigned i = 0; i < n; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

char *launch_plan_json(const struct launch_plan *pl, const struct launch_env *e)
{
	json_t *procs = json_array();
	for (unsigned i = 0; i < pl->pl_nprocs; i++) {
		const struct launch_proc *p = &pl->pl_procs[i];
		json_t *fds = json_array(), *paths = json_array();
		for (unsigned k = 0; k < p->lp_nfds; k++)
			json_array_append_new(
			    fds, json_pack("{s:i, s:s, s:i}", "fd", p->lp_fds[k].lf_fd, "role",
					   launch_fd_role_name(p->lp_fds[k].lf_role), "item",
					   (int)p->lp_fds[k].lf_item));
		for (unsigned k = 0; k < p->lp_npaths; k++)
			json_array_append_new(
			    paths,
			    json_pack("{s:s, s:b, s:b}", "path", p->lp_paths[k].lpa_path, "rw",
				      !!(p->lp_paths[k].lpa_flags & LAUNCH_PATH_RW), "device",
				      !!(p->lp_paths[k].lpa_flags & LAUNCH_PATH_DEV)));
		json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:b}", "kind",
				      p->lp_profile, "name", p->lp_name, "exe", p->lp_exe, "argv",
				      strings(p->lp_argv, p->lp_argc), "fds", fds, "paths", paths,
				      "env", strings(p->lp_env, p->lp_nenv), "host_net",
				      !!(p->lp_flags & LAUNCH_HOST_NET));
		json_object_set_new(o, "socket",
				    p->lp_socket ? json_string(p->lp_socket) : json_null());
		if (p->lp_enclave)
			json_object_set_new(o, "enclave_socket", json_string(p->lp_enclave));
		json_object_set_new(o, "vhost_user",
				    p->lp_vhost ? json_string(p->lp_vhost) : json_null());
		json_array_append_new(procs, o);
	}
	json_t *doc =
	    json_pack("{s:s, s:s, s:s, s:o}", "bin_dir", e->le_bin_dir, "run_dir", e->le_run_dir,
		      "kernel_cache", e->le_kernel_cache, "processes", procs);
	char *text = doc ? json_dumps(doc, JSON_INDENT(1)) : NULL;
	json_decref(doc);
	return text;
}
