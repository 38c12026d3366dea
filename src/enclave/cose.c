/* COSE_Sign1 ES384 (see cose.h). */
#include "enclave/cose.h"

/* bstr-wrapped protected header: CBOR {1: -35} = A1 01 38 22. */
static const uint8_t prot[] = {0xa1, 0x01, 0x38, 0x22};

void cose_sig_structure(struct cbw *w, const uint8_t *payload, size_t len)
{
	cbw_array(w, 4);
	cbw_text(w, "Signature1");
	cbw_bytes(w, prot, sizeof(prot));
	cbw_bytes(w, NULL, 0);
	cbw_bytes(w, payload, len);
}

int cose_sign1(struct cbw *w, const uint8_t *payload, size_t len, cose_sign_fn sign, void *ctx)
{
	struct cbw tbs;
	cbw_init(&tbs, len + 64);
	cose_sig_structure(&tbs, payload, len);
	uint8_t sig[COSE_ES384_SIG_LEN];
	int rc = tbs.failed ? -1 : sign(ctx, tbs.buf, tbs.len, sig);
	cbw_free(&tbs);
	if (rc != 0)
		return -1;
	cbw_array(w, 4);
	cbw_bytes(w, prot, sizeof(prot));
	cbw_map(w, 0);
	cbw_bytes(w, payload, len);
	cbw_bytes(w, sig, sizeof(sig));
	return w->failed ? -1 : 0;
}
