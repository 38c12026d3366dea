/* nitrod's launcher: the launch plan as measured, jailed processes (see launcher.h). */
#include "controller/launcher.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "boot/config.h"
#include "controller/bootfile.h"
#include "controller/cgroup.h"
#include "controller/enclave_ca.h"
#include "controller/istore.h"
#include "controller/proc.h"
#include "endorse/endorse.h"
#include "imds/imds.h"
#include "launch/resolver.h"
#include "lib/util.h"
#include "securitychip/chip.h"
#include "securitychip/identity.h"
#include "volume/volume.h"
#include "vpcmap/mapsvc.h"

#define VPC_SG_MAX (1u << 20) /* a security-group file nitrod copies for a card */

#define CARD_START_MS 5000

void inst_dir(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/instances/%s", g_ctl.c_state_dir, in->i_id);
}

void inst_console_path(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/instances/%s/console.log", g_ctl.c_state_dir, in->i_id);
}

void inst_tpm_dir(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/instances/%s/tpm", g_ctl.c_state_dir, in->i_id);
}

void inst_tpm_cert_path(const struct instance *in, bool rsa, char *out, size_t len)
{
	sfmt(out, len, "%s/instances/%s/tpm-ek-%s.der", g_ctl.c_state_dir, in->i_id,
	     rsa ? "rsa" : "ecc");
}

/* The security chip's EK CA (STATE/ek-ca: where `nitro run` with NITRO_STATE=STATE has it). */
void launch_ek_ca_dir(char *out, size_t len)
{
	sfmt(out, len, "%s/ek-ca", g_ctl.c_state_dir);
}

/* The run folder holds the card sockets; short, for sun_path. */
static void run_dir(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/run/%s", g_ctl.c_state_dir, in->i_id);
}

/* The VPC mapping folder: nitrod's, root's 0755, read-only in the cards' jails. */
static void map_dir(char *out, size_t len)
{
	sfmt(out, len, "%s/%s", g_ctl.c_state_dir, MAP_DIR_NAME);
}

static void key_dir(const struct instance *in, char *out, size_t len)
{
	sfmt(out, len, "%s/run/%s-key", g_ctl.c_state_dir, in->i_id);
}

/* --- the launch description --- */

static int copy(char *dst, size_t len, const char *src, const char *what, char *err, size_t errlen)
{
	if (strlen(src) >= len)
		RETURN_ERR(-1, "%s: too long for a launch", what);
	sfmt(dst, len, "%s", src);
	return 0;
}

int launch_fill(const struct instance *in, struct launch_spec *ls, struct launch_env *le, char *err,
		size_t errlen)
{
	const struct inst_spec *s = &in->i_spec;
	launch_spec_init(ls);
	memset(le, 0, sizeof(*le));
	if (s->s_kernel[0])
		sfmt(ls->ls_kernel, sizeof(ls->ls_kernel), "%s", s->s_kernel);
	else
		sfmt(ls->ls_kernel, sizeof(ls->ls_kernel), "%s/vmlinuz", g_ctl.c_images_dir);
	if (s->s_initrd[0])
		sfmt(ls->ls_initrd, sizeof(ls->ls_initrd), "%s", s->s_initrd);
	else if (!s->s_kernel[0] && !s->s_no_initrd)
		sfmt(ls->ls_initrd, sizeof(ls->ls_initrd), "%s/guest.img", g_ctl.c_images_dir);
	if (copy(ls->ls_cmdline, sizeof(ls->ls_cmdline), s->s_cmdline, "cmdline", err, errlen))
		return -1;
	ls->ls_cpus = s->s_cpus;
	ls->ls_mem_mib = s->s_mem_mib;
	ls->ls_require_kvm = true; /* never an emulated host of its own */
	if (s->s_console)	   /* console.log stays under nitrod's --console-max */
		ls->ls_console_max = g_ctl.c_console_max;
	for (unsigned i = 0; i < s->s_nvols; i++) {
		const struct volrec *v = vol_find(s->s_vols[i].vr_id);
		if (!v)
			RETURN_ERR(-1, "volume %s no longer exists", s->s_vols[i].vr_id);
		struct launch_volume *lv = &ls->ls_vols[ls->ls_nvols++];
		launch_volume_init(lv);
		if (copy(lv->lv_path, sizeof(lv->lv_path), v->v_path, v->v_id, err, errlen))
			return -1;
		lv->lv_file = true;
		lv->lv_iops = v->v_iops;
		lv->lv_throughput_mib = v->v_throughput_mib;
		lv->lv_gp2 = v->v_gp2;
		lv->lv_readonly = s->s_vols[i].vr_readonly;
		lv->lv_key_fd = v->v_encrypted; /* only nitrod reads the master key */
		lv->lv_bus = s->s_vols[i].vr_virtio ? LAUNCH_BUS_VIRTIO : LAUNCH_BUS_NVME;
		sfmt(lv->lv_device, sizeof(lv->lv_device), "%s", s->s_vols[i].vr_device);
	}
	if (s->s_istore_mib) { /* the instance-storage card, after the volumes (istore.h) */
		struct launch_volume *lv = &ls->ls_vols[ls->ls_nvols++];
		launch_volume_init(lv);
		lv->lv_bus = LAUNCH_BUS_NVME;
		lv->lv_instance = true;
		sfmt(lv->lv_path, sizeof(lv->lv_path), "%lluM",
		     (unsigned long long)s->s_istore_mib);
		istore_path(in, lv->lv_dir, sizeof(lv->lv_dir));
	}
	if (launch_check_volumes(ls, err, errlen))
		return -1;
	for (unsigned i = 0; i < s->s_nnics; i++) {
		const struct nic_spec *n = &s->s_nics[i];
		struct launch_nic *ln = &ls->ls_nics[ls->ls_nnics++];
		launch_nic_init(ln);
		ln->ln_vpc = n->n_vpc;
		sfmt(ln->ln_ip, sizeof(ln->ln_ip), "%s", n->n_ip);
		sfmt(ln->ln_mac, sizeof(ln->ln_mac), "%s", n->n_mac);
		if (copy(ln->ln_sg, sizeof(ln->ln_sg), n->n_sg, "sg", err, errlen))
			return -1;
		ln->ln_pps = n->n_pps;
		ln->ln_bandwidth_mbit = n->n_bandwidth_mbit;
		sfmt(ln->ln_imds, sizeof(ln->ln_imds), "%s", n->n_imds);
		/* The VPC's record (POST /v1/vpcs): its CIDR and internet gateway, as `nitro
		 * run` reads them from `nitro vpc create` (a VPC without one: neither). */
		const struct vpcrec *vr = vpc_find(n->n_vpc);
		if (vr) {
			sfmt(ln->ln_vpc_cidr, sizeof(ln->ln_vpc_cidr), "%s", vr->vp_cidr);
			ln->ln_igw = vr->vp_igw;
		}
		/* written by launch_prepare (sign_identity), read-only in the card's jail */
		char dir[PATH_MAX];
		inst_dir(in, dir, sizeof(dir));
		sfmt(ln->ln_identity, sizeof(ln->ln_identity), "%s/identity-nic%u", dir, i);
	}
	/* The instance metadata: SMBIOS (nitro-hv) and the IMDS (the VPC cards). */
	sfmt(ls->ls_instance_id, sizeof(ls->ls_instance_id), "%s", in->i_id);
	sfmt(ls->ls_instance_type, sizeof(ls->ls_instance_type), "%s", s->s_instance_type);
	sfmt(ls->ls_region, sizeof(ls->ls_region), "%s", s->s_region);
	if (copy(ls->ls_user_data, sizeof(ls->ls_user_data), s->s_user_data, "user_data", err,
		 errlen) ||
	    copy(ls->ls_ssh_key, sizeof(ls->ls_ssh_key), s->s_ssh_key, "ssh_key", err, errlen))
		return -1;
	ls->ls_enclaves = s->s_enclaves;
	if (s->s_tpm) {
		ls->ls_tpm = true;
		inst_tpm_dir(in, ls->ls_tpm_state, sizeof(ls->ls_tpm_state));
	}
	sfmt(le->le_bin_dir, sizeof(le->le_bin_dir), "%s", g_ctl.c_bin_dir);
	run_dir(in, le->le_run_dir, sizeof(le->le_run_dir));
	/* nitrod's own cache, read-only in the jail (kcache.h) */
	sfmt(le->le_kernel_cache, sizeof(le->le_kernel_cache), "%s/kcache", g_ctl.c_state_dir);
	le->le_underlay_fd = true; /* made here; the card gets no network of its own */
	/* and so is its socket to the host's resolver (resolver.h), when there is one */
	launch_usable_resolver(LAUNCH_RESOLV_CONF, le->le_dns, sizeof(le->le_dns));
	map_dir(le->le_vpc_map, sizeof(le->le_vpc_map));
	le->le_map_by_launcher = true; /* the records are written here (map_put) */
	return 0;
}

/* The instance's plan (malloc'd, with its description in *ls and *le), or NULL with err. */
struct planned {
	struct launch_spec ls;
	struct launch_env le;
	struct launch_plan pl;
};

static struct planned *plan_of(const struct instance *in, char *err, size_t errlen)
{
	struct planned *p = malloc(sizeof(*p));
	if (!p) {
		sfmt(err, errlen, "out of memory");
		return NULL;
	}
	if (launch_fill(in, &p->ls, &p->le, err, errlen) ||
	    launch_plan(&p->ls, &p->le, &p->pl, err, errlen)) {
		free(p);
		return NULL;
	}
	return p;
}

int inst_volume_ctl(const struct instance *in, const char *vol_id, char *out, size_t len)
{
	char err[256];
	int r = -1;
	for (unsigned i = 0; i < in->i_spec.s_nvols && r < 0; i++) {
		if (strcmp(in->i_spec.s_vols[i].vr_id, vol_id))
			continue;
		struct planned *p = plan_of(in, err, sizeof(err));
		if (!p)
			return -1;
		for (unsigned c = 0; c < p->pl.pl_ncards; c++) {
			const struct launch_proc *lp = launch_plan_card(&p->pl, c);
			if (lp->lp_kind == LAUNCH_CARD_EBS && lp->lp_item == i && lp->lp_ctl) {
				sfmt(out, len, "%s", lp->lp_ctl);
				r = 0;
			}
		}
		free(p);
	}
	return r;
}

/* --- logs --- */

static int open_log(const struct instance *in, const char *name, bool truncate)
{
	char dir[PATH_MAX], p[PATH_MAX + 64];
	inst_dir(in, dir, sizeof(dir));
	sfmt(p, sizeof(p), "%s/%s", dir, name);
	return open(p, O_WRONLY | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : O_APPEND), 0600);
}

void inst_log_last_line(const struct instance *in, const char *log, char *out, size_t len)
{
	char dir[PATH_MAX], path[PATH_MAX + 64];
	inst_dir(in, dir, sizeof(dir));
	sfmt(path, sizeof(path), "%s/%s", dir, log);
	out[0] = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	char buf[600];
	off_t end = lseek(fd, 0, SEEK_END);
	off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	char *nl = strrchr(buf, '\n');
	char *s = nl ? nl + 1 : buf;
	for (char *c = s; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
			*c = '?';
	sfmt(out, len, "%s", s);
}

/* --- starting one process --- */

/* Whether a socket bound to path is listening yet (flag __SO_ACCEPTCON in the card's
 * /proc/PID/net/unix: its network namespace may not be ours): the file appears at bind(),
 * a moment before listen(). */
static bool unix_listening(const char *path, pid_t pid)
{
	char proc[64];
	size_t n = strlen(path);
	sfmt(proc, sizeof(proc), "/proc/%d/net/unix", (int)pid);
	FILE *f = fopen(proc, "re");
	char line[PATH_MAX + 128];
	bool yes = false;
	if (!f)
		return true; /* cannot tell: the file's existence has to do */
	while (!yes && fgets(line, sizeof(line), f)) {
		unsigned long flags;
		char p[PATH_MAX + 1];
		/* PATH itself, or PATH.SUFFIX: a card that binds a temporary name and renames
		 * it into place once listening (the VPC card). */
		if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %4096s", &flags, p) == 2 &&
		    (flags & 0x10000) && !strncmp(p, path, n) && (p[n] == 0 || p[n] == '.'))
			yes = true;
	}
	fclose(f);
	return yes;
}

/* Waits for a card's socket; false when the card ended (*status set, else -1) or after
 * CARD_START_MS. */
static bool wait_socket(const char *path, pid_t pid, int *status)
{
	*status = -1;
	for (int ms = 0; ms < CARD_START_MS; ms++) {
		struct stat st;
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && unix_listening(path, pid))
			return true;
		if (waitpid(pid, status, WNOHANG) == pid)
			return false;
		nanosleep(&(struct timespec){0, 1000000}, NULL);
	}
	return false;
}

/* A pipe holding the data key of an encrypted volume for its card (--key-fd): the read
 * end, or -1 with err. Only nitrod reads the master key; the card's jail never has it. */
static int key_pipe(const struct volrec *v, char *err, size_t errlen)
{
	uint8_t dk[VOL_KEY_BYTES];
	char e[512];
	if (vol_unwrap_key(v->v_path, dk, e, sizeof(e)) < 0)
		RETURN_ERR(-1, "volume %s: %s", v->v_id, e);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		explicit_bzero(dk, sizeof(dk));
		RETURN_ERR(-1, "volume %s: key pipe: %s", v->v_id, strerror(errno));
	}
	/* 64 bytes fit in any pipe buffer: the write never blocks. */
	bool ok = write(p[1], dk, sizeof(dk)) == (ssize_t)sizeof(dk);
	int we = errno;
	explicit_bzero(dk, sizeof(dk));
	close(p[1]);
	if (!ok) {
		close(p[0]);
		RETURN_ERR(-1, "volume %s: key pipe: %s", v->v_id, strerror(we));
	}
	return p[0];
}

/* A pipe holding the TPM card's state key (--key-fd): the read end, or -1 with err. The
 * key is derived here (endorse.h) from the host master key and the instance's id; the
 * card never sees the master key. */
static int tpm_key_pipe(const struct instance *in, char *err, size_t errlen)
{
	uint8_t key[32];
	char e[512];
	if (tpm_key_derive(in->i_id, key, e, sizeof(e)) < 0)
		RETURN_ERR(-1, "the TPM's state key: %s", e);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		explicit_bzero(key, sizeof(key));
		RETURN_ERR(-1, "the TPM's key pipe: %s", strerror(errno));
	}
	/* 32 bytes fit in any pipe buffer: the write never blocks. */
	bool ok = write(p[1], key, sizeof(key)) == (ssize_t)sizeof(key);
	int we = errno;
	explicit_bzero(key, sizeof(key));
	close(p[1]);
	if (!ok) {
		close(p[0]);
		RETURN_ERR(-1, "the TPM's key pipe: %s", strerror(we));
	}
	return p[0];
}

/* The VPC card's underlay: a UDP socket on the host's loopback (any port), made here in
 * the host's network namespace and handed over (--underlay-fd): the card itself lives
 * in an empty network namespace. The fd, or -1 with err. */
static int underlay_socket(char *err, size_t errlen)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr = {htonl(INADDR_LOOPBACK)}};
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		if (s >= 0)
			close(s);
		RETURN_ERR(-1, "VPC underlay socket: %s", strerror(e));
	}
	return s;
}

/* The fds a process keeps, from its plan: stdio[] gets the fd for 0..2 (-1: /dev/null),
 * pass[] the others (at the numbers the plan gives); opened[] what to close after the
 * spawn. */
struct kept {
	int stdio[3];
	struct jail_fd pass[LAUNCH_MAX_FDS + 2]; /* + the boot files of nitro-hv */
	unsigned npass;
	int opened[LAUNCH_MAX_FDS];
	unsigned nopened;
	int underlay; /* the VPC card's underlay socket (one of opened[]), -1: none */
};

static void kept_close(struct kept *k)
{
	for (unsigned i = 0; i < k->nopened; i++)
		if (k->opened[i] >= 0)
			close(k->opened[i]);
	k->nopened = 0;
}

static int kept_open(const struct instance *in, const struct launch_proc *p, const char *logname,
		     int igw_fd, struct kept *k, char *err, size_t errlen)
{
	k->stdio[0] = k->stdio[1] = k->stdio[2] = -1;
	k->nopened = k->npass = 0;
	k->underlay = -1;
	int log = -1, console = -1;
	for (unsigned i = 0; i < p->lp_nfds; i++) {
		const struct launch_fd *f = &p->lp_fds[i];
		int fd = -1;
		switch (f->lf_role) {
		case LAUNCH_FD_CONSOLE_IN:
			fd = -1; /* no route writes to a guest's console */
			break;
		case LAUNCH_FD_CONSOLE_OUT:
			if (in->i_spec.s_console && console < 0) {
				char cp[PATH_MAX];
				inst_console_path(in, cp, sizeof(cp));
				console = open(cp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
				k->opened[k->nopened++] = console;
			}
			fd = console;
			break;
		case LAUNCH_FD_LOG:
			if (log < 0) {
				log = open_log(in, logname, false);
				k->opened[k->nopened++] = log;
			}
			fd = log;
			break;
		case LAUNCH_FD_VOLUME_KEY: {
			const struct volrec *v = f->lf_item < in->i_spec.s_nvols
						     ? vol_find(in->i_spec.s_vols[f->lf_item].vr_id)
						     : NULL;
			if (!v) {
				kept_close(k);
				RETURN_ERR(-1, "%s: its volume no longer exists", p->lp_name);
			}
			if ((fd = key_pipe(v, err, errlen)) < 0) {
				kept_close(k);
				return -1;
			}
			k->opened[k->nopened++] = fd;
			break;
		}
		case LAUNCH_FD_TPM_KEY:
			if ((fd = tpm_key_pipe(in, err, errlen)) < 0) {
				kept_close(k);
				return -1;
			}
			k->opened[k->nopened++] = fd;
			break;
		case LAUNCH_FD_IGW: /* an end of the link launch_card made (not ours to close) */
		case LAUNCH_FD_IGW_NAT:
			if ((fd = igw_fd) < 0) {
				kept_close(k);
				RETURN_ERR(-1, "%s: no internet gateway link", p->lp_name);
			}
			break;
		case LAUNCH_FD_NSM_CHAIN: /* the host key: this pipe, to the NSM card alone */
			if (p->lp_kind != LAUNCH_CARD_NSM) {
				kept_close(k);
				RETURN_ERR(-1, "%s: the enclave chain is the NSM card's only",
					   p->lp_name);
			}
			if ((fd = enclave_ca_chain_fd(err, errlen)) < 0) {
				kept_close(k);
				return -1;
			}
			k->opened[k->nopened++] = fd;
			break;
		case LAUNCH_FD_UNDERLAY:
			if ((fd = underlay_socket(err, errlen)) < 0) {
				kept_close(k);
				return -1;
			}
			k->opened[k->nopened++] = fd;
			k->underlay = fd;
			break;
		case LAUNCH_FD_DNS: { /* the plan has it: the resolver of the plan's time */
			char dns[64];
			if (launch_host_resolver(LAUNCH_RESOLV_CONF, dns, sizeof(dns)) < 0 ||
			    (fd = launch_dns_socket(dns, err, errlen)) < 0) {
				kept_close(k);
				RETURN_ERR(-1, "%s: the host's resolver is gone", p->lp_name);
			}
			k->opened[k->nopened++] = fd;
			break;
		}
		}
		if (f->lf_fd < 0) {
			kept_close(k);
			RETURN_ERR(-1, "%s: fd %d (%s)", p->lp_name, f->lf_fd,
				   launch_fd_role_name(f->lf_role));
		}
		if (f->lf_fd <= 2)
			k->stdio[f->lf_fd] = fd;
		else if (fd >= 0)
			k->pass[k->npass++] = (struct jail_fd){fd, f->lf_fd};
	}
	return 0;
}

/* A card's control socket answers: the card that owns a record is running. */
static bool ctl_alive(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!path[0] || strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	bool yes = s >= 0 && (connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0 ||
			      errno == EAGAIN || errno == EINPROGRESS);
	if (s >= 0)
		close(s);
	return yes;
}

/* The mapping record of a VPC card's NIC, written here before the card starts (the card
 * only reads the folder): its VPC, address, MAC, group and the underlay socket this
 * launcher made for it. ctl= names the card's control socket, under the instance's run
 * folder: the record's owner. An address another running instance holds is refused. */
static int map_put(const struct instance *in, const struct launch_proc *p, int ul_fd, char *err,
		   size_t errlen)
{
	const struct nic_spec *n = &in->i_spec.s_nics[p->lp_item];
	struct map_entry e = {.me_vpc = n->n_vpc};
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	char ip[40], dir[PATH_MAX], own[PATH_MAX];
	sfmt(ip, sizeof(ip), "%s", n->n_ip);
	ip[strcspn(ip, "/")] = 0;
	struct in_addr a;
	if (p->lp_item >= in->i_spec.s_nnics || inet_pton(AF_INET, ip, &a) != 1 || ul_fd < 0 ||
	    getsockname(ul_fd, (struct sockaddr *)&sa, &sl) < 0 || sa.sin_family != AF_INET)
		RETURN_ERR(-1, "%s: no address or underlay for its mapping record", p->lp_name);
	e.me_ip = a.s_addr;
	e.me_ul_ip = sa.sin_addr.s_addr;
	e.me_ul_port = sa.sin_port;
	e.me_default_sg = !n->n_sg[0];
	if (!n->n_mac[0])
		map_default_mac(e.me_vpc, e.me_ip, e.me_mac);
	else if (!map_parse_mac(n->n_mac, e.me_mac))
		RETURN_ERR(-1, "%s: mac %s: not a unicast MAC", p->lp_name, n->n_mac);
	gethostname(e.me_host, sizeof(e.me_host) - 1);
	if (p->lp_ctl)
		sfmt(e.me_ctl, sizeof(e.me_ctl), "%s", p->lp_ctl);
	map_dir(dir, sizeof(dir));
	run_dir(in, own, sizeof(own));
	strncat(own, "/", sizeof(own) - strlen(own) - 1);
	struct map_entry old;
	if (map_record_get(dir, e.me_vpc, e.me_ip, &old) && strncmp(old.me_ctl, own, strlen(own)) &&
	    ctl_alive(old.me_ctl))
		RETURN_ERR(-1, "VPC %u address %s is already in use by another instance", e.me_vpc,
			   ip);
	return map_record_put(dir, &e, err, errlen);
}

/* Removes the records of the instance's NICs (only those it still owns). */
static void map_remove(const struct instance *in)
{
	char dir[PATH_MAX], own[PATH_MAX], ip[40];
	map_dir(dir, sizeof(dir));
	run_dir(in, own, sizeof(own));
	strncat(own, "/", sizeof(own) - strlen(own) - 1);
	for (unsigned i = 0; i < in->i_spec.s_nnics && i < SPEC_MAX_NICS; i++) {
		struct in_addr a;
		sfmt(ip, sizeof(ip), "%s", in->i_spec.s_nics[i].n_ip);
		ip[strcspn(ip, "/")] = 0;
		if (inet_pton(AF_INET, ip, &a) == 1)
			map_record_remove(dir, in->i_spec.s_nics[i].n_vpc, a.s_addr, own);
	}
}

/* The cgroup leaf of one process (name "hv", "c0", ...) with the documented limits
 * (cgroup.h): its fd for the jailer, -1 when cgroups are off (--no-cgroups, --no-jail),
 * or -2 with err when it cannot be made. */
static int cgroup_for(const struct instance *in, const struct launch_proc *p, const char *name,
		      char *err, size_t errlen)
{
	if (!g_ctl.c_jail || !g_ctl.c_cgroups)
		return -1;
	struct cg_limits il, l;
	const struct inst_spec *s = &in->i_spec;
	cg_limits_instance(s->s_mem_mib, s->s_cpus, in->i_ncards, &il);
	if (p->lp_kind == LAUNCH_HV)
		cg_limits_hv(s->s_mem_mib, s->s_cpus, &l);
	else
		cg_limits_card(s->s_mem_mib, &l);
	if (s->s_enclaves) { /* the spawner and the enclaves' nitro-hv live in hv's leaf */
		cg_limits_add_enclaves(s->s_cpus, &il);
		if (p->lp_kind == LAUNCH_HV)
			cg_limits_add_enclaves(s->s_cpus, &l);
	}
	int fd = cg_make(g_ctl.c_cgroup_root, in->i_id, &il, name, &l, err, errlen);
	return fd < 0 ? -2 : fd;
}

/* Starts process p of the plan measured and jailed; its pid, or -1 with err. The fds of
 * its plan and extra[] (nitro-hv's boot files) are passed at the numbers given, and with
 * exe_to >= 0 the measured executable's fd too, at exe_to (nitro-hv --enclave-exe-fd:
 * what its enclave spawner execs). */
static pid_t spawn(struct instance *in, const struct launch_proc *p, const char *logname,
		   const char *jail_name, const struct jail_fd *extra, size_t nextra, int igw_fd,
		   int exe_to, char *err, size_t errlen)
{
	int fd = -1;
	if (chip_measure_exec(g_ctl.c_chip, p->lp_exe, &fd, NULL, err, errlen))
		return -1;
	char jdir[PATH_MAX + 32];
	sfmt(jdir, sizeof(jdir), "%s/jail/%s-%s", g_ctl.c_state_dir, in->i_id, jail_name);
	mkdir(jdir, 0755);
	struct jail_bind binds[LAUNCH_MAX_PATHS];
	for (unsigned i = 0; i < p->lp_npaths; i++)
		binds[i] = (struct jail_bind){
		    p->lp_paths[i].lpa_path, NULL,
		    (p->lp_paths[i].lpa_flags & LAUNCH_PATH_RW ? JAIL_BIND_RW : 0) |
			/* a device the host lacks (no /dev/kvm): the process reports it itself */
			(p->lp_paths[i].lpa_flags & LAUNCH_PATH_DEV
			     ? JAIL_BIND_DEV | JAIL_BIND_OPTIONAL
			     : 0)};
	char *env[LAUNCH_MAX_ENV + 2] = {NULL};
	unsigned ne = 0;
	for (unsigned i = 0; i < p->lp_nenv; i++)
		env[ne++] = p->lp_env[i];
	if (p->lp_kind == LAUNCH_HV && getenv("NITRO_TRACE"))
		env[ne++] = "NITRO_TRACE=1";
	struct kept k;
	if (kept_open(in, p, logname, igw_fd, &k, err, errlen)) {
		close(fd);
		return -1;
	}
	if (p->lp_kind == LAUNCH_CARD_VPC && map_put(in, p, k.underlay, err, errlen) < 0) {
		close(fd);
		kept_close(&k);
		return -1;
	}
	for (size_t i = 0; i < nextra && k.npass < ARRAY_SIZE(k.pass); i++)
		k.pass[k.npass++] = extra[i];
	if (exe_to >= 0 && k.npass < ARRAY_SIZE(k.pass))
		k.pass[k.npass++] = (struct jail_fd){fd, exe_to};
	int cgfd = cgroup_for(in, p, jail_name, err, errlen);
	if (cgfd == -2) {
		close(fd);
		kept_close(&k);
		return -1;
	}
	struct proc_spawn ps = {
	    .ps_kind = p->lp_profile,
	    .ps_uid = in->i_uid,
	    .ps_gid = in->i_gid, /* the jailer makes the jail's /dev/kvm node theirs */
	    .ps_jail_dir = jdir,
	    .ps_binds = binds,
	    .ps_nbinds = p->lp_npaths,
	    .ps_stdio = {k.stdio[0], k.stdio[1], k.stdio[2]},
	    .ps_env = env,
	    .ps_exec_fd = fd,
	    .ps_jail_flags = p->lp_flags & LAUNCH_HOST_NET ? 0 : JAIL_NEWNET,
	    .ps_fds = k.pass,
	    .ps_nfds = k.npass,
	    .ps_cgroup_fd = cgfd,
	};
	pid_t pid = proc_spawn(&ps, g_ctl.c_jail, p->lp_argv, err, errlen);
	close(fd);
	if (cgfd >= 0)
		close(cgfd);
	kept_close(&k);
	return pid;
}

static void started(struct proc *pr, int kind, pid_t pid)
{
	pr->p_kind = kind;
	pr->p_pid = pid;
	pr->p_child = true;
	pr->p_start = proc_start_time(pid);
}

/* What a card serves, for messages. */
static void card_what(const struct instance *in, const struct launch_proc *p, char *out, size_t len)
{
	if (p->lp_kind == LAUNCH_CARD_TPM)
		sfmt(out, len, "the TPM");
	else if (p->lp_kind == LAUNCH_CARD_VSOCK)
		sfmt(out, len, "vsock");
	else if (p->lp_kind == LAUNCH_CARD_NSM)
		sfmt(out, len, "the enclaves' NSM");
	else if (p->lp_kind == LAUNCH_IGW)
		sfmt(out, len, "the internet gateway of nic %s in VPC %u",
		     in->i_spec.s_nics[p->lp_item].n_ip, in->i_spec.s_nics[p->lp_item].n_vpc);
	else if (p->lp_kind == LAUNCH_CARD_VPC)
		sfmt(out, len, "nic %s in VPC %u", in->i_spec.s_nics[p->lp_item].n_ip,
		     in->i_spec.s_nics[p->lp_item].n_vpc);
	else if (p->lp_item < in->i_spec.s_nvols)
		sfmt(out, len, "volume %s", in->i_spec.s_vols[p->lp_item].vr_id);
	else
		sfmt(out, len, "the instance store");
}

/* Ends a process of the instance now (SIGKILL; reaped when it is nitrod's child). */
static void end_now(struct proc *pr)
{
	if (pr->p_pid <= 0)
		return;
	kill(pr->p_pid, SIGKILL);
	if (pr->p_child)
		waitpid(pr->p_pid, NULL, 0);
	if (pr->p_pidfd >= 0) { /* the supervisor's watch (supervise.c): forgotten */
		close(pr->p_pidfd);
		pr->p_pidfd = -1;
	}
	pr->p_pid = 0;
}

/* The internet gateway's NAT of NIC nic (nitro-vpc-igw: measured, jailed with the seccomp
 * list "igw", in the host's network namespace, the instance's uid), on link[0] of a new
 * socketpair whose link[1] its card gets. 0, or -1 with err (no NAT left running). */
static int start_nat(struct instance *in, const struct launch_plan *pl, unsigned nic, int link[2],
		     char *err, size_t errlen)
{
	unsigned gi = 0;
	while (gi < pl->pl_ncards &&
	       (pl->pl_procs[gi].lp_kind != LAUNCH_IGW || pl->pl_procs[gi].lp_item != nic))
		gi++;
	if (gi == pl->pl_ncards)
		RETURN_ERR(-1, "nic %u: no internet gateway in the plan", nic);
	struct proc *pr = &in->i_cards[gi];
	end_now(pr);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, link) < 0)
		RETURN_ERR(-1, "nic %u: internet gateway link: %s", nic, strerror(errno));
	char logname[32], jname[16], what[128];
	sfmt(logname, sizeof(logname), "card%u.log", gi);
	sfmt(jname, sizeof(jname), "c%u", gi);
	card_what(in, &pl->pl_procs[gi], what, sizeof(what));
	pid_t pid = spawn(in, &pl->pl_procs[gi], logname, jname, NULL, 0, link[0], -1, err, errlen);
	close(link[0]);
	link[0] = -1;
	if (pid < 0) {
		char e[512];
		sfmt(e, sizeof(e), "%s", err);
		RETURN_ERR(-1, "%s did not start: %s", what, e);
	}
	started(pr, PK_IGW, pid);
	return 0;
}

int launch_card(struct instance *in, unsigned idx, char *err, size_t errlen)
{
	struct planned *pp = plan_of(in, err, errlen);
	if (!pp)
		return -1;
	const struct launch_proc *p = launch_plan_card(&pp->pl, idx);
	int r = -1, link[2] = {-1, -1};
	char what[128], logname[32], jname[16];
	if (!p) {
		sfmt(err, errlen, "no card %u", idx);
		goto out;
	}
	card_what(in, p, what, sizeof(what));
	sfmt(logname, sizeof(logname), "card%u.log", idx);
	sfmt(jname, sizeof(jname), "c%u", idx);
	if (p->lp_kind == LAUNCH_IGW) { /* started with its card, below */
		r = 0;
		goto out;
	}
	/* A volume file belongs to the instance's uid while its card runs. */
	if (p->lp_kind == LAUNCH_CARD_EBS && g_ctl.c_jail && pp->ls.ls_vols[p->lp_item].lv_file &&
	    chown(pp->ls.ls_vols[p->lp_item].lv_path, in->i_uid, in->i_gid) < 0) {
		sfmt(err, errlen, "%s: chown: %s", what, strerror(errno));
		goto out;
	}
	/* A NIC's security group, the user data and SSH key its IMDS serves: each opened
	 * once beneath its served folder (bootfile.h) and copied into the instance's folder
	 * (root's); the card gets the copy, never a path a caller can swap. */
	const bool vpc = p->lp_kind == LAUNCH_CARD_VPC;
	const struct {
		const char *opt, *path, *name;
		size_t max;
	} files[] = {
	    {"--sg", vpc ? pp->ls.ls_nics[p->lp_item].ln_sg : "", "sg", VPC_SG_MAX},
	    {"--user-data", vpc ? pp->ls.ls_user_data : "", "user-data", IMDS_USERDATA_MAX},
	    {"--ssh-key", vpc ? pp->ls.ls_ssh_key : "", "ssh-key", 8192}};
	char copies[3][PATH_MAX + 32];
	for (size_t f = 0; f < 3; f++) {
		if (!files[f].path[0])
			continue;
		char dir[PATH_MAX], what[32];
		inst_dir(in, dir, sizeof(dir));
		sfmt(copies[f], sizeof(copies[f]), "%s/card%u.%s", dir, idx, files[f].name);
		sfmt(what, sizeof(what), "nics %s", files[f].name);
		if (bootfile_copy(what, files[f].path, in->i_owner, copies[f], files[f].max, err,
				  errlen) < 0)
			goto out;
		struct launch_proc *w = (struct launch_proc *)p;
		for (unsigned i = 0; i + 1 < w->lp_argc; i++)
			if (!strcmp(w->lp_argv[i], files[f].opt))
				w->lp_argv[i + 1] = copies[f];
		for (unsigned i = 0; i < w->lp_npaths; i++)
			if (!strcmp(w->lp_paths[i].lpa_path, files[f].path))
				w->lp_paths[i].lpa_path = copies[f];
	}
	unlink(p->lp_socket);
	/* A NIC with an internet gateway: its NAT first (any earlier one, linked to the card
	 * that ended, goes), joined to this card by a new SOCK_SEQPACKET pair. */
	if (p->lp_kind == LAUNCH_CARD_VPC && launch_proc_fd(p, LAUNCH_FD_IGW, p->lp_item) >= 0 &&
	    start_nat(in, &pp->pl, p->lp_item, link, err, errlen) < 0)
		goto out;
	pid_t pid = spawn(in, p, logname, jname, NULL, 0, link[1], -1, err, errlen);
	if (pid < 0)
		goto out;
	struct proc *pr = &in->i_cards[idx];
	started(pr,
		p->lp_kind == LAUNCH_CARD_VPC	  ? PK_CARD_VPC
		: p->lp_kind == LAUNCH_CARD_TPM	  ? PK_CARD_TPM
		: p->lp_kind == LAUNCH_CARD_VSOCK ? PK_CARD_VSOCK
		: p->lp_kind == LAUNCH_CARD_NSM	  ? PK_CARD_NSM
						  : PK_CARD_EBS,
		pid);
	int status;
	if (wait_socket(p->lp_socket, pid, &status)) {
		r = 0;
		goto out;
	}
	char why[300];
	inst_log_last_line(in, logname, why, sizeof(why));
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	pr->p_pid = 0;
	if (why[0])
		sfmt(err, errlen, "the card of %s did not start: %s", what, why);
	else if (status != -1 && WIFSIGNALED(status))
		sfmt(err, errlen, "the card of %s did not start: killed by signal %d%s", what,
		     WTERMSIG(status),
		     WTERMSIG(status) == SIGSYS ? " (a system call outside its seccomp allow-list)"
						: "");
	else if (status != -1)
		sfmt(err, errlen, "the card of %s did not start: exit status %d", what,
		     WEXITSTATUS(status));
	else
		sfmt(err, errlen, "the card of %s did not start: no socket after %d ms", what,
		     CARD_START_MS);
out:
	for (int i = 0; i < 2; i++)
		if (link[i] >= 0)
			close(link[i]);
	free(pp);
	return r;
}

int launch_hv(struct instance *in, char *err, size_t errlen)
{
	struct planned *pp = plan_of(in, err, errlen);
	if (!pp)
		return -1;
	/* Every nitro-hv (create, start, guest reboot, POST reboot) boots the boot files
	 * opened and measured for it (bootfile.h): passed as fds with their digests, never by
	 * path, and not bound into the jail. */
	struct boot_files bf;
	if (boot_files_open(in, pp->ls.ls_kernel, pp->ls.ls_initrd, pp->le.le_kernel_cache, &bf,
			    err, errlen)) {
		free(pp);
		return LAUNCH_REFUSED;
	}
	struct launch_proc *hv = (struct launch_proc *)launch_plan_hv(&pp->pl);
	char *argv[LAUNCH_MAX_ARGS + 16];
	unsigned k = 0;
	argv[k++] = hv->lp_argv[0];
	k = (unsigned)boot_files_argv(&bf, argv, (int)k);
	int bfd[2];
	size_t nb = boot_files_fds(&bf, bfd);
	/* With enclaves, the spawner execs nitro-hv again (enclave_spawn.h) from the fd the
	 * chip measured, at a number none of the boot files has: a jail has no /proc. */
	int exe_to = -1;
	char exe_arg[16];
	if (pp->ls.ls_enclaves) {
		exe_to = 3;
		for (size_t i = 0; i < nb; i++)
			for (size_t j = 0; j < nb; j++)
				if (bfd[j] == exe_to)
					exe_to++;
		sfmt(exe_arg, sizeof(exe_arg), "%d", exe_to);
		argv[k++] = "--enclave-exe-fd";
		argv[k++] = exe_arg;
	}
	for (unsigned i = 1; i < hv->lp_argc; i++) {
		if ((!strcmp(hv->lp_argv[i], "--kernel") || !strcmp(hv->lp_argv[i], "--initrd")) &&
		    i + 1 < hv->lp_argc) {
			i++;
			continue;
		}
		argv[k++] = hv->lp_argv[i];
	}
	int r = -1;
	if (k > LAUNCH_MAX_ARGS) {
		sfmt(err, errlen, "nitro-hv: more than %d arguments", LAUNCH_MAX_ARGS);
		goto out;
	}
	memcpy(hv->lp_argv, argv, k * sizeof(char *));
	hv->lp_argv[k] = NULL;
	hv->lp_argc = k;
	unsigned np = 0;
	for (unsigned i = 0; i < hv->lp_npaths; i++)
		if (strcmp(hv->lp_paths[i].lpa_path, pp->ls.ls_kernel) &&
		    strcmp(hv->lp_paths[i].lpa_path, pp->ls.ls_initrd))
			hv->lp_paths[np++] = hv->lp_paths[i];
	hv->lp_npaths = np;
	struct jail_fd pass[2];
	for (size_t i = 0; i < nb; i++)
		pass[i] = (struct jail_fd){bfd[i], bfd[i]}; /* at the numbers its argv names */
	pid_t pid = spawn(in, hv, "hv.log", "hv", pass, nb, -1, exe_to, err, errlen);
	if (pid >= 0) {
		started(&in->i_hv, PK_HV, pid);
		r = 0;
	}
out:
	boot_files_close(&bf);
	free(pp);
	return r;
}

/* --- before and after --- */

/* Removes every file of the mapping folder that is not nitrod's own. */
static void map_purge_foreign(const char *map)
{
	DIR *d = opendir(map);
	struct dirent *de;
	struct stat st;
	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' || (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")))
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    (st.st_uid != geteuid() || !S_ISREG(st.st_mode)))
				unlinkat(dirfd(d), de->d_name,
					 S_ISDIR(st.st_mode) ? AT_REMOVEDIR : 0);
	if (d)
		closedir(d);
}

static int mkdir_owned(const char *path, uid_t uid, gid_t gid)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -1;
	if (g_ctl.c_jail && chown(path, uid, gid) < 0)
		return -1;
	return 0;
}

/* Nothing starts unless the boot files open beneath their served folders (the measured
 * open is launch_hv's, for each nitro-hv). */
static int check_boot(const struct launch_spec *s, uid_t owner, char *err, size_t errlen)
{
	int fd = bootfile_open("kernel", s->ls_kernel, owner, err, errlen);
	if (fd < 0)
		return -1;
	close(fd);
	if (!s->ls_initrd[0])
		return 0;
	fd = bootfile_open("initrd", s->ls_initrd, owner, err, errlen);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/* The plan, for whoever asks what was started (launch.h: launch_plan_json). */
static void write_plan(const struct instance *in, const struct planned *pp)
{
	char *json = launch_plan_json(&pp->pl, &pp->le);
	int fd = json ? open_log(in, "launch.json", true) : -1;
	if (fd >= 0 && write(fd, json, strlen(json)) < 0)
		warnmsg("%s: launch.json: %s", in->i_id, strerror(errno));
	if (fd >= 0)
		close(fd);
	free(json);
}

/* One file of an identity folder: replaced whole (temporary file, rename). */
static int put_file(const char *dir, const char *name, const char *data, size_t len, char *err,
		    size_t errlen)
{
	char p[PATH_MAX + 64], t[PATH_MAX + 72];
	sfmt(p, sizeof(p), "%s/%s", dir, name);
	sfmt(t, sizeof(t), "%s/.%s.tmp", dir, name);
	int fd = open(t, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	bool ok = fd >= 0 && write(fd, data, len) == (ssize_t)len;
	if (fd >= 0 && close(fd))
		ok = false;
	if (!ok || rename(t, p))
		RETURN_ERR(-1, "identity document %s: %s", p, strerror(errno));
	return 0;
}

/* The instance identity document of NIC idx, signed by the chip's identity key (the card
 * gets the document and the signatures, never the key): written to ln_identity. */
static int sign_identity(const struct instance *in, const struct launch_spec *ls, unsigned idx,
			 char *err, size_t errlen)
{
	const struct launch_nic *n = &ls->ls_nics[idx];
	const char *dir = n->ln_identity;
	if (mkdir(dir, 0755) && errno != EEXIST)
		RETURN_ERR(-1, "%s: %s", dir, strerror(errno));
	char deftype[32];
	struct imds_cfg ic = {.ic_instance_id = in->i_id,
			      .ic_instance_type = ls->ls_instance_type[0]
						      ? ls->ls_instance_type
						      : hv_default_instance_type(
							    ls->ls_cpus, ls->ls_mem_mib, deftype),
			      .ic_pending_time = (uint64_t)in->i_created,
			      .ic_region = ls->ls_region[0] ? ls->ls_region : NULL};
	sfmt(ic.ic_local_ipv4, sizeof(ic.ic_local_ipv4), "%.*s", (int)strcspn(n->ln_ip, "/"),
	     n->ln_ip);
	char doc[2048];
	int dl = imds_identity_document(&ic, doc, sizeof(doc));
	if (dl <= 0 || (size_t)dl >= sizeof(doc))
		RETURN_ERR(-1, "identity document: too long");
	struct chip_identity_sig sig;
	if (chip_identity_sign(g_ctl.c_chip, doc, (size_t)dl, &sig, err, errlen))
		return -1;
	int r =
	    put_file(dir, "document", doc, (size_t)dl, err, errlen) ||
		    put_file(dir, "pkcs7", sig.pkcs7, strlen(sig.pkcs7), err, errlen) ||
		    put_file(dir, "rsa2048", sig.rsa2048, strlen(sig.rsa2048), err, errlen) ||
		    put_file(dir, "signature", sig.signature, strlen(sig.signature), err, errlen)
		? -1
		: 0;
	chip_identity_sig_free(&sig);
	return r;
}

int launch_prepare(struct instance *in, bool *refused, char *err, size_t errlen)
{
	*refused = false;
	struct planned *pp = plan_of(in, err, errlen);
	if (!pp)
		return -1;
	int r = -1;
	in->i_ncards = pp->pl.pl_ncards;
	char dir[PATH_MAX], jail[PATH_MAX + 8], run[PATH_MAX + 8];
	inst_dir(in, dir, sizeof(dir));
	sfmt(jail, sizeof(jail), "%s/jail", g_ctl.c_state_dir);
	sfmt(run, sizeof(run), "%s/run", g_ctl.c_state_dir);
	mkdir(jail, 0700);
	mkdir(run, 0711);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		sfmt(err, errlen, "%s: %s", dir, strerror(errno));
		goto out;
	}
	/* Measure first: nothing starts unless everything verifies (each executable once). */
	for (unsigned i = 0; i < pp->pl.pl_nprocs; i++) {
		const struct launch_proc *p = &pp->pl.pl_procs[i];
		bool seen = false;
		for (unsigned k = 0; k < i && !seen; k++)
			seen = !strcmp(pp->pl.pl_procs[k].lp_exe, p->lp_exe);
		int fd = -1;
		if (seen)
			continue;
		if (chip_measure_exec(g_ctl.c_chip, p->lp_exe, &fd, NULL, err, errlen)) {
			*refused = true;
			goto out;
		}
		close(fd);
	}
	if (pp->ls.ls_nnics) {
		/* The records are written here (map_put), not by the cards: nitrod's (root's),
		 * 0755, read-only in the jails. A folder an older nitrod made world-writable loses
		 * what the cards wrote there (records nobody vouches for). */
		const char *map = pp->le.le_vpc_map;
		if ((mkdir(map, 0755) < 0 && errno != EEXIST) ||
		    chown(map, geteuid(), getegid()) < 0 || chmod(map, 0755) < 0) {
			sfmt(err, errlen, "VPC mapping folder %s: %s", map, strerror(errno));
			goto out;
		}
		map_purge_foreign(map);
	}
	if (check_boot(&pp->ls, in->i_owner, err, errlen)) {
		*refused = true;
		goto out;
	}
	if (mkdir_owned(pp->le.le_run_dir, in->i_uid, in->i_gid) < 0) {
		sfmt(err, errlen, "run folder %s: %s", pp->le.le_run_dir, strerror(errno));
		goto out;
	}
	/* The TPM card's state: the instance's own folder, the card's uid only (its NV files
	 * are encrypted under the instance's key besides). */
	if (pp->ls.ls_tpm && mkdir_owned(pp->ls.ls_tpm_state, in->i_uid, in->i_gid) < 0) {
		sfmt(err, errlen, "TPM state folder %s: %s", pp->ls.ls_tpm_state, strerror(errno));
		goto out;
	}
	/* The instance store's folder, the card's uid only (istore.h). */
	if (in->i_spec.s_istore_mib && istore_prepare(in, err, errlen) < 0) {
		*refused = true;
		goto out;
	}
	/* Jailed processes get cgroup limits, or nitrod was told to do without. */
	if (g_ctl.c_jail && !g_ctl.c_cgroups && !g_ctl.c_no_cgroups) {
		sfmt(err, errlen, "%s (start nitrod with --no-cgroups to run without limits)",
		     g_ctl.c_cgroup_err[0] ? g_ctl.c_cgroup_err : "cgroups unavailable");
		goto out;
	}
	for (unsigned i = 0; i < pp->ls.ls_nnics; i++)
		if (sign_identity(in, &pp->ls, i, err, errlen))
			goto out;
	write_plan(in, pp);
	r = 0;
out:
	free(pp);
	return r;
}

/* Empties and removes a folder of sockets and key copies (no subfolders: entries are
 * unlinked, never followed). */
static void remove_flat(const char *dir)
{
	DIR *d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d)))
			if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	}
	rmdir(dir);
}

/* --- NitroTPM --- */

/* Writes data to path through a temporary name (never half a file at path). */
static int write_whole(const char *path, const void *data, size_t len)
{
	char tmp[PATH_MAX + 16];
	sfmt(tmp, sizeof(tmp), "%s.tmp", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -1;
	bool ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	int e = errno;
	close(fd);
	if (!ok || rename(tmp, path) < 0) {
		e = ok ? errno : e;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

int launch_tpm_endorse(struct instance *in, char *err, size_t errlen)
{
	if (!in->i_spec.s_tpm)
		return 0;
	struct planned *pp = plan_of(in, err, errlen);
	if (!pp)
		return -1;
	const struct launch_proc *card = NULL;
	for (unsigned i = 0; i < pp->pl.pl_ncards && !card; i++)
		if (pp->pl.pl_procs[i].lp_kind == LAUNCH_CARD_TPM)
			card = &pp->pl.pl_procs[i];
	struct tpm_ek_certs certs = {0};
	char ca[PATH_MAX], cn[64], cert[2][PATH_MAX], e[600];
	int r = -1;
	if (!card) {
		sfmt(err, errlen, "no TPM card in the plan");
		goto out;
	}
	launch_ek_ca_dir(ca, sizeof(ca));
	sfmt(cn, sizeof(cn), "NitroTPM EK %s", in->i_id);
	inst_tpm_cert_path(in, false, cert[0], sizeof(cert[0]));
	inst_tpm_cert_path(in, true, cert[1], sizeof(cert[1]));
	r = tpm_endorse(card->lp_socket, ca, cn, &certs, e, sizeof(e));
	if (r < 0)
		sfmt(err, errlen, "TPM endorsement: %s", e);
	/* nitrod's own copies, outside the card's reach: what the EK route serves (also
	 * those issued before a failure: the TPM holds them now). */
	for (int k = 0; k < 2; k++) {
		const uint8_t *der = k ? certs.ec_rsa : certs.ec_ecc;
		size_t len = k ? certs.ec_rsa_len : certs.ec_ecc_len;
		if (der && write_whole(cert[k], der, len) < 0 && r == 0) {
			sfmt(err, errlen, "TPM endorsement: %s: %s", cert[k], strerror(errno));
			r = -1;
		}
		if (r == 0 && !der && access(cert[k], R_OK) < 0)
			warnmsg("%s: the TPM is endorsed but %s is missing: the EK route has "
				"nothing to serve",
				in->i_id, cert[k]);
	}
out:
	tpm_ek_certs_free(&certs);
	free(pp);
	return r;
}

void launch_tpm_destroy(const struct instance *in)
{
	char d[PATH_MAX];
	for (int k = 0; k < 2; k++) {
		inst_tpm_cert_path(in, k, d, sizeof(d));
		if (unlink(d) < 0 && errno != ENOENT)
			warnmsg("%s: %s: %s", in->i_id, d, strerror(errno));
	}
	inst_tpm_dir(in, d, sizeof(d));
	remove_flat(d);
	if (access(d, F_OK) == 0)
		warnmsg("%s: the TPM state folder %s could not be removed", in->i_id, d);
}

void launch_cleanup(const struct instance *in)
{
	char d[PATH_MAX];
	run_dir(in, d, sizeof(d));
	remove_flat(d);
	/* An instance launched by an older nitrod had a copy of the master key here for its
	 * cards (they get only their volume's key now): it goes with the instance. */
	key_dir(in, d, sizeof(d));
	remove_flat(d);
	istore_remove(in); /* the card ended: its key is gone, now its folder */
	map_remove(in);	   /* peers stop sending to its NICs */
	if (g_ctl.c_cgroups && cg_remove(g_ctl.c_cgroup_root, in->i_id, NULL) < 0)
		warnmsg("%s: cgroup %s/%s/%s not removed: %s", in->i_id, g_ctl.c_cgroup_root,
			CG_NITRO, in->i_id, strerror(errno));
}
