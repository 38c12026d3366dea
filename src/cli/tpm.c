/* nitro run --tpm [--tpm-state DIR]: the TPM card's state folder and key, and its
 * endorsement. The card itself is one of the launch plan's cards (src/launch), started by
 * cards.c before the hypervisor, restarted by run.c when it dies while the guest runs.
 *
 * The card's state key is derived here, never stored: HMAC-SHA256 over "nitro-tpm-state
 * v1" and the state folder's instance id (DIR/instance-id, 32 random hex digits made on
 * first use) under the host master key; it reaches the card through a pipe (--key-fd).
 * Without --tpm-state the state lives in a folder inside the run folder that is removed
 * when the run ends: the TPM lives and dies with the run. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "endorse/endorse.h"
#include "lib/util.h"
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

void tpm_state_key(const char *dir, uint8_t key[32])
{
	char err[512], id[TPM_ID_HEX + 1];
	instance_id(dir, id);
	if (tpm_key_derive(id, key, err, sizeof(err)) < 0)
		die("run: --tpm: %s", err);
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
void tpm_provision(const char *socket, const char *state)
{
	struct tpm_ek_certs certs;
	char err[512], ca[PATH_MAX], id[TPM_ID_HEX + 1], cn[64];
	instance_id(state, id);
	snprintf(cn, sizeof(cn), "NitroTPM EK %.16s", id);
	tpm_ek_ca_dir(ca, sizeof(ca));
	int r = tpm_endorse(socket, ca, cn, &certs, err, sizeof(err));
	if (certs.ec_ecc)
		write_file(state, "ek-cert.der", certs.ec_ecc, certs.ec_ecc_len);
	if (certs.ec_rsa)
		write_file(state, "ek-cert-rsa.der", certs.ec_rsa, certs.ec_rsa_len);
	tpm_ek_certs_free(&certs);
	if (r < 0)
		die("run: --tpm: %s", err);
}

void tpm_state_remove(const char *dir)
{
	static const char *const files[] = {"permall.nvs", "volatilestate.nvs", "savestate.nvs",
					    "permall.tmp", "volatilestate.tmp", "savestate.tmp",
					    "instance-id", "ek-cert.der",	"ek-cert-rsa.der"};
	char path[PATH_MAX + 32];
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

static void hex(const uint8_t *d, unsigned n, char *out)
{
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The digests of a file by its identity (device, inode, size, mtime, ctime), in
 * CACHE/digests/D-I: a kernel or initrd booted again costs no pass. nitro-hv checks the
 * SHA-384 against the bytes it loads, so a stale or edited entry is refused there. */
static void cache_name(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "%s/digests/%llx-%llx", cache_dir(), (unsigned long long)st->st_dev,
		 (unsigned long long)st->st_ino);
}

static void identity(const struct stat *st, char *out, size_t len)
{
	snprintf(out, len, "%lld %lld.%09ld %lld.%09ld", (long long)st->st_size,
		 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec, (long long)st->st_ctim.tv_sec,
		 st->st_ctim.tv_nsec);
}

static bool cache_get(const struct stat *st, char *h384, char *h256)
{
	char fn[PATH_MAX], id[128], line[512], want[128 + 2 * 48 + 2 * 32 + 4];
	cache_name(st, fn, sizeof(fn));
	FILE *f = fopen(fn, "re");
	if (!f)
		return false;
	bool ok = fgets(line, sizeof(line), f) != NULL;
	fclose(f);
	identity(st, id, sizeof(id));
	char a[2 * 48 + 1], b[2 * 32 + 1];
	if (!ok || sscanf(line, "%*s %*s %*s %96s %64s", a, b) != 2 || strlen(a) != 96 ||
	    strlen(b) != 64)
		return false;
	snprintf(want, sizeof(want), "%s %s %s\n", id, a, b);
	if (strcmp(line, want))
		return false;
	memcpy(h384, a, sizeof(a));
	memcpy(h256, b, sizeof(b));
	return true;
}

static void cache_put(const struct stat *st, const char *h384, const char *h256)
{
	char fn[PATH_MAX], tmp[PATH_MAX + 16], id[128];
	snprintf(fn, sizeof(fn), "%s/digests", cache_dir());
	mkdir(cache_dir(), 0755);
	if (mkdir(fn, 0755) < 0 && errno != EEXIST)
		return; /* no cache: the next run reads the file again */
	cache_name(st, fn, sizeof(fn));
	snprintf(tmp, sizeof(tmp), "%s.%d", fn, (int)getpid());
	identity(st, id, sizeof(id));
	FILE *f = fopen(tmp, "we");
	if (!f)
		return;
	bool ok = fprintf(f, "%s %s %s\n", id, h384, h256) > 0;
	if (fclose(f) != 0 || !ok || rename(tmp, fn) < 0)
		unlink(tmp);
}

/* One pass over path: both digests (or the cached ones). */
static void file_digests(const char *path, char *h384, char *h256)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		die("run: %s: %s", path, strerror(errno));
	if (cache_get(&st, h384, h256)) {
		close(fd);
		return;
	}
	EVP_MD_CTX *a = EVP_MD_CTX_new(), *b = EVP_MD_CTX_new();
	if (!a || !b || EVP_DigestInit_ex(a, EVP_sha384(), NULL) != 1 ||
	    EVP_DigestInit_ex(b, EVP_sha256(), NULL) != 1)
		die("run: SHA-384/SHA-256 unavailable");
	static uint8_t buf[1 << 16];
	off_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("run: %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		EVP_DigestUpdate(a, buf, (size_t)r);
		EVP_DigestUpdate(b, buf, (size_t)r);
		got += r;
	}
	close(fd);
	uint8_t d[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(a, d, &n);
	hex(d, n, h384);
	EVP_DigestFinal_ex(b, d, &n);
	hex(d, n, h256);
	EVP_MD_CTX_free(a);
	EVP_MD_CTX_free(b);
	if (got == st.st_size) /* not a file that changed while it was read */
		cache_put(&st, h384, h256);
}

void tpm_boot_digests(const char *kernel, const char *initrd, struct launch_spec *s)
{
	file_digests(kernel, s->ls_kernel_sha384, s->ls_kernel_sha256);
	if (initrd && initrd[0])
		file_digests(initrd, s->ls_initrd_sha384, s->ls_initrd_sha256);
}
