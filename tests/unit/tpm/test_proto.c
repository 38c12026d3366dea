/* hv <-> card framing (src/tpm/proto.c) and the TPM2 commands nitro-hv builds
 * (src/tpm/tpm2.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/le.h"
#include "tpm/proto.h"
#include "tpm/tpm2.h"

static void test_roundtrip(void **state)
{
	(void)state;
	uint8_t b[TPM_PROTO_MSG];
	struct tpm_msg m;
	for (uint16_t t = TPM_MSG_HELLO; t <= TPM_MSG_CMD; t++) {
		tpm_msg_encode(
		    b, &(struct tpm_msg){.type = t | TPM_PROTO_REPLY, .len = 4096, .status = 5});
		assert_int_equal(tpm_msg_decode(b, sizeof(b), &m), 0);
		assert_int_equal(m.type, t | TPM_PROTO_REPLY);
		assert_int_equal(m.len, 4096);
		assert_int_equal(m.status, 5);
	}
	uint8_t x[TPM_PROTO_MSG + 12];
	tpm_msg_encode(x, &(struct tpm_msg){.type = TPM_MSG_XCMD, .len = 12});
	assert_int_equal(tpm_msg_decode(x, sizeof(x), &m), 0);
	assert_int_equal(m.len, 12);
}

static void test_rejects(void **state)
{
	(void)state;
	uint8_t b[TPM_PROTO_MSG + 16];
	struct tpm_msg m;
	tpm_msg_encode(b, &(struct tpm_msg){.type = TPM_MSG_CMD, .len = 10});
	assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG - 1, &m), -EPROTO); /* short */
	assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG + 1, &m), -EPROTO); /* trailing */
	b[0] ^= 1;
	assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG, &m), -EPROTO); /* magic */
	b[0] ^= 1;
	le16_put(b + 4, 2);
	assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG, &m), -EPROTO); /* version */
	le16_put(b + 4, TPM_PROTO_VERSION);
	uint16_t bad[] = {0, 5, 0x7f, 0x85, 0x103, 0xffff};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		le16_put(b + 6, bad[i]);
		assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG, &m), -EPROTO);
	}
	le16_put(b + 6, TPM_MSG_CMD);
	le32_put(b + 8, TPM_PROTO_BUF + 1); /* oversized length */
	assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG, &m), -EPROTO);
	le32_put(b + 8, 0xffffffffu);
	assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG, &m), -EPROTO);
	/* XCMD: the payload must be exactly len bytes. */
	tpm_msg_encode(b, &(struct tpm_msg){.type = TPM_MSG_XCMD, .len = 16});
	assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG + 15, &m), -EPROTO);
	assert_int_equal(tpm_msg_decode(b, TPM_PROTO_MSG + 16, &m), 0);
}

static void test_tpm2_commands(void **state)
{
	(void)state;
	uint8_t b[256];
	static const uint8_t startup[] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x44, 0, 0};
	assert_int_equal(tpm2_cmd_startup(b, sizeof(b), TPM2_SU_CLEAR), 12);
	assert_memory_equal(b, startup, 12);
	assert_int_equal(tpm2_cmd_startup(b, 11, TPM2_SU_CLEAR), 0);
	struct tpm2_digests d = {.count = 2, .alg = {TPM2_ALG_SHA256, TPM2_ALG_SHA384}};
	memset(d.digest[0], 0xaa, 32);
	memset(d.digest[1], 0xbb, 48);
	size_t n = tpm2_cmd_pcr_extend(b, sizeof(b), 9, &d);
	assert_int_equal(n, 10 + 4 + 4 + 9 + 4 + 34 + 50);
	assert_int_equal(be32_get(b + 2), n);
	assert_int_equal(be32_get(b + 6), TPM2_CC_PCR_EXTEND);
	assert_int_equal(be32_get(b + 10), 9);
	assert_int_equal(be32_get(b + 18), TPM2_RS_PW);
	assert_int_equal(be32_get(b + 27), 2);
	assert_int_equal(be16_get(b + 31), TPM2_ALG_SHA256);
	d.alg[1] = 0x1234; /* unknown algorithm */
	assert_int_equal(tpm2_cmd_pcr_extend(b, sizeof(b), 9, &d), 0);
	/* HierarchyControl(platform, platform, NO) */
	assert_int_equal(tpm2_cmd_disable_platform(b, sizeof(b)), 32);
	assert_int_equal(be32_get(b + 6), TPM2_CC_HIERARCHY_CONTROL);
	assert_int_equal(be32_get(b + 10), TPM2_RH_PLATFORM);
	assert_int_equal(be32_get(b + 27), TPM2_RH_PLATFORM);
	assert_int_equal(b[31], 0);
	assert_int_equal(tpm2_rsp_error(b, sizeof(b), TPM2_RC_FAILURE), 10);
	assert_int_equal(tpm2_rsp_code(b, 10), TPM2_RC_FAILURE);
	assert_int_equal(tpm2_rsp_code(b, 11), TPM2_RC_FAILURE); /* size mismatch */
	/* GetCapability(PCRS) response: SHA-1 unallocated, SHA-256 allocated. */
	uint8_t r[] = {0x80, 0x01, 0, 0, 0, 31, 0, 0, 0, 0, 0,	  0, 0,	   0,	 5,   0,
		       0,    0,	   2, 0, 4, 3,	0, 0, 0, 0, 0x0b, 3, 0xff, 0xff, 0xff};
	uint16_t algs[TPM2_MAX_BANKS];
	unsigned na;
	assert_int_equal(tpm2_parse_pcrs(r, sizeof(r), algs, &na), 0);
	assert_int_equal(na, 1);
	assert_int_equal(algs[0], TPM2_ALG_SHA256);
	r[27] = 200; /* sizeofSelect past the end */
	assert_int_equal(tpm2_parse_pcrs(r, sizeof(r), algs, &na), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_rejects),
	    cmocka_unit_test(test_tpm2_commands),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
