/* NitroTPM state keys and endorsement, shared by `nitro run` (src/cli/tpm.c) and nitrod
 * (src/controller/launcher.c): one derivation and one provisioning sequence for both.
 *
 * tpm_key_derive: the TPM card's state key, HMAC-SHA256(master key, "nitro-tpm-state v1 "
 * || id) under the host master key ($NITRO_STATE/master.key, made on first use by
 * src/volume); id is the TPM's instance id (nitro run: the state folder's instance-id
 * file; nitrod: the instance's id). Never stored.
 *
 * tpm_endorse: over the card's own protocol, before nitro-hv connects and while the
 * platform hierarchy is still enabled: when NV index 0x01c0000a is not defined yet (a new
 * TPM) it creates the EK (TCG template L-2: what `tpm2_createek -G ecc` derives), has the
 * chip's EK CA in ca_dir certify it with subject CN cn, and writes the DER certificate at
 * 0x01c0000a (platform-written). Returns 1 with *der (malloc'd) when it endorsed now, 0
 * when the TPM was endorsed already (*der NULL), -1 with err. The socket is connected,
 * used and closed within the call (the card serves one client at a time). Blocking; not
 * thread-safe (the EK CA's files: callers serialise).
 */
#ifndef NITRO_ENDORSE_ENDORSE_H
#define NITRO_ENDORSE_ENDORSE_H

#include <stddef.h>
#include <stdint.h>

int tpm_key_derive(const char *id, uint8_t key[32], char *err, size_t errlen);
int tpm_endorse(const char *socket, const char *ca_dir, const char *cn, uint8_t **der,
		size_t *derlen, char *err, size_t errlen);

#endif
