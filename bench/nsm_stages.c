/* The NSM card's Attestation, stage by stage (issue 12's `nsm attestation p99`): times N
 * rounds of each stage of one Attestation request as nitro-card-nsm serves it, in this
 * process, on a real chain (root -> host -> leaf, made in a temporary folder):
 *   decode   cbor_check_wellformed + cbor_load of the benchmark's request
 *   payload  the attestation payload (nsm_handle with a signer that signs nothing)
 *   sha384   SHA-384 of the Sig_structure
 *   ecdsa    ECDSA P-384 of that digest with the leaf key (EVP_PKEY_sign)
 *   sign     the card's signer (pki_es384_sign: EVP_DigestSign, DER -> r||s)
 *   handle   the whole nsm_handle with pki_es384_sign (the card's signer before the pool)
 *   fill     one precomputed (k^-1, r) pair (es384_pool_fill: ECDSA_sign_setup)
 *   pooled   es384_sign with a pair from the pool (SHA-384, s = k^-1 (h + r*d))
 *   handle_pool  the whole nsm_handle with es384_sign and a full pool (the card now)
 * and prints "STAGE name p50_us=.. p99_us=.. mean_us=.." lines. Run natively and inside
 * the emulated host (`build/nitro emuhost -- build/bench/nsm-stages`) to see what costs.
 *
 *   nsm-stages [N]   (default 200)
 */
#include <cbor.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enclave/cbw.h"
#include "enclave/cose.h"
#include "enclave/es384_pool.h"
#include "enclave/nsm.h"
#include "enclave/pki.h"

#define MAX_N 100000

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double us[MAX_N];

static void report(const char *name, int n)
{
	double sum = 0;
	for (int i = 0; i < n; i++)
		sum += us[i];
	qsort(us, (size_t)n, sizeof(us[0]), cmp_double);
	int i50 = (n * 50 + 99) / 100 - 1, i99 = (n * 99 + 99) / 100 - 1;
	printf("STAGE %-11s p50_us=%.0f p99_us=%.0f max_us=%.0f mean_us=%.0f\n", name,
	       us[i50 < 0 ? 0 : i50], us[i99 < 0 ? 0 : i99], us[n - 1], sum / n);
	fflush(stdout);
}

static int no_sign(void *ctx, const uint8_t *tbs, size_t len, uint8_t sig[COSE_ES384_SIG_LEN])
{
	(void)ctx;
	(void)tbs;
	(void)len;
	memset(sig, 0, COSE_ES384_SIG_LEN);
	return 0;
}

static int rand_fill(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	memset(buf, 0x5a, len);
	return 0;
}

static uint64_t now_ms(void *ctx)
{
	(void)ctx;
	return (uint64_t)time(NULL) * 1000;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	if (n < 1 || n > MAX_N) {
		fprintf(stderr, "usage: nsm-stages [N 1..%d]\n", MAX_N);
		return 2;
	}
	char dir[] = "/tmp/nsm-stages-XXXXXX", err[256];
	if (!mkdtemp(dir))
		return 1;
	struct pki_cert root, host, leaf;
	double t0 = now_us();
	if (pki_chain_open(dir, &root, &host, err, sizeof(err)) < 0) {
		fprintf(stderr, "nsm-stages: %s\n", err);
		return 1;
	}
	double t1 = now_us();
	if (pki_leaf(&host, "i-0123456789abcdef0-enc0123456789abcdef", 3600, &leaf, err,
		     sizeof(err)) < 0) {
		fprintf(stderr, "nsm-stages: %s\n", err);
		return 1;
	}
	printf("SETUP chain_us=%.0f leaf_us=%.0f\n", t1 - t0, now_us() - t1);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "nsm-stages: could not remove %s\n", dir);

	/* The benchmark's request (tests/system/enclave_nsmbench.c): a 32-byte nonce. */
	struct cbw rq;
	uint8_t nonce[32];
	memset(nonce, 0xab, sizeof(nonce));
	cbw_init(&rq, 4096);
	cbw_map(&rq, 1);
	cbw_text(&rq, "Attestation");
	cbw_map(&rq, 3);
	cbw_text(&rq, "user_data");
	cbw_null(&rq);
	cbw_text(&rq, "nonce");
	cbw_bytes(&rq, nonce, sizeof(nonce));
	cbw_text(&rq, "public_key");
	cbw_null(&rq);

	for (int i = 0; i < n; i++) {
		double a = now_us();
		struct cbor_load_result r;
		cbor_item_t *it = NULL;
		if (cbor_check_wellformed(rq.buf, rq.len, 8) == 0)
			it = cbor_load(rq.buf, rq.len, &r);
		if (it)
			cbor_decref(&it);
		us[i] = now_us() - a;
	}
	report("decode", n);

	struct nsm_state st;
	struct nsm_ops ops = {.sign = no_sign, .random = rand_fill, .now_ms = now_ms};
	nsm_init(&st, "i-0123456789abcdef0-enc0123456789abcdef", NULL, &ops);
	st.cert = leaf.der;
	st.cert_len = leaf.der_len;
	st.cabundle[0] = root.der;
	st.cabundle_len[0] = root.der_len;
	st.cabundle[1] = host.der;
	st.cabundle_len[1] = host.der_len;
	st.ncabundle = 2;
	static uint8_t resp[NSM_RESPONSE_MAX];
	size_t rl = 0;
	for (int i = 0; i < n; i++) {
		double a = now_us();
		rl = nsm_handle(&st, rq.buf, rq.len, resp, sizeof(resp));
		us[i] = now_us() - a;
	}
	report("payload", n);
	printf("RESPONSE bytes=%zu\n", rl);

	/* A Sig_structure of the response's size. */
	struct cbw tbs;
	cbw_init(&tbs, 16384);
	cose_sig_structure(&tbs, resp, rl);
	uint8_t dg[48];
	for (int i = 0; i < n; i++) {
		double a = now_us();
		unsigned dl = 0;
		EVP_Digest(tbs.buf, tbs.len, dg, &dl, EVP_sha384(), NULL);
		us[i] = now_us() - a;
	}
	report("sha384", n);

	EVP_PKEY_CTX *pc = EVP_PKEY_CTX_new(leaf.key, NULL);
	if (!pc || EVP_PKEY_sign_init(pc) != 1)
		return 1;
	for (int i = 0; i < n; i++) {
		uint8_t der[256];
		size_t dl = sizeof(der);
		double a = now_us();
		int ok = EVP_PKEY_sign(pc, der, &dl, dg, sizeof(dg));
		us[i] = now_us() - a;
		if (ok != 1)
			return 1;
	}
	report("ecdsa", n);
	EVP_PKEY_CTX_free(pc);

	uint8_t sig[COSE_ES384_SIG_LEN];
	for (int i = 0; i < n; i++) {
		double a = now_us();
		int rc = pki_es384_sign(leaf.key, tbs.buf, tbs.len, sig);
		us[i] = now_us() - a;
		if (rc)
			return 1;
	}
	report("sign", n);

	st.ops.sign = pki_es384_sign;
	st.ops.sign_ctx = leaf.key;
	for (int i = 0; i < n; i++) {
		double a = now_us();
		rl = nsm_handle(&st, rq.buf, rq.len, resp, sizeof(resp));
		us[i] = now_us() - a;
	}
	report("handle", n);

	struct es384_pool *pool = es384_pool_new((unsigned)n, NULL, NULL);
	struct es384_signer *signer = pool ? es384_signer_new(leaf.key, pool) : NULL;
	if (!signer)
		return 1;
	for (int i = 0; i < n; i++) {
		double a = now_us();
		int rc = es384_pool_fill(pool);
		us[i] = now_us() - a;
		if (rc != 1)
			return 1;
	}
	report("fill", n);
	for (int i = 0; i < n; i++) {
		double a = now_us();
		int rc = es384_sign(signer, tbs.buf, tbs.len, sig);
		us[i] = now_us() - a;
		if (rc || pki_es384_verify(leaf.der, leaf.der_len, tbs.buf, tbs.len, sig))
			return 1;
	}
	report("pooled", n);
	for (int i = 0; i < n; i++)
		if (es384_pool_fill(pool) != 1)
			return 1;
	st.ops.sign = es384_sign;
	st.ops.sign_ctx = signer;
	for (int i = 0; i < n; i++) {
		double a = now_us();
		rl = nsm_handle(&st, rq.buf, rq.len, resp, sizeof(resp));
		us[i] = now_us() - a;
	}
	report("handle_pool", n);
	unsigned long pooled, spot;
	es384_signer_counts(signer, &pooled, &spot);
	printf("POOL pooled=%lu spot=%lu\n", pooled, spot);
	es384_signer_free(signer);
	es384_pool_free(pool);
	cbw_free(&tbs);
	cbw_free(&rq);
	pki_cert_free(&leaf);
	pki_cert_free(&host);
	pki_cert_free(&root);
	return 0;
}
