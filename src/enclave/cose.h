/* COSE_Sign1 with ES384 (RFC 9052), as AWS's attestation documents and EIF signatures use:
 * [protected = bstr(CBOR {1: -35}), unprotected = {}, payload bstr, signature bstr(96) r||s],
 * untagged. The signature is over CBOR ["Signature1", protected, h'', payload]
 * (the Sig_structure), ECDSA P-384 with SHA-384.
 *
 * The private key never enters this module: signing goes through a callback that gets the
 * Sig_structure bytes and writes the 96-byte r||s signature (the security chip or the
 * launcher holds the key). Pure, thread-safe. */
#ifndef NITRO_ENCLAVE_COSE_H
#define NITRO_ENCLAVE_COSE_H

#include <stddef.h>
#include <stdint.h>

#include "enclave/cbw.h"

#define COSE_ES384_SIG_LEN 96

/* Signs tbs (the Sig_structure); 0 and sig filled, or -1. */
typedef int (*cose_sign_fn)(void *ctx, const uint8_t *tbs, size_t tbs_len,
			    uint8_t sig[COSE_ES384_SIG_LEN]);

/* Appends the COSE_Sign1 of payload to w. 0, or -1 (signer failed or cap exceeded). */
int cose_sign1(struct cbw *w, const uint8_t *payload, size_t len, cose_sign_fn sign, void *ctx);

/* The Sig_structure of payload with ES384's protected header into w (for verifiers). */
void cose_sig_structure(struct cbw *w, const uint8_t *payload, size_t len);

#endif
