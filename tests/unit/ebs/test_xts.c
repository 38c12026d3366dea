/* cmocka tests of the card's AES-256-XTS (src/volume/xts.c) against OpenSSL's own
 * "AES-256-XTS" cipher called once per sector with the sector number as the IV: the
 * volume format must not change with the implementation. Also the IEEE 1619 vector 10
 * key and tweak (sector 0xff), runs longer than XTS_RUN, in-place use, and the refusals;
 * and that the key schedules live in OpenSSL's secure (locked) heap, as the card sets it
 * up (xts_secure_init first thing), and are wiped from it by xts_free. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "volume/xts.h"

#define MAXS (3 * XTS_RUN + 5)

/* The reference: OpenSSL's XTS, one 512-byte data unit per call. */
static void ref(const uint8_t *key, int enc, uint64_t sector, const uint8_t *in, uint8_t *out,
		size_t n)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	assert_non_null(c);
	for (size_t s = 0; s < n; s++) {
		uint8_t iv[16] = {0};
		int got;
		for (int b = 0; b < 8; b++)
			iv[b] = (uint8_t)((sector + s) >> (8 * b));
		assert_int_equal(EVP_CipherInit_ex(c, EVP_aes_256_xts(), NULL, key, iv, enc), 1);
		assert_int_equal(EVP_CipherUpdate(c, out + s * 512, &got, in + s * 512, 512), 1);
		assert_int_equal(got, 512);
	}
	EVP_CIPHER_CTX_free(c);
}

static void same_as_openssl(void **state)
{
	(void)state;
	static uint8_t key[64], plain[MAXS * 512], mine[MAXS * 512], theirs[MAXS * 512];
	static const uint64_t sectors[] = {
	    0, 1, 7, 255, 0x12345678ull, 0xfffffffffull, 0x8000000000000000ull, UINT64_MAX - MAXS};
	static const size_t counts[] = {1, 2, 8, XTS_RUN, XTS_RUN + 1, MAXS};
	for (int k = 0; k < 4; k++) {
		assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
		struct xts *e = xts_new(key, true), *d = xts_new(key, false);
		assert_non_null(e);
		assert_non_null(d);
		for (size_t i = 0; i < sizeof(sectors) / sizeof(*sectors); i++)
			for (size_t j = 0; j < sizeof(counts) / sizeof(*counts); j++) {
				size_t n = counts[j], len = n * 512;
				assert_int_equal(RAND_bytes(plain, (int)len), 1);
				assert_int_equal(xts_run(e, sectors[i], plain, mine, len), 0);
				ref(key, 1, sectors[i], plain, theirs, n);
				assert_memory_equal(mine, theirs, len);
				assert_memory_not_equal(mine, plain, 512);
				/* decrypt in place gives the plaintext back */
				assert_int_equal(xts_run(d, sectors[i], mine, mine, len), 0);
				assert_memory_equal(mine, plain, len);
				/* a sector decrypted under another number is garbage */
				ref(key, 1, sectors[i], plain, theirs, 1);
				assert_int_equal(xts_run(d, sectors[i] + 1, theirs, mine, 512), 0);
				assert_memory_not_equal(mine, plain, 512);
			}
		xts_free(e);
		xts_free(d);
	}
}

/* IEEE 1619-2007 annex B, vector 10 (also in Linux's crypto/testmgr.h): 256-bit key
 * halves, data unit 0xff, 512 bytes of 00 01 .. ff 00 01 .. ff; checked on the first and
 * last 16 ciphertext bytes. */
static void ieee_vector_10(void **state)
{
	(void)state;
	static const char *k1 = "2718281828459045235360287471352662497757247093699959574966967627",
			  *k2 = "3141592653589793238462643383279502884197169399375105820974944592";
	static const uint8_t first[16] = {0x1c, 0x3b, 0x3a, 0x10, 0x2f, 0x77, 0x03, 0x86,
					  0xe4, 0x83, 0x6c, 0x99, 0xe3, 0x70, 0xcf, 0x9b};
	static const uint8_t last[16] = {0xc4, 0xf3, 0x6f, 0xfd, 0xa9, 0xfc, 0xea, 0x70,
					 0xb9, 0xc6, 0xe6, 0x93, 0xe1, 0x48, 0xc1, 0x51};
	uint8_t key[64], in[512], out[512];
	for (int i = 0; i < 32; i++) {
		unsigned a, b;
		sscanf(k1 + 2 * i, "%2x", &a);
		sscanf(k2 + 2 * i, "%2x", &b);
		key[i] = (uint8_t)a;
		key[32 + i] = (uint8_t)b;
	}
	for (int i = 0; i < 512; i++)
		in[i] = (uint8_t)i;
	struct xts *e = xts_new(key, true);
	assert_non_null(e);
	assert_int_equal(xts_run(e, 0xff, in, out, 512), 0);
	assert_memory_equal(out, first, 16);
	assert_memory_equal(out + 496, last, 16);
	xts_free(e);
}

static void refusals(void **state)
{
	(void)state;
	uint8_t key[64], buf[1024] = {0};
	memset(key, 7, sizeof(key));
	assert_null(xts_new(key, true)); /* equal halves */
	key[40] = 8;
	struct xts *e = xts_new(key, true);
	assert_non_null(e);
	assert_int_not_equal(xts_run(e, 0, buf, buf, 100), 0); /* not whole sectors */
	assert_int_equal(xts_run(e, 0, buf, buf, 0), 0);
	xts_free(e);
	xts_free(NULL);
}

static void keys_in_secure_heap(void **state)
{
	(void)state;
	uint8_t key[64];
	assert_int_equal(RAND_bytes(key, sizeof(key)), 1);
	size_t before = CRYPTO_secure_used();
	struct xts *x = xts_new(key, true);
	assert_non_null(x);
	/* two AES-256 key schedules (240 bytes each) and the tweak buffer, at least */
	assert_true(CRYPTO_secure_used() >= before + 2 * 240 + XTS_RUN * XTS_SECTOR);
	uint8_t buf[XTS_SECTOR] = {0};
	assert_int_equal(xts_run(x, 1, buf, buf, sizeof(buf)), 0);
	xts_free(x);
	assert_int_equal(CRYPTO_secure_used(), before);
}

int main(void)
{
	/* as nitro-card-ebs does, before OpenSSL allocates anything (0, or 1 without mlock) */
	if (xts_secure_init(128 << 10) < 0) {
		fprintf(stderr, "xts_secure_init failed\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(keys_in_secure_heap),
	    cmocka_unit_test(same_as_openssl),
	    cmocka_unit_test(ieee_vector_10),
	    cmocka_unit_test(refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
