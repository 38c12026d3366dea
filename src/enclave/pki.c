/* Enclave attestation PKI (see pki.h). */
#include "enclave/pki.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int pki_es384_sign(void *pkey, const uint8_t *tbs, size_t len, uint8_t sig[COSE_ES384_SIG_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t der[256];
	size_t dl = sizeof(der);
	int rc = -1;
	if (md && EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, pkey) == 1 &&
	    EVP_DigestSign(md, der, &dl, tbs, len) == 1) {
		const uint8_t *p = der;
		ECDSA_SIG *s = d2i_ECDSA_SIG(NULL, &p, (long)dl);
		if (s && BN_bn2binpad(ECDSA_SIG_get0_r(s), sig, 48) == 48 &&
		    BN_bn2binpad(ECDSA_SIG_get0_s(s), sig + 48, 48) == 48)
			rc = 0;
		ECDSA_SIG_free(s);
	}
	EVP_MD_CTX_free(md);
	return rc;
}

int pki_es384_verify(const uint8_t *cert_der, size_t der_len, const uint8_t *tbs, size_t len,
		     const uint8_t sig[COSE_ES384_SIG_LEN])
{
	if (der_len > LONG_MAX)
		return -1;
	const uint8_t *p = cert_der;
	X509 *x = d2i_X509(NULL, &p, (long)der_len);
	EVP_PKEY *k = x ? X509_get0_pubkey(x) : NULL;
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 48, NULL), *s = BN_bin2bn(sig + 48, 48, NULL);
	uint8_t *der = NULL;
	int rc = -1, dl = -1;
	if (es && r && s && ECDSA_SIG_set0(es, r, s) == 1) {
		r = s = NULL; /* owned by es */
		dl = i2d_ECDSA_SIG(es, &der);
	}
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (k && EVP_PKEY_get_id(k) == EVP_PKEY_EC && dl > 0 && md &&
	    EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, k) == 1 &&
	    EVP_DigestVerify(md, der, (size_t)dl, tbs, len) == 1)
		rc = 0;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	X509_free(x);
	return rc;
}

uint8_t *pki_pem_to_der(const uint8_t *pem, size_t len, size_t *der_len)
{
	if (len > INT_MAX)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	uint8_t *der = NULL;
	int n = x ? i2d_X509(x, &der) : -1;
	X509_free(x);
	uint8_t *copy = n > 0 ? malloc((size_t)n) : NULL;
	if (copy) {
		memcpy(copy, der, (size_t)n);
		*der_len = (size_t)n;
	}
	OPENSSL_free(der);
	return copy;
}

EVP_PKEY *pki_pem_key(const uint8_t *pem, size_t len)
{
	if (!pem || len > INT_MAX)
		return NULL;
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	BIO_free(b);
	if (k && EVP_PKEY_get_id(k) != EVP_PKEY_EC) {
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

void pki_cert_free(struct pki_cert *c)
{
	EVP_PKEY_free(c->key);
	X509_free(c->cert);
	OPENSSL_free(c->der);
	memset(c, 0, sizeof(*c));
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ex = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ex)
		return -1;
	int ok = X509_add_ext(cert, ex, -1);
	X509_EXTENSION_free(ex);
	return ok ? 0 : -1;
}

/* A certificate for key, signed by issuer (NULL: self-signed). ca: CA:TRUE with pathlen. */
static X509 *make_cert(EVP_PKEY *key, const struct pki_cert *issuer, const char *cn, long secs,
		       int ca, int pathlen)
{
	X509 *x = X509_new();
	uint8_t serial[16];
	BIGNUM *bn = NULL;
	if (!x || RAND_bytes(serial, sizeof(serial)) != 1)
		goto bad;
	serial[0] &= 0x7f;
	bn = BN_bin2bn(serial, sizeof(serial), NULL);
	if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)))
		goto bad;
	X509_set_version(x, 2);
	X509_gmtime_adj(X509_getm_notBefore(x), -300);
	X509_gmtime_adj(X509_getm_notAfter(x), secs);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"nitro", -1, -1,
				   0);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert) : name);
	if (X509_set_pubkey(x, key) != 1)
		goto bad;
	X509 *iss = issuer ? issuer->cert : x;
	char bc[64];
	if (ca)
		snprintf(bc, sizeof(bc), "critical,CA:TRUE,pathlen:%d", pathlen);
	else
		snprintf(bc, sizeof(bc), "critical,CA:FALSE");
	if (add_ext(x, iss, NID_basic_constraints, bc) ||
	    add_ext(x, iss, NID_key_usage,
		    ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature") ||
	    add_ext(x, iss, NID_subject_key_identifier, "hash") ||
	    add_ext(x, iss, NID_authority_key_identifier, "keyid:always"))
		goto bad;
	if (!X509_sign(x, issuer ? issuer->key : key, EVP_sha384()))
		goto bad;
	BN_free(bn);
	return x;
bad:
	BN_free(bn);
	X509_free(x);
	return NULL;
}

static int fill_der(struct pki_cert *c)
{
	c->der = NULL;
	int n = i2d_X509(c->cert, &c->der);
	if (n <= 0)
		return -1;
	c->der_len = (size_t)n;
	return 0;
}

static EVP_PKEY *new_key(void)
{
	return EVP_EC_gen("P-384");
}

int pki_leaf(const struct pki_cert *issuer, const char *cn, long seconds, struct pki_cert *leaf,
	     char *err, size_t errlen)
{
	memset(leaf, 0, sizeof(*leaf));
	leaf->key = new_key();
	leaf->cert = leaf->key ? make_cert(leaf->key, issuer, cn, seconds, 0, 0) : NULL;
	if (!leaf->cert || fill_der(leaf)) {
		pki_cert_free(leaf);
		return fail(err, errlen, "cannot make the enclave's leaf certificate");
	}
	return 0;
}

/* Writes PEM (key 0600) atomically: path.new then rename. */
static int write_pem(const char *path, EVP_PKEY *key, X509 *cert)
{
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	unlink(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, key ? 0600 : 0644);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	int ok = f &&
		 (key ? PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL)
		      : PEM_write_X509(f, cert)) == 1 &&
		 fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (f)
		fclose(f);
	else if (fd >= 0)
		close(fd);
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static FILE *open_private(const char *path, int need_private)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (need_private && (st.st_mode & 077))) {
		close(fd);
		errno = EPERM;
		return NULL;
	}
	FILE *f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
}

/* Loads NAME-key.pem + NAME.pem from dir, or makes and stores them. */
static int load_or_make(const char *dir, const char *name, const struct pki_cert *issuer,
			const char *cn, long secs, int pathlen, struct pki_cert *out, char *err,
			size_t errlen)
{
	char kp[PATH_MAX], cp[PATH_MAX];
	snprintf(kp, sizeof(kp), "%s/%s-key.pem", dir, name);
	snprintf(cp, sizeof(cp), "%s/%s.pem", dir, name);
	memset(out, 0, sizeof(*out));
	FILE *kf = open_private(kp, 1);
	if (kf) {
		out->key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
		fclose(kf);
		FILE *cf = open_private(cp, 0);
		if (cf) {
			out->cert = PEM_read_X509(cf, NULL, NULL, NULL);
			fclose(cf);
		}
		if (!out->key || !out->cert || X509_check_private_key(out->cert, out->key) != 1 ||
		    X509_cmp_time(X509_get0_notAfter(out->cert), NULL) <= 0) {
			pki_cert_free(out);
			return fail(err, errlen,
				    "%s / %s: unreadable, mismatched or expired (remove both to "
				    "make new ones)",
				    kp, cp);
		}
		return fill_der(out) ? fail(err, errlen, "%s: cannot encode", cp) : 0;
	}
	if (errno != ENOENT)
		return fail(err, errlen, "%s: %s (must be a private 0600 regular file)", kp,
			    strerror(errno));
	out->key = new_key();
	out->cert = out->key ? make_cert(out->key, issuer, cn, secs, 1, pathlen) : NULL;
	if (!out->cert || fill_der(out) || write_pem(cp, NULL, out->cert) ||
	    write_pem(kp, out->key, NULL)) {
		pki_cert_free(out);
		return fail(err, errlen, "cannot make %s in %s", name, dir);
	}
	return 0;
}

int pki_chain_open(const char *dir, struct pki_cert *root, struct pki_cert *host, char *err,
		   size_t errlen)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return fail(err, errlen, "%s: %s", dir, strerror(errno));
	if (load_or_make(dir, "enclave-root", NULL, "nitro enclave root", 30L * 365 * 86400, 2,
			 root, err, errlen))
		return -1;
	if (load_or_make(dir, "enclave-host", root, "nitro enclave host", 365L * 86400, 0, host,
			 err, errlen)) {
		pki_cert_free(root);
		return -1;
	}
	return 0;
}
