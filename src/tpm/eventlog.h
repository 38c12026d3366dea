/* The TCG2 crypto-agile event log (TCG PC Client Platform Firmware Profile, section 10)
 * nitro-hv writes for the guest's measured boot, and its replay.
 *
 * Layout: first a TCG_PCR_EVENT in the SHA-1 format (PCR 0, EV_NO_ACTION, 20 zero bytes)
 * whose data is the "Spec ID Event03" structure listing the banks; then one TCG_PCR_EVENT2
 * per measurement carrying exactly those banks, in the same order. Little-endian. The
 * area after the last event stays zero (a reader stops at an event of type 0 and size 0).
 *
 * tpm_log_*() write into a caller buffer and set lg_error instead of overflowing it.
 * tpm_log_replay() takes hostile bytes (a guest could have written them): every length is
 * checked; it computes the PCRs the log implies, starting from all-zero PCRs.
 * tpm_hash() digests with OpenSSL. Not thread-safe per log; no global state.
 */
#ifndef NITRO_TPM_EVENTLOG_H
#define NITRO_TPM_EVENTLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tpm/tpm2.h"

#define TPM_EV_NO_ACTION 0x03
#define TPM_EV_IPL 0x0d
#define TPM_LOG_PCRS 24

struct tpm_log {
	uint8_t *lg_buf;
	size_t lg_cap, lg_len;
	unsigned lg_nalgs;
	uint16_t lg_algs[TPM2_MAX_BANKS];
	unsigned lg_events; /* TCG_PCR_EVENT2 entries written */
	bool lg_error;	    /* something did not fit or a bank is unknown */
};

/* Starts a log for banks algs[0..nalgs) (1..TPM2_MAX_BANKS known algorithms): zeroes buf
 * and writes the Spec ID header. */
void tpm_log_init(struct tpm_log *lg, uint8_t *buf, size_t cap, const uint16_t *algs,
		  unsigned nalgs);
/* Appends an event; d must carry exactly the log's banks in its order. */
void tpm_log_add(struct tpm_log *lg, uint32_t pcr, uint32_t type, const struct tpm2_digests *d,
		 const void *data, uint32_t datalen);

/* Digests data with alg into out (tpm2_digest_size(alg) bytes); 0 or -1. */
int tpm_hash(uint16_t alg, const void *data, size_t len, uint8_t *out);
/* d gets data's digest in each of algs[0..nalgs). */
int tpm_hash_banks(const uint16_t *algs, unsigned nalgs, const void *data, size_t len,
		   struct tpm2_digests *d);

struct tpm_log_pcrs {
	unsigned nalgs;
	uint16_t algs[TPM2_MAX_BANKS];
	uint8_t pcr[TPM_LOG_PCRS][TPM2_MAX_BANKS][TPM2_MAX_DIGEST];
	unsigned events;
};

/* Replays len bytes of log; 0, or -1 when it is malformed (no Spec ID header, an event
 * with other banks than the header's, a length past the end, a PCR above 23). */
int tpm_log_replay(const uint8_t *buf, size_t len, struct tpm_log_pcrs *out);

#endif
