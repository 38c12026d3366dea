/* libFuzzer target: the TCG2 event log replay (src/tpm/eventlog.c) on any bytes, and the
 * writer on events the input describes: whatever is written within the area replays
 * without error to the same number of events.
 */
// fuzz-extra: src/tpm/eventlog.c src/tpm/tpm2.c -lcrypto
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "tpm/eventlog.h"

static struct tpm_log_pcrs p;
static uint8_t area[4096];

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (tpm_log_replay(d, n, &p) == 0)
		CHECK(p.nalgs >= 1 && p.nalgs <= TPM2_MAX_BANKS);
	if (n < 1)
		return 0;
	static const uint16_t all[] = {TPM2_ALG_SHA256, TPM2_ALG_SHA384, TPM2_ALG_SHA1,
				       TPM2_ALG_SHA512};
	unsigned nalgs = 1 + (d[0] & 3);
	struct tpm_log lg;
	tpm_log_init(&lg, area, sizeof(area), all, nalgs);
	size_t i = 1;
	while (i + 3 <= n) {
		uint32_t pcr = d[i] % 25, len = d[i + 1];
		i += 2;
		if (len > n - i)
			len = (uint32_t)(n - i);
		struct tpm2_digests dg;
		CHECK(tpm_hash_banks(all, nalgs, d + i, len, &dg) == 0);
		tpm_log_add(&lg, pcr, TPM_EV_IPL, &dg, d + i, len);
		i += len;
	}
	CHECK(lg.lg_len <= sizeof(area));
	if (!lg.lg_error) {
		CHECK(tpm_log_replay(area, sizeof(area), &p) == 0);
		CHECK(p.events == lg.lg_events);
	}
	return 0;
}
