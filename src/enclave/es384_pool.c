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
#include <stdbool.h>
#include <stdlib.h>

#define DIGEST_LEN 48
#define COORD_LEN 48

struct pair {
	BIGNUM *kinv, *r;
};

struct es384_pool {
	EC_KEY *setup_key; /* a P-384 key of the pool's own: ECDSA_sign_setup wants one */
	void (*on_take)(void *);
	void *take_arg;
	pthread_mutex_t lock; /* guards count and pairs */
	unsigned count, cap;
	struct pair pairs[]; /* [0, count) ready; a stack */
};

struct es384_signer {
	EC_KEY *key;
	EVP_MD *md;
	struct es384_pool *pool;
	unsigned long pooled, spot;
};

static void pair_wipe(struct pair *pr)
{
	BN_clear_free(pr->kinv);
	BN_clear_free(pr->r);
	pr->kinv = pr->r = NULL;
}

struct es384_pool *es384_pool_new(unsigned cap, void (*on_take)(void *), void *take_arg)
{
	if (cap < 1 || cap > ES384_POOL_MAX)
		return NULL;
	struct es384_pool *p = calloc(1, sizeof(*p) + cap * sizeof(struct pair));
	if (!p)
		return NULL;
	p->setup_key = EC_KEY_new_by_curve_name(NID_secp384r1);
	if (!p->setup_key || EC_KEY_generate_key(p->setup_key) != 1 ||
	    pthread_mutex_init(&p->lock, NULL) != 0) {
		EC_KEY_free(p->setup_key);
		free(p);
		ERR_clear_error();
		return NULL;
	}
	p->cap = cap;
	p->on_take = on_take;
	p->take_arg = take_arg;
	return p;
}

void es384_pool_free(struct es384_pool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->count; i++)
		pair_wipe(&p->pairs[i]);
	pthread_mutex_destroy(&p->lock);
	EC_KEY_free(p->setup_key); /* EC_KEY_free clears the private key */
	free(p);
}

unsigned es384_pool_count(struct es384_pool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->count;
	pthread_mutex_unlock(&p->lock);
	return n;
}

int es384_pool_wants(struct es384_pool *p)
{
	return es384_pool_count(p) < p->cap;
}

int es384_pool_fill(struct es384_pool *p)
{
	if (!es384_pool_wants(p))
		return 0;
	struct pair pr = {NULL, NULL};
	if (ECDSA_sign_setup(p->setup_key, NULL, &pr.kinv, &pr.r) != 1) {
		ERR_clear_error();
		pair_wipe(&pr);
		return -1;
	}
	pthread_mutex_lock(&p->lock);
	bool added = p->count < p->cap;
	if (added)
		p->pairs[p->count++] = pr;
	pthread_mutex_unlock(&p->lock);
	if (!added)
		pair_wipe(&pr);
	return added;
}

/* A pair out of the pool, or {NULL, NULL}. Never waits: the lock held by the filler (which
 * may be preempted inside it at idle priority) counts as empty. */
static struct pair take(struct es384_pool *p)
{
	struct pair pr = {NULL, NULL};
	if (!p || pthread_mutex_trylock(&p->lock) != 0)
		return pr;
	if (p->count) {
		pr = p->pairs[--p->count];
		p->pairs[p->count] = (struct pair){NULL, NULL};
	}
	pthread_mutex_unlock(&p->lock);
	if (pr.kinv && p->on_take)
		p->on_take(p->take_arg);
	return pr;
}

struct es384_signer *es384_signer_new(EVP_PKEY *key, struct es384_pool *pool)
{
	if (!key || EVP_PKEY_get_id(key) != EVP_PKEY_EC)
		return NULL;
	EC_KEY *ec = EVP_PKEY_get1_EC_KEY(key);
	struct es384_signer *s = NULL;
	if (ec && EC_KEY_get0_private_key(ec) &&
	    EC_GROUP_get_curve_name(EC_KEY_get0_group(ec)) == NID_secp384r1)
		s = calloc(1, sizeof(*s));
	if (s) {
		s->key = EC_KEY_dup(ec);
		s->md = EVP_MD_fetch(NULL, "SHA384", NULL);
		s->pool = pool;
		if (!s->key || !s->md) {
			es384_signer_free(s);
			s = NULL;
		}
	}
	EC_KEY_free(ec);
	ERR_clear_error();
	return s;
}

void es384_signer_free(struct es384_signer *s)
{
	if (!s)
		return;
	EC_KEY_free(s->key);
	EVP_MD_free(s->md);
	free(s);
}

int es384_sign(void *signer, const uint8_t *tbs, size_t len, uint8_t sig[COSE_ES384_SIG_LEN])
{
	struct es384_signer *s = signer;
	uint8_t dg[DIGEST_LEN];
	unsigned dl = 0;
	if (EVP_Digest(tbs, len, dg, &dl, s->md, NULL) != 1 || dl != DIGEST_LEN)
		return -1;
	struct pair pr = take(s->pool);
	ECDSA_SIG *es = ECDSA_do_sign_ex(dg, DIGEST_LEN, pr.kinv, pr.r, s->key);
	if (!es && pr.kinv) {
		/* s came out 0 with this pair (ECDSA_R_NEED_NEW_SETUP_VALUES, probability about
		 * 2^-384): sign on the spot with a fresh k */
		ERR_clear_error();
		pair_wipe(&pr);
		es = ECDSA_do_sign_ex(dg, DIGEST_LEN, NULL, NULL, s->key);
	}
	if (pr.kinv)
		s->pooled++;
	else
		s->spot++;
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

void es384_signer_counts(const struct es384_signer *s, unsigned long *pooled, unsigned long *spot)
{
	*pooled = s->pooled;
	*spot = s->spot;
}
