/* The chip's instance-identity key (contract: identity.h). */
#include "securitychip/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs7.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "securitychip/chip_internal.h"

static int ossl_err(char *err, size_t errlen, const char *what)
{
	char e[256] = "";
	ERR_error_string_n(ERR_get_error(), e, sizeof(e));
	snprintf(err, errlen, "identity key: %s: %s", what, e);
	ERR_clear_error();
	return -1;
}

/* Loads or makes the key and certificate (lock held). */
static int load(struct chip *c, EVP_PKEY **key, X509 **cert, char *err, size_t errlen)
{
	char kp[PATH_MAX], cp[PATH_MAX];
	snprintf(kp, sizeof(kp), "%s/identity-key.pem", c->c_dir);
	snprintf(cp, sizeof(cp), "%s/identity-cert.pem", c->c_dir);
	FILE *kf = fopen(kp, "re"), *cf = fopen(cp, "re");
	if (kf && cf) {
		*key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
		*cert = PEM_read_X509(cf, NULL, NULL, NULL);
		fclose(kf);
		fclose(cf);
		if (!*key || !*cert)
			return ossl_err(err, errlen,
					"unreadable identity-key.pem/identity-cert.pem");
		return 0;
	}
	if (kf)
		fclose(kf);
	if (cf)
		fclose(cf);
	*key = EVP_RSA_gen(2048);
	*cert = X509_new();
	if (!*key || !*cert)
		return ossl_err(err, errlen, "generate");
	X509_set_version(*cert, 2);
	uint8_t serial[8];
	if (getentropy(serial, sizeof(serial)))
		return snprintf(err, errlen, "getentropy: %s", strerror(errno)), -1;
	BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
	BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(*cert));
	BN_free(bn);
	X509_gmtime_adj(X509_getm_notBefore(*cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(*cert), 10L * 365 * 86400);
	X509_set_pubkey(*cert, *key);
	X509_NAME *n = X509_get_subject_name(*cert);
	X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"nitro", -1, -1, 0);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
				   (const unsigned char *)"nitro instance identity", -1, -1, 0);
	X509_set_issuer_name(*cert, n);
	if (!X509_sign(*cert, *key, EVP_sha256()))
		return ossl_err(err, errlen, "self-sign");
	int fd = open(kp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	kf = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!kf || !PEM_write_PrivateKey(kf, *key, NULL, NULL, 0, NULL, NULL) || fflush(kf) ||
	    fsync(fileno(kf))) {
		if (kf)
			fclose(kf);
		return snprintf(err, errlen, "identity key: %s: %s", kp, strerror(errno)), -1;
	}
	fclose(kf);
	cf = fopen(cp, "we");
	if (!cf || !PEM_write_X509(cf, *cert) || fflush(cf) || fsync(fileno(cf))) {
		if (cf)
			fclose(cf);
		return snprintf(err, errlen, "identity key: %s: %s", cp, strerror(errno)), -1;
	}
	fclose(cf);
	return 0;
}

/* Base64 in 64-character lines, no trailing newline. */
static char *b64(const unsigned char *d, size_t n)
{
	size_t enc = 4 * ((n + 2) / 3);
	char *flat = malloc(enc + 1), *out = malloc(enc + enc / 64 + 2);
	if (!flat || !out) {
		free(flat);
		free(out);
		return NULL;
	}
	EVP_EncodeBlock((unsigned char *)flat, d, (int)n);
	size_t o = 0;
	for (size_t i = 0; i < enc; i += 64) {
		size_t l = enc - i < 64 ? enc - i : 64;
		if (i)
			out[o++] = '\n';
		memcpy(out + o, flat + i, l);
		o += l;
	}
	out[o] = 0;
	free(flat);
	return out;
}

static char *pkcs7_sign(EVP_PKEY *key, X509 *cert, const void *doc, size_t len)
{
	BIO *in = BIO_new_mem_buf(doc, (int)len);
	PKCS7 *p7 = in ? PKCS7_sign(cert, key, NULL, in, PKCS7_BINARY | PKCS7_DETACHED) : NULL;
	unsigned char *der = NULL;
	int n = p7 ? i2d_PKCS7(p7, &der) : -1;
	char *s = n > 0 ? b64(der, (size_t)n) : NULL;
	OPENSSL_free(der);
	PKCS7_free(p7);
	BIO_free(in);
	return s;
}

int chip_identity_sign(struct chip *c, const void *doc, size_t len, struct chip_identity_sig *out,
		       char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	int r = -1;
	pthread_mutex_lock(&c->c_lock);
	if (load(c, &key, &cert, err, errlen))
		goto out;
	out->pkcs7 = pkcs7_sign(key, cert, doc, len);
	out->rsa2048 = pkcs7_sign(key, cert, doc, len);
	unsigned char sig[512];
	size_t slen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &slen, doc, len) != 1) {
		EVP_MD_CTX_free(md);
		ossl_err(err, errlen, "sign");
		goto out;
	}
	EVP_MD_CTX_free(md);
	out->signature = b64(sig, slen);
	if (!out->pkcs7 || !out->rsa2048 || !out->signature) {
		ossl_err(err, errlen, "PKCS#7");
		goto out;
	}
	r = 0;
out:
	pthread_mutex_unlock(&c->c_lock);
	EVP_PKEY_free(key);
	X509_free(cert);
	if (r)
		chip_identity_sig_free(out);
	return r;
}

void chip_identity_sig_free(struct chip_identity_sig *s)
{
	free(s->pkcs7);
	free(s->rsa2048);
	free(s->signature);
	memset(s, 0, sizeof(*s));
}

char *chip_identity_cert(struct chip *c, char *err, size_t errlen)
{
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	char *pem = NULL;
	pthread_mutex_lock(&c->c_lock);
	if (load(c, &key, &cert, err, errlen) == 0) {
		BIO *b = BIO_new(BIO_s_mem());
		char *p;
		long n;
		if (b && PEM_write_bio_X509(b, cert) && (n = BIO_get_mem_data(b, &p)) > 0 &&
		    (pem = malloc((size_t)n + 1))) {
			memcpy(pem, p, (size_t)n);
			pem[n] = 0;
		}
		BIO_free(b);
		if (!pem)
			snprintf(err, errlen, "identity certificate: out of memory");
	}
	pthread_mutex_unlock(&c->c_lock);
	EVP_PKEY_free(key);
	X509_free(cert);
	return pem;
}
