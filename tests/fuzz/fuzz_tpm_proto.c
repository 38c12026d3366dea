/* libFuzzer target: what crosses between nitro-hv and the TPM card: tpm_msg_decode() on
 * any bytes (a hostile card or hypervisor), re-encoded messages decode to themselves, and
 * the TPM2 response parsers run on a card's replies (response code, PCR banks, the EK's
 * public area).
 */
// fuzz-extra: src/tpm/proto.c src/tpm/tpm2.c
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "tpm/proto.h"
#include "tpm/tpm2.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct tpm_msg m, m2;
	if (tpm_msg_decode(d, n, &m) == 0) {
		CHECK(m.len <= TPM_PROTO_BUF);
		uint16_t base = m.type & (uint16_t)~TPM_PROTO_REPLY;
		CHECK(base >= TPM_MSG_HELLO && base <= TPM_MSG_XCMD);
		CHECK(n == TPM_PROTO_MSG + (base == TPM_MSG_XCMD ? m.len : 0));
		uint8_t b[TPM_PROTO_MSG];
		tpm_msg_encode(b, &m);
		CHECK(memcmp(b, d, TPM_PROTO_MSG) == 0);
		if (base != TPM_MSG_XCMD) {
			CHECK(tpm_msg_decode(b, sizeof(b), &m2) == 0);
			CHECK(m2.type == m.type && m2.len == m.len && m2.status == m.status);
		}
	}
	uint16_t algs[TPM2_MAX_BANKS];
	unsigned na = 99;
	if (tpm2_parse_pcrs(d, n, algs, &na) == 0)
		for (unsigned i = 0; i < na; i++)
			CHECK(tpm2_digest_size(algs[i]) != 0);
	CHECK(na <= TPM2_MAX_BANKS);
	(void)tpm2_rsp_code(d, n);
	uint32_t h;
	uint8_t x[32], y[32];
	(void)tpm2_parse_ek_ecc(d, n, &h, x, y); /* the card's CreatePrimary response */
	uint8_t mod[TPM2_EK_RSA_BYTES];
	(void)tpm2_parse_ek_rsa(d, n, &h, mod);
	return 0;
}
