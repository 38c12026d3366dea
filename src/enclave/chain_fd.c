/* The attestation chain on an fd (chain_fd.h). */
#include "enclave/chain_fd.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

int chain_fd_write(int fd, const struct pki_cert *root, const struct pki_cert *host, char *err,
		   size_t errlen)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *text;
	if (!b || !host->key ||
	    PEM_write_bio_PrivateKey(b, host->key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(b, host->cert) != 1 || PEM_write_bio_X509(b, root->cert) != 1) {
		BIO_free(b);
		RETURN_ERR(-1, "cannot write the enclave chain as PEM");
	}
	long n = BIO_get_mem_data(b, &text);
	size_t done = 0;
	while (n > 0 && done < (size_t)n) {
		ssize_t w = write(fd, text + done, (size_t)n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			OPENSSL_cleanse(text, (size_t)n);
			BIO_free(b);
			RETURN_ERR(-1, "passing the enclave chain: %s", strerror(e));
		}
		done += (size_t)w;
	}
	OPENSSL_cleanse(text, (size_t)n); /* the host key */
	BIO_free(b);
	return 0;
}

static int fill_der(struct pki_cert *c)
{
	int n = i2d_X509(c->cert, &c->der);
	if (n <= 0)
		return -1;
	c->der_len = (size_t)n;
	return 0;
}

/* The number of PEM blocks named name in text ("-----BEGIN name-----"). */
static unsigned count_blocks(const char *text, const char *name)
{
	char marker[64];
	snprintf(marker, sizeof(marker), "-----BEGIN %s-----", name);
	unsigned n = 0;
	for (const char *p = text; (p = strstr(p, marker)); p += strlen(marker))
		n++;
	return n;
}

int chain_fd_read(int fd, struct pki_cert *root, struct pki_cert *host, char *err, size_t errlen)
{
	memset(root, 0, sizeof(*root));
	memset(host, 0, sizeof(*host));
	char *buf = malloc(CHAIN_FD_MAX + 1);
	if (!buf)
		RETURN_ERR(-1, "out of memory");
	size_t len = 0;
	for (;;) {
		ssize_t r = read(fd, buf + len, CHAIN_FD_MAX + 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			RETURN_ERR(-1, "reading the enclave chain: %s", strerror(e));
		}
		if (r == 0)
			break;
		len += (size_t)r;
		if (len > CHAIN_FD_MAX) {
			OPENSSL_cleanse(buf, len);
			free(buf);
			RETURN_ERR(-1, "the enclave chain is longer than %u bytes", CHAIN_FD_MAX);
		}
	}
	buf[len] = 0;
	const char *why = NULL;
	if (strlen(buf) != len)
		why = "it holds a NUL byte";
	else if (count_blocks(buf, "CERTIFICATE") != 2 ||
		 count_blocks(buf, "PRIVATE KEY") + count_blocks(buf, "EC PRIVATE KEY") != 1)
		why = "expected one private key and two certificates";
	BIO *kb = why ? NULL : BIO_new_mem_buf(buf, (int)len);
	BIO *cb = why ? NULL : BIO_new_mem_buf(buf, (int)len);
	if (!why && (!kb || !cb))
		why = "out of memory";
	if (!why && !(host->key = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL)))
		why = "no readable private key";
	if (!why && (!(host->cert = PEM_read_bio_X509(cb, NULL, NULL, NULL)) ||
		     !(root->cert = PEM_read_bio_X509(cb, NULL, NULL, NULL))))
		why = "no readable certificates";
	BIO_free(kb);
	BIO_free(cb);
	OPENSSL_cleanse(buf, len);
	free(buf);
	EVP_PKEY *rk = root->cert ? X509_get0_pubkey(root->cert) : NULL;
	if (!why && EVP_PKEY_get_base_id(host->key) != EVP_PKEY_EC)
		why = "the host key is not an EC key";
	else if (!why && X509_check_private_key(host->cert, host->key) != 1)
		why = "the key is not the host certificate's";
	else if (!why && (!rk || X509_verify(root->cert, rk) != 1))
		why = "the root certificate is not self-signed";
	else if (!why && X509_verify(host->cert, rk) != 1)
		why = "the host certificate is not signed by the root";
	else if (!why && (fill_der(host) < 0 || fill_der(root) < 0))
		why = "cannot encode the certificates";
	if (why) {
		pki_cert_free(host);
		pki_cert_free(root);
		RETURN_ERR(-1, "the enclave chain on the fd: %s", why);
	}
	return 0;
}
