/* NitroTPM state keys and endorsement, shared by `nitro run` (src/cli/tpm.c) and nitrod
 * (src/controller/launcher.c): one derivation and one provisioning sequence for both.
 *
 * tpm_key_derive: the TPM card's state key, HMAC-SHA256(master key, "nitro-tpm-state v1 "
 * || id) under the host master key ($NITRO_STATE/master.key, made on first use by
 * src/volume); id is the TPM's instance id (nitro run: the state folder's instance-id
 * file; nitrod: the instance's id). Never stored.
 *
 * tpm_endorse: over the card's own protocol, before nitro-hv connects and while the
 * platform hierarchy is still enabled, for each EK of the TCG EK Credential Profile whose
 * certificate index is not defined yet (a new TPM, or one endorsed before the RSA EK was):
 * creates the EK (ECC: template L-2, what `tpm2_createek -G ecc` derives, certificate at
 * NV 0x01c0000a; RSA: template L-1, `tpm2_createek -G rsa`, at 0x01c00002), has the chip's
 * EK CA in ca_dir certify it with subject CN cn, and writes the DER certificate at its
 * index (platform-written). out gets the certificates issued now (malloc'd; NULL for an
 * EK endorsed already; tpm_ek_certs_free), also on failure (those already written to
 * the TPM: keep them). 0, or -1 with err. The socket
 * is connected, used and closed within the call (the card serves one client at a time).
 * Blocking (the RSA EK's prime search: about 0.1 s natively); not thread-safe (the EK
 * CA's files: callers serialise).
 */
#ifndef NITRO_ENDORSE_ENDORSE_H
#define NITRO_ENDORSE_ENDORSE_H

#include <stddef.h>
#include <stdint.h>

int tpm_key_derive(const char *id, uint8_t key[32], char *err, size_t errlen);
struct tpm_ek_certs {
	uint8_t *ec_ecc, *ec_rsa;
	size_t ec_ecc_len, ec_rsa_len;
};
int tpm_endorse(const char *socket, const char *ca_dir, const char *cn, struct tpm_ek_certs *out,
		char *err, size_t errlen);
void tpm_ek_certs_free(struct tpm_ek_certs *c);

#endif
