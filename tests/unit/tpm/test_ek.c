/* Endorsement: the security chip's EK CA (src/securitychip/ekca.c) issues certificates
 * that verify against its own certificate and carry the EK's point; the TPM2 commands of
 * EK provisioning (src/tpm/tpm2.c) have the template and fields of the TCG profile. */
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "securitychip/ekca.h"
#include "tpm/tpm2.h"

static void test_issue_and_verify(void **state)
{
	(void)state;
	char dir[] = "/tmp/nitro-ekca-XXXXXX", err[256], ca_path[300];
	assert_non_null(mkdtemp(dir));
	/* An EK: any P-256 key's point. */
	EVP_PKEY *ek = EVP_EC_gen("P-256");
	uint8_t pt[65], x[32], y[32];
	size_t ptlen = 0;
	assert_true(EVP_PKEY_get_octet_string_param(ek, "pub", pt, sizeof(pt), &ptlen));
	assert_int_equal(ptlen, 65);
	memcpy(x, pt + 1, 32);
	memcpy(y, pt + 33, 32);
	uint8_t *der = NULL;
	size_t len = 0;
	assert_int_equal(ekca_issue(dir, x, y, "NitroTPM EK test", &der, &len, err, sizeof(err)),
			 0);
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	assert_non_null(cert);
	ekca_cert_path(dir, ca_path, sizeof(ca_path));
	FILE *f = fopen(ca_path, "r");
	assert_non_null(f);
	X509 *ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(ca);
	assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca)), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), ek), 1);
	/* A second issue reuses the same CA. */
	uint8_t *der2 = NULL;
	size_t len2 = 0;
	assert_int_equal(ekca_issue(dir, x, y, "NitroTPM EK test", &der2, &len2, err, sizeof(err)),
			 0);
	p = der2;
	X509 *cert2 = d2i_X509(NULL, &p, (long)len2);
	assert_int_equal(X509_verify(cert2, X509_get0_pubkey(ca)), 1);
	free(der2);
	/* Not a point on the curve: refused. */
	memset(x, 0, 32);
	assert_int_equal(ekca_issue(dir, x, y, "bad", &der2, &len2, err, sizeof(err)), -1);
	X509_free(cert);
	X509_free(cert2);
	X509_free(ca);
	EVP_PKEY_free(ek);
	free(der);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void test_ek_commands(void **state)
{
	(void)state;
	uint8_t b[1024];
	size_t n = tpm2_cmd_create_ek_ecc(b, sizeof(b));
	assert_int_equal(n, 10 + 4 + 13 + 6 + 2 + 122 + 2 + 4);
	assert_int_equal(be32_get(b + 6), TPM2_CC_CREATE_PRIMARY);
	assert_int_equal(be32_get(b + 10), TPM2_RH_ENDORSEMENT);
	const uint8_t *pub = b + 10 + 4 + 13 + 6;
	assert_int_equal(be16_get(pub), 122);
	assert_int_equal(be16_get(pub + 2), 0x0023);	 /* ECC */
	assert_int_equal(be32_get(pub + 6), 0x000300b2); /* L-2 attributes */
	assert_int_equal(pub[12], 0x83);		 /* PolicySecret(endorsement) */
	assert_int_equal(be16_get(pub + 52), 0x0003);	 /* NIST P-256 */
	/* A response with the same public area parses to its point. */
	uint8_t r[10 + 8 + 124];
	memset(r, 0, sizeof(r));
	be16_put(r, TPM2_ST_SESSIONS);
	be32_put(r + 2, sizeof(r));
	be32_put(r + 10, 0x80000001);
	memcpy(r + 18, pub, 124);
	memset(r + 18 + 58, 0xaa, 32); /* x */
	memset(r + 18 + 92, 0xbb, 32); /* y */
	uint32_t h;
	uint8_t x[32], y[32];
	assert_int_equal(tpm2_parse_ek_ecc(r, sizeof(r), &h, x, y), 0);
	assert_int_equal(h, 0x80000001);
	assert_int_equal(x[0], 0xaa);
	assert_int_equal(y[31], 0xbb);
	assert_int_equal(tpm2_parse_ek_ecc(r, sizeof(r) - 1, &h, x, y), -1); /* size mismatch */
	be32_put(r + 2, 30);
	assert_int_equal(tpm2_parse_ek_ecc(r, 30, &h, x, y), -1); /* truncated public area */
	n = tpm2_cmd_nv_define_cert(b, sizeof(b), TPM2_NV_EK_CERT_ECC, 600);
	assert_int_equal(be32_get(b + 10), TPM2_RH_PLATFORM);
	assert_int_equal(be32_get(b + n - 14), TPM2_NV_EK_CERT_ECC);
	assert_int_equal(be16_get(b + n - 2), 600);
	uint8_t data[TPM2_NV_MAX_WRITE + 1];
	assert_int_equal(
	    tpm2_cmd_nv_write(b, sizeof(b), TPM2_NV_EK_CERT_ECC, data, TPM2_NV_MAX_WRITE + 1, 0),
	    0);
	n = tpm2_cmd_nv_write(b, sizeof(b), TPM2_NV_EK_CERT_ECC, data, 100, 512);
	assert_int_equal(be16_get(b + n - 2), 512);
}

/* The RSA EK (template L-1) and its certificate: keyEncipherment, the modulus carried. */
static void test_ek_rsa(void **state)
{
	(void)state;
	uint8_t b[1024];
	size_t n = tpm2_cmd_create_ek_rsa(b, sizeof(b));
	assert_int_equal(n, 10 + 4 + 13 + 6 + 2 + 314 + 2 + 4);
	assert_int_equal(be32_get(b + 6), TPM2_CC_CREATE_PRIMARY);
	assert_int_equal(be32_get(b + 10), TPM2_RH_ENDORSEMENT);
	const uint8_t *pub = b + 10 + 4 + 13 + 6;
	assert_int_equal(be16_get(pub), 314);
	assert_int_equal(be16_get(pub + 2), 0x0001);	 /* RSA */
	assert_int_equal(be32_get(pub + 6), 0x000300b2); /* L-1 attributes */
	assert_int_equal(pub[12], 0x83);		 /* PolicySecret(endorsement) */
	assert_int_equal(be16_get(pub + 44), 0x0006);	 /* AES-128-CFB */
	assert_int_equal(be16_get(pub + 52), 2048);	 /* keyBits */
	assert_int_equal(be32_get(pub + 54), 0);	 /* exponent: the default */
	assert_int_equal(be16_get(pub + 58), 256);	 /* unique: 256 zero bytes */
	assert_int_equal(tpm2_cmd_create_ek_rsa(b, 300), 0);
	/* A response with the same public area (and a real modulus) parses to it. */
	EVP_PKEY *k = EVP_RSA_gen(2048);
	BIGNUM *bn = NULL;
	assert_true(EVP_PKEY_get_bn_param(k, "n", &bn));
	uint8_t mod[256], got[256];
	assert_int_equal(BN_bn2binpad(bn, mod, sizeof(mod)), 256);
	uint8_t r[10 + 8 + 316];
	memset(r, 0, sizeof(r));
	be16_put(r, TPM2_ST_SESSIONS);
	be32_put(r + 2, sizeof(r));
	be32_put(r + 10, 0x80000002);
	memcpy(r + 18, pub, 316);
	memcpy(r + 18 + 60, mod, 256);
	uint32_t h;
	assert_int_equal(tpm2_parse_ek_rsa(r, sizeof(r), &h, got), 0);
	assert_int_equal(h, 0x80000002);
	assert_memory_equal(got, mod, 256);
	assert_int_equal(tpm2_parse_ek_rsa(r, sizeof(r) - 1, &h, got), -1);
	be16_put(r + 18 + 2, 0x0023); /* an ECC area is not an RSA EK */
	assert_int_equal(tpm2_parse_ek_rsa(r, sizeof(r), &h, got), -1);
	/* The CA certifies it: verifies, carries the key, keyEncipherment. */
	char dir[] = "/tmp/nitro-ekca-XXXXXX", err[256], ca_path[300];
	assert_non_null(mkdtemp(dir));
	uint8_t *der = NULL;
	size_t len = 0;
	assert_int_equal(ekca_issue_rsa(dir, mod, "NitroTPM EK rsa", &der, &len, err, sizeof(err)),
			 0);
	const unsigned char *p = der;
	X509 *cert = d2i_X509(NULL, &p, (long)len);
	assert_non_null(cert);
	ekca_cert_path(dir, ca_path, sizeof(ca_path));
	FILE *f = fopen(ca_path, "r");
	X509 *ca = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
	if (f)
		fclose(f);
	assert_non_null(ca);
	assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca)), 1);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(cert), k), 1);
	assert_true(X509_get_key_usage(cert) & KU_KEY_ENCIPHERMENT);
	assert_false(X509_get_key_usage(cert) & KU_DIGITAL_SIGNATURE);
	/* A modulus of fewer than 2048 bits is refused. */
	uint8_t small[256] = {0};
	small[255] = 7;
	uint8_t *der2 = NULL;
	assert_int_equal(ekca_issue_rsa(dir, small, "x", &der2, &len, err, sizeof(err)), -1);
	assert_null(der2);
	X509_free(cert);
	X509_free(ca);
	free(der);
	BN_free(bn);
	EVP_PKEY_free(k);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_issue_and_verify),
	    cmocka_unit_test(test_ek_commands),
	    cmocka_unit_test(test_ek_rsa),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
