/* cmocka tests of src/enclave/es384_pool.c: signatures made with precomputed (k^-1, r)
 * pairs verify (checked here through OpenSSL's EVP verify path, not the pool's code), no
 * two share r (a k used twice would show as a repeated r), an empty pool signs on the spot,
 * a filler thread running beside the signer loses or repeats nothing, the pool stays within
 * its bound, and keys that are not P-384 private keys are refused. */
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
static int verifies(const uint8_t *msg, size_t len, const uint8_t sig[COSE_ES384_SIG_LEN])
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 48, NULL), *s = BN_bin2bn(sig + 48, 48, NULL);
	assert_non_null(es);
	assert_int_equal(ECDSA_SIG_set0(es, r, s), 1);
	uint8_t *der = NULL;
	int dl = i2d_ECDSA_SIG(es, &der);
	assert_true(dl > 0);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha384(), NULL, key), 1);
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

/* A full pool: every signature from it verifies, no r repeats, the pool empties pair by
 * pair and never grows past its bound; then one more is signed on the spot. */
static void test_pool_signatures(void **st)
{
	(void)st;
	enum { N = 200 };
	struct es384_pool *p = es384_pool_new(key, N, on_take, &takes);
	assert_non_null(p);
	struct es384_pool_stats ps;
	es384_pool_stats(p, &ps);
	assert_int_equal(ps.count, 0);
	assert_int_equal(ps.cap, N);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(es384_pool_fill(p), 1);
	assert_int_equal(es384_pool_fill(p), 0); /* full: nothing computed, nothing added */
	assert_false(es384_pool_wants(p));
	es384_pool_stats(p, &ps);
	assert_int_equal(ps.count, N);
	assert_int_equal(ps.filled, N);

	static uint8_t sigs[N + 1][COSE_ES384_SIG_LEN];
	uint8_t m[64];
	atomic_store(&takes, 0);
	for (unsigned i = 0; i < N; i++) {
		message(m, i);
		assert_int_equal(es384_pool_sign(p, m, sizeof(m), sigs[i]), 0);
		assert_true(verifies(m, sizeof(m), sigs[i]));
		m[0] ^= 1; /* the check can fail: another message does not verify */
		assert_false(verifies(m, sizeof(m), sigs[i]));
		es384_pool_stats(p, &ps);
		assert_int_equal(ps.count, N - 1 - i);
	}
	assert_true(es384_pool_wants(p));
	es384_pool_stats(p, &ps);
	assert_int_equal(ps.hits, N);
	assert_int_equal(ps.misses, 0);
	assert_int_equal(atomic_load(&takes), N);
	/* empty: signed on the spot */
	message(m, N);
	assert_int_equal(es384_pool_sign(p, m, sizeof(m), sigs[N]), 0);
	assert_true(verifies(m, sizeof(m), sigs[N]));
	es384_pool_stats(p, &ps);
	assert_int_equal(ps.misses, 1);
	assert_int_equal(atomic_load(&takes), N); /* no pair taken */
	all_r_distinct(sigs, N + 1);
	es384_pool_free(p);
}

/* The same message signed twice from the pool: two different signatures, both valid. */
static void test_same_message_new_k(void **st)
{
	(void)st;
	struct es384_pool *p = es384_pool_new(key, 2, NULL, NULL);
	assert_non_null(p);
	assert_int_equal(es384_pool_fill(p), 1);
	assert_int_equal(es384_pool_fill(p), 1);
	static const uint8_t m[] = "the same payload";
	uint8_t a[COSE_ES384_SIG_LEN], b[COSE_ES384_SIG_LEN];
	assert_int_equal(es384_pool_sign(p, m, sizeof(m), a), 0);
	assert_int_equal(es384_pool_sign(p, m, sizeof(m), b), 0);
	assert_true(verifies(m, sizeof(m), a));
	assert_true(verifies(m, sizeof(m), b));
	assert_memory_not_equal(a, b, 48);
	es384_pool_free(p);
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
	struct es384_pool *p = es384_pool_new(key, CAP, NULL, NULL);
	assert_non_null(p);
	struct filler f = {.p = p};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, fill_loop, &f), 0);
	static uint8_t sigs[N][COSE_ES384_SIG_LEN];
	uint8_t m[64];
	for (unsigned i = 0; i < N; i++) {
		message(m, i);
		assert_int_equal(es384_pool_sign(p, m, sizeof(m), sigs[i]), 0);
		assert_true(verifies(m, sizeof(m), sigs[i]));
	}
	atomic_store(&f.stop, true);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_false(f.failed);
	struct es384_pool_stats ps;
	es384_pool_stats(p, &ps);
	assert_int_equal(ps.hits + ps.misses, N);
	assert_true(ps.hits > 0);
	assert_int_equal(ps.filled, f.added);
	assert_int_equal(ps.filled, ps.hits + ps.count);
	assert_true(ps.count <= CAP);
	all_r_distinct(sigs, N);
	es384_pool_free(p); /* pairs left are wiped and freed (ASan: no leak) */
}

static void test_pool_refuses(void **st)
{
	(void)st;
	assert_null(es384_pool_new(NULL, 4, NULL, NULL));
	assert_null(es384_pool_new(key, 0, NULL, NULL));
	assert_null(es384_pool_new(key, ES384_POOL_MAX + 1, NULL, NULL));
	EVP_PKEY *p256 = EVP_EC_gen("P-256");
	assert_non_null(p256);
	assert_null(es384_pool_new(p256, 4, NULL, NULL));
	EVP_PKEY_free(p256);
	/* the public half only */
	uint8_t *der = NULL;
	int n = i2d_PUBKEY(key, &der);
	assert_true(n > 0);
	const uint8_t *q = der;
	EVP_PKEY *pub = d2i_PUBKEY(NULL, &q, n);
	assert_non_null(pub);
	assert_null(es384_pool_new(pub, 4, NULL, NULL));
	EVP_PKEY_free(pub);
	OPENSSL_free(der);
	EVP_PKEY *rsa = EVP_RSA_gen(1024);
	assert_non_null(rsa);
	assert_null(es384_pool_new(rsa, 4, NULL, NULL));
	EVP_PKEY_free(rsa);
	es384_pool_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pool_signatures),
	    cmocka_unit_test(test_same_message_new_k),
	    cmocka_unit_test(test_pool_concurrent_fill),
	    cmocka_unit_test(test_pool_refuses),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
