/* NitroTPM state keys and endorsement (see endorse.h). */
#include "endorse/endorse.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* One command; the TPM's response code. */
static uint32_t xcmd(int s, const uint8_t *cmd, size_t n, uint8_t *rsp, size_t *rl)
{
	return tpm_client_xcmd(s, cmd, n, rsp, rl);
}

int tpm_endorse(const char *socket, const char *ca_dir, const char *cn, uint8_t **der,
		size_t *derlen, char *err, size_t errlen)
{
	uint8_t cmd[1024], rsp[TPM_PROTO_BUF], x[32], y[32];
	size_t n, rl = 0;
	uint32_t h, rc;
	char e[512];
	int r = -1;
	*der = NULL;
	*derlen = 0;
	int page = memfd_create("nitro-crb", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	int s = tpm_client_connect(socket);
	if (page < 0 || ftruncate(page, TPM_PROTO_BUF) < 0 ||
	    fcntl(page, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0 || s < 0 ||
	    tpm_client_hello_init(s, page) < 0) {
		snprintf(err, errlen, "the TPM card does not answer");
		goto out;
	}
	n = tpm2_cmd_startup(cmd, sizeof(cmd), TPM2_SU_CLEAR);
	rc = xcmd(s, cmd, n, rsp, &rl);
	if (rc != TPM2_RC_SUCCESS && rc != TPM2_RC_INITIALIZE) {
		snprintf(err, errlen, "TPM2_Startup: %#x", rc);
		goto out;
	}
	n = tpm2_cmd_nv_read_public(cmd, sizeof(cmd), TPM2_NV_EK_CERT_ECC);
	if (xcmd(s, cmd, n, rsp, &rl) == TPM2_RC_SUCCESS) {
		r = 0; /* endorsed already */
		goto out;
	}
	n = tpm2_cmd_create_ek_ecc(cmd, sizeof(cmd));
	if (xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS ||
	    tpm2_parse_ek_ecc(rsp, rl, &h, x, y) < 0) {
		snprintf(err, errlen, "cannot create the endorsement key");
		goto out;
	}
	n = tpm2_cmd_flush(cmd, sizeof(cmd), h);
	xcmd(s, cmd, n, rsp, &rl);
	if (ekca_issue(ca_dir, x, y, cn, der, derlen, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "%s", e);
		goto out;
	}
	n = tpm2_cmd_nv_define_cert(cmd, sizeof(cmd), TPM2_NV_EK_CERT_ECC, (uint16_t)*derlen);
	if (*derlen > 2048 || xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS) {
		snprintf(err, errlen, "cannot define the EK certificate's NV index");
		goto out;
	}
	for (size_t off = 0; off < *derlen; off += TPM2_NV_MAX_WRITE) {
		size_t k = *derlen - off < TPM2_NV_MAX_WRITE ? *derlen - off : TPM2_NV_MAX_WRITE;
		n = tpm2_cmd_nv_write(cmd, sizeof(cmd), TPM2_NV_EK_CERT_ECC, *der + off,
				      (uint16_t)k, (uint16_t)off);
		if (xcmd(s, cmd, n, rsp, &rl) != TPM2_RC_SUCCESS) {
			snprintf(err, errlen, "cannot write the EK certificate");
			goto out;
		}
	}
	r = 1;
out:
	if (r < 0) {
		free(*der);
		*der = NULL;
		*derlen = 0;
	}
	if (s >= 0)
		close(s);
	if (page >= 0)
		close(page);
	return r;
}
