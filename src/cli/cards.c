/* nitro run --volume and the start of a plan's cards: one process per card, started before
 * the hypervisor and stopped after it. Each card serves its device on a unix socket in a
 * private run folder; nitro-hv connects to it as the vhost-user frontend. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "enclave/chain_fd.h"
#include "launch/resolver.h"
#include "lib/util.h"
#include "volume/volume.h"
#include "vpcmap/underlay.h"

#define CARD_START_MS 30000 /* a card starts in ms; an emulated host can be 100x slower */

int instance_store_parse(const char *spec, struct launch_volume *v, char *err, size_t errlen)
{
	launch_volume_init(v);
	v->lv_bus = LAUNCH_BUS_NVME;
	v->lv_instance = true;
	char buf[PATH_MAX];
	if (strlen(spec) >= sizeof(buf))
		RETURN_ERR(2, "--instance-store: value too long");
	snprintf(buf, sizeof(buf), "%s", spec);
	char *save = NULL, *tok = strtok_r(buf, ",", &save);
	uint64_t size;
	if (!tok || !parse_size(tok, &size) || size == 0 || size % 512)
		RETURN_ERR(2, "--instance-store %s: expected SIZE (a multiple of 512, like 1G)",
			   spec);
	snprintf(v->lv_path, sizeof(v->lv_path), "%s", tok);
	const char *tmp = getenv("TMPDIR");
	snprintf(v->lv_dir, sizeof(v->lv_dir), "%s", tmp && *tmp ? tmp : "/tmp");
	while ((tok = strtok_r(NULL, ",", &save))) {
		if (!strncmp(tok, "dir=", 4) && tok[4])
			snprintf(v->lv_dir, sizeof(v->lv_dir), "%s", tok + 4);
		else
			RETURN_ERR(2, "--instance-store %s: unknown option %s (dir=DIR)", spec,
				   tok);
	}
	return 0;
}

int volume_parse(const char *spec, struct launch_volume *v, char *err, size_t errlen)
{
	launch_volume_init(v);
	v->lv_bus = LAUNCH_BUS_NVME; /* nitro run's default, as on EC2 */
	char buf[PATH_MAX];
	if (strlen(spec) >= sizeof(buf))
		RETURN_ERR(2, "--volume: value too long");
	snprintf(buf, sizeof(buf), "%s", spec);
	char *save = NULL, *tok = strtok_r(buf, ",", &save);
	if (!tok || !*tok)
		RETURN_ERR(2, "--volume %s: missing path", spec);
	snprintf(v->lv_path, sizeof(v->lv_path), "%s", tok);
	while ((tok = strtok_r(NULL, ",", &save))) {
		uint64_t n;
		if (!strncmp(tok, "iops=", 5)) {
			if (!parse_u64(tok + 5, 0, LAUNCH_MAX_IOPS, &n))
				RETURN_ERR(2, "--volume %s: iops must be 0 to %u", spec,
					   LAUNCH_MAX_IOPS);
			v->lv_iops = (int64_t)n;
		} else if (!strncmp(tok, "throughput=", 11)) {
			if (!parse_u64(tok + 11, 0, LAUNCH_MAX_THROUGHPUT_MIB, &n))
				RETURN_ERR(2, "--volume %s: throughput must be 0 to %u MiB/s", spec,
					   LAUNCH_MAX_THROUGHPUT_MIB);
			v->lv_throughput_mib = (int64_t)n;
		} else if (!strcmp(tok, "readonly")) {
			v->lv_readonly = true;
		} else if (!strcmp(tok, "gp2")) {
			v->lv_gp2 = true;
		} else if (!strncmp(tok, "header=", 7) && tok[7]) {
			snprintf(v->lv_header, sizeof(v->lv_header), "%s", tok + 7);
		} else if (!strcmp(tok, "bus=nvme") || !strcmp(tok, "bus=virtio")) {
			v->lv_bus = strcmp(tok, "bus=nvme") ? LAUNCH_BUS_VIRTIO : LAUNCH_BUS_NVME;
		} else if (!strncmp(tok, "device=", 7) && tok[7] &&
			   strlen(tok + 7) < sizeof(v->lv_device)) {
			snprintf(v->lv_device, sizeof(v->lv_device), "%s", tok + 7);
		} else if (!strncmp(tok, "ctl=", 4) && tok[4]) {
			if (strlen(tok + 4) >= sizeof(v->lv_ctl))
				RETURN_ERR(2, "--volume %s: ctl= path longer than %zu bytes", spec,
					   sizeof(v->lv_ctl) - 1);
			snprintf(v->lv_ctl, sizeof(v->lv_ctl), "%s", tok + 4);
		} else {
			RETURN_ERR(2,
				   "--volume %s: unknown option %s (iops=N, throughput=MiB, gp2, "
				   "header=PATH, readonly, bus=nvme|virtio, device=NAME, ctl=PATH)",
				   spec, tok);
		}
	}
	if (v->lv_gp2 && v->lv_iops != LAUNCH_UNSET)
		RETURN_ERR(2, "--volume %s: gp2 and iops= exclude each other", spec);
	/* Network and null volumes are checked by their card (a missing NBD server is
	 * reported by it before the guest starts). */
	static const char *const remote[] = {"nbd://", "nbd+unix://", "nbds://", "nbds+unix://",
					     "null:"};
	for (size_t i = 0; i < ARRAY_SIZE(remote); i++)
		if (!strncmp(v->lv_path, remote[i], strlen(remote[i])))
			return 0;
	if (v->lv_header[0])
		RETURN_ERR(2, "--volume %s: header= is for nbd:// volumes", spec);
	v->lv_file = true;
	if (access(v->lv_path, R_OK | (v->lv_readonly ? 0 : W_OK)) != 0)
		RETURN_ERR(1, "volume %s: %s", v->lv_path, strerror(errno));
	/* An encrypted volume's card gets its data key from here (--key-fd), as from nitrod;
	 * a file that is no volume is the card's to report. */
	struct volume vi;
	char e2[512];
	if (vol_info(v->lv_path, &vi, e2, sizeof(e2)) == 0 && vi.v_encrypted)
		v->lv_key_fd = true;
	return 0;
}

void proc_stdio(const struct launch_proc *p)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int from[3] = {null, null, null};
	for (unsigned i = 0; i < p->lp_nfds; i++) {
		int to = p->lp_fds[i].lf_fd;
		if (to < 0 || to > 2)
			continue; /* no other role yet */
		switch (p->lp_fds[i].lf_role) {
		case LAUNCH_FD_CONSOLE_IN:
			from[to] = 0;
			break;
		case LAUNCH_FD_CONSOLE_OUT:
			from[to] = 1;
			break;
		case LAUNCH_FD_LOG:
			from[to] = 2;
			break;
		case LAUNCH_FD_TPM_KEY: /* pipes and sockets card_spawn makes */
		case LAUNCH_FD_VOLUME_KEY:
		case LAUNCH_FD_UNDERLAY:
		case LAUNCH_FD_DNS:
		case LAUNCH_FD_IGW:
		case LAUNCH_FD_IGW_NAT:
		case LAUNCH_FD_NSM_CHAIN:
			break;
		}
	}
	/* dup first (0..2 may be each other's source), then put in place. */
	int tmp[3];
	for (int i = 0; i < 3; i++)
		tmp[i] = fcntl(from[i], F_DUPFD_CLOEXEC, 3);
	for (int i = 0; i < 3; i++)
		if (tmp[i] >= 0)
			dup2(tmp[i], i);
}

/* Starts one card and waits for its socket; when it fails *pid is the card to stop (the
 * card never listened), or -1 (it ended: reaped here). */
/* A card that keeps LAUNCH_FD_TPM_KEY gets its state key (derived here from its --state
 * folder) through a pipe at that number; the read end, or -1 when it keeps none. */
static int key_pipe(const struct launch_proc *p, int *at)
{
	*at = launch_proc_fd(p, LAUNCH_FD_TPM_KEY, 0);
	if (*at < 0)
		return -1;
	const char *state = NULL;
	for (unsigned k = 1; k + 1 < p->lp_argc; k++)
		if (!strcmp(p->lp_argv[k], "--state"))
			state = p->lp_argv[k + 1];
	if (!state)
		die("run: %s: no --state for its key", p->lp_name);
	uint8_t key[32];
	int fds[2];
	tpm_state_key(state, key);
	if (pipe2(fds, O_CLOEXEC) < 0 || write(fds[1], key, sizeof(key)) != sizeof(key))
		die("run: %s: cannot pass its key: %s", p->lp_name, strerror(errno));
	memset(key, 0, sizeof(key));
	close(fds[1]);
	return fds[0];
}

/* The internet gateway links: one SOCK_SEQPACKET pair per NIC, made when the NAT (started
 * first) asks for its end; the card takes the other. Each end is closed here once passed. */
static int igw_pair[LAUNCH_MAX_NICS][2];
static bool igw_made[LAUNCH_MAX_NICS];

static int igw_end(unsigned nic, bool nat)
{
	if (nic >= LAUNCH_MAX_NICS)
		die("run: internet gateway of NIC %u", nic);
	if (!igw_made[nic]) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, igw_pair[nic]) < 0)
			die("run: internet gateway link: %s", strerror(errno));
		igw_made[nic] = true;
	}
	int fd = igw_pair[nic][nat ? 0 : 1];
	igw_pair[nic][nat ? 0 : 1] = -1;
	if (fd < 0)
		die("run: internet gateway link of NIC %u passed twice", nic);
	return fd;
}

/* The NSM card's attestation chain (the state folder's root and host intermediate, made
 * there once: `nitro enclave root-cert` prints that root) on a pipe: the read end. */
static int nsm_chain_pipe(void)
{
	char dir[PATH_MAX], err[512];
	struct pki_cert root, host;
	int pp[2];
	enclave_state_dir(NULL, dir, sizeof(dir));
	if (pki_chain_open(dir, &root, &host, err, sizeof(err)) < 0)
		die("run: the NSM card's chain: %s", err);
	if (pipe2(pp, O_CLOEXEC) < 0)
		die("run: chain pipe: %s", strerror(errno));
	int r = chain_fd_write(pp[1], &root, &host, err, sizeof(err));
	close(pp[1]);
	pki_cert_free(&host);
	pki_cert_free(&root);
	if (r < 0)
		die("run: %s", err);
	return pp[0];
}

/* The other fds a card gets (launch.h roles), made as nitrod makes them: an encrypted
 * volume's data key on a pipe, a VPC card's bound underlay socket and its socket to the
 * host's resolver; the internet gateway link's ends. */
static void role_fds(const struct launch_proc *p, const struct launch_env *e,
		     int fds[LAUNCH_MAX_FDS])
{
	char err[600];
	for (unsigned i = 0; i < p->lp_nfds; i++) {
		fds[i] = -1;
		if (p->lp_fds[i].lf_role == LAUNCH_FD_VOLUME_KEY) {
			uint8_t dk[VOL_KEY_BYTES];
			int pp[2];
			if (vol_unwrap_key(p->lp_argv[p->lp_argc - 1], dk, err, sizeof(err)) < 0)
				die("run: %s", err);
			bool ok = pipe2(pp, O_CLOEXEC) == 0 &&
				  write(pp[1], dk, sizeof(dk)) == (ssize_t)sizeof(dk);
			explicit_bzero(dk, sizeof(dk));
			if (!ok)
				die("run: key pipe: %s", strerror(errno));
			close(pp[1]);
			fds[i] = pp[0];
		} else if (p->lp_fds[i].lf_role == LAUNCH_FD_IGW ||
			   p->lp_fds[i].lf_role == LAUNCH_FD_IGW_NAT) {
			fds[i] = igw_end(p->lp_fds[i].lf_item,
					 p->lp_fds[i].lf_role == LAUNCH_FD_IGW_NAT);
		} else if (p->lp_fds[i].lf_role == LAUNCH_FD_UNDERLAY) {
			struct sockaddr_in sa;
			const char *a = e->le_underlay[0] ? e->le_underlay : UL_DEFAULT_ADDR;
			if (ul_parse_addr(a, &sa, err, sizeof(err)) < 0)
				die("run: %s", err);
			int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
			if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0)
				die("run: underlay %s: %s", a, strerror(errno));
			fds[i] = s;
		} else if (p->lp_fds[i].lf_role == LAUNCH_FD_NSM_CHAIN) {
			fds[i] = nsm_chain_pipe();
		} else if (p->lp_fds[i].lf_role == LAUNCH_FD_DNS) {
			if ((fds[i] = launch_dns_socket(e->le_dns, err, sizeof(err))) < 0)
				die("run: %s", err);
		}
	}
}

static bool card_spawn(const struct launch_proc *p, const struct launch_env *e, pid_t *pid)
{
	int key_at, key = key_pipe(p, &key_at);
	int fds[LAUNCH_MAX_FDS];
	role_fds(p, e, fds);
	*pid = fork();
	if (*pid < 0)
		die("run: fork: %s", strerror(errno));
	if (*pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive nitro run */
		proc_stdio(p);
		if (key >= 0 && (key == key_at ? fcntl(key, F_SETFD, 0) : dup2(key, key_at)) < 0)
			_exit(127); /* dup2 leaves the new fd open across exec */
		/* passed fds: parked above every number in play, then put at theirs */
		for (unsigned i = 0; i < p->lp_nfds; i++)
			if (fds[i] >= 0)
				fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 100);
		for (unsigned i = 0; i < p->lp_nfds; i++)
			if (fds[i] >= 0 && dup2(fds[i], p->lp_fds[i].lf_fd) < 0)
				_exit(127);
		for (unsigned i = 0; i < p->lp_nenv; i++)
			putenv(p->lp_env[i]);
		execv(p->lp_exe, p->lp_argv);
		fprintf(stderr, "nitro: run: cannot start %s: %s\n", p->lp_exe, strerror(errno));
		_exit(127);
	}
	if (key >= 0)
		close(key);
	for (unsigned i = 0; i < p->lp_nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (!p->lp_socket) /* the NAT: nothing to wait for (the card finds it on its fd) */
		return true;
	/* Cards rename their socket into place once it listens (src/cards/lib/backend.c).
	 * The card's stderr is ours: its own reason is printed above; say how it ended, so
	 * that a card that died without a word (a signal) or hung is never a mystery. */
	for (int ms = 0; ms < CARD_START_MS; ms += 10) {
		struct stat st;
		int status;
		if (stat(p->lp_socket, &st) == 0 && S_ISSOCK(st.st_mode))
			return true;
		if (waitpid(*pid, &status, WNOHANG) == *pid) {
			*pid = -1;
			if (WIFSIGNALED(status))
				warnmsg("run: %s was killed by signal %d (%s) before it served",
					p->lp_name, WTERMSIG(status), strsignal(WTERMSIG(status)));
			else
				warnmsg("run: %s exited with status %d before it served",
					p->lp_name, WEXITSTATUS(status));
			return false;
		}
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	warnmsg("run: %s did not serve within %d s; stopped", p->lp_name, CARD_START_MS / 1000);
	return false;
}

void cards_start(const struct launch_plan *p, const struct launch_env *e,
		 pid_t pids[LAUNCH_MAX_CARDS])
{
	for (unsigned i = 0; i < LAUNCH_MAX_CARDS; i++)
		pids[i] = 0;
	for (unsigned i = 0; i < p->pl_ncards; i++) {
		const struct launch_proc *c = launch_plan_card(p, i);
		if (card_spawn(c, e, &pids[i]))
			continue;
		/* the argument that names the device: the volume, or the nic's --ip */
		const char *what = c->lp_argv[c->lp_argc - 1];
		for (unsigned k = 1; k + 1 < c->lp_argc; k++)
			if (c->lp_kind == LAUNCH_CARD_VPC && !strcmp(c->lp_argv[k], "--ip"))
				what = c->lp_argv[k + 1];
		char msg[PATH_MAX + 64];
		snprintf(msg, sizeof(msg), "run: the card for %s %s did not start (see above)",
			 c->lp_kind == LAUNCH_CARD_VPC	   ? "--nic ip"
			 : c->lp_kind == LAUNCH_CARD_TPM   ? "the TPM, state"
			 : c->lp_kind == LAUNCH_CARD_VSOCK ? "--vsock, socket"
			 : c->lp_kind == LAUNCH_CARD_NSM   ? "the NSM,"
							   : "volume",
			 c->lp_kind == LAUNCH_CARD_TPM	 ? c->lp_argv[4]
			 : c->lp_kind == LAUNCH_CARD_NSM ? c->lp_exe
							 : what);
		for (unsigned k = i + 1; k < LAUNCH_MAX_CARDS; k++)
			pids[k] = 0;
		cards_stop(p, e, pids);
		die("%s", msg);
	}
}

bool cards_respawn(const struct launch_plan *p, unsigned idx, pid_t pids[LAUNCH_MAX_CARDS])
{
	const struct launch_proc *c = launch_plan_card(p, idx);
	if (!c)
		return false;
	unlink(c->lp_socket);
	if (c->lp_enclave)
		unlink(c->lp_enclave);
	/* (the TPM card: no underlay of its own; a VPC card would get the default address) */
	static const struct launch_env no_env;
	return card_spawn(c, &no_env, &pids[idx]);
}

void cards_stop(const struct launch_plan *p, const struct launch_env *e,
		pid_t pids[LAUNCH_MAX_CARDS])
{
	for (unsigned i = 0; i < p->pl_ncards; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (unsigned i = 0; i < p->pl_ncards; i++) {
		const struct launch_proc *c = launch_plan_card(p, i);
		if (pids[i] > 0)
			while (waitpid(pids[i], NULL, 0) < 0 && errno == EINTR)
				;
		pids[i] = 0;
		if (c->lp_socket)
			unlink(c->lp_socket);
		if (c->lp_ctl)
			unlink(c->lp_ctl);
		if (c->lp_enclave)
			unlink(c->lp_enclave);
	}
	/* the enclaves' debug consoles (nitro-hv --enclave-console-dir) go with the instance */
	DIR *d = opendir(e->le_run_dir);
	for (struct dirent *de; d && (de = readdir(d));)
		if (!strncmp(de->d_name, "enclave-", 8) && strstr(de->d_name, ".log"))
			unlinkat(dirfd(d), de->d_name, 0);
	if (d)
		closedir(d);
	rmdir(e->le_run_dir);
}
