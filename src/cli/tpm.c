/* nitro run --tpm [--tpm-state DIR]: one nitro-card-tpm for the guest, started before the
 * hypervisor, restarted when it dies while the guest runs, stopped after it.
 *
 * The card's state key is derived here, never stored: HMAC-SHA256 over "nitro-tpm-state
 * v1" and the state folder's instance id (DIR/instance-id, 32 random hex digits made on
 * first use) under the host master key; it reaches the card through a pipe (--key-fd).
 * Without --tpm-state the state lives in a folder inside the run folder that is removed
 * when the run ends: the TPM lives and dies with the run. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "lib/util.h"
#include "securitychip/ekca.h"
#include "tpm/client.h"
#include "tpm/tpm2.h"
#include "volume/volume.h"

#define TPM_ID_HEX 32

bool tpm_arg(int argc, char **argv, int *i, struct run_tpm *t)
{
	if (!strcmp(argv[*i], "--tpm")) {
		t->rt_on = true;
		return true;
	}
	if (!strcmp(argv[*i], "--tpm-state")) {
		if (*i + 1 >= argc || !argv[*i + 1][0])
			die_usage("run: --tpm-state: missing folder (see `nitro run --help`)");
		t->rt_on = true;
		t->rt_state_arg = argv[++*i];
		return true;
	}
	return false;
}

void tpm_check_state(const struct run_tpm *t)
{
	struct stat st;
	if (!t->rt_state_arg)
		return;
	if (mkdir(t->rt_state_arg, 0700) < 0 && errno != EEXIST)
		die("run: --tpm-state %s: %s", t->rt_state_arg, strerror(errno));
	if (stat(t->rt_state_arg, &st) < 0 || !S_ISDIR(st.st_mode))
		die("run: --tpm-state %s: not a folder", t->rt_state_arg);
}

/* DIR/instance-id: read, or made (O_EXCL) when missing. */
static void instance_id(const char *dir, char id[TPM_ID_HEX + 1])
{
	char path[PATH_MAX + 16];
	snprintf(path, sizeof(path), "%s/instance-id", dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0 && errno == ENOENT) {
		uint8_t r[TPM_ID_HEX / 2];
		if (RAND_bytes(r, sizeof(r)) != 1)
			die("run: --tpm: no randomness");
		for (unsigned k = 0; k < sizeof(r); k++)
			snprintf(id + 2 * k, 3, "%02x", r[k]);
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, id, TPM_ID_HEX) != TPM_ID_HEX || fsync(fd) < 0)
			die("run: --tpm-state %s: cannot write instance-id: %s", dir,
			    strerror(errno));
		close(fd);
		return;
	}
	if (fd < 0 || read(fd, id, TPM_ID_HEX) != TPM_ID_HEX)
		die("run: --tpm-state %s: cannot read instance-id", dir);
	close(fd);
	id[TPM_ID_HEX] = 0;
}

static void derive_key(const char *dir, uint8_t key[32])
{
	char err[512], id[TPM_ID_HEX + 1];
	uint8_t mk[VOL_MASTER_KEY_BYTES];
	instance_id(dir, id);
	if (vol_master_key(mk, err, sizeof(err)) < 0)
		die("run: --tpm: %s", err);
	uint8_t msg[64];
	size_t n = (size_t)snprintf((char *)msg, sizeof(msg), "nitro-tpm-state v1 %s", id);
	unsigned len = 0;
	if (!HMAC(EVP_sha256(), mk, sizeof(mk), msg, n, key, &len) || len != 32)
		die("run: --tpm: key derivation failed");
	OPENSSL_cleanse(mk, sizeof(mk));
}

/* The EK CA's folder: $NITRO_STATE/ek-ca (beside the master key). */
void tpm_ek_ca_dir(char *out, size_t len)
{
	char mk[PATH_MAX];
	vol_master_key_path(mk, sizeof(mk));
	char *slash = strrchr(mk, '/');
	if (slash)
		*slash = 0;
	if ((size_t)snprintf(out, len, "%.*s/ek-ca", PATH_MAX - 16, mk) >= len)
		die("run: --tpm: $NITRO_STATE too long");
}

static void write_file(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		die("run: --tpm: cannot write %s: %s", path, strerror(errno));
	close(fd);
}

/* Endorsement, once per TPM (docs/tpm.md): over the card's own protocol, before nitro-hv
 * connects and while the platform hierarchy is still enabled: if the ECC EK certificate
 * index is not defined yet, create the EK (template L-2), have the chip's EK CA certify
 * it, and store the DER certificate at NV index 0x01c0000a. The certificate is also left
 * in the state folder (ek-cert.der) for verifiers. */
static void provision_ek(struct run_tpm *t)
{
	uint8_t cmd[1024], rsp[TPM_PROTO_BUF], x[32], y[32], *der = NULL;
	size_t n, rl = 0, derlen = 0;
	uint32_t h;
	char err[512], ca[PATH_MAX], id[TPM_ID_HEX + 1], cn[64];
	int page = memfd_create("nitro-crb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int s = tpm_client_connect(t->rt_socket);
	if (page < 0 || ftruncate(page, TPM_PROTO_BUF) < 0 ||
	    fcntl(page, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0 || s < 0 ||
	    tpm_client_hello_init(s, page) < 0)
		die("run: --tpm: the TPM card does not answer");
	n = tpm2_cmd_startup(cmd, sizeof(cmd), TPM2_SU_CLEAR);
	uint32_t rc = tpm_client_xcmd(s, cmd, n, rsp, &rl);
	if (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE)
		die("run: --tpm: TPM2_Startup: %#x", rc);
	n = tpm2_cmd_nv_read_public(cmd, sizeof(cmd), TPM2_NV_EK_CERT_ECC);
	if (tpm_client_xcmd(s, cmd, n, rsp, &rl) == TPM2_RC_SUCCESS)
		goto done; /* endorsed already */
	n = tpm2_cmd_create_ek_ecc(cmd, sizeof(cmd));
	if (tpm_client_xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS ||
	    tpm2_parse_ek_ecc(rsp, rl, &h, x, y) < 0)
		die("run: --tpm: cannot create the endorsement key");
	n = tpm2_cmd_flush(cmd, sizeof(cmd), h);
	tpm_client_xcmd(s, cmd, n, rsp, &rl);
	instance_id(t->rt_state, id);
	snprintf(cn, sizeof(cn), "NitroTPM EK %.16s", id);
	tpm_ek_ca_dir(ca, sizeof(ca));
	if (ekca_issue(ca, x, y, cn, &der, &derlen, err, sizeof(err)) < 0)
		die("run: --tpm: %s", err);
	n = tpm2_cmd_nv_define_cert(cmd, sizeof(cmd), TPM2_NV_EK_CERT_ECC, (uint16_t)derlen);
	if (derlen > 2048 || tpm_client_xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS)
		die("run: --tpm: cannot define the EK certificate's NV index");
	for (size_t off = 0; off < derlen; off += TPM2_NV_MAX_WRITE) {
		size_t k = derlen - off < TPM2_NV_MAX_WRITE ? derlen - off : TPM2_NV_MAX_WRITE;
		n = tpm2_cmd_nv_write(cmd, sizeof(cmd), TPM2_NV_EK_CERT_ECC, der + off, (uint16_t)k,
				      (uint16_t)off);
		if (tpm_client_xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS)
			die("run: --tpm: cannot write the EK certificate");
	}
	write_file(t->rt_state, "ek-cert.der", der, derlen);
	free(der);
done:
	close(s);
	close(page);
}

void tpm_card_start(struct run_tpm *t, const char *run_dir)
{
	if (t->rt_state_arg) {
		if (mkdir(t->rt_state_arg, 0700) < 0 && errno != EEXIST)
			die("run: --tpm-state %s: %s", t->rt_state_arg, strerror(errno));
		if (!realpath(t->rt_state_arg, t->rt_state))
			die("run: --tpm-state %s: %s", t->rt_state_arg, strerror(errno));
	} else {
		if (snprintf(t->rt_state, sizeof(t->rt_state), "%s/tpm-state", run_dir) >=
		    (int)sizeof(t->rt_state))
			die("run: %s: path too long", run_dir);
		if (mkdir(t->rt_state, 0700) < 0)
			die("run: %s: %s", t->rt_state, strerror(errno));
		t->rt_temp = true;
	}
	if (snprintf(t->rt_socket, sizeof(t->rt_socket), "%s/tpm.sock", run_dir) >=
	    (int)sizeof(t->rt_socket))
		die("run: %s: path too long", run_dir);
	t->rt_pid = -1;
	if (!tpm_card_spawn(t))
		die("run: the TPM card did not start (see above)");
	provision_ek(t);
}

bool tpm_card_spawn(struct run_tpm *t)
{
	uint8_t key[32];
	int p[2];
	derive_key(t->rt_state, key);
	if (pipe2(p, 0) < 0)
		die("run: pipe: %s", strerror(errno));
	if (write(p[1], key, sizeof(key)) != sizeof(key))
		die("run: --tpm: cannot pass the key");
	OPENSSL_cleanse(key, sizeof(key));
	close(p[1]);
	fcntl(p[0], F_SETFD, 0);
	char card[PATH_MAX], fdnum[16];
	exe_sibling("nitro-card-tpm", card, sizeof(card));
	snprintf(fdnum, sizeof(fdnum), "%d", p[0]);
	char *argv[] = {card,	     "--socket-path", t->rt_socket, "--state",
			t->rt_state, "--key-fd",      fdnum,	    NULL};
	unlink(t->rt_socket);
	bool ok = card_spawn(card, argv, t->rt_socket, &t->rt_pid);
	close(p[0]);
	return ok;
}

static void rm_state(const char *dir)
{
	static const char *const files[] = {"permall.nvs", "volatilestate.nvs", "savestate.nvs",
					    "permall.tmp", "volatilestate.tmp", "savestate.tmp",
					    "instance-id", "ek-cert.der"};
	char path[PATH_MAX + 32];
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

void tpm_card_stop(struct run_tpm *t)
{
	if (!t->rt_on)
		return;
	if (t->rt_pid > 0) {
		kill(t->rt_pid, SIGTERM);
		while (waitpid(t->rt_pid, NULL, 0) < 0 && errno == EINTR)
			;
		t->rt_pid = -1;
	}
	unlink(t->rt_socket);
	if (t->rt_temp)
		rm_state(t->rt_state);
}
