/* NitroTPM in nitro-hv: CRB registers, the card connection, measured boot (contract in
 * tpm.h; the protocol in src/tpm/proto.h and docs/tpm.md). */
#include "hv/tpm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "tpm/client.h"
#include "tpm/proto.h"

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int extend(int sock, uint32_t pcr, const struct tpm2_digests *d)
{
	uint8_t cmd[256], rsp[TPM_PROTO_BUF];
	size_t n = tpm2_cmd_pcr_extend(cmd, sizeof(cmd), pcr, d), rl = 0;
	return n && tpm_client_xcmd(sock, cmd, n, rsp, &rl) == TPM2_RC_SUCCESS ? 0 : -1;
}

static int disable_platform(int sock)
{
	uint8_t cmd[64], rsp[TPM_PROTO_BUF];
	size_t n = tpm2_cmd_disable_platform(cmd, sizeof(cmd)), rl = 0;
	return n && tpm_client_xcmd(sock, cmd, n, rsp, &rl) == TPM2_RC_SUCCESS ? 0 : -1;
}

/* HELLO, INIT, TPM2_Startup(CLEAR), the allocated banks (first time). After a card
 * restart the card resumes the TPM's volatile state it saved (Startup then answers
 * TPM_RC_INITIALIZE: PCRs, objects and sessions as the guest left them); when it has none,
 * the TPM starts from reset and the boot measurements are replayed. */
static int power_on(struct tpm_dev *t, int sock, bool first, char *err, size_t errlen)
{
	uint8_t cmd[64], rsp[TPM_PROTO_BUF];
	size_t n, rl = 0;
	if (tpm_client_hello_init(sock, t->t_memfd, first ? TPM_INIT_POWER_ON : TPM_INIT_RESUME) <
	    0)
		RETURN_ERR(-1, "TPM card %s: no answer to HELLO or INIT", t->t_path);
	n = tpm2_cmd_startup(cmd, sizeof(cmd), TPM2_SU_CLEAR);
	uint32_t rc = tpm_client_xcmd(sock, cmd, n, rsp, &rl);
	if (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)
		RETURN_ERR(-1, "TPM card %s: TPM2_Startup: response code %#x", t->t_path, rc);
	if (!first && rc == TPM2_RC_INITIALIZE) {
		atomic_fetch_add(&t->t_resumed, 1);
		return 0;
	}
	if (first) {
		n = tpm2_cmd_get_pcrs(cmd, sizeof(cmd));
		if (tpm_client_xcmd(sock, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS ||
		    tpm2_parse_pcrs(rsp, rl, t->t_algs, &t->t_nalgs) < 0 || !t->t_nalgs)
			RETURN_ERR(-1, "TPM card %s: no usable PCR bank", t->t_path);
	}
	for (unsigned i = 0; i < t->t_nmeas; i++)
		if (extend(sock, t->t_meas[i].tm_pcr, &t->t_meas[i].tm_digests) < 0)
			RETURN_ERR(-1, "TPM card %s: replaying measurement %u failed", t->t_path,
				   i);
	if (!first && disable_platform(sock) < 0)
		RETURN_ERR(-1, "TPM card %s: cannot disable the platform hierarchy", t->t_path);
	return 0;
}

int tpm_seal_platform(struct tpm_dev *t, char *err, size_t errlen)
{
	if (disable_platform(t->t_sock) < 0)
		RETURN_ERR(-1, "TPM card %s: cannot disable the platform hierarchy", t->t_path);
	return 0;
}

int tpm_open(struct tpm_dev *t, struct vm *vm, const char *socket, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->t_vm = vm;
	t->t_sock = t->t_kick = t->t_memfd = -1;
	pthread_mutex_init(&t->t_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&t->t_done, &ca);
	pthread_condattr_destroy(&ca);
	if (strlen(socket) >= sizeof(t->t_path))
		RETURN_ERR(-1, "--tpm %s: socket path too long", socket);
	snprintf(t->t_path, sizeof(t->t_path), "%s", socket);
	t->t_memfd = memfd_create("nitro-crb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (t->t_memfd < 0 || ftruncate(t->t_memfd, TPM_CRB_BUF_SIZE) < 0 ||
	    fcntl(t->t_memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		RETURN_ERR(-1, "TPM buffer: %s", strerror(errno));
	t->t_buf = mmap(NULL, TPM_CRB_BUF_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, t->t_memfd, 0);
	if (t->t_buf == MAP_FAILED)
		RETURN_ERR(-1, "TPM buffer: mmap: %s", strerror(errno));
	struct kvm_userspace_memory_region slot = {
	    .slot = TPM_KVM_SLOT,
	    .guest_phys_addr = TPM_CRB_BUF,
	    .memory_size = TPM_CRB_BUF_SIZE,
	    .userspace_addr = (uint64_t)(uintptr_t)t->t_buf,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0)
		RETURN_ERR(-1, "TPM buffer: KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	crb_init(&t->t_crb, TPM_CRB_BUF, TPM_CRB_BUF_SIZE);
	t->t_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (t->t_kick < 0)
		RETURN_ERR(-1, "TPM: eventfd: %s", strerror(errno));
	t->t_sock = tpm_client_connect(socket);
	if (t->t_sock < 0)
		RETURN_ERR(-1, "TPM card %s: %s", socket, strerror(errno));
	return power_on(t, t->t_sock, true, err, errlen);
}

int tpm_measure(struct tpm_dev *t, struct tpm_log *log, uint32_t pcr, const void *data, size_t len,
		const struct tpm2_digests *known, const char *what, char *err, size_t errlen)
{
	if (t->t_nmeas == TPM_MAX_MEASURE)
		RETURN_ERR(-1, "TPM: too many measurements");
	struct tpm_measurement *m = &t->t_meas[t->t_nmeas];
	m->tm_pcr = pcr;
	m->tm_digests.count = t->t_nalgs;
	for (unsigned i = 0; i < t->t_nalgs; i++) {
		unsigned k = 0;
		while (known && k < known->count && known->alg[k] != t->t_algs[i])
			k++;
		m->tm_digests.alg[i] = t->t_algs[i];
		if (known && k < known->count)
			memcpy(m->tm_digests.digest[i], known->digest[k],
			       tpm2_digest_size(t->t_algs[i]));
		else if (tpm_hash(t->t_algs[i], data, len, m->tm_digests.digest[i]) < 0)
			RETURN_ERR(-1, "TPM: cannot hash the %s", what);
	}
	if (extend(t->t_sock, pcr, &m->tm_digests) < 0)
		RETURN_ERR(-1, "TPM card %s: extending PCR %u failed", t->t_path, pcr);
	tpm_log_add(log, pcr, TPM_EV_IPL, &m->tm_digests, what, (uint32_t)strlen(what));
	if (log->lg_error)
		RETURN_ERR(-1, "TPM: the event log area is full");
	t->t_nmeas++;
	return 0;
}

/* With t_lock held: the guest's command is done (START clears); a vCPU waiting in
 * crb_mmio returns. */
static void complete_locked(struct tpm_dev *t)
{
	crb_complete(&t->t_crb);
	pthread_cond_broadcast(&t->t_done);
}

/* With t_lock held: the guest's command fails with rc (response in the shared page). */
static void fail_locked(struct tpm_dev *t, uint32_t rc)
{
	tpm2_rsp_error(t->t_buf, TPM_CRB_BUF_SIZE, rc);
	complete_locked(t);
	atomic_fetch_add(&t->t_failed, 1);
}

static void crb_mmio(void *opaque, uint64_t off, uint8_t *data, unsigned size, bool is_write)
{
	struct tpm_dev *t = opaque;
	pthread_mutex_lock(&t->t_lock);
	if (crb_access(&t->t_crb, off, data, size, is_write) == CRB_ACT_START) {
		uint8_t hdr[TPM2_HEADER];
		memcpy(hdr, t->t_buf, sizeof(hdr)); /* the guest may change it any time */
		uint32_t n = tpm2_cmd_size(hdr, sizeof(hdr));
		if (n < TPM2_HEADER || n > TPM_CRB_BUF_SIZE) {
			fail_locked(t, TPM2_RC_COMMAND_SIZE);
		} else {
			t->t_pending = true;
			uint64_t one = 1;
			if (write(t->t_kick, &one, sizeof(one)) < 0 && errno != EAGAIN)
				fail_locked(t, TPM2_RC_FAILURE);
			/* A short command (GetRandom, PCR reads) is done before the guest's
			 * first poll of START, which would otherwise sleep a millisecond. */
			struct timespec until;
			clock_gettime(CLOCK_MONOTONIC, &until);
			until.tv_nsec += TPM_SYNC_WAIT_US * 1000L;
			if (until.tv_nsec >= 1000000000L) {
				until.tv_sec++;
				until.tv_nsec -= 1000000000L;
			}
			while (crb_busy(&t->t_crb) &&
			       pthread_cond_timedwait(&t->t_done, &t->t_lock, &until) == 0)
				;
		}
	}
	pthread_mutex_unlock(&t->t_lock);
}

static void disconnect(struct tpm_dev *t)
{
	close(t->t_sock);
	t->t_sock = -1;
	pthread_mutex_lock(&t->t_lock);
	if (t->t_inflight) {
		t->t_inflight = false;
		fail_locked(t, TPM2_RC_FAILURE);
	}
	pthread_mutex_unlock(&t->t_lock);
}

/* Sends the waiting command, if any. The command's length is read from the shared page
 * now; the card copies exactly that many bytes and the TPM checks them. */
static void send_pending(struct tpm_dev *t)
{
	pthread_mutex_lock(&t->t_lock);
	if (!t->t_pending || t->t_inflight) {
		pthread_mutex_unlock(&t->t_lock);
		return;
	}
	uint8_t hdr[TPM2_HEADER];
	memcpy(hdr, t->t_buf, sizeof(hdr));
	uint32_t n = tpm2_cmd_size(hdr, sizeof(hdr));
	t->t_pending = false;
	if (n < TPM2_HEADER || n > TPM_CRB_BUF_SIZE) {
		fail_locked(t, TPM2_RC_COMMAND_SIZE);
		pthread_mutex_unlock(&t->t_lock);
		return;
	}
	t->t_inflight = true;
	pthread_mutex_unlock(&t->t_lock);
	atomic_fetch_add(&t->t_commands, 1);
	if (tpm_client_send(t->t_sock, TPM_MSG_CMD, n, NULL, -1) < 0)
		disconnect(t);
}

static void on_reply(struct tpm_dev *t)
{
	struct tpm_msg m;
	if (tpm_client_recv(t->t_sock, &m, NULL, 0) < 0) {
		disconnect(t);
		return;
	}
	pthread_mutex_lock(&t->t_lock);
	bool ok = t->t_inflight && m.type == (TPM_MSG_CMD | TPM_PROTO_REPLY);
	if (ok) {
		t->t_inflight = false;
		if (m.status || m.len < TPM2_HEADER)
			fail_locked(t, TPM2_RC_FAILURE);
		else
			complete_locked(t);
	}
	pthread_mutex_unlock(&t->t_lock);
	if (!ok)
		disconnect(t); /* a reply to nothing: the card is confused */
}

/* No card: retry every 20 ms; a command waiting longer than TPM_RECONNECT_MS fails. */
static void reconnect(struct tpm_dev *t)
{
	uint64_t since = now_ms();
	for (;;) {
		int s = tpm_client_connect(t->t_path);
		if (s >= 0) {
			char err[256];
			unsigned long resumed = atomic_load(&t->t_resumed);
			if (power_on(t, s, false, err, sizeof(err)) == 0) {
				t->t_sock = s;
				atomic_fetch_add(&t->t_reconnects, 1);
				fprintf(stderr, "nitro-hv: TPM card back on %s (%s)\n", t->t_path,
					atomic_load(&t->t_resumed) != resumed
					    ? "TPM state resumed"
					    : "TPM reset, boot measurements replayed");
				return;
			}
			fprintf(stderr, "nitro-hv: %s\n", err);
			close(s);
		}
		pthread_mutex_lock(&t->t_lock);
		if (t->t_pending && now_ms() - since > TPM_RECONNECT_MS) {
			t->t_pending = false;
			fail_locked(t, TPM2_RC_FAILURE);
		}
		if (!t->t_pending)
			since = now_ms();
		pthread_mutex_unlock(&t->t_lock);
		nanosleep(&(struct timespec){0, 20000000}, NULL);
	}
}

static void *tpm_thread(void *arg)
{
	struct tpm_dev *t = arg;
	for (;;) {
		if (t->t_sock < 0) {
			reconnect(t);
			send_pending(t);
			continue;
		}
		struct pollfd p[2] = {{t->t_kick, POLLIN, 0}, {t->t_sock, POLLIN, 0}};
		if (poll(p, 2, -1) < 0)
			continue;
		if (p[0].revents & POLLIN) {
			uint64_t v;
			if (read(t->t_kick, &v, sizeof(v)) < 0)
				v = 0;
		}
		if (p[1].revents) {
			on_reply(t);
			continue;
		}
		send_pending(t);
	}
	return NULL;
}

int tpm_start(struct tpm_dev *t, char *err, size_t errlen)
{
	if (mmio_register(&t->t_vm->vm_mmio, TPM_CRB_BASE, TPM_CRB_SIZE, crb_mmio, t) < 0)
		RETURN_ERR(-1, "TPM: the CRB range is taken");
	int e = pthread_create(&t->t_thread, NULL, tpm_thread, t);
	if (e)
		RETURN_ERR(-1, "TPM: thread: %s", strerror(e));
	pthread_setname_np(t->t_thread, "tpm");
	return 0;
}
