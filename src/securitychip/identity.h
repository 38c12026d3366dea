/* The chip's instance-identity key: what signs EC2-style instance identity documents
 * (IMDS /latest/dynamic/instance-identity/{pkcs7,rsa2048,signature}).
 *
 * An RSA-2048 key and its self-signed certificate (CN "nitro instance identity"), made on
 * first use as STATE_DIR/identity-key.pem (0600) and identity-cert.pem. The key never
 * leaves the chip: callers get signatures, the card that serves them gets only those.
 * chip_identity_sign() signs a document three ways, each as base64 text (64-character
 * lines, no PEM armour, no trailing newline, as EC2 serves them):
 *   pkcs7, rsa2048: detached PKCS#7 SignedData (SHA-256, RSA-2048) over the document's
 *     bytes; verify: wrap in -----BEGIN PKCS7----- lines, then
 *     openssl smime -verify -inform PEM -in P7 -content document -certfile CERT -noverify
 *       (or: openssl cms -verify ... -CAfile CERT)
 *   signature: RSA PKCS#1 v1.5 SHA-256 signature of the document;
 *     openssl dgst -sha256 -verify <(openssl x509 -in CERT -pubkey -noout) -signature SIG
 * Thread-safe (the chip's lock). 0, or -1 with err.
 */
#ifndef NITRO_SECURITYCHIP_IDENTITY_H
#define NITRO_SECURITYCHIP_IDENTITY_H

#include <stddef.h>

#include "securitychip/chip.h"

struct chip_identity_sig {
	char *pkcs7, *rsa2048, *signature; /* malloc'd base64 text */
};

int chip_identity_sign(struct chip *c, const void *doc, size_t len, struct chip_identity_sig *out,
		       char *err, size_t errlen);
void chip_identity_sig_free(struct chip_identity_sig *s);
/* The certificate as PEM (malloc'd); NULL with err. */
char *chip_identity_cert(struct chip *c, char *err, size_t errlen);

#endif
