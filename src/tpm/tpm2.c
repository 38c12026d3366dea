/* TPM 2.0 command builders and response parsers (contract in tpm2.h). */
#include "tpm/tpm2.h"

#include <string.h>

unsigned tpm2_digest_size(uint16_t alg)
{
	switch (alg) {
	case TPM2_ALG_SHA1:
		return 20;
	case TPM2_ALG_SHA256:
		return 32;
	case TPM2_ALG_SHA384:
		return 48;
	case TPM2_ALG_SHA512:
		return 64;
	}
	return 0;
}

static void header(uint8_t *buf, uint16_t tag, size_t len, uint32_t code)
{
	be16_put(buf, tag);
	be32_put(buf + 2, (uint32_t)len);
	be32_put(buf + 6, code);
}

size_t tpm2_cmd_startup(uint8_t *buf, size_t cap, uint16_t su)
{
	if (cap < 12)
		return 0;
	header(buf, TPM2_ST_NO_SESSIONS, 12, TPM2_CC_STARTUP);
	be16_put(buf + 10, su);
	return 12;
}

size_t tpm2_cmd_get_random(uint8_t *buf, size_t cap, uint16_t bytes)
{
	if (cap < 12)
		return 0;
	header(buf, TPM2_ST_NO_SESSIONS, 12, TPM2_CC_GET_RANDOM);
	be16_put(buf + 10, bytes);
	return 12;
}

size_t tpm2_cmd_get_pcrs(uint8_t *buf, size_t cap)
{
	if (cap < 22)
		return 0;
	header(buf, TPM2_ST_NO_SESSIONS, 22, TPM2_CC_GET_CAPABILITY);
	be32_put(buf + 10, TPM2_CAP_PCRS);
	be32_put(buf + 14, 0);			/* property */
	be32_put(buf + 18, TPM2_MAX_BANKS * 2); /* propertyCount */
	return 22;
}

size_t tpm2_cmd_pcr_extend(uint8_t *buf, size_t cap, uint32_t pcr, const struct tpm2_digests *d)
{
	size_t n = 10 + 4 + 4 + 9 + 4;
	if (d->count > TPM2_MAX_BANKS)
		return 0;
	for (unsigned i = 0; i < d->count; i++) {
		if (!tpm2_digest_size(d->alg[i]))
			return 0;
		n += 2 + tpm2_digest_size(d->alg[i]);
	}
	if (cap < n)
		return 0;
	header(buf, TPM2_ST_SESSIONS, n, TPM2_CC_PCR_EXTEND);
	uint8_t *p = buf + 10;
	be32_put(p, pcr);
	be32_put(p + 4, 9); /* authorizationSize */
	be32_put(p + 8, TPM2_RS_PW);
	be16_put(p + 12, 0); /* nonce */
	p[14] = 0;	     /* sessionAttributes */
	be16_put(p + 15, 0); /* hmac (password): empty */
	p += 17;
	be32_put(p, d->count);
	p += 4;
	for (unsigned i = 0; i < d->count; i++) {
		unsigned ds = tpm2_digest_size(d->alg[i]);
		be16_put(p, d->alg[i]);
		memcpy(p + 2, d->digest[i], ds);
		p += 2 + ds;
	}
	return n;
}

size_t tpm2_cmd_disable_platform(uint8_t *buf, size_t cap)
{
	if (cap < 32)
		return 0;
	header(buf, TPM2_ST_SESSIONS, 32, TPM2_CC_HIERARCHY_CONTROL);
	uint8_t *p = buf + 10;
	be32_put(p, TPM2_RH_PLATFORM); /* authHandle */
	be32_put(p + 4, 9);	       /* authorizationSize */
	be32_put(p + 8, TPM2_RS_PW);
	be16_put(p + 12, 0);
	p[14] = 0;
	be16_put(p + 15, 0);
	be32_put(p + 17, TPM2_RH_PLATFORM); /* enable */
	p[21] = 0;			    /* state: NO */
	return 32;
}

size_t tpm2_cmd_allocate_sha256(uint8_t *buf, size_t cap)
{
	static const uint16_t algs[] = {TPM2_ALG_SHA1, TPM2_ALG_SHA256, TPM2_ALG_SHA384,
					TPM2_ALG_SHA512};
	size_t n = 10 + 4 + 4 + 9 + 4 + 4 * 6;
	if (cap < n)
		return 0;
	header(buf, TPM2_ST_SESSIONS, n, TPM2_CC_PCR_ALLOCATE);
	uint8_t *p = buf + 10;
	be32_put(p, TPM2_RH_PLATFORM);
	be32_put(p + 4, 9);
	be32_put(p + 8, TPM2_RS_PW);
	be16_put(p + 12, 0);
	p[14] = 0;
	be16_put(p + 15, 0);
	p += 17;
	be32_put(p, 4);
	p += 4;
	for (unsigned i = 0; i < 4; i++, p += 6) {
		uint8_t sel = algs[i] == TPM2_ALG_SHA256 ? 0xff : 0;
		be16_put(p, algs[i]);
		p[2] = 3;
		p[3] = p[4] = p[5] = sel;
	}
	return n;
}

size_t tpm2_cmd_shutdown(uint8_t *buf, size_t cap, uint16_t su)
{
	if (cap < 12)
		return 0;
	header(buf, TPM2_ST_NO_SESSIONS, 12, TPM2_CC_SHUTDOWN);
	be16_put(buf + 10, su);
	return 12;
}

size_t tpm2_rsp_error(uint8_t *buf, size_t cap, uint32_t rc)
{
	if (cap < TPM2_HEADER)
		return 0;
	header(buf, TPM2_ST_NO_SESSIONS, TPM2_HEADER, rc);
	return TPM2_HEADER;
}

uint32_t tpm2_rsp_code(const uint8_t *rsp, size_t len)
{
	if (len < TPM2_HEADER || be32_get(rsp + 2) != len)
		return TPM2_RC_FAILURE;
	return be32_get(rsp + 6);
}

uint32_t tpm2_cmd_size(const uint8_t *cmd, size_t len)
{
	return len < TPM2_HEADER ? 0 : be32_get(cmd + 2);
}

/* Response: header, moreData (1), capability (4), TPML_PCR_SELECTION: count (4), then per
 * bank hash (2), sizeofSelect (1), pcrSelect[sizeofSelect]. */
int tpm2_parse_pcrs(const uint8_t *rsp, size_t len, uint16_t *algs, unsigned *nalgs)
{
	*nalgs = 0;
	if (tpm2_rsp_code(rsp, len) != TPM2_RC_SUCCESS || len < TPM2_HEADER + 9)
		return -1;
	const uint8_t *p = rsp + TPM2_HEADER + 1, *end = rsp + len;
	if (be32_get(p) != TPM2_CAP_PCRS)
		return -1;
	uint32_t count = be32_get(p + 4);
	p += 8;
	if (count > 16)
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		if (end - p < 3)
			return -1;
		uint16_t alg = be16_get(p);
		uint8_t sz = p[2];
		p += 3;
		if (end - p < sz)
			return -1;
		bool any = false;
		for (unsigned k = 0; k < sz; k++)
			any |= p[k] != 0;
		p += sz;
		if (any && tpm2_digest_size(alg) && *nalgs < TPM2_MAX_BANKS)
			algs[(*nalgs)++] = alg;
	}
	return 0;
}
