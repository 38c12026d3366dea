/* libFuzzer target: the NSM request handler (src/enclave/nsm.c) on hostile requests, as an
 * enclave's guest driver sends them. Input: 2 bytes choosing the reply buffer's size, then
 * the request. Every request gets a reply within that buffer (0 bytes only when the buffer
 * cannot hold an error), the reply is one well-formed CBOR item, PCRs 0-15 never change and
 * a locked PCR never unlocks. */
// fuzz-extra: src/enclave/nsm.c src/enclave/cbw.c src/enclave/cose.c -lcbor -lcrypto
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "enclave/cbw.h"
#include "enclave/nsm.h"

#include "fuzz.h"

static int fake_sign(void *ctx, const uint8_t *tbs, size_t len, uint8_t sig[96])
{
	(void)ctx;
	memset(sig, 0, 96);
	for (size_t i = 0; i < len; i++)
		sig[i % 96] ^= tbs[i];
	return 0;
}

static int fake_random(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	memset(buf, 0x5a, len);
	return 0;
}

static uint64_t fake_now(void *ctx)
{
	(void)ctx;
	return 1700000000000ull;
}

static const uint8_t cert[600] = {0x30}, root[700] = {0x30};
static uint8_t resp[NSM_RESPONSE_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n < 2)
		return 0;
	size_t cap = ((size_t)d[0] << 8 | d[1]) % (NSM_RESPONSE_MAX + 1);
	d += 2, n -= 2;
	static struct nsm_state s;
	static uint8_t boot[48];
	memset(boot, 0x42, sizeof(boot));
	const uint8_t *pcrs[NSM_LOCKED_AT_BOOT] = {boot, boot, boot};
	struct nsm_ops ops = {.sign = fake_sign, .random = fake_random, .now_ms = fake_now};
	nsm_init(&s, "i-00000000000000000-enc0000000000000000", pcrs, &ops);
	s.cert = cert, s.cert_len = sizeof(cert);
	s.cabundle[0] = root, s.cabundle_len[0] = sizeof(root), s.ncabundle = 1;
	/* two requests on the same state: the second sees what the first changed */
	size_t half = n / 2;
	for (int round = 0; round < 3; round++) {
		const uint8_t *req = round == 0 ? d : round == 1 ? d : d + half;
		size_t len = round == 0 ? n : round == 1 ? half : n - half;
		bool locked[NSM_MAX_PCRS];
		memcpy(locked, s.locked, sizeof(locked));
		size_t r = nsm_handle(&s, req, len, resp, cap);
		CHECK(r <= cap);
		if (cap >= 32)
			CHECK(r > 0);
		if (r)
			CHECK(cbor_check_wellformed(resp, r, 16) == 0);
		for (unsigned i = 0; i < NSM_MAX_PCRS; i++)
			CHECK(!locked[i] || s.locked[i]);
		CHECK(!memcmp(s.pcr[0], boot, 48) && !memcmp(s.pcr[2], boot, 48));
		for (unsigned i = 3; i < NSM_LOCKED_AT_BOOT; i++)
			CHECK(s.pcr[i][0] == 0 && !memcmp(s.pcr[i], s.pcr[i] + 1, 47));
	}
	return 0;
}
