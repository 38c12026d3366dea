/* The enclave attestation chain of nitrod's state (issue 12 item 6; docs/enclaves.md).
 *
 * The root and the host intermediate of the documents every enclave of this host's
 * instances gets are made once per state folder, by the security chip's folder
 * (STATE/chip, 0700, nitrod's own): pki_chain_open() there (enclave-root{,-key}.pem,
 * enclave-host{,-key}.pem, keys 0600), the same files `nitro enclave root-cert --state
 * STATE/chip` reads. The root's key never leaves that folder; the host key leaves it only
 * on the pipe enclave_ca_chain_fd() makes for one NSM card (src/enclave/chain_fd.h): never
 * to an API caller, nitro-hv or a guest.
 *
 * Called with g_ctl.c_lock held (no other lock of its own); errors into (err, errlen).
 */
#ifndef NITRO_CONTROLLER_ENCLAVE_CA_H
#define NITRO_CONTROLLER_ENCLAVE_CA_H

#include <stddef.h>

/* The chain's folder: STATE/chip. */
void enclave_ca_dir(char *out, size_t len);
/* The root certificate as PEM (malloc'd; what GET /v1/host/enclave-root serves), made
 * with the chain on first use; NULL with err. */
char *enclave_ca_root_pem(char *err, size_t errlen);
/* A pipe holding the NSM card's chain (host key, host and root certificates, PEM, then
 * EOF): its read end (close-on-exec), or -1 with err. */
int enclave_ca_chain_fd(char *err, size_t errlen);

#endif
