/* nitro-card-tpm: one TPM 2.0 per instance, libtpms behind the hv <-> card protocol
 * (src/tpm/proto.h, docs/tpm.md).
 *
 *   nitro-card-tpm --socket-path PATH [--state DIR --key-fd N]
 *
 * Listens on PATH (SOCK_SEQPACKET; bound under a temporary name and renamed into place
 * once it listens) and serves one nitro-hv at a time; a later one (a rebooted or restarted
 * hypervisor) waits in the backlog. The TPM's NV state lives in DIR, encrypted with the
 * 32-byte key read from fd N (nvstore.h; the folder is flock'ed: one card per state);
 * without --state it lives in this process only.
 * After set-up the card enters its seccomp allow-list ("card-tpm", or NITRO_SECCOMP's
 * value). Guest commands are copied out of the shared page before libtpms sees them.
 * SIGTERM/SIGINT end it (status 0); SIGUSR1 prints counters on stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <libtpms/tpm_error.h>
#include <libtpms/tpm_library.h>
#include <libtpms/tpm_memory.h>
#include <openssl/crypto.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "cards/lib/cardmain.h"
#include "cards/lib/loop.h"
#include "cards/tpm/nvstore.h"
#include "lib/util.h"
#include "sandbox/sandbox.h"
#include "tpm/proto.h"
#include "tpm/tpm2.h"

#define RESUME_BLOB "resume"

static const char usage[] = "usage: nitro-card-tpm --socket-path PATH [--state DIR --key-fd N]\n";

static struct {
	struct loop loop;
	int listen_fd, conn;
	char path[108];
	uint8_t *shared; /* the CRB page, from HELLO */
	bool running;	 /* libtpms initialised */
	bool fresh;	 /* no permall was stored: libtpms manufactured a new TPM */
	unsigned long commands, inits, rejected, save_failures;
} g = {.listen_fd = -1, .conn = -1};

/* libtpms callbacks: NV through nvstore.c. */
static TPM_RESULT cb_nvram_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_load(unsigned char **data, uint32_t *length, uint32_t tpm_number,
			  const char *name)
{
	(void)tpm_number;
	uint8_t *blob;
	uint32_t len;
	int r = nv_load(name, &blob, &len);
	if (r == 1) {
		if (!strcmp(name, "permall"))
			g.fresh = true;
		return TPM_RETRY; /* nothing stored: libtpms manufactures */
	}
	if (r < 0) {
		fprintf(stderr, "nitro-card-tpm: state %s cannot be read or decrypted\n", name);
		return TPM_FAIL;
	}
	if (TPM_Malloc(data, len ? len : 1) != TPM_SUCCESS) {
		OPENSSL_cleanse(blob, len);
		free(blob);
		return TPM_FAIL;
	}
	memcpy(*data, blob, len);
	*length = len;
	OPENSSL_cleanse(blob, len);
	free(blob);
	return TPM_SUCCESS;
}

static TPM_RESULT cb_store(const unsigned char *data, uint32_t length, uint32_t tpm_number,
			   const char *name)
{
	(void)tpm_number;
	if (nv_store(name, data, length) < 0) {
		fprintf(stderr, "nitro-card-tpm: cannot store state %s\n", name);
		return TPM_FAIL;
	}
	return TPM_SUCCESS;
}

static TPM_RESULT cb_delete(uint32_t tpm_number, const char *name, TPM_BOOL must_exist)
{
	(void)tpm_number;
	(void)must_exist;
	return nv_delete(name) < 0 ? TPM_FAIL : TPM_SUCCESS;
}

static TPM_RESULT cb_io_init(void)
{
	return TPM_SUCCESS;
}

static TPM_RESULT cb_locality(TPM_MODIFIER_INDICATOR *loc, uint32_t tpm_number)
{
	(void)tpm_number;
	*loc = 0;
	return TPM_SUCCESS;
}

static TPM_RESULT cb_pp(TPM_BOOL *pp, uint32_t tpm_number)
{
	(void)tpm_number;
	*pp = 0;
	return TPM_SUCCESS;
}

/* _TPM_Init: drop volatile state, reload NV (manufacturing on first use). With resume (a
 * hypervisor reconnecting after this card's predecessor died), the volatile state saved
 * after the last command that changed it is restored first, when there is one: the TPM
 * then carries on started, PCRs, objects and sessions as they were. */
static int tpm_power_on(bool resume)
{
	if (g.running)
		TPMLIB_Terminate();
	uint8_t *blob = NULL;
	uint32_t len = 0;
	if (resume && nv_load(RESUME_BLOB, &blob, &len) == 0 &&
	    TPMLIB_SetState(TPMLIB_STATE_VOLATILE, blob, len) != TPM_SUCCESS)
		fprintf(stderr, "nitro-card-tpm: the saved volatile state is refused\n");
	if (blob) {
		OPENSSL_cleanse(blob, len);
		free(blob);
	}
	g.running = TPMLIB_MainInit() == TPM_SUCCESS;
	if (!g.running && blob) { /* a state libtpms cannot resume: a plain power-on */
		TPMLIB_SetState(TPMLIB_STATE_VOLATILE, NULL, 0);
		g.running = TPMLIB_MainInit() == TPM_SUCCESS;
	}
	g.inits++;
	return g.running ? 0 : -EIO;
}

/* Commands that change no volatile state when they carry no session (a session's nonces
 * change with every use): after these the saved state is not rewritten, which keeps a
 * GetRandom or a PCR read as quick as without it. */
static bool read_only(const uint8_t *cmd, uint32_t len)
{
	if (len < TPM2_HEADER || be16_get(cmd) != TPM2_ST_NO_SESSIONS)
		return false;
	switch (be32_get(cmd + 6)) {
	case TPM2_CC_GET_RANDOM:
	case TPM2_CC_GET_CAPABILITY:
	case TPM2_CC_PCR_READ:
	case TPM2_CC_READ_PUBLIC:
	case TPM2_CC_NV_READ_PUBLIC:
	case TPM2_CC_GET_TEST_RESULT:
	case TPM2_CC_READ_CLOCK:
		return true;
	}
	return false;
}

/* Saves libtpms' volatile state (encrypted as the NV blobs, without fsync: it only has to
 * outlive this process) for a successor card to resume from. */
static void save_volatile(void)
{
	unsigned char *st = NULL;
	uint32_t len = 0;
	if (TPMLIB_GetState(TPMLIB_STATE_VOLATILE, &st, &len) != TPM_SUCCESS ||
	    nv_store_fast(RESUME_BLOB, st, len) < 0) {
		/* a restart then resumes from an older state, or from a power-on */
		g.save_failures++;
		nv_delete(RESUME_BLOB);
	}
	if (st)
		OPENSSL_cleanse(st, len);
	free(st);
}

/* Runs cmd (a private copy) and returns the response length, or 0 on failure. */
static uint32_t tpm_run(const uint8_t *cmd, uint32_t len, uint8_t *rsp)
{
	unsigned char *out = NULL;
	uint32_t olen = 0, osize = 0;
	if (!g.running ||
	    TPMLIB_Process(&out, &olen, &osize, (unsigned char *)cmd, len) != TPM_SUCCESS ||
	    olen < TPM2_HEADER || olen > TPM_PROTO_BUF) {
		free(out);
		return 0;
	}
	memcpy(rsp, out, olen);
	free(out);
	g.commands++;
	return olen;
}

/* A new TPM gets PCRs in the SHA-256 and SHA-384 banks (libtpms allocates SHA-1, -256,
 * -384 and -512): nitro-hv measures the boot into every allocated bank, and the launcher
 * hands it exactly these two digests of kernel and initrd (docs/tpm.md). Startup, PCR_Allocate
 * (platform auth, still empty), Shutdown, then a fresh _TPM_Init makes it effective; the allocation
 * is in the NV state. */
static int allocate_banks(void)
{
	uint8_t cmd[128], rsp[TPM_PROTO_BUF];
	size_t n;
	if (!(n = tpm2_cmd_startup(cmd, sizeof(cmd), TPM2_SU_CLEAR)) ||
	    tpm2_rsp_code(rsp, tpm_run(cmd, (uint32_t)n, rsp)) != TPM2_RC_SUCCESS)
		return -1;
	if (!(n = tpm2_cmd_allocate_banks(cmd, sizeof(cmd))) ||
	    tpm2_rsp_code(rsp, tpm_run(cmd, (uint32_t)n, rsp)) != TPM2_RC_SUCCESS)
		return -1;
	if (!(n = tpm2_cmd_shutdown(cmd, sizeof(cmd), TPM2_SU_CLEAR)) ||
	    tpm2_rsp_code(rsp, tpm_run(cmd, (uint32_t)n, rsp)) != TPM2_RC_SUCCESS)
		return -1;
	g.fresh = false;
	return tpm_power_on(false);
}

static int reply(uint16_t type, uint32_t len, uint32_t status, const void *payload)
{
	uint8_t hdr[TPM_PROTO_MSG];
	tpm_msg_encode(
	    hdr, &(struct tpm_msg){.type = type | TPM_PROTO_REPLY, .len = len, .status = status});
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, payload ? len : 0}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = payload ? 2 : 1};
	return sendmsg(g.conn, &mh, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* HELLO: the shared page, a sealed memfd of exactly TPM_PROTO_BUF bytes. */
static uint32_t take_page(int fd)
{
	struct stat st;
	int seals = fcntl(fd, F_GET_SEALS);
	if (fstat(fd, &st) < 0 || st.st_size != TPM_PROTO_BUF || seals < 0 ||
	    !(seals & F_SEAL_SHRINK))
		return EINVAL; /* a page that could shrink under us would SIGBUS the card */
	void *p = mmap(NULL, TPM_PROTO_BUF, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return (uint32_t)errno;
	if (g.shared)
		munmap(g.shared, TPM_PROTO_BUF);
	g.shared = p;
	return 0;
}

static void drop_conn(void)
{
	loop_del(&g.loop, g.conn);
	close(g.conn);
	g.conn = -1;
	if (g.shared)
		munmap(g.shared, TPM_PROTO_BUF);
	g.shared = NULL;
}

static void on_accept(struct loop *l, int fd, uint32_t ev, void *opaque);

static void on_conn(struct loop *l, int fd, uint32_t ev, void *opaque)
{
	(void)ev;
	(void)opaque;
	uint8_t buf[TPM_PROTO_MSG + TPM_PROTO_BUF];
	union {
		char b[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl.b,
			    .msg_controllen = sizeof(ctl.b)};
	ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	int rfd = -1;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
			for (size_t k = 0; k < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); k++) {
				int f;
				memcpy(&f, CMSG_DATA(c) + k * sizeof(int), sizeof(int));
				if (rfd < 0)
					rfd = f;
				else
					close(f);
			}
	struct tpm_msg m;
	if (n <= 0 || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    tpm_msg_decode(buf, (size_t)n, &m) < 0 || (m.type & TPM_PROTO_REPLY) ||
	    ((m.type == TPM_MSG_HELLO) != (rfd >= 0))) {
		if (n > 0)
			g.rejected++;
		if (rfd >= 0)
			close(rfd);
		drop_conn(); /* hung up, or not speaking the protocol */
		loop_add(l, g.listen_fd, on_accept, NULL, NULL, 0);
		return;
	}
	uint8_t cmd[TPM_PROTO_BUF], rsp[TPM_PROTO_BUF];
	uint32_t status = 0, len = 0;
	switch (m.type) {
	case TPM_MSG_HELLO:
		status = m.len == TPM_PROTO_BUF ? take_page(rfd) : EINVAL;
		close(rfd);
		len = status ? 0 : TPM_PROTO_BUF;
		reply(m.type, len, status, NULL);
		break;
	case TPM_MSG_INIT:
		if (m.len != TPM_INIT_RESUME)
			nv_delete(RESUME_BLOB); /* a power-on starts from reset, for good */
		status = tpm_power_on(m.len == TPM_INIT_RESUME) < 0 ? EIO : 0;
		reply(m.type, 0, status, NULL);
		break;
	case TPM_MSG_CMD:
		if (!g.shared) {
			reply(m.type, 0, EINVAL, NULL);
			break;
		}
		memcpy(cmd, g.shared, m.len); /* one copy: the guest may write the page */
		len = tpm_run(cmd, m.len, rsp);
		if (len)
			memcpy(g.shared, rsp, len);
		/* The guest's changes are kept for a successor card. nitro-hv's own commands
		 * (XCMD: start-up, boot measurements) are not saved: without a saved state a
		 * successor starts from reset and nitro-hv replays them. */
		if (len && !read_only(cmd, m.len))
			save_volatile();
		reply(m.type, len, len ? 0 : EIO, NULL);
		break;
	case TPM_MSG_XCMD:
		memcpy(cmd, buf + TPM_PROTO_MSG, m.len);
		len = tpm_run(cmd, m.len, rsp);
		reply(m.type, len, len ? 0 : EIO, len ? rsp : NULL);
		break;
	}
}

static void on_accept(struct loop *l, int fd, uint32_t ev, void *opaque)
{
	(void)ev;
	(void)opaque;
	int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return;
	if (g.conn >= 0) {
		close(c);
		return;
	}
	g.conn = c;
	loop_del(l, fd); /* one hypervisor at a time; the next waits in the backlog */
	char err[128];
	if (loop_add(l, c, on_conn, NULL, err, sizeof(err)) < 0) {
		close(c);
		g.conn = -1;
		loop_add(l, fd, on_accept, NULL, NULL, 0);
	}
}

static void on_usr1(void *opaque)
{
	(void)opaque;
	fprintf(stderr,
		"nitro-card-tpm: %lu commands, %lu power-ons, %lu bad messages, %lu state saves "
		"failed\n",
		g.commands, g.inits, g.rejected, g.save_failures);
}

static int listen_on(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char tmp[sizeof(a.sun_path)];
	if (snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid()) >= (int)sizeof(tmp))
		die_usage("--socket-path %s: too long", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", tmp);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	unlink(tmp);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0)
		die("--socket-path %s: %s", path, strerror(errno));
	struct stat st;
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		die("--socket-path %s: exists and is not a socket", path);
	if (rename(tmp, path) < 0)
		die("--socket-path %s: %s", path, strerror(errno));
	snprintf(g.path, sizeof(g.path), "%s", path);
	return s;
}

static void read_key(int fd, uint8_t key[NV_KEY_BYTES])
{
	size_t got = 0;
	uint8_t extra;
	while (got < NV_KEY_BYTES) {
		ssize_t r = read(fd, key + got, NV_KEY_BYTES - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("--key-fd %d: expected %d bytes", fd, NV_KEY_BYTES);
		got += (size_t)r;
	}
	if (read(fd, &extra, 1) != 0)
		die("--key-fd %d: more than %d bytes", fd, NV_KEY_BYTES);
	close(fd);
}

int main(int argc, char **argv)
{
	util_set_prog("nitro-card-tpm");
	const char *sock = NULL, *state = NULL, *v;
	int key_fd = -1;
	for (int i = 1; i < argc; i++) {
		if ((v = card_opt("--socket-path", argc, argv, &i, usage))) {
			sock = v;
		} else if ((v = card_opt("--state", argc, argv, &i, usage))) {
			state = v;
		} else if ((v = card_opt("--key-fd", argc, argv, &i, usage))) {
			uint64_t n;
			if (!parse_u64(v, 3, 1024, &n))
				die_usage("--key-fd: expected an fd number >= 3, got '%s'", v);
			key_fd = (int)n;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage, stdout);
			return 0;
		} else {
			die_usage("%s: unknown argument\n%s", argv[i], usage);
		}
	}
	if (!sock)
		die_usage("--socket-path is required\n%s", usage);
	if (!state != (key_fd < 0))
		die_usage("--state and --key-fd go together\n%s", usage);
	uint8_t key[NV_KEY_BYTES] = {0};
	int dirfd = -1;
	if (state) {
		read_key(key_fd, key);
		dirfd = open(state, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dirfd < 0)
			die("--state %s: %s", state, strerror(errno));
		/* One TPM per state: a second card on the same folder would interleave writes. */
		if (flock(dirfd, LOCK_EX | LOCK_NB) < 0)
			die("--state %s: in use by another TPM card", state);
	}
	char err[256];
	nv_init(dirfd, key, err, sizeof(err));
	OPENSSL_cleanse(key, sizeof(key));

	static struct libtpms_callbacks cbs = {
	    .sizeOfStruct = sizeof(struct libtpms_callbacks),
	    .tpm_nvram_init = cb_nvram_init,
	    .tpm_nvram_loaddata = cb_load,
	    .tpm_nvram_storedata = cb_store,
	    .tpm_nvram_deletename = cb_delete,
	    .tpm_io_init = cb_io_init,
	    .tpm_io_getlocality = cb_locality,
	    .tpm_io_getphysicalpresence = cb_pp,
	};
	if (TPMLIB_ChooseTPMVersion(TPMLIB_TPM_VERSION_2) != TPM_SUCCESS ||
	    TPMLIB_RegisterCallbacks(&cbs) != TPM_SUCCESS)
		die("libtpms: cannot select TPM 2.0");
	/* Manufacture (first run) or load the state now: a bad key fails here, not later. */
	if (tpm_power_on(false) < 0)
		die("libtpms: the TPM does not start (state in %s unreadable?)",
		    state ? state : "memory");
	if (g.fresh && allocate_banks() < 0)
		die("libtpms: cannot allocate the SHA-256 and SHA-384 PCR banks of a new TPM");

	int usr1 = -1;
	if (card_loop_init(&g.loop, &usr1, on_usr1, NULL, err, sizeof(err)) < 0)
		die("%s", err);
	g.listen_fd = listen_on(sock);
	if (loop_add(&g.loop, g.listen_fd, on_accept, NULL, err, sizeof(err)) < 0)
		die("%s", err);
	const char *kind = getenv("NITRO_SECCOMP");
	if (sandbox_enter(kind && *kind ? kind : "card-tpm", err, sizeof(err)) < 0)
		die("%s", err);
	int r = loop_run(&g.loop);
	unlink(g.path);
	if (g.running)
		TPMLIB_Terminate();
	return r < 0 ? 1 : 0;
}
