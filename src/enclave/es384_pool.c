/* ES384 signing with a pool of precomputed (k^-1, r) pairs (see es384_pool.h). */
/* ECDSA_sign_setup / ECDSA_do_sign_ex and the EC_KEY they take are OpenSSL 3.0's deprecated
 * interface, and the only one with precomputation: the deprecation warnings are off here. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "enclave/es384_pool.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>
#include <pthread.h>
#include <stdlib.h>

#define DIGEST_LEN 48
#define COORD_LEN 48

struct pair {
	BIGNUM *kinv, *r;
};

struct es384_pool {
	EC_KEY *sign_key; /* the signer's copy */
	EC_KEY *fill_key; /* the filler's copy */
	EVP_MD *md;
	void (*on_take)(void *);
	void *take_arg;
	pthread_mutex_t lock; /* guards what follows */
	unsigned count, cap;
	unsigned long filled, hits, misses;
	struct pair pairs[]; /* [0, count) ready; a stack */
};

struct es384_pool *es384_pool_new(EVP_PKEY *key, unsigned cap, void (*on_take)(void *),
				  void *take_arg)
{
	if (!key || cap < 1 || cap > ES384_POOL_MAX || EVP_PKEY_get_id(key) != EVP_PKEY_EC)
		return NULL;
	EC_KEY *ec = EVP_PKEY_get1_EC_KEY(key);
	if (!ec || !EC_KEY_get0_private_key(ec) ||
	    EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) != NID_secp384r1) {
		EC_KEY_free(ec);
		return NULL;
	}
	struct es384_pool *p = calloc(1, sizeof(*p) + cap * sizeof(struct pair));
	if (p) {
		p->sign_key = EC_KEY_dup(ec);
		p->fill_key = EC_KEY_dup(ec);
		p->md = EVP_MD_fetch(NULL, "SHA384", NULL);
		p->cap = cap;
		p->on_take = on_take;
		p->take_arg = take_arg;
	}
	EC_KEY_free(ec);
	if (p &&
	    (!p->sign_key || !p->fill_key || !p->md || pthread_mutex_init(&p->lock, NULL) != 0)) {
		EC_KEY_free(p->sign_key);
		EC_KEY_free(p->fill_key);
		EVP_MD_free(p->md);
		free(p);
		return NULL;
	}
	return p;
}

static void pair_wipe(struct pair *pr)
{
	BN_clear_free(pr->kinv);
	BN_clear_free(pr->r);
	pr->kinv = pr->r = NULL;
}

void es384_pool_free(struct es384_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->count; i++)
		pair_wipe(&p->pairs[i]);
	pthread_mutex_destroy(&p->lock);
	EC_KEY_free(p->sign_key); /* EC_KEY_free clears the private key */
	EC_KEY_free(p->fill_key);
	EVP_MD_free(p->md);
	free(p);
}

int es384_pool_wants(struct es384_pool *p)
{
	pthread_mutex_lock(&p->lock);
	int w = p->count < p->cap;
	pthread_mutex_unlock(&p->lock);
	return w;
}

int es384_pool_fill(struct es384_pool *p)
{
	if (!es384_pool_wants(p))
		return 0;
	struct pair pr = {NULL, NULL};
	if (ECDSA_sign_setup(p->fill_key, NULL, &pr.kinv, &pr.r) != 1) {
		ERR_clear_error();
		pair_wipe(&pr);
		return -1;
	}
	pthread_mutex_lock(&p->lock);
	int added = p->count < p->cap;
	if (added) {
		p->pairs[p->count++] = pr;
		p->filled++;
	}
	pthread_mutex_unlock(&p->lock);
	if (!added)
		pair_wipe(&pr);
	return added;
}

int es384_pool_sign(void *pool, const uint8_t *tbs, size_t len, uint8_t sig[COSE_ES384_SIG_LEN])
{
	struct es384_pool *p = pool;
	uint8_t dg[DIGEST_LEN];
	unsigned dl = 0;
	if (EVP_Digest(tbs, len, dg, &dl, p->md, NULL) != 1 || dl != DIGEST_LEN)
		return -1;
	struct pair pr = {NULL, NULL};
	pthread_mutex_lock(&p->lock);
	if (p->count) {
		pr = p->pairs[--p->count];
		p->pairs[p->count] = (struct pair){NULL, NULL};
		p->hits++;
	} else {
		p->misses++;
	}
	pthread_mutex_unlock(&p->lock);
	if (pr.kinv && p->on_take)
		p->on_take(p->take_arg);
	ECDSA_SIG *es = ECDSA_do_sign_ex(dg, DIGEST_LEN, pr.kinv, pr.r, p->sign_key);
	if (!es && pr.kinv) {
		/* s came out 0 with this pair (ECDSA_R_NEED_NEW_SETUP_VALUES, probability about
		 * 2^-384): sign on the spot with a fresh k */
		ERR_clear_error();
		es = ECDSA_do_sign_ex(dg, DIGEST_LEN, NULL, NULL, p->sign_key);
	}
	pair_wipe(&pr);
	int rc = -1;
	if (es && BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, COORD_LEN) == COORD_LEN &&
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + COORD_LEN, COORD_LEN) == COORD_LEN)
		rc = 0;
	if (!es)
		ERR_clear_error();
	ECDSA_SIG_free(es);
	return rc;
}

void es384_pool_stats(struct es384_pool *p, struct es384_pool_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = (struct es384_pool_stats){.count = p->count,
					 .cap = p->cap,
					 .filled = p->filled,
					 .hits = p->hits,
					 .misses = p->misses};
	pthread_mutex_unlock(&p->lock);
}
