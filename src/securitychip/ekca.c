/* The endorsement CA of the security chip (contract in ekca.h). */
#include "securitychip/ekca.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/params.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/util.h"

#define CA_DAYS (20 * 365)

void ekca_cert_path(const char *dir, char *out, size_t len)
{
	snprintf(out, len, "%s/ek-ca.pem", dir);
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	int ok = e && X509_add_ext(cert, e, -1);
	X509_EXTENSION_free(e);
	return ok ? 0 : -1;
}

static int set_serial(X509 *c)
{
	uint8_t r[16];
	if (RAND_bytes(r, sizeof(r)) != 1)
		return -1;
	r[0] &= 0x7f;
	BIGNUM *bn = BN_bin2bn(r, sizeof(r), NULL);
	int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(c));
	BN_free(bn);
	return ok ? 0 : -1;
}

static X509 *new_cert(EVP_PKEY *subject_key, const char *cn, X509 *issuer)
{
	X509 *c = X509_new();
	X509_NAME *n = X509_NAME_new();
	if (!c || !n || !X509_set_version(c, 2) || set_serial(c) < 0 ||
	    !X509_gmtime_adj(X509_getm_notBefore(c), 0) ||
	    !X509_gmtime_adj(X509_getm_notAfter(c), 60L * 60 * 24 * CA_DAYS) ||
	    !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"nitro", -1,
					-1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
					0) ||
	    !X509_set_subject_name(c, n) ||
	    !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : n) ||
	    !X509_set_pubkey(c, subject_key)) {
		X509_free(c);
		X509_NAME_free(n);
		return NULL;
	}
	X509_NAME_free(n);
	return c;
}

/* Writes data to dir/name atomically: a temporary file linked into place (EEXIST: another
 * creator won, theirs is kept). */
static int write_new(const char *dir, const char *name, const char *data, size_t len)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.%d", dir, name, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	int ok = write(fd, data, len) == (ssize_t)len && fsync(fd) == 0;
	close(fd);
	if (ok && link(tmp, path) < 0 && errno != EEXIST)
		ok = 0;
	unlink(tmp);
	return ok ? 0 : -1;
}

static char *pem_of(int (*fn)(BIO *, void *), void *obj, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	if (b && fn(b, obj)) {
		long n = BIO_get_mem_data(b, &p);
		out = malloc((size_t)n + 1);
		if (out) {
			memcpy(out, p, (size_t)n);
			*len = (size_t)n;
		}
	}
	BIO_free(b);
	return out;
}

static int pem_key(BIO *b, void *k)
{
	return PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
}

static int pem_cert(BIO *b, void *c)
{
	return PEM_write_bio_X509(b, c);
}

/* Makes the CA when missing; loads it. */
static int load_ca(const char *dir, EVP_PKEY **key, X509 **cert, char *err, size_t errlen)
{
	char kp[PATH_MAX], cp[PATH_MAX];
	snprintf(kp, sizeof(kp), "%s/ek-ca.key", dir);
	ekca_cert_path(dir, cp, sizeof(cp));
	if (access(kp, F_OK) != 0) {
		mkdir(dir, 0700);
		EVP_PKEY *k = EVP_EC_gen("P-256");
		X509 *c = k ? new_cert(k, "nitro security chip EK CA", NULL) : NULL;
		size_t kl = 0, cl = 0;
		char *kt = NULL, *ct = NULL;
		int ok = c && add_ext(c, c, NID_basic_constraints, "critical,CA:TRUE") == 0 &&
			 add_ext(c, c, NID_key_usage, "critical,keyCertSign,cRLSign") == 0 &&
			 add_ext(c, c, NID_subject_key_identifier, "hash") == 0 &&
			 X509_sign(c, k, EVP_sha256()) && (kt = pem_of(pem_key, k, &kl)) &&
			 (ct = pem_of(pem_cert, c, &cl));
		/* the certificate first: a key without its certificate is never left behind */
		if (ok)
			ok = write_new(dir, "ek-ca.pem", ct, cl) == 0 &&
			     write_new(dir, "ek-ca.key", kt, kl) == 0;
		if (kt)
			OPENSSL_cleanse(kt, kl);
		free(kt);
		free(ct);
		EVP_PKEY_free(k);
		X509_free(c);
		if (!ok)
			RETURN_ERR(-1, "EK CA in %s: cannot create it", dir);
	}
	FILE *f = fopen(kp, "re");
	*key = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	f = fopen(cp, "re");
	*cert = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	if (!*key || !*cert || X509_check_private_key(*cert, *key) != 1) {
		EVP_PKEY_free(*key);
		X509_free(*cert);
		RETURN_ERR(-1, "EK CA in %s: unreadable or mismatched key and certificate", dir);
	}
	return 0;
}

/* The EK's public key from its P-256 point. */
static EVP_PKEY *ec_point_key(const uint8_t x[32], const uint8_t y[32])
{
	uint8_t pt[65];
	pt[0] = 0x04;
	memcpy(pt + 1, x, 32);
	memcpy(pt + 33, y, 32);
	EVP_PKEY *k = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM params[] = {
	    OSSL_PARAM_utf8_string("group", "P-256", 0),
	    OSSL_PARAM_octet_string("pub", pt, sizeof(pt)),
	    OSSL_PARAM_END,
	};
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		k = NULL;
	EVP_PKEY_CTX_free(ctx);
	return k;
}

/* The EK's public key from an RSA-2048 modulus (exponent 65537). */
static EVP_PKEY *rsa_key(const uint8_t n[EKCA_RSA_BYTES])
{
	EVP_PKEY *k = NULL;
	BIGNUM *bn = BN_bin2bn(n, EKCA_RSA_BYTES, NULL), *be = BN_new();
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
	if (bn && be && b && ctx && BN_num_bits(bn) == 8 * EKCA_RSA_BYTES &&
	    BN_set_word(be, 65537) && OSSL_PARAM_BLD_push_BN(b, "n", bn) &&
	    OSSL_PARAM_BLD_push_BN(b, "e", be) && (params = OSSL_PARAM_BLD_to_param(b)) &&
	    EVP_PKEY_fromdata_init(ctx) > 0 &&
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		k = NULL;
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	EVP_PKEY_CTX_free(ctx);
	BN_free(bn);
	BN_free(be);
	return k;
}

/* A certificate for ek (consumed) with keyUsage usage, signed by the CA in dir. */
static int issue(const char *dir, EVP_PKEY *ek, const char *usage, const char *name, uint8_t **der,
		 size_t *derlen, char *err, size_t errlen)
{
	EVP_PKEY *ca_key = NULL;
	X509 *ca = NULL, *c = NULL;
	*der = NULL;
	if (!ek)
		RETURN_ERR(-1, "EK: not a valid public key");
	if (load_ca(dir, &ca_key, &ca, err, errlen) < 0) {
		EVP_PKEY_free(ek);
		return -1;
	}
	int rc = -1;
	c = new_cert(ek, name, ca);
	if (!c || add_ext(c, ca, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(c, ca, NID_key_usage, usage) < 0 ||
	    add_ext(c, ca, NID_authority_key_identifier, "keyid") < 0 ||
	    !X509_sign(c, ca_key, EVP_sha256())) {
		snprintf(err, errlen, "EK certificate: cannot issue it");
		goto out;
	}
	unsigned char *p = NULL;
	int n = i2d_X509(c, &p);
	if (n <= 0) {
		snprintf(err, errlen, "EK certificate: cannot encode it");
		goto out;
	}
	*der = malloc((size_t)n);
	if (*der) {
		memcpy(*der, p, (size_t)n);
		*derlen = (size_t)n;
		rc = 0;
	}
	OPENSSL_free(p);
out:
	EVP_PKEY_free(ek);
	EVP_PKEY_free(ca_key);
	X509_free(ca);
	X509_free(c);
	return rc;
}

int ekca_issue(const char *dir, const uint8_t x[32], const uint8_t y[32], const char *name,
	       uint8_t **der, size_t *derlen, char *err, size_t errlen)
{
	EVP_PKEY *ek = ec_point_key(x, y);
	if (!ek) {
		*der = NULL;
		RETURN_ERR(-1, "EK: not a P-256 point");
	}
	return issue(dir, ek, "critical,keyAgreement", name, der, derlen, err, errlen);
}

int ekca_issue_rsa(const char *dir, const uint8_t n[EKCA_RSA_BYTES], const char *name,
		   uint8_t **der, size_t *derlen, char *err, size_t errlen)
{
	EVP_PKEY *ek = rsa_key(n);
	if (!ek) {
		*der = NULL;
		RETURN_ERR(-1, "EK: not an RSA-2048 modulus");
	}
	return issue(dir, ek, "critical,keyEncipherment", name, der, derlen, err, errlen);
}
