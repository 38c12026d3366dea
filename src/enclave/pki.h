/* The enclave attestation PKI (OpenSSL): ES384 signing for COSE, and the certificate chain
 * root -> host intermediate -> short-lived leaf per enclave (reference §3).
 *
 * The root and the host intermediate are made once per state folder and kept there
 * (enclave-root-key.pem / enclave-root.pem, enclave-host-key.pem / enclave-host.pem; keys
 * 0600, folder 0700): they belong to the security chip's state, never to a guest or to
 * nitro-hv. A leaf (EC P-384, valid 3 hours, digitalSignature) is made per enclave; only its
 * signing callback is handed to the NSM module. Every CA certificate has basicConstraints
 * CA:TRUE (critical) and keyUsage keyCertSign|cRLSign, so `openssl verify` accepts the chain.
 * Thread-safe (no shared mutable state); errors into (err, errlen). */
#ifndef NITRO_ENCLAVE_PKI_H
#define NITRO_ENCLAVE_PKI_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "enclave/cose.h"

/* cose_sign_fn over an EVP_PKEY * (EC P-384) passed as ctx. */
int pki_es384_sign(void *pkey, const uint8_t *tbs, size_t len, uint8_t sig[COSE_ES384_SIG_LEN]);

/* Verifies an ES384 r||s signature over tbs with the key of a DER certificate: 0, or -1. */
int pki_es384_verify(const uint8_t *cert_der, size_t der_len, const uint8_t *tbs, size_t len,
		     const uint8_t sig[COSE_ES384_SIG_LEN]);

/* DER of the first certificate in PEM bytes (malloc'd); NULL if none. */
uint8_t *pki_pem_to_der(const uint8_t *pem, size_t len, size_t *der_len);
/* An EC private key from PEM bytes; NULL if not one. */
EVP_PKEY *pki_pem_key(const uint8_t *pem, size_t len);

struct pki_cert {
	EVP_PKEY *key; /* private (NULL for a certificate only) */
	X509 *cert;
	uint8_t *der;
	size_t der_len;
};
void pki_cert_free(struct pki_cert *c);

/* Loads, or makes once, the root and host intermediate of state_dir. 0, or -1 with err. */
int pki_chain_open(const char *state_dir, struct pki_cert *root, struct pki_cert *host, char *err,
		   size_t errlen);
/* A new leaf signed by issuer, common name cn, valid for `seconds` from now. */
int pki_leaf(const struct pki_cert *issuer, const char *cn, long seconds, struct pki_cert *leaf,
	     char *err, size_t errlen);

#endif
