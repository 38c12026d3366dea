/* The TCG2 event log (src/tpm/eventlog.c): written as nitro-hv writes it, replayed, and
 * compared with PCRs computed here by hand; malformed logs are refused. */
#include <openssl/sha.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/le.h"
#include "tpm/eventlog.h"

static uint8_t area[65536];

static void expect_pcr(const uint8_t *blob, size_t n, uint8_t out[32])
{
	uint8_t in[64];
	memset(in, 0, 32);
	SHA256(blob, n, in + 32);
	SHA256(in, 64, out);
}

static size_t build(struct tpm_log *lg, const uint16_t *algs, unsigned nalgs)
{
	static const char kernel[] = "kernel bytes", initrd[] = "initrd\0", cmd[] = "console=ttyS0";
	struct tpm2_digests d;
	tpm_log_init(lg, area, sizeof(area), algs, nalgs);
	assert_int_equal(tpm_hash_banks(algs, nalgs, kernel, strlen(kernel), &d), 0);
	tpm_log_add(lg, 4, TPM_EV_IPL, &d, "kernel", 6);
	assert_int_equal(tpm_hash_banks(algs, nalgs, initrd, sizeof(initrd) - 1, &d), 0);
	tpm_log_add(lg, 9, TPM_EV_IPL, &d, "initrd", 6);
	assert_int_equal(tpm_hash_banks(algs, nalgs, cmd, strlen(cmd), &d), 0);
	tpm_log_add(lg, 8, TPM_EV_IPL, &d, cmd, (uint32_t)strlen(cmd));
	assert_false(lg->lg_error);
	return lg->lg_len;
}

static void test_replay_sha256(void **state)
{
	(void)state;
	struct tpm_log lg;
	uint16_t algs[] = {TPM2_ALG_SHA256};
	size_t n = build(&lg, algs, 1);
	/* The header: SHA-1 format, EV_NO_ACTION, "Spec ID Event03". */
	assert_int_equal(le32_get(area + 4), TPM_EV_NO_ACTION);
	assert_memory_equal(area + 32, "Spec ID Event03", 16);
	static struct tpm_log_pcrs p;
	assert_int_equal(tpm_log_replay(area, sizeof(area), &p), 0); /* zero tail stops it */
	assert_int_equal(p.events, 3);
	uint8_t want[32];
	expect_pcr((const uint8_t *)"kernel bytes", 12, want);
	assert_memory_equal(p.pcr[4][0], want, 32);
	expect_pcr((const uint8_t *)"initrd\0", 7, want); /* the file ends in a NUL */
	assert_memory_equal(p.pcr[9][0], want, 32);
	expect_pcr((const uint8_t *)"console=ttyS0", 13, want);
	assert_memory_equal(p.pcr[8][0], want, 32);
	uint8_t zero[32] = {0};
	assert_memory_equal(p.pcr[0][0], zero, 32);
	/* Exactly the used length replays the same. */
	assert_int_equal(tpm_log_replay(area, n, &p), 0);
	assert_int_equal(p.events, 3);
}

static void test_two_banks(void **state)
{
	(void)state;
	struct tpm_log lg;
	uint16_t algs[] = {TPM2_ALG_SHA256, TPM2_ALG_SHA384};
	build(&lg, algs, 2);
	static struct tpm_log_pcrs p;
	assert_int_equal(tpm_log_replay(area, lg.lg_len, &p), 0);
	assert_int_equal(p.nalgs, 2);
	assert_int_equal(p.algs[1], TPM2_ALG_SHA384);
	/* An event with other banks than the header's is refused by the writer. */
	struct tpm2_digests d = {.count = 1, .alg = {TPM2_ALG_SHA256}};
	tpm_log_add(&lg, 4, TPM_EV_IPL, &d, "x", 1);
	assert_true(lg.lg_error);
}

static void test_malformed(void **state)
{
	(void)state;
	struct tpm_log lg;
	uint16_t algs[] = {TPM2_ALG_SHA256};
	size_t n = build(&lg, algs, 1);
	static struct tpm_log_pcrs p;
	assert_int_equal(tpm_log_replay(area, n - 1, &p), -1); /* truncated last event */
	area[32] ^= 1;
	assert_int_equal(tpm_log_replay(area, n, &p), -1); /* signature */
	area[32] ^= 1;
	size_t first = 32 + le32_get(area + 28);
	le32_put(area + first, 24); /* PCR 24 */
	assert_int_equal(tpm_log_replay(area, n, &p), -1);
	le32_put(area + first, 4);
	le32_put(area + first + 8, 2); /* digest count differs from the header */
	assert_int_equal(tpm_log_replay(area, n, &p), -1);
	le32_put(area + first + 8, 1);
	le16_put(area + first + 12, TPM2_ALG_SHA1); /* other bank */
	assert_int_equal(tpm_log_replay(area, n, &p), -1);
	le16_put(area + first + 12, TPM2_ALG_SHA256);
	le32_put(area + first + 12 + 34, 0xfffffff0u); /* event size past the end */
	assert_int_equal(tpm_log_replay(area, n, &p), -1);
	/* Too small an area: the writer stops, flags the error, never overflows. */
	uint8_t small[80];
	tpm_log_init(&lg, small, sizeof(small), algs, 1);
	struct tpm2_digests d = {.count = 1, .alg = {TPM2_ALG_SHA256}};
	tpm_log_add(&lg, 4, TPM_EV_IPL, &d, "kernel", 6);
	assert_true(lg.lg_error);
	assert_true(lg.lg_len <= sizeof(small));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_replay_sha256),
	    cmocka_unit_test(test_two_banks),
	    cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
