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

/* A command with no sessions whose only parameter is one 16-bit (UINT16, TPM_SU) or
 * 32-bit (a handle) value: 12 or 14 bytes, 0 when cap is too small. */
static size_t cmd_u16(uint8_t *buf, size_t cap, uint32_t code, uint16_t v)
{
	if (cap < 12)
		return 0;
	header(buf, TPM2_ST_NO_SESSIONS, 12, code);
	be16_put(buf + 10, v);
	return 12;
}

static size_t cmd_u32(uint8_t *buf, size_t cap, uint32_t code, uint32_t v)
{
	if (cap < 14)
		return 0;
	header(buf, TPM2_ST_NO_SESSIONS, 14, code);
	be32_put(buf + 10, v);
	return 14;
}

size_t tpm2_cmd_startup(uint8_t *buf, size_t cap, uint16_t su)
{
	return cmd_u16(buf, cap, TPM2_CC_STARTUP, su);
}

size_t tpm2_cmd_get_random(uint8_t *buf, size_t cap, uint16_t bytes)
{
	return cmd_u16(buf, cap, TPM2_CC_GET_RANDOM, bytes);
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

size_t tpm2_cmd_allocate_banks(uint8_t *buf, size_t cap)
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
		uint8_t sel = algs[i] == TPM2_ALG_SHA256 || algs[i] == TPM2_ALG_SHA384 ? 0xff : 0;
		be16_put(p, algs[i]);
		p[2] = 3;
		p[3] = p[4] = p[5] = sel;
	}
	return n;
}

size_t tpm2_cmd_shutdown(uint8_t *buf, size_t cap, uint16_t su)
{
	return cmd_u16(buf, cap, TPM2_CC_SHUTDOWN, su);
}

/* The empty password session with platform or endorsement authority, after the handle. */
static uint8_t *pw_session(uint8_t *p)
{
	be32_put(p, 9);
	be32_put(p + 4, TPM2_RS_PW);
	be16_put(p + 8, 0);
	p[10] = 0;
	be16_put(p + 11, 0);
	return p + 13;
}

static const uint8_t ek_policy[32] = {
    0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
    0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa};

/* CreatePrimary under the endorsement hierarchy with the TCG EK template's common part
 * (type alg, SHA-256, the EK attributes and policy, AES-128-CFB, no scheme) and a
 * TPM2B_PUBLIC of pub bytes: the position of the type's own parameters, or NULL when cap
 * is too small; *np is the command's length. */
static uint8_t *ek_create_head(uint8_t *buf, size_t cap, size_t pub, uint16_t alg, size_t *np)
{
	size_t n = 10 + 4 + 13 + 6 + 2 + pub + 2 + 4;
	if (cap < n)
		return NULL;
	memset(buf, 0, n);
	header(buf, TPM2_ST_SESSIONS, n, TPM2_CC_CREATE_PRIMARY);
	uint8_t *p = buf + 10;
	be32_put(p, TPM2_RH_ENDORSEMENT);
	p = pw_session(p + 4);
	be16_put(p, 4); /* inSensitive: empty userAuth and data */
	p += 6;
	be16_put(p, (uint16_t)pub);
	p += 2;
	be16_put(p, alg);
	be16_put(p + 2, 0x000b); /* nameAlg SHA-256 */
	/* fixedTPM, fixedParent, sensitiveDataOrigin, adminWithPolicy, restricted, decrypt */
	be32_put(p + 4, 0x000300b2);
	be16_put(p + 8, 32);
	memcpy(p + 10, ek_policy, 32);
	p += 42;
	be16_put(p, 0x0006);	 /* AES */
	be16_put(p + 2, 128);	 /* bits */
	be16_put(p + 4, 0x0043); /* CFB */
	be16_put(p + 6, 0x0010); /* scheme NULL */
	/* outsideInfo empty, creationPCR count 0: left zero */
	*np = n;
	return p + 8;
}

size_t tpm2_cmd_create_ek_ecc(uint8_t *buf, size_t cap)
{
	size_t n;
	uint8_t *p = ek_create_head(buf, cap, 2 + 2 + 4 + 34 + 6 + 2 + 2 + 2 + 34 + 34, 0x0023, &n);
	if (!p) /* 0x0023: TPM_ALG_ECC */
		return 0;
	be16_put(p, 0x0003);	 /* NIST P-256 */
	be16_put(p + 2, 0x0010); /* kdf NULL */
	be16_put(p + 4, 32);	 /* unique x: zeros */
	be16_put(p + 38, 32);	 /* unique y: zeros */
	return n;
}

/* A CreatePrimary response's handle and TPM2B_PUBLIC up to its scheme: checks the
 * response code, the public area's size against the response, its type (alg) and that
 * the policy leaves need bytes; skips nameAlg, attributes, policy and the symmetric
 * definition. The scheme's position, or NULL; *endp is the public area's end. */
static const uint8_t *ek_public_scheme(const uint8_t *rsp, size_t len, uint16_t alg, int need,
				       uint32_t *handle, const uint8_t **endp)
{
	if (tpm2_rsp_code(rsp, len) != TPM2_RC_SUCCESS || len < 10 + 4 + 4 + 2)
		return NULL;
	*handle = be32_get(rsp + 10);
	const uint8_t *p = rsp + 18, *end = rsp + len;
	uint16_t pub = be16_get(p);
	p += 2;
	if (end - p < pub || pub < 8 + 2)
		return NULL;
	end = p + pub;
	if (be16_get(p) != alg)
		return NULL;
	p += 8;
	uint16_t pol = be16_get(p);
	p += 2;
	if (end - p < pol + need)
		return NULL;
	p += pol;
	if (be16_get(p) != 0x0010) /* symmetric: keyBits, mode */
		p += 4;
	p += 2;
	*endp = end;
	return p;
}

int tpm2_parse_ek_ecc(const uint8_t *rsp, size_t len, uint32_t *handle, uint8_t x[32],
		      uint8_t y[32])
{
	const uint8_t *end, *p = ek_public_scheme(rsp, len, 0x0023, 12, handle, &end);
	if (!p || end - p < 8)
		return -1;
	if (be16_get(p) != 0x0010) /* scheme: hash */
		p += 2;
	p += 2 + 2; /* curve */
	if (end - p < 2)
		return -1;
	if (be16_get(p) != 0x0010) /* kdf: hash */
		p += 2;
	p += 2;
	if (end - p < 2 + 32 + 2 + 32 || be16_get(p) != 32 || be16_get(p + 34) != 32)
		return -1;
	memcpy(x, p + 2, 32);
	memcpy(y, p + 36, 32);
	return 0;
}

size_t tpm2_cmd_create_ek_rsa(uint8_t *buf, size_t cap)
{
	size_t n;
	uint8_t *p = ek_create_head(
	    buf, cap, 2 + 2 + 4 + 34 + 6 + 2 + 2 + 4 + 2 + TPM2_EK_RSA_BYTES, 0x0001, &n);
	if (!p) /* 0x0001: TPM_ALG_RSA */
		return 0;
	be16_put(p, 2048); /* keyBits */
	/* exponent 0 (65537) at p + 2 */
	be16_put(p + 6, TPM2_EK_RSA_BYTES); /* unique: zeros */
	return n;
}

int tpm2_parse_ek_rsa(const uint8_t *rsp, size_t len, uint32_t *handle,
		      uint8_t n[TPM2_EK_RSA_BYTES])
{
	const uint8_t *end, *p = ek_public_scheme(rsp, len, 0x0001, 2, handle, &end);
	if (!p || end - p < 2)
		return -1;
	if (be16_get(p) != 0x0010) /* scheme: hash */
		p += 2;
	p += 2;
	if (end - p < 2 + 4 + 2 + TPM2_EK_RSA_BYTES || be16_get(p) != 2048)
		return -1;
	uint32_t e = be32_get(p + 2);
	if (e != 0 && e != 65537)
		return -1;
	p += 6;
	if (be16_get(p) != TPM2_EK_RSA_BYTES)
		return -1;
	memcpy(n, p + 2, TPM2_EK_RSA_BYTES);
	return 0;
}

size_t tpm2_cmd_flush(uint8_t *buf, size_t cap, uint32_t handle)
{
	return cmd_u32(buf, cap, TPM2_CC_FLUSH_CONTEXT, handle);
}

size_t tpm2_cmd_nv_read_public(uint8_t *buf, size_t cap, uint32_t index)
{
	return cmd_u32(buf, cap, TPM2_CC_NV_READ_PUBLIC, index);
}

size_t tpm2_cmd_nv_define_cert(uint8_t *buf, size_t cap, uint32_t index, uint16_t size)
{
	size_t n = 10 + 4 + 13 + 2 + 2 + 14;
	if (cap < n)
		return 0;
	header(buf, TPM2_ST_SESSIONS, n, TPM2_CC_NV_DEFINE_SPACE);
	uint8_t *p = buf + 10;
	be32_put(p, TPM2_RH_PLATFORM);
	p = pw_session(p + 4);
	be16_put(p, 0); /* auth: empty */
	be16_put(p + 2, 14);
	be32_put(p + 4, index);
	be16_put(p + 8, TPM2_ALG_SHA256);
	/* PPWRITE | PPREAD | OWNERREAD | AUTHREAD | NO_DA | PLATFORMCREATE */
	be32_put(p + 10, 0x42070001);
	be16_put(p + 14, 0); /* authPolicy: empty */
	be16_put(p + 16, size);
	return n;
}

size_t tpm2_cmd_nv_write(uint8_t *buf, size_t cap, uint32_t index, const uint8_t *data,
			 uint16_t len, uint16_t offset)
{
	size_t n = 10 + 8 + 13 + 2 + (size_t)len + 2;
	if (cap < n || len > TPM2_NV_MAX_WRITE)
		return 0;
	header(buf, TPM2_ST_SESSIONS, n, TPM2_CC_NV_WRITE);
	uint8_t *p = buf + 10;
	be32_put(p, TPM2_RH_PLATFORM);
	be32_put(p + 4, index);
	p = pw_session(p + 8);
	be16_put(p, len);
	memcpy(p + 2, data, len);
	be16_put(p + 2 + len, offset);
	return n;
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
