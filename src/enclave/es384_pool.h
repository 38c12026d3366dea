/* ES384 signing with precomputed per-signature secrets. The costly part of an ECDSA P-384
 * signature is the scalar multiplication k*G and the inversion of k; neither depends on the
 * key or the message. A pool holds (k^-1 mod n, r = x(k*G) mod n) pairs computed ahead of
 * the request path, so that a signature with a pair is a SHA-384 and a few modular
 * multiplications (s = k^-1 (h + r*d) mod n).
 *
 * OpenSSL has no EVP interface for precomputation: pairs come from ECDSA_sign_setup (on a
 * P-384 key of the pool's own, used for nothing else: the pair depends only on the curve)
 * and are used by ECDSA_do_sign_ex with the signer's key (the EC_KEY interface, deprecated
 * in OpenSSL 3.0 but kept; k is drawn from OpenSSL's private DRBG, uniformly in [1, n-1]).
 *
 * Each pair is taken out of the pool under its lock and used for exactly one signature,
 * then wiped and freed (BN_clear_free): a k is never used twice, whichever signer took it.
 * Pairs left when the pool is freed are wiped too. A signer never waits for a pair: with the
 * pool empty (or its lock held by the filler at that instant) it signs on the spot, at the
 * full cost, with a k of its own.
 *
 * Threading: the pool is thread-safe (one filler, any number of signers). A signer is used
 * by one thread at a time. es384_pool_free only once no filler or signer uses it.
 */
#ifndef NITRO_ENCLAVE_ES384_POOL_H
#define NITRO_ENCLAVE_ES384_POOL_H

#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>

#include "enclave/cose.h"

#define ES384_POOL_MAX 65536 /* cap's upper bound */

struct es384_pool;
struct es384_signer;

/* An empty pool of at most cap (1..ES384_POOL_MAX) pairs. on_take (may be NULL) is called
 * on the signer's thread, outside the pool's lock, each time a pair is taken: the filler's
 * wake-up. NULL if OpenSSL or memory failed. */
struct es384_pool *es384_pool_new(unsigned cap, void (*on_take)(void *), void *take_arg);
/* Wipes every pair left and frees the pool (NULL is a no-op). */
void es384_pool_free(struct es384_pool *p);
/* The filler: computes one pair (outside the lock) and adds it. 1: added; 0: the pool was
 * full (nothing computed); -1: OpenSSL failed. */
int es384_pool_fill(struct es384_pool *p);
/* True if the pool holds fewer than cap pairs. */
int es384_pool_wants(struct es384_pool *p);
/* Pairs ready now. */
unsigned es384_pool_count(struct es384_pool *p);

/* A signer for key (EC P-384, private) drawing pairs from pool (NULL: always on the spot).
 * It keeps its own copy of the key. NULL if key is not a P-384 private key. */
struct es384_signer *es384_signer_new(EVP_PKEY *key, struct es384_pool *pool);
void es384_signer_free(struct es384_signer *s);

/* cose_sign_fn with a struct es384_signer * as ctx: ES384 over tbs into r||s (96 bytes),
 * with a pair from the pool, or on the spot. 0, or -1. */
int es384_sign(void *signer, const uint8_t *tbs, size_t len, uint8_t sig[COSE_ES384_SIG_LEN]);

/* The signer's counts: signatures made with a pair from the pool, and on the spot. */
void es384_signer_counts(const struct es384_signer *s, unsigned long *pooled, unsigned long *spot);

#endif
