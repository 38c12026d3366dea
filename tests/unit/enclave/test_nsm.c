/* cmocka tests of src/enclave/nsm.c and cose.c: every request's answer byte for byte
 * (requests and expected replies written out by hand in CBOR, not with nitro's writer), the
 * GetRandom layout the Linux driver's hwrng parser compares, every error answer, PCR
 * locking, hostile encodings (deep nesting, huge counts, oversized requests, tiny reply
 * buffers), and the attestation document: COSE_Sign1 ES384 verified here with OpenSSL over a
 * Sig_structure assembled by hand, and its nine payload keys decoded with libcbor. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cbor.h>
#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "enclave/nsm.h"
#include "enclave/pki.h"

static struct nsm_state s;
static uint8_t resp[NSM_RESPONSE_MAX];
static EVP_PKEY *key;
static const uint8_t cert[] = {0x30, 0x03, 0x02, 0x01, 0x01}; /* bytes only: not parsed */
static const uint8_t root[] = {0x30, 0x03, 0x02, 0x01, 0x02};
static uint8_t boot0[48];

static int fake_random(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i ^ 0xa5);
	return 0;
}

static uint64_t fake_now(void *ctx)
{
	(void)ctx;
	return 1700000000123ull;
}

static int setup(void **st)
{
	(void)st;
	if (!key)
		key = EVP_EC_gen("P-384");
	memset(boot0, 0x11, sizeof(boot0));
	const uint8_t *boot[NSM_LOCKED_AT_BOOT] = {boot0};
	struct nsm_ops ops = {
	    .sign = pki_es384_sign, .sign_ctx = key, .random = fake_random, .now_ms = fake_now};
	nsm_init(&s, "i-0123456789abcdef0-enc0123456789abcdef", boot, &ops);
	s.cert = cert;
	s.cert_len = sizeof(cert);
	s.cabundle[0] = root;
	s.cabundle_len[0] = sizeof(root);
	s.ncabundle = 1;
	return 0;
}

static size_t ask(const void *req, size_t len)
{
	return nsm_handle(&s, req, len, resp, sizeof(resp));
}

#define ASK(lit) ask(lit, sizeof(lit) - 1)
#define EXPECT(n, lit)                                                                             \
	do {                                                                                       \
		assert_int_equal((n), sizeof(lit) - 1);                                            \
		assert_memory_equal(resp, lit, sizeof(lit) - 1);                                   \
	} while (0)
#define ERR(code)                                                                                  \
	"\xa1\x65"                                                                                 \
	"Error" code
#define E_ARG                                                                                      \
	ERR("\x6f"                                                                                 \
	    "InvalidArgument")
#define E_IDX                                                                                      \
	ERR("\x6c"                                                                                 \
	    "InvalidIndex")
#define E_RO                                                                                       \
	ERR("\x6d"                                                                                 \
	    "ReadOnlyIndex")
#define E_OP                                                                                       \
	ERR("\x70"                                                                                 \
	    "InvalidOperation")
#define E_BIG                                                                                      \
	ERR("\x6d"                                                                                 \
	    "InputTooLarge")
#define E_SMALL                                                                                    \
	ERR("\x6e"                                                                                 \
	    "BufferTooSmall")

static void test_describe_nsm(void **st)
{
	(void)st;
	EXPECT(ASK("\x6b"
		   "DescribeNSM"),
	       "\xa1\x6b"
	       "DescribeNSM"
	       "\xa7"
	       "\x6d"
	       "version_major"
	       "\x01"
	       "\x6d"
	       "version_minor"
	       "\x00"
	       "\x6d"
	       "version_patch"
	       "\x00"
	       "\x69"
	       "module_id"
	       "\x78\x27"
	       "i-0123456789abcdef0-enc0123456789abcdef"
	       "\x68"
	       "max_pcrs"
	       "\x18\x20"
	       "\x6b"
	       "locked_pcrs"
	       "\x90"
	       "\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
	       "\x66"
	       "digest"
	       "\x66"
	       "SHA384");
}

static void test_describe_pcr(void **st)
{
	(void)st;
	uint8_t want[128];
	static const char pre[] = "\xa1\x6b"
				  "DescribePCR"
				  "\xa2\x64"
				  "lock"
				  "\xf5\x64"
				  "data"
				  "\x58\x30";
	memcpy(want, pre, sizeof(pre) - 1);
	memcpy(want + sizeof(pre) - 1, boot0, 48);
	size_t n = ASK("\xa1\x6b"
		       "DescribePCR"
		       "\xa1\x65"
		       "index"
		       "\x00");
	assert_int_equal(n, sizeof(pre) - 1 + 48);
	assert_memory_equal(resp, want, n);
	/* PCR 31: unlocked, zero */
	n = ASK("\xa1\x6b"
		"DescribePCR"
		"\xa1\x65"
		"index"
		"\x18\x1f");
	assert_int_equal(n, sizeof(pre) - 1 + 48);
	assert_int_equal(resp[19], 0xf4); /* lock: false */
	EXPECT(ASK("\xa1\x6b"
		   "DescribePCR"
		   "\xa1\x65"
		   "index"
		   "\x18\x20"),
	       E_IDX);
	EXPECT(ASK("\xa1\x6b"
		   "DescribePCR"
		   "\xa1\x65"
		   "index"
		   "\x20"),
	       E_ARG); /* -1 */
	EXPECT(ASK("\xa1\x6b"
		   "DescribePCR"
		   "\xa1\x65"
		   "index"
		   "\x1a\x00\x01\x00\x00"),
	       E_ARG);
	EXPECT(ASK("\xa1\x6b"
		   "DescribePCR"
		   "\xa0"),
	       E_ARG);
	EXPECT(ASK("\xa1\x6b"
		   "DescribePCR"
		   "\xa1\x65"
		   "index"
		   "\x61"
		   "0"),
	       E_ARG);
	EXPECT(ASK("\xa1\x6b"
		   "DescribePCR"
		   "\xa2\x65"
		   "index"
		   "\x00\x65"
		   "index"
		   "\x01"),
	       E_ARG);
	EXPECT(ASK("\xa1\x6b"
		   "DescribePCR"
		   "\xa2\x65"
		   "index"
		   "\x00\x65"
		   "extra"
		   "\x01"),
	       E_ARG);
	EXPECT(ASK("\xa1\x6b"
		   "DescribePCR"
		   "\x00"),
	       E_ARG);
}

static void test_extend_and_lock(void **st)
{
	(void)st;
	/* SHA-384(48 zero bytes || "abc") */
	uint8_t in[51] = {0}, d[48];
	memcpy(in + 48, "abc", 3);
	unsigned l;
	EVP_Digest(in, sizeof(in), d, &l, EVP_sha384(), NULL);
	static const char pre[] = "\xa1\x69"
				  "ExtendPCR"
				  "\xa1\x64"
				  "data"
				  "\x58\x30";
	size_t n = ASK("\xa1\x69"
		       "ExtendPCR"
		       "\xa2\x65"
		       "index"
		       "\x10\x64"
		       "data"
		       "\x43"
		       "abc");
	assert_int_equal(n, sizeof(pre) - 1 + 48);
	assert_memory_equal(resp, pre, sizeof(pre) - 1);
	assert_memory_equal(resp + sizeof(pre) - 1, d, 48);
	assert_memory_equal(s.pcr[16], d, 48);
	/* locked at boot */
	EXPECT(ASK("\xa1\x69"
		   "ExtendPCR"
		   "\xa2\x65"
		   "index"
		   "\x0f\x64"
		   "data"
		   "\x41"
		   "x"),
	       E_RO);
	EXPECT(ASK("\xa1\x69"
		   "ExtendPCR"
		   "\xa2\x65"
		   "index"
		   "\x18\x20\x64"
		   "data"
		   "\x41"
		   "x"),
	       E_IDX);
	EXPECT(ASK("\xa1\x69"
		   "ExtendPCR"
		   "\xa1\x65"
		   "index"
		   "\x10"),
	       E_ARG); /* no data */
	EXPECT(ASK("\xa1\x69"
		   "ExtendPCR"
		   "\xa2\x65"
		   "index"
		   "\x10\x64"
		   "data"
		   "\xf6"),
	       E_ARG);
	EXPECT(ASK("\xa1\x69"
		   "ExtendPCR"
		   "\xa2\x65"
		   "index"
		   "\x10\x64"
		   "data"
		   "\x61"
		   "x"),
	       E_ARG);
	/* LockPCR 16, then extending it is refused and DescribePCR says locked */
	EXPECT(ASK("\xa1\x67"
		   "LockPCR"
		   "\xa1\x65"
		   "index"
		   "\x10"),
	       "\x67"
	       "LockPCR");
	EXPECT(ASK("\xa1\x69"
		   "ExtendPCR"
		   "\xa2\x65"
		   "index"
		   "\x10\x64"
		   "data"
		   "\x41"
		   "x"),
	       E_RO);
	assert_memory_equal(s.pcr[16], d, 48);
	EXPECT(ASK("\xa1\x67"
		   "LockPCR"
		   "\xa1\x65"
		   "index"
		   "\x18\x20"),
	       E_IDX);
	/* LockPCRs range 20 locks 0..19 */
	EXPECT(ASK("\xa1\x68"
		   "LockPCRs"
		   "\xa1\x65"
		   "range"
		   "\x14"),
	       "\x68"
	       "LockPCRs");
	EXPECT(ASK("\xa1\x69"
		   "ExtendPCR"
		   "\xa2\x65"
		   "index"
		   "\x13\x64"
		   "data"
		   "\x41"
		   "x"),
	       E_RO);
	assert_int_equal(ASK("\xa1\x69"
			     "ExtendPCR"
			     "\xa2\x65"
			     "index"
			     "\x14\x64"
			     "data"
			     "\x41"
			     "x"),
			 sizeof(pre) - 1 + 48);
	EXPECT(ASK("\xa1\x68"
		   "LockPCRs"
		   "\xa1\x65"
		   "range"
		   "\x18\x21"),
	       E_IDX);
	EXPECT(ASK("\xa1\x68"
		   "LockPCRs"
		   "\xa1\x65"
		   "index"
		   "\x01"),
	       E_ARG);
}

static void test_get_random_layout(void **st)
{
	(void)st;
	/* What drivers/misc/nsm.c compares, then a bstr with a 2-byte length. */
	static const uint8_t pre[] = {0xa1, 0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd',  'o',  'm',
				      0xa1, 0x66, 'r', 'a', 'n', 'd', 'o', 'm', 0x59, 0x01, 0x00};
	size_t n = ASK("\x69"
		       "GetRandom");
	assert_int_equal(n, sizeof(pre) + 256);
	assert_memory_equal(resp, pre, sizeof(pre));
	for (int i = 0; i < 256; i++)
		assert_int_equal(resp[sizeof(pre) + i], (uint8_t)(i ^ 0xa5));
}

static void test_bad_requests(void **st)
{
	(void)st;
	EXPECT(ask("", 0), E_OP);
	/* Floats (major type 7 with a width) where bytes or null belong: libcbor's
	 * cbor_is_null() would assert on them (found by fuzz_nsm); InvalidArgument. */
	EXPECT(ASK("\xa1\x69"
		   "ExtendPCR"
		   "\xa2\x65"
		   "index"
		   "\x10\x64"
		   "data"
		   "\xfa\x63\x61\x62\x63"),
	       E_ARG);
	EXPECT(ASK("\xa1\x6b"
		   "Attestation"
		   "\xa1\x65"
		   "nonce"
		   "\xf9\x00\x00"),
	       E_ARG);
	EXPECT(ASK("\x6b"
		   "DescribeNsm"),
	       E_OP);
	EXPECT(ASK("\xa1\x67"
		   "Unknown"
		   "\xa0"),
	       E_OP);
	EXPECT(ASK("\xa2\x67"
		   "LockPCR"
		   "\xa0\x67"
		   "LockPCR"
		   "\xa0"),
	       E_OP);
	EXPECT(ASK("\x7f\x65"
		   "Descr"
		   "\x66"
		   "ibeNSM"
		   "\xff"),
	       E_OP); /* indefinite text */
	EXPECT(ASK("\x6b"
		   "DescribeNSM"
		   "\x00"),
	       E_OP); /* trailing byte */
	EXPECT(ASK("\x6b"
		   "Describe"),
	       E_OP); /* truncated */
	EXPECT(ASK("\xff"), E_OP);
	EXPECT(ASK("\x1c"), E_OP); /* reserved additional information */
	/* hostile encodings: nothing is allocated for them */
	EXPECT(ASK("\x9b\xff\xff\xff\xff\xff\xff\xff\xff\x00"), E_OP);
	EXPECT(ASK("\xbb\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00"), E_OP);
	EXPECT(ASK("\x5b\x7f\xff\xff\xff\xff\xff\xff\xff"), E_OP);
	uint8_t deep[4000];
	memset(deep, 0x81, sizeof(deep));
	deep[sizeof(deep) - 1] = 0;
	EXPECT(ask(deep, sizeof(deep)), E_OP);
	memset(deep, 0xd8, sizeof(deep)); /* tags */
	EXPECT(ask(deep, sizeof(deep)), E_OP);
	uint8_t big[NSM_REQUEST_MAX + 1];
	memset(big, 0, sizeof(big));
	EXPECT(ask(big, sizeof(big)), E_BIG);
	/* the reply does not fit the buffer: BufferTooSmall, and nothing if even that does not */
	uint8_t small[40];
	size_t n = nsm_handle(&s,
			      (const uint8_t *)"\x6b"
					       "DescribeNSM",
			      12, small, sizeof(small));
	assert_int_equal(n, sizeof(E_SMALL) - 1);
	assert_memory_equal(small, E_SMALL, n);
	assert_int_equal(nsm_handle(&s,
				    (const uint8_t *)"\x6b"
						     "DescribeNSM",
				    12, small, 10),
			 0);
}

static cbor_item_t *get(cbor_item_t *m, const char *k)
{
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		cbor_item_t *key = cbor_map_handle(m)[i].key;
		if (cbor_string_length(key) == strlen(k) &&
		    !memcmp(cbor_string_handle(key), k, strlen(k)))
			return cbor_map_handle(m)[i].value;
	}
	return NULL;
}

static void verify_es384(const uint8_t *prot, size_t pl, const uint8_t *payload, size_t n,
			 const uint8_t *sig)
{
	/* ["Signature1", protected, h'', payload] by hand */
	size_t cap = 64 + pl + n;
	uint8_t *tbs = malloc(cap), *p = tbs;
	*p++ = 0x84;
	*p++ = 0x6a;
	memcpy(p, "Signature1", 10), p += 10;
	*p++ = (uint8_t)(0x40 | pl);
	memcpy(p, prot, pl), p += pl;
	*p++ = 0x40;
	*p++ = 0x59, *p++ = (uint8_t)(n >> 8), *p++ = (uint8_t)n;
	memcpy(p, payload, n), p += n;
	ECDSA_SIG *es = ECDSA_SIG_new();
	ECDSA_SIG_set0(es, BN_bin2bn(sig, 48, NULL), BN_bin2bn(sig + 48, 48, NULL));
	uint8_t *der = NULL;
	int dl = i2d_ECDSA_SIG(es, &der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key), 1);
	assert_int_equal(EVP_DigestVerify(md, der, (size_t)dl, tbs, (size_t)(p - tbs)), 1);
	/* and a flipped payload byte does not verify */
	tbs[p - tbs - 1] ^= 1;
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key), 1);
	assert_int_not_equal(EVP_DigestVerify(md, der, (size_t)dl, tbs, (size_t)(p - tbs)), 1);
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	free(tbs);
}

static void test_attestation(void **st)
{
	(void)st;
	size_t n = ASK("\xa1\x6b"
		       "Attestation"
		       "\xa3\x69"
		       "user_data"
		       "\x42"
		       "ud"
		       "\x65"
		       "nonce"
		       "\x43"
		       "\x01\x02\x03"
		       "\x6a"
		       "public_key"
		       "\xf6");
	static const char pre[] = "\xa1\x6b"
				  "Attestation"
				  "\xa1\x68"
				  "document";
	assert_true(n > sizeof(pre) + 100);
	assert_memory_equal(resp, pre, sizeof(pre) - 1);
	struct cbor_load_result r;
	cbor_item_t *top = cbor_load(resp, n, &r);
	assert_non_null(top);
	cbor_item_t *doc = get(get(top, "Attestation"), "document");
	cbor_item_t *cose = cbor_load(cbor_bytestring_handle(doc), cbor_bytestring_length(doc), &r);
	assert_non_null(cose);
	assert_int_equal(r.read, cbor_bytestring_length(doc));
	assert_true(cbor_isa_array(cose) && cbor_array_size(cose) == 4);
	cbor_item_t **a = cbor_array_handle(cose);
	assert_int_equal(cbor_bytestring_length(a[0]), 4);
	assert_memory_equal(cbor_bytestring_handle(a[0]), "\xa1\x01\x38\x22", 4);
	assert_true(cbor_isa_map(a[1]) && cbor_map_size(a[1]) == 0);
	assert_int_equal(cbor_bytestring_length(a[3]), 96);
	verify_es384(cbor_bytestring_handle(a[0]), 4, cbor_bytestring_handle(a[2]),
		     cbor_bytestring_length(a[2]), cbor_bytestring_handle(a[3]));
	cbor_item_t *pl = cbor_load(cbor_bytestring_handle(a[2]), cbor_bytestring_length(a[2]), &r);
	assert_true(cbor_isa_map(pl) && cbor_map_size(pl) == 9);
	static const char *const keys[] = {"module_id",	 "digest",	"timestamp",
					   "pcrs",	 "certificate", "cabundle",
					   "public_key", "user_data",	"nonce"};
	for (int i = 0; i < 9; i++) {
		cbor_item_t *k = cbor_map_handle(pl)[i].key;
		assert_int_equal(cbor_string_length(k), strlen(keys[i]));
		assert_memory_equal(cbor_string_handle(k), keys[i], strlen(keys[i]));
	}
	assert_int_equal(cbor_get_int(get(pl, "timestamp")), 1700000000123ull);
	cbor_item_t *pcrs = get(pl, "pcrs");
	assert_int_equal(cbor_map_size(pcrs), 16); /* the locked ones */
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(cbor_get_int(cbor_map_handle(pcrs)[i].key), i);
	assert_memory_equal(cbor_bytestring_handle(cbor_map_handle(pcrs)[0].value), boot0, 48);
	assert_memory_equal(cbor_bytestring_handle(get(pl, "certificate")), cert, sizeof(cert));
	cbor_item_t *cab = get(pl, "cabundle");
	assert_int_equal(cbor_array_size(cab), 1);
	assert_memory_equal(cbor_bytestring_handle(cbor_array_handle(cab)[0]), root, sizeof(root));
	assert_memory_equal(cbor_bytestring_handle(get(pl, "nonce")), "\x01\x02\x03", 3);
	assert_memory_equal(cbor_bytestring_handle(get(pl, "user_data")), "ud", 2);
	assert_true(cbor_is_null(get(pl, "public_key")));
	cbor_decref(&pl);
	cbor_decref(&cose);
	cbor_decref(&top);

	/* absent fields are null too; a PCR locked since boot is in the document */
	ASK("\xa1\x67"
	    "LockPCR"
	    "\xa1\x65"
	    "index"
	    "\x18\x14");
	n = ASK("\xa1\x6b"
		"Attestation"
		"\xa0");
	assert_true(n > sizeof(pre) + 100);
	top = cbor_load(resp, n, &r);
	doc = get(get(top, "Attestation"), "document");
	cose = cbor_load(cbor_bytestring_handle(doc), cbor_bytestring_length(doc), &r);
	a = cbor_array_handle(cose);
	pl = cbor_load(cbor_bytestring_handle(a[2]), cbor_bytestring_length(a[2]), &r);
	pcrs = get(pl, "pcrs");
	assert_int_equal(cbor_map_size(pcrs), 17);
	assert_int_equal(cbor_get_int(cbor_map_handle(pcrs)[16].key), 20);
	assert_true(cbor_is_null(get(pl, "nonce")) && cbor_is_null(get(pl, "user_data")));
	cbor_decref(&pl);
	cbor_decref(&cose);
	cbor_decref(&top);
	/* oversized fields are refused */
	uint8_t req[700] = "\xa1\x6b"
			   "Attestation"
			   "\xa1\x65"
			   "nonce"
			   "\x59\x02\x01";
	size_t rl = 1 + 12 + 1 + 6 + 3 + 513;
	EXPECT(ask(req, rl), E_BIG);
	EXPECT(ASK("\xa1\x6b"
		   "Attestation"
		   "\xa1\x65"
		   "nonce"
		   "\x61"
		   "x"),
	       E_ARG);
	EXPECT(ASK("\xa1\x6b"
		   "Attestation"
		   "\xa1\x64"
		   "none"
		   "\xf6"),
	       E_ARG);
}

static int failing_sign(void *ctx, const uint8_t *tbs, size_t len, uint8_t sig[96])
{
	(void)ctx, (void)tbs, (void)len, (void)sig;
	return -1;
}

static void test_attestation_sign_failure(void **st)
{
	(void)st;
	s.ops.sign = failing_sign;
	EXPECT(ASK("\xa1\x6b"
		   "Attestation"
		   "\xa0"),
	       ERR("\x6d"
		   "InternalError"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_describe_nsm, setup),
	    cmocka_unit_test_setup(test_describe_pcr, setup),
	    cmocka_unit_test_setup(test_extend_and_lock, setup),
	    cmocka_unit_test_setup(test_get_random_layout, setup),
	    cmocka_unit_test_setup(test_bad_requests, setup),
	    cmocka_unit_test_setup(test_attestation, setup),
	    cmocka_unit_test_setup(test_attestation_sign_failure, setup),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(key);
	return rc;
}
