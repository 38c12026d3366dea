/* The enclave attestation chain of nitrod's state (see enclave_ca.h). */
#include "controller/enclave_ca.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "controller/ctl.h"
#include "enclave/chain_fd.h"
#include "enclave/pki.h"
#include "lib/util.h"

void enclave_ca_dir(char *out, size_t len)
{
	sfmt(out, len, "%s/chip", g_ctl.c_state_dir);
}

static int chain(struct pki_cert *root, struct pki_cert *host, char *err, size_t errlen)
{
	char dir[PATH_MAX], e[600];
	enclave_ca_dir(dir, sizeof(dir));
	if (pki_chain_open(dir, root, host, e, sizeof(e)) < 0)
		RETURN_ERR(-1, "the enclave attestation chain: %s", e);
	return 0;
}

char *enclave_ca_root_pem(char *err, size_t errlen)
{
	struct pki_cert root, host;
	if (chain(&root, &host, err, errlen) < 0)
		return NULL;
	pki_cert_free(&host); /* not needed here: its key goes nowhere */
	BIO *b = BIO_new(BIO_s_mem());
	char *p, *pem = NULL;
	long n;
	if (b && PEM_write_bio_X509(b, root.cert) == 1 && (n = BIO_get_mem_data(b, &p)) > 0 &&
	    (pem = malloc((size_t)n + 1))) {
		memcpy(pem, p, (size_t)n);
		pem[n] = 0;
	}
	BIO_free(b);
	pki_cert_free(&root);
	if (!pem)
		sfmt(err, errlen, "the enclave root certificate: out of memory");
	return pem;
}

int enclave_ca_chain_fd(char *err, size_t errlen)
{
	struct pki_cert root, host;
	if (chain(&root, &host, err, errlen) < 0)
		return -1;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;
		pki_cert_free(&host);
		pki_cert_free(&root);
		RETURN_ERR(-1, "the NSM card's chain pipe: %s", strerror(e));
	}
	/* a few KiB: below any pipe's capacity, the write never blocks (chain_fd.h) */
	char e[512];
	int r = chain_fd_write(p[1], &root, &host, e, sizeof(e));
	close(p[1]);
	pki_cert_free(&host);
	pki_cert_free(&root);
	if (r < 0) {
		close(p[0]);
		RETURN_ERR(-1, "%s", e);
	}
	return p[0];
}
