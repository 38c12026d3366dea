/* ES384 signing with precomputed per-signature secrets: a bounded pool of (k^-1 mod n,
 * r = x(k*G) mod n) pairs for one P-384 signing key, so that the costly part of an ECDSA
 * signature (the scalar multiplication k*G and the inversion of k) is done ahead of the
 * request path, and a signature from the pool is a SHA-384 and a few modular
 * multiplications (s = k^-1 (h + r*d) mod n).
 *
 * OpenSSL has no EVP interface for precomputation: the pairs come from ECDSA_sign_setup and
 * are used by ECDSA_do_sign_ex (the EC_KEY interface, deprecated in OpenSSL 3.0 but kept;
 * k is drawn from OpenSSL's private DRBG, uniformly in [1, n-1]).
 *
 * Each pair is taken out of the pool under its lock and used for exactly one signature, then
 * wiped and freed (BN_clear_free): a k is never used twice. Pairs left when the pool is
 * freed are wiped too. An empty pool does not fail a signature: it is signed on the spot
 * (ECDSA_do_sign_ex computing its own k), at the full cost.
 *
 * Threading: es384_pool_sign may run on one thread (the signer) while es384_pool_fill runs
 * on another (the filler); at most one of each at a time. es384_pool_free only once neither
 * runs. The pool keeps its own copies of the key (one per role), not a reference to the
 * EVP_PKEY it was made from.
 */
#ifndef NITRO_ENCLAVE_ES384_POOL_H
#define NITRO_ENCLAVE_ES384_POOL_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "enclave/cose.h"

#define ES384_POOL_MAX 4096 /* cap's upper bound */

struct es384_pool;

struct es384_pool_stats {
	unsigned count;	      /* pairs ready now */
	unsigned cap;	      /* the pool's bound */
	unsigned long filled; /* pairs computed and added */
	unsigned long hits;   /* signatures made with a pair from the pool */
	unsigned long misses; /* signatures made on the spot (pool empty) */
};

/* A pool for key (EC P-384, private) holding at most cap (1..ES384_POOL_MAX) pairs, empty.
 * on_take (may be NULL) is called on the signer's thread, outside the pool's lock, each
 * time a pair is taken: the filler's wake-up. NULL if key is not a P-384 private key or
 * memory ran out. */
struct es384_pool *es384_pool_new(EVP_PKEY *key, unsigned cap, void (*on_take)(void *),
				  void *take_arg);
/* Wipes every pair left and frees the pool (NULL is a no-op). */
void es384_pool_free(struct es384_pool *p);

/* The filler: computes one pair (outside the lock) and adds it. 1: added; 0: the pool was
 * full (nothing computed); -1: OpenSSL failed. */
int es384_pool_fill(struct es384_pool *p);
/* True if the pool holds fewer than cap pairs. */
int es384_pool_wants(struct es384_pool *p);

/* cose_sign_fn with a struct es384_pool * as ctx: ES384 over tbs into r||s (96 bytes), with
 * a pair from the pool, or on the spot if it is empty. 0, or -1. */
int es384_pool_sign(void *pool, const uint8_t *tbs, size_t len, uint8_t sig[COSE_ES384_SIG_LEN]);

void es384_pool_stats(struct es384_pool *p, struct es384_pool_stats *out);

#endif
