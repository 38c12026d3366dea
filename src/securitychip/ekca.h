/* The security chip's endorsement CA: it certifies each NitroTPM's endorsement key, so a
 * verifier that trusts the CA certificate can trust a quote without trusting the guest.
 *
 * The CA is an ECDSA P-256 key (ek-ca.key, PEM, 0600) and a self-signed certificate
 * (ek-ca.pem, CN "nitro security chip EK CA", 20 years) in the chip's folder, made on
 * first use (created under temporary names and linked into place: two callers racing keep
 * one). ekca_issue() returns a DER X.509 v3 certificate for an ECC P-256 EK given as its
 * point: subject CN = the name given, a random 128-bit serial, 20 years, basicConstraints
 * CA:FALSE, keyUsage keyAgreement (the EK decrypts, never signs), signed ECDSA-SHA256.
 * *der is malloc'd (free()). Errors: a message in err, return -1. Not thread-safe (callers
 * serialise).
 */
#ifndef NITRO_SECURITYCHIP_EKCA_H
#define NITRO_SECURITYCHIP_EKCA_H

#include <stddef.h>
#include <stdint.h>

int ekca_issue(const char *dir, const uint8_t x[32], const uint8_t y[32], const char *name,
	       uint8_t **der, size_t *derlen, char *err, size_t errlen);
/* The same for an RSA-2048 EK given as its modulus (big-endian, exponent 65537), with
 * keyUsage keyEncipherment (the RSA EK decrypts). */
#define EKCA_RSA_BYTES 256
int ekca_issue_rsa(const char *dir, const uint8_t n[EKCA_RSA_BYTES], const char *name,
		   uint8_t **der, size_t *derlen, char *err, size_t errlen);
/* The CA certificate's path in dir (for verifiers: openssl verify -CAfile). */
void ekca_cert_path(const char *dir, char *out, size_t len);

#endif
