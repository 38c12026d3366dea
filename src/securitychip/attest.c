/* The attestation document: event log and PCRs signed by the host attestation key. */
#include "securitychip/chip_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool nonce_ok(const char *n)
{
	size_t len = n ? strlen(n) : 0;
	if (len < 1 || len > 128)
		return false;
	for (size_t i = 0; i < len; i++) {
		char ch = n[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || strchr("._:+/=-", ch)))
			return false;
	}
	return true;
}

/* Loads STATE_DIR/attestation-key.pem, or makes it (0600) the first time. Lock held. */
int chip_attest_key(struct chip *c, char *err, size_t errlen)
{
	if (c->c_attest_key)
		return 0;
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/attestation-key.pem", c->c_dir);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
			close(fd);
			RETURN_ERR(-1, "attestation key %s: not a private (0600) regular file",
				   path);
		}
		FILE *f = fdopen(fd, "r");
		EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
		if (f)
			fclose(f);
		else
			close(fd);
		if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
			EVP_PKEY_free(k);
			RETURN_ERR(-1, "attestation key %s: not an Ed25519 private key in PEM",
				   path);
		}
		c->c_attest_key = k;
		return 0;
	}
	if (errno != ENOENT)
		RETURN_ERR(-1, "attestation key %s: %s", path, strerror(errno));
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (!k)
		RETURN_ERR(-1, "attestation key: Ed25519 key generation failed");
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ok = f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1 &&
		 fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (f)
		fclose(f);
	else if (fd >= 0)
		close(fd);
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		EVP_PKEY_free(k);
		RETURN_ERR(-1, "attestation key %s: cannot write it", path);
	}
	c->c_attest_key = k;
	return 0;
}

static char *pubkey_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *out = NULL;
	if (b && PEM_write_bio_PUBKEY(b, k) == 1) {
		char *p;
		long n = BIO_get_mem_data(b, &p);
		out = strndup(p, (size_t)n);
	}
	BIO_free(b);
	return out;
}

char *chip_attestation(struct chip *c, const char *nonce, char *err, size_t errlen)
{
	if (!nonce_ok(nonce))
		RETURN_ERR(NULL,
			   "attestation nonce: 1..128 characters of [A-Za-z0-9._:+/=-] needed");
	pthread_mutex_lock(&c->c_lock);
	if (chip_attest_key(c, err, errlen) < 0) {
		pthread_mutex_unlock(&c->c_lock);
		return NULL;
	}
	json_t *doc = json_object();
	json_t *pcrs = json_object();
	json_t *log = json_array();
	EVP_MD_CTX *lctx = EVP_MD_CTX_new();
	EVP_DigestInit_ex(lctx, EVP_sha384(), NULL);
	char hex[2 * CHIP_DIGEST_LEN + 1];
	/* A compacted log starts with its checkpoint line: hashed like the event lines. */
	json_t *cp = chip_checkpoint_json(c);
	if (cp) {
		EVP_DigestUpdate(lctx, c->c_checkpoint, strlen(c->c_checkpoint));
		EVP_DigestUpdate(lctx, "\n", 1);
	}
	for (size_t i = 0; i < c->c_nevents; i++) {
		struct chip_event *e = &c->c_events[i];
		chip_hex(e->ev_digest, CHIP_DIGEST_LEN, hex);
		size_t n;
		char *line = chip_event_line(e, &n);
		if (line)
			EVP_DigestUpdate(lctx, line, n);
		free(line);
		json_array_append_new(log, json_pack("{s:I,s:I,s:s,s:s,s:s}", "seq",
						     (json_int_t)e->ev_seq, "pcr",
						     (json_int_t)e->ev_pcr, "type", e->ev_type,
						     "sha384", hex, "description", e->ev_desc));
	}
	uint8_t ld[CHIP_DIGEST_LEN];
	unsigned int ldn = 0;
	EVP_DigestFinal_ex(lctx, ld, &ldn);
	EVP_MD_CTX_free(lctx);

	size_t cap = 256 + CHIP_NR_PCRS * 120;
	char *data = malloc(cap);
	size_t off = (size_t)snprintf(data, cap, "nitro-attestation-v1\nnonce=%s\n", nonce);
	for (unsigned p = 0; p < CHIP_NR_PCRS; p++) {
		chip_hex(c->c_pcr[p], CHIP_DIGEST_LEN, hex);
		char key[8];
		snprintf(key, sizeof(key), "%u", p);
		json_object_set_new(pcrs, key, json_string(hex));
		off += (size_t)snprintf(data + off, cap - off, "pcr%u=%s\n", p, hex);
	}
	chip_hex(ld, CHIP_DIGEST_LEN, hex);
	if (cp)
		off += (size_t)snprintf(data + off, cap - off, "checkpoint=%lu\n", c->c_base_seq);
	off += (size_t)snprintf(data + off, cap - off, "events=%zu\neventlog-sha384=%s\n",
				c->c_nevents, hex);

	uint8_t sig[64];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *sctx = EVP_MD_CTX_new();
	int ok = sctx && EVP_DigestSignInit(sctx, NULL, NULL, NULL, c->c_attest_key) == 1 &&
		 EVP_DigestSign(sctx, sig, &siglen, (const uint8_t *)data, off) == 1;
	EVP_MD_CTX_free(sctx);
	char *pem = pubkey_pem(c->c_attest_key);
	pthread_mutex_unlock(&c->c_lock);
	char *out = NULL;
	if (ok && pem) {
		char b64[4 * ((sizeof(sig) + 2) / 3) + 1];
		EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
		json_object_set_new(doc, "version", json_integer(1));
		json_object_set_new(doc, "algorithm", json_string("ed25519"));
		json_object_set_new(doc, "nonce", json_string(nonce));
		json_object_set_new(doc, "pcrs", pcrs);
		if (cp)
			json_object_set(doc, "checkpoint", cp);
		json_object_set_new(doc, "event_log", log);
		json_object_set_new(doc, "signed_data", json_string(data));
		json_object_set_new(doc, "signature", json_string(b64));
		json_object_set_new(doc, "public_key", json_string(pem));
		pcrs = log = NULL;
		out = json_dumps(doc, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	}
	json_decref(pcrs);
	json_decref(log);
	json_decref(cp);
	json_decref(doc);
	free(data);
	free(pem);
	if (!out)
		RETURN_ERR(NULL, "attestation: signing or encoding failed");
	return out;
}

int chip_sign(struct chip *c, const char *purpose, const void *msg, size_t len, char *sig_b64,
	      size_t cap, char *err, size_t errlen)
{
	if (cap < 89)
		RETURN_ERR(-1, "chip_sign: signature buffer too small");
	pthread_mutex_lock(&c->c_lock);
	if (chip_attest_key(c, err, errlen) < 0) {
		pthread_mutex_unlock(&c->c_lock);
		return -1;
	}
	uint8_t sig[64];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *sctx = EVP_MD_CTX_new();
	int ok = sctx && EVP_DigestSignInit(sctx, NULL, NULL, NULL, c->c_attest_key) == 1 &&
		 EVP_DigestSign(sctx, sig, &siglen, msg, len) == 1;
	EVP_MD_CTX_free(sctx);
	pthread_mutex_unlock(&c->c_lock);
	if (!ok)
		RETURN_ERR(-1, "%s: signing failed", purpose);
	EVP_EncodeBlock((unsigned char *)sig_b64, sig, (int)siglen);
	return 0;
}

char *chip_public_key(struct chip *c, char *err, size_t errlen)
{
	pthread_mutex_lock(&c->c_lock);
	int rc = chip_attest_key(c, err, errlen);
	char *pem = rc < 0 ? NULL : pubkey_pem(c->c_attest_key);
	pthread_mutex_unlock(&c->c_lock);
	if (rc == 0 && !pem)
		RETURN_ERR(NULL, "attestation key: out of memory");
	return pem;
}
