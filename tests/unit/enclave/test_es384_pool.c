/* cmocka tests of src/enclave/es384_pool.c: signatures made with precomputed (k^-1, r)
 * pairs verify (checked here through OpenSSL's EVP verify path, not the pool's code), no
 * two share r (a k used twice would show as a repeated r), also across two keys drawing on
 * one pool, an empty pool signs on the spot, a filler thread running beside the signer
 * loses or repeats nothing, the pool stays within its bound, and keys that are not P-384
 * private keys are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/es384_pool.h"

static EVP_PKEY *key;

/* An ES384 r||s signature over msg checked with EVP_DigestVerify: 1 valid, 0 not. */
static int verifies(EVP_PKEY *k, const uint8_t *msg, size_t len,
		    const uint8_t sig[COSE_ES384_SIG_LEN])
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 48, NULL), *s = BN_bin2bn(sig + 48, 48, NULL);
	assert_non_null(es);
	assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
	uint8_t *der = NULL;
	int dl = i2d_ECDSA_SIG(es, &der);
	assert_true(dl > 0);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, k), 1);
	int ok = EVP_DigestVerify(md, der, (size_t)dl, msg, len) == 1;
	EVP_MD_CTX_free(md);
	OPENSSL_free(der);
	ECDSA_SIG_free(es);
	return ok;
}

static void message(uint8_t m[64], unsigned i)
{
	memset(m, 0, 64);
	snprintf((char *)m, 64, "attestation payload %u", i);
}

static int cmp_r(const void *a, const void *b)
{
	return memcmp(a, b, 48);
}

/* No two of the n signatures' r (their first 48 bytes) are equal. */
static void all_r_distinct(uint8_t (*sigs)[COSE_ES384_SIG_LEN], unsigned n)
{
	uint8_t(*rs)[48] = malloc((size_t)n * 48);
	assert_non_null(rs);
	for (unsigned i = 0; i < n; i++)
		memcpy(rs[i], sigs[i], 48);
	qsort(rs, n, 48, cmp_r);
	for (unsigned i = 1; i < n; i++)
		assert_memory_not_equal(rs[i - 1], rs[i], 48);
	free(rs);
}

static int setup(void **st)
{
	(void)st;
	key = EVP_EC_gen("P-384");
	return key ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	EVP_PKEY_free(key);
	return 0;
}

static atomic_uint takes;

static void on_take(void *arg)
{
	assert_ptr_equal(arg, &takes);
	atomic_fetch_add(&takes, 1);
}

static void counts(const struct es384_signer *s, unsigned long pooled, unsigned long spot)
{
	unsigned long a, b;
	es384_signer_counts(s, &a, &b);
	assert_int_equal(a, pooled);
	assert_int_equal(b, spot);
}

/* A full pool: every signature from it verifies, no r repeats, the pool empties pair by
 * pair and never grows past its bound; then one more is signed on the spot. */
static void test_pool_signatures(void **st)
{
	(void)st;
	enum { N = 200 };
	struct es384_pool *p = es384_pool_new(N, on_take, &takes);
	assert_non_null(p);
	struct es384_signer *s = es384_signer_new(key, p);
	assert_non_null(s);
	assert_int_equal(es384_pool_count(p), 0);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(es384_pool_fill(p), 1);
	assert_int_equal(es384_pool_fill(p), 0); /* full: nothing computed, nothing added */
	assert_false(es384_pool_wants(p));
	assert_int_equal(es384_pool_count(p), N);

	static uint8_t sigs[N + 1][COSE_ES384_SIG_LEN];
	uint8_t m[64];
	atomic_store(&takes, 0);
	for (unsigned i = 0; i < N; i++) {
		message(m, i);
		assert_int_equal(es384_sign(s, m, sizeof(m), sigs[i]), 0);
		assert_true(verifies(key, m, sizeof(m), sigs[i]));
		m[0] ^= 1; /* the check can fail: another message does not verify */
		assert_false(verifies(key, m, sizeof(m), sigs[i]));
		assert_int_equal(es384_pool_count(p), N - 1 - i);
	}
	assert_true(es384_pool_wants(p));
	counts(s, N, 0);
	assert_int_equal(atomic_load(&takes), N);
	/* empty: signed on the spot */
	message(m, N);
	assert_int_equal(es384_sign(s, m, sizeof(m), sigs[N]), 0);
	assert_true(verifies(key, m, sizeof(m), sigs[N]));
	counts(s, N, 1);
	assert_int_equal(atomic_load(&takes), N); /* no pair taken */
	all_r_distinct(sigs, N + 1);
	es384_signer_free(s);
	es384_pool_free(p);
}

/* The same message signed twice from the pool: two different signatures, both valid. */
static void test_same_message_new_k(void **st)
{
	(void)st;
	struct es384_pool *p = es384_pool_new(2, NULL, NULL);
	struct es384_signer *s = es384_signer_new(key, p);
	assert_non_null(s);
	assert_int_equal(es384_pool_fill(p), 1);
	assert_int_equal(es384_pool_fill(p), 1);
	static const uint8_t m[] = "the same payload";
	uint8_t a[COSE_ES384_SIG_LEN], b[COSE_ES384_SIG_LEN];
	assert_int_equal(es384_sign(s, m, sizeof(m), a), 0);
	assert_int_equal(es384_sign(s, m, sizeof(m), b), 0);
	assert_true(verifies(key, m, sizeof(m), a));
	assert_true(verifies(key, m, sizeof(m), b));
	assert_memory_not_equal(a, b, 48);
	counts(s, 2, 0);
	es384_signer_free(s);
	es384_pool_free(p);
}

/* Two signers (two enclaves' leaf keys) on one pool: each signature verifies with its own
 * key only, and no r repeats across them. A signer without a pool signs on the spot. */
static void test_two_keys_one_pool(void **st)
{
	(void)st;
	enum { N = 64 };
	EVP_PKEY *key2 = EVP_EC_gen("P-384");
	assert_non_null(key2);
	struct es384_pool *p = es384_pool_new(2 * N, NULL, NULL);
	struct es384_signer *s1 = es384_signer_new(key, p), *s2 = es384_signer_new(key2, p);
	struct es384_signer *alone = es384_signer_new(key, NULL);
	assert_non_null(s1);
	assert_non_null(s2);
	assert_non_null(alone);
	while (es384_pool_fill(p) == 1)
		;
	static uint8_t sigs[2 * N + 1][COSE_ES384_SIG_LEN];
	uint8_t m[64];
	for (unsigned i = 0; i < 2 * N; i++) {
		message(m, i);
		EVP_PKEY *k = i % 2 ? key2 : key, *other = i % 2 ? key : key2;
		assert_int_equal(es384_sign(i % 2 ? s2 : s1, m, sizeof(m), sigs[i]), 0);
		assert_true(verifies(k, m, sizeof(m), sigs[i]));
		assert_false(verifies(other, m, sizeof(m), sigs[i]));
	}
	counts(s1, N, 0);
	counts(s2, N, 0);
	assert_int_equal(es384_pool_count(p), 0);
	message(m, 2 * N);
	assert_int_equal(es384_sign(alone, m, sizeof(m), sigs[2 * N]), 0);
	assert_true(verifies(key, m, sizeof(m), sigs[2 * N]));
	counts(alone, 0, 1);
	all_r_distinct(sigs, 2 * N + 1);
	es384_signer_free(alone);
	es384_signer_free(s1);
	es384_signer_free(s2);
	es384_pool_free(p);
	EVP_PKEY_free(key2);
}

struct filler {
	struct es384_pool *p;
	atomic_bool stop;
	bool failed; /* asserted on the main thread: cmocka's checks belong there */
	unsigned long added;
};

static void *fill_loop(void *arg)
{
	struct filler *f = arg;
	while (!atomic_load(&f->stop)) {
		int r = es384_pool_fill(f->p);
		if (r < 0) {
			f->failed = true;
			break;
		}
		f->added += (unsigned)r;
	}
	return NULL;
}

/* A filler thread beside the signer: every signature verifies, no r repeats, and every pair
 * added was either used once or is still in the pool. */
static void test_pool_concurrent_fill(void **st)
{
	(void)st;
	enum { N = 300, CAP = 16 };
	struct es384_pool *p = es384_pool_new(CAP, NULL, NULL);
	struct es384_signer *s = es384_signer_new(key, p);
	assert_non_null(s);
	struct filler f = {.p = p};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fill_loop, &f), 0);
	static uint8_t sigs[N][COSE_ES384_SIG_LEN];
	uint8_t m[64];
	for (unsigned i = 0; i < N; i++) {
		message(m, i);
		assert_int_equal(es384_sign(s, m, sizeof(m), sigs[i]), 0);
		assert_true(verifies(key, m, sizeof(m), sigs[i]));
	}
	atomic_store(&f.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_false(f.failed);
	unsigned long pooled, spot;
	es384_signer_counts(s, &pooled, &spot);
	assert_int_equal(pooled + spot, N);
	assert_true(pooled > 0);
	assert_int_equal(f.added, pooled + es384_pool_count(p));
	assert_true(es384_pool_count(p) <= CAP);
	all_r_distinct(sigs, N);
	es384_signer_free(s);
	es384_pool_free(p); /* pairs left are wiped and freed (ASan: no leak) */
}

static void test_refuses(void **st)
{
	(void)st;
	assert_null(es384_pool_new(0, NULL, NULL));
	assert_null(es384_pool_new(ES384_POOL_MAX + 1, NULL, NULL));
	struct es384_pool *p = es384_pool_new(4, NULL, NULL);
	assert_non_null(p);
	assert_null(es384_signer_new(NULL, p));
	EVP_PKEY *p256 = EVP_EC_gen("P-256");
	assert_non_null(p256);
	assert_null(es384_signer_new(p256, p));
	EVP_PKEY_free(p256);
	/* the public half only */
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(key, &der);
	assert_true(n > 0);
	const uint8_t *q = der;
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &q, n);
	assert_non_null(pub);
	assert_null(es384_signer_new(pub, p));
	EVP_PKEY_free(pub);
	OPENSSL_free(der);
	EVP_PKEY *rsa = EVP_RSA_gen(1024);
	assert_non_null(rsa);
	assert_null(es384_signer_new(rsa, p));
	EVP_PKEY_free(rsa);
	es384_pool_free(p);
	es384_pool_free(NULL);
	es384_signer_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_signatures),   cmocka_unit_test(test_same_message_new_k),
	    cmocka_unit_test(test_two_keys_one_pool), cmocka_unit_test(test_pool_concurrent_fill),
	    cmocka_unit_test(test_refuses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
