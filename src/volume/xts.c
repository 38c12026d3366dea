/* AES-256-XTS by sector runs on OpenSSL's AES-256-ECB: see xts.h. */
#include "volume/xts.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define BLOCKS (XTS_SECTOR / 16)

/* 64-bit little-endian words at any alignment, as one load or store each (the byte-wise
 * helpers of lib/le.h are not merged by the compiler when in and out may alias). */
static inline uint64_t ld64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return le64toh(v);
}

static inline void st64(uint8_t *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, 8);
}

struct xts {
	EVP_CIPHER_CTX *x_data;			   /* first key half, encrypt or decrypt */
	EVP_CIPHER_CTX *x_tweak;		   /* second key half, always encrypt */
	uint64_t x_mask[XTS_RUN * XTS_SECTOR / 8]; /* the T_j of the run at hand */
};

/* ---- key material in OpenSSL's secure heap (see xts.h) ---- */

static int secure_scope;

static void *km_malloc(size_t n, const char *file, int line)
{
	(void)file;
	(void)line;
	if (secure_scope && CRYPTO_secure_malloc_initialized()) {
		void *p = CRYPTO_secure_malloc(n, NULL, 0); /* NULL: no error queued on failure */
		if (p)
			return p;
	}
	return malloc(n);
}

static void km_free(void *p, const char *file, int line);

static void *km_realloc(void *p, size_t n, const char *file, int line)
{
	if (!p)
		return km_malloc(n, file, line);
	if (!n) {
		km_free(p, file, line);
		return NULL;
	}
	if (CRYPTO_secure_allocated(p)) {
		size_t old = CRYPTO_secure_actual_size(p);
		void *q = CRYPTO_secure_malloc(n, NULL, 0);
		if (!q)
			return NULL;
		memcpy(q, p, old < n ? old : n);
		CRYPTO_secure_free(p, file, line); /* cleanses */
		return q;
	}
	return realloc(p, n);
}

static void km_free(void *p, const char *file, int line)
{
	if (p && CRYPTO_secure_allocated(p))
		CRYPTO_secure_free(p, file, line);
	else
		free(p);
}

int xts_secure_init(size_t heap_bytes)
{
	if (!CRYPTO_set_mem_functions(km_malloc, km_realloc, km_free))
		return -1;
	int r = CRYPTO_secure_malloc_init(heap_bytes, 64);
	return r == 1 ? 0 : r == 2 ? 1 : -1;
}

void xts_secure_begin(void)
{
	secure_scope++;
}

void xts_secure_end(void)
{
	secure_scope--;
}

static EVP_CIPHER_CTX *ecb_ctx(const EVP_CIPHER *ecb, const uint8_t *key, int enc)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	if (c && EVP_CipherInit_ex2(c, ecb, key, NULL, enc, NULL) == 1 &&
	    EVP_CIPHER_CTX_set_padding(c, 0) == 1)
		return c;
	EVP_CIPHER_CTX_free(c);
	return NULL;
}

struct xts *xts_new(const uint8_t key[64], bool encrypt)
{
	if (CRYPTO_memcmp(key, key + 32, 32) == 0) /* IEEE 1619 forbids equal halves */
		return NULL;
	/* The fetch (provider and method caches, shared) stays out of the secure heap. */
	EVP_CIPHER *ecb = EVP_CIPHER_fetch(NULL, "AES-256-ECB", NULL);
	xts_secure_begin();
	struct xts *x = OPENSSL_secure_zalloc(sizeof(*x));
	if (ecb && x) {
		x->x_data = ecb_ctx(ecb, key, encrypt);
		x->x_tweak = ecb_ctx(ecb, key + 32, 1);
	}
	xts_secure_end();
	EVP_CIPHER_free(ecb); /* the contexts hold their own references */
	if (x && x->x_data && x->x_tweak)
		return x;
	xts_free(x);
	return NULL;
}

void xts_free(struct xts *x)
{
	if (!x)
		return;
	EVP_CIPHER_CTX_free(x->x_data); /* cleanses the key schedules */
	EVP_CIPHER_CTX_free(x->x_tweak);
	OPENSSL_secure_clear_free(x, sizeof(*x));
}

typedef uint64_t u64x2 __attribute__((vector_size(16))); /* a SIMD register where any */

/* Fills x_mask with T_j for every 16-byte block j of n sectors and sets out = in XOR T_j,
 * T_0 being the sector's encrypted tweak and T_{j+1} = T_j * alpha in GF(2^128)
 * (x^128 + x^7 + x^2 + x + 1, little-endian bit order, as IEEE 1619 defines it). */
static void mask_first(struct xts *x, const uint8_t *tweaks, const uint8_t *in, uint8_t *out,
		       size_t n)
{
	uint64_t *m = x->x_mask;
	for (size_t s = 0; s < n; s++) {
		uint64_t lo = ld64(tweaks + 16 * s), hi = ld64(tweaks + 16 * s + 8);
		for (size_t j = 0; j < BLOCKS; j++, m += 2, in += 16, out += 16) {
			m[0] = htole64(lo);
			m[1] = htole64(hi);
			st64(out, ld64(in) ^ lo);
			st64(out + 8, ld64(in + 8) ^ hi);
			uint64_t carry = (uint64_t)((int64_t)hi >> 63) & 0x87;
			hi = hi << 1 | lo >> 63;
			lo = lo << 1 ^ carry;
		}
	}
}

/* out ^= mask, 16 bytes at a time. */
static void mask_again(const struct xts *x, uint8_t *out, size_t bytes)
{
	for (size_t k = 0; k < bytes / 16; k++) {
		u64x2 v, m;
		memcpy(&v, out + 16 * k, 16);
		memcpy(&m, &x->x_mask[2 * k], 16);
		v ^= m;
		memcpy(out + 16 * k, &v, 16);
	}
}

int xts_run(struct xts *x, uint64_t sector, const uint8_t *in, uint8_t *out, size_t len)
{
	uint8_t tweaks[XTS_RUN * 16];
	int got;
	if (len % XTS_SECTOR)
		return -EINVAL;
	while (len) {
		size_t n = len / XTS_SECTOR < XTS_RUN ? len / XTS_SECTOR : XTS_RUN;
		int bytes = (int)(n * XTS_SECTOR);
		for (size_t s = 0; s < n; s++) {
			st64(tweaks + 16 * s, sector + s);
			st64(tweaks + 16 * s + 8, 0);
		}
		if (EVP_CipherUpdate(x->x_tweak, tweaks, &got, tweaks, (int)(n * 16)) != 1 ||
		    got != (int)(n * 16))
			return -EIO;
		mask_first(x, tweaks, in, out, n);
		if (EVP_CipherUpdate(x->x_data, out, &got, out, bytes) != 1 || got != bytes)
			return -EIO;
		mask_again(x, out, (size_t)bytes);
		in += bytes;
		out += bytes;
		len -= (size_t)bytes;
		sector += n;
	}
	OPENSSL_cleanse(tweaks, sizeof(tweaks));
	return 0;
}
