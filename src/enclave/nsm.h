/* The Nitro Secure Module's request handling (virtio device 33, the enclave's /dev/nsm):
 * one CBOR request in, one CBOR response out, as aws-nitro-enclaves-nsm-api defines them
 * and the Linux nsm driver (drivers/misc/nsm.c) reads them (reference §2, docs/enclaves.md).
 *
 * Requests: "DescribeNSM", "GetRandom", {"DescribePCR":{index}}, {"ExtendPCR":{index,data}},
 * {"LockPCR":{index}}, {"LockPCRs":{range}}, {"Attestation":{user_data,nonce,public_key}}.
 * Anything else gets {"Error":"<code>"}: InvalidOperation (not CBOR, not a request we know),
 * InvalidArgument (a known request with a missing or mistyped field), InvalidIndex (PCR
 * index >= 32, range > 32), ReadOnlyIndex (extending a locked PCR), InputTooLarge (request
 * over 0x1000 bytes; user_data or nonce over 512 bytes; public_key over 1024),
 * BufferTooSmall (the reply does not fit the guest's buffer), InternalError (signing failed).
 *
 * Contract: pure over its state struct: no I/O, no global state, no key. The guest is
 * hostile: any bytes up to any length are handled without reading outside them, with
 * bounded memory (nesting and item counts are checked before libcbor builds anything).
 * One thread per state at a time (the device serializes requests). The attestation is
 * signed through ops.sign (the leaf key lives with the launcher / security chip); the
 * random bytes and the clock come from ops as well, so tests are deterministic. The
 * document's "pcrs" map holds the locked PCRs (0-15 from boot, and those locked since), as
 * nsm-api's AttestationDoc and real documents do.
 */
#ifndef NITRO_ENCLAVE_NSM_H
#define NITRO_ENCLAVE_NSM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "enclave/cose.h"

#define NSM_MAX_PCRS 32
#define NSM_LOCKED_AT_BOOT 16
#define NSM_PCR_LEN 48
#define NSM_REQUEST_MAX 0x1000
#define NSM_RESPONSE_MAX 0x3000
#define NSM_RANDOM_LEN 256
#define NSM_USER_DATA_MAX 512
#define NSM_NONCE_MAX 512
#define NSM_PUBLIC_KEY_MAX 1024
#define NSM_MAX_CABUNDLE 8
#define NSM_VERSION_MAJOR 1
#define NSM_VERSION_MINOR 0
#define NSM_VERSION_PATCH 0

struct nsm_ops {
	cose_sign_fn sign; /* ES384 over the COSE Sig_structure with the leaf's key */
	void *sign_ctx;
	int (*random)(void *ctx, uint8_t *buf, size_t len); /* 0 or -1 */
	uint64_t (*now_ms)(void *ctx);			    /* UNIX time in milliseconds */
	void *ctx;
};

struct nsm_state {
	uint8_t pcr[NSM_MAX_PCRS][NSM_PCR_LEN];
	bool locked[NSM_MAX_PCRS];
	char module_id[64];
	/* The leaf certificate (DER) and the CA bundle, root first; owned by the caller and
	 * valid as long as the state is used. */
	const uint8_t *cert;
	size_t cert_len;
	const uint8_t *cabundle[NSM_MAX_CABUNDLE];
	size_t cabundle_len[NSM_MAX_CABUNDLE];
	unsigned ncabundle;
	struct nsm_ops ops;
};

/* Boot state: PCRs 0..15 from boot_pcrs (NULL entries stay zero; a debug-mode enclave
 * passes NULL for 0..2, like AWS), PCRs 16..31 zero; 0..15 locked. */
void nsm_init(struct nsm_state *s, const char *module_id,
	      const uint8_t *const boot_pcrs[NSM_LOCKED_AT_BOOT], const struct nsm_ops *ops);

/* Handles one request; the response (at most cap bytes, cap <= NSM_RESPONSE_MAX is what
 * the driver gives) goes to resp. Returns its length; 0 only if cap cannot hold even the
 * smallest error reply. */
size_t nsm_handle(struct nsm_state *s, const uint8_t *req, size_t len, uint8_t *resp, size_t cap);

#endif
