/* NitroTPM state keys and endorsement (see endorse.h). */
#include "endorse/endorse.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/util.h"
#include "securitychip/ekca.h"
#include "tpm/client.h"
#include "tpm/tpm2.h"
#include "volume/volume.h"

int tpm_key_derive(const char *id, uint8_t key[32], char *err, size_t errlen)
{
	char e[512];
	uint8_t mk[VOL_MASTER_KEY_BYTES], msg[96];
	if (vol_master_key(mk, e, sizeof(e)) < 0)
		RETURN_ERR(-1, "%s", e);
	int n = snprintf((char *)msg, sizeof(msg), "nitro-tpm-state v1 %s", id);
	unsigned len = 0;
	bool ok = n > 0 && (size_t)n < sizeof(msg) &&
		  HMAC(EVP_sha256(), mk, sizeof(mk), msg, (size_t)n, key, &len) && len == 32;
	OPENSSL_cleanse(mk, sizeof(mk));
	if (!ok)
		RETURN_ERR(-1, "TPM state key derivation failed");
	return 0;
}

void tpm_ek_certs_free(struct tpm_ek_certs *c)
{
	free(c->ec_ecc);
	free(c->ec_rsa);
	memset(c, 0, sizeof(*c));
}

/* Creates the EK of one type, has the CA certify it and writes the certificate at its
 * index; *der the certificate. 0 or -1 with err. */
static int endorse_one(int s, bool rsa, const char *ca_dir, const char *cn, uint8_t **der,
		       size_t *derlen, char *err, size_t errlen)
{
	uint8_t cmd[1024], rsp[TPM_PROTO_BUF], x[32], y[32], mod[TPM2_EK_RSA_BYTES];
	uint32_t index = rsa ? TPM2_NV_EK_CERT_RSA : TPM2_NV_EK_CERT_ECC, h;
	const char *what = rsa ? "RSA" : "ECC";
	size_t n, rl = 0;
	char e[512];
	n = rsa ? tpm2_cmd_create_ek_rsa(cmd, sizeof(cmd))
		: tpm2_cmd_create_ek_ecc(cmd, sizeof(cmd));
	if (tpm_client_xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS ||
	    (rsa ? tpm2_parse_ek_rsa(rsp, rl, &h, mod) : tpm2_parse_ek_ecc(rsp, rl, &h, x, y)) < 0)
		RETURN_ERR(-1, "cannot create the %s endorsement key", what);
	n = tpm2_cmd_flush(cmd, sizeof(cmd), h);
	tpm_client_xcmd(s, cmd, n, rsp, &rl);
	if ((rsa ? ekca_issue_rsa(ca_dir, mod, cn, der, derlen, e, sizeof(e))
		 : ekca_issue(ca_dir, x, y, cn, der, derlen, e, sizeof(e))) < 0)
		RETURN_ERR(-1, "%s", e);
	n = tpm2_cmd_nv_define_cert(cmd, sizeof(cmd), index, (uint16_t)*derlen);
	if (*derlen > 2048 || tpm_client_xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS)
		RETURN_ERR(-1, "cannot define the %s EK certificate's NV index", what);
	for (size_t off = 0; off < *derlen; off += TPM2_NV_MAX_WRITE) {
		size_t k = *derlen - off < TPM2_NV_MAX_WRITE ? *derlen - off : TPM2_NV_MAX_WRITE;
		n = tpm2_cmd_nv_write(cmd, sizeof(cmd), index, *der + off, (uint16_t)k,
				      (uint16_t)off);
		if (tpm_client_xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS)
			RETURN_ERR(-1, "cannot write the %s EK certificate", what);
	}
	return 0;
}

int tpm_endorse(const char *socket, const char *ca_dir, const char *cn, struct tpm_ek_certs *out,
		char *err, size_t errlen)
{
	uint8_t cmd[64], rsp[TPM_PROTO_BUF];
	size_t n, rl = 0;
	uint32_t rc;
	int r = -1;
	memset(out, 0, sizeof(*out));
	int page = memfd_create("nitro-crb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int s = tpm_client_connect(socket);
	if (page < 0 || ftruncate(page, TPM_PROTO_BUF) < 0 ||
	    fcntl(page, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0 || s < 0 ||
	    tpm_client_hello_init(s, page, TPM_INIT_POWER_ON) < 0) {
		snprintf(err, errlen, "the TPM card does not answer");
		goto out;
	}
	n = tpm2_cmd_startup(cmd, sizeof(cmd), TPM2_SU_CLEAR);
	rc = tpm_client_xcmd(s, cmd, n, rsp, &rl);
	if (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) {
		snprintf(err, errlen, "TPM2_Startup: %#x", rc);
		goto out;
	}
	for (int rsa = 0; rsa < 2; rsa++) {
		n = tpm2_cmd_nv_read_public(cmd, sizeof(cmd),
					    rsa ? TPM2_NV_EK_CERT_RSA : TPM2_NV_EK_CERT_ECC);
		if (tpm_client_xcmd(s, cmd, n, rsp, &rl) == TPM2_RC_SUCCESS)
			continue; /* endorsed already */
		if (endorse_one(s, rsa, ca_dir, cn, rsa ? &out->ec_rsa : &out->ec_ecc,
				rsa ? &out->ec_rsa_len : &out->ec_ecc_len, err, errlen) < 0)
			goto out;
	}
	r = 0;
out:
	if (s >= 0)
		close(s);
	if (page >= 0)
		close(page);
	return r;
}
