/* The chip's instance-identity key (src/securitychip/identity.c): a document signed three
 * ways (pkcs7, rsa2048, signature) verifies with the openssl command line against the
 * certificate `nitro host identity-cert` prints, exactly as docs/vpc.md tells a guest to;
 * a changed document does not; the key file is 0600 and stays the same across a reopen;
 * and the signatures never contain the private key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "securitychip/chip.h"
#include "securitychip/identity.h"

static char dir[64];

static void put(const char *name, const char *data)
{
	char p[128];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(data, f);
	fclose(f);
}

static int sh(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static struct chip *open_chip(void)
{
	char state[96], anchor[96], err[512];
	snprintf(state, sizeof(state), "%s/state", dir);
	snprintf(anchor, sizeof(anchor), "%s/anchor.pem", dir);
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	FILE *f = fopen(anchor, "w");
	assert_non_null(f);
	PEM_write_PUBKEY(f, k);
	fclose(f);
	EVP_PKEY_free(k);
	struct chip *c = chip_open(state, anchor, err, sizeof(err));
	if (!c)
		fail_msg("%s", err);
	return c;
}

static void sign_and_verify(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/nitro-identity-XXXXXX");
	assert_non_null(mkdtemp(dir));
	struct chip *c = open_chip();
	const char *doc = "{\n  \"instanceId\" : \"i-0123456789abcdef0\"\n}";
	struct chip_identity_sig s;
	char err[512];
	assert_int_equal(chip_identity_sign(c, doc, strlen(doc), &s, err, sizeof(err)), 0);
	char *cert = chip_identity_cert(c, err, sizeof(err));
	assert_non_null(cert);
	assert_non_null(strstr(cert, "BEGIN CERTIFICATE"));
	put("cert.pem", cert);
	put("document", doc);
	put("other", "{\n  \"instanceId\" : \"i-0123456789abcdef1\"\n}");
	/* base64 lines, no armour, no trailing newline */
	assert_null(strstr(s.pkcs7, "BEGIN"));
	assert_int_not_equal(s.pkcs7[strlen(s.pkcs7) - 1], '\n');
	char p7[8192];
	snprintf(p7, sizeof(p7), "-----BEGIN PKCS7-----\n%s\n-----END PKCS7-----\n", s.pkcs7);
	put("pkcs7.pem", p7);
	snprintf(p7, sizeof(p7), "-----BEGIN PKCS7-----\n%s\n-----END PKCS7-----\n", s.rsa2048);
	put("rsa2048.pem", p7);
	put("signature.b64", s.signature);
	assert_int_equal(sh("cd %s && openssl smime -verify -in pkcs7.pem -inform PEM -content "
			    "document -certfile cert.pem -noverify >/dev/null 2>&1",
			    dir),
			 0);
	assert_int_equal(sh("cd %s && openssl cms -verify -in rsa2048.pem -inform PEM -content "
			    "document -CAfile cert.pem -binary >/dev/null 2>&1",
			    dir),
			 0);
	assert_int_equal(sh("cd %s && openssl x509 -in cert.pem -pubkey -noout > pub.pem && "
			    "openssl base64 -d -in signature.b64 > sig.bin && "
			    "openssl dgst -sha256 -verify pub.pem -signature sig.bin document "
			    ">/dev/null 2>&1",
			    dir),
			 0);
	/* another document does not verify */
	assert_int_not_equal(sh("cd %s && openssl smime -verify -in pkcs7.pem -inform PEM "
				"-content other -certfile cert.pem -noverify >/dev/null 2>&1",
				dir),
			     0);
	assert_int_not_equal(sh("cd %s && openssl dgst -sha256 -verify pub.pem -signature "
				"sig.bin other >/dev/null 2>&1",
				dir),
			     0);
	/* the key stays the chip's: 0600, the same after a reopen, not in the blobs */
	char kp[128];
	snprintf(kp, sizeof(kp), "%s/state/identity-key.pem", dir);
	struct stat st;
	assert_int_equal(stat(kp, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_null(strstr(s.pkcs7, "PRIVATE"));
	chip_identity_sig_free(&s);
	chip_close(c);
	c = open_chip();
	char *cert2 = chip_identity_cert(c, err, sizeof(err));
	assert_non_null(cert2);
	assert_string_equal(cert, cert2);
	free(cert);
	free(cert2);
	chip_close(c);
	sh("rm -rf %s", dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(sign_and_verify)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
