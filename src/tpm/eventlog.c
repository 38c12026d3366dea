/* TCG2 crypto-agile event log: writer, replay (contract in eventlog.h). */
#include "tpm/eventlog.h"

#include <openssl/evp.h>
#include <string.h>

#include "lib/le.h"

#define SPEC_ID_SIG "Spec ID Event03"
#define SPEC_ID_FIXED 24 /* signature 16, platformClass 4, minor, major, errata, uintnSize */

static uint8_t *room(struct tpm_log *lg, size_t n)
{
	if (lg->lg_error || n > lg->lg_cap - lg->lg_len) {
		lg->lg_error = true;
		return NULL;
	}
	uint8_t *p = lg->lg_buf + lg->lg_len;
	lg->lg_len += n;
	return p;
}

void tpm_log_init(struct tpm_log *lg, uint8_t *buf, size_t cap, const uint16_t *algs,
		  unsigned nalgs)
{
	memset(lg, 0, sizeof(*lg));
	lg->lg_buf = buf;
	lg->lg_cap = cap;
	memset(buf, 0, cap);
	if (nalgs == 0 || nalgs > TPM2_MAX_BANKS) {
		lg->lg_error = true;
		return;
	}
	for (unsigned i = 0; i < nalgs; i++) {
		if (!tpm2_digest_size(algs[i]))
			lg->lg_error = true;
		lg->lg_algs[i] = algs[i];
	}
	lg->lg_nalgs = nalgs;
	uint32_t evsize = SPEC_ID_FIXED + 4 + 4 * nalgs + 1;
	uint8_t *p = room(lg, 4 + 4 + 20 + 4 + evsize);
	if (!p)
		return;
	le32_put(p, 0);
	le32_put(p + 4, TPM_EV_NO_ACTION);
	/* p + 8: 20 zero bytes */
	le32_put(p + 28, evsize);
	p += 32;
	memcpy(p, SPEC_ID_SIG, sizeof(SPEC_ID_SIG)); /* with its NUL: 16 bytes */
	le32_put(p + 16, 0);			     /* platformClass: client */
	p[20] = 0;				     /* specVersionMinor */
	p[21] = 2;				     /* specVersionMajor */
	p[22] = 0;				     /* specErrata */
	p[23] = 2;				     /* uintnSize: UINT64 */
	le32_put(p + 24, nalgs);
	p += 28;
	for (unsigned i = 0; i < nalgs; i++, p += 4) {
		le16_put(p, algs[i]);
		le16_put(p + 2, (uint16_t)tpm2_digest_size(algs[i]));
	}
	p[0] = 0; /* vendorInfoSize */
}

void tpm_log_add(struct tpm_log *lg, uint32_t pcr, uint32_t type, const struct tpm2_digests *d,
		 const void *data, uint32_t datalen)
{
	if (lg->lg_error)
		return;
	if (d->count != lg->lg_nalgs || pcr >= TPM_LOG_PCRS) {
		lg->lg_error = true;
		return;
	}
	size_t n = 4 + 4 + 4 + 4 + (size_t)datalen;
	for (unsigned i = 0; i < d->count; i++) {
		if (d->alg[i] != lg->lg_algs[i]) {
			lg->lg_error = true;
			return;
		}
		n += 2 + tpm2_digest_size(d->alg[i]);
	}
	uint8_t *p = room(lg, n);
	if (!p)
		return;
	le32_put(p, pcr);
	le32_put(p + 4, type);
	le32_put(p + 8, d->count);
	p += 12;
	for (unsigned i = 0; i < d->count; i++) {
		unsigned ds = tpm2_digest_size(d->alg[i]);
		le16_put(p, d->alg[i]);
		memcpy(p + 2, d->digest[i], ds);
		p += 2 + ds;
	}
	le32_put(p, datalen);
	if (datalen)
		memcpy(p + 4, data, datalen);
	lg->lg_events++;
}

static const EVP_MD *md_of(uint16_t alg)
{
	switch (alg) {
	case TPM2_ALG_SHA1:
		return EVP_sha1();
	case TPM2_ALG_SHA256:
		return EVP_sha256();
	case TPM2_ALG_SHA384:
		return EVP_sha384();
	case TPM2_ALG_SHA512:
		return EVP_sha512();
	}
	return NULL;
}

int tpm_hash(uint16_t alg, const void *data, size_t len, uint8_t *out)
{
	const EVP_MD *md = md_of(alg);
	unsigned n = 0;
	if (!md || !EVP_Digest(data, len, out, &n, md, NULL) || n != tpm2_digest_size(alg))
		return -1;
	return 0;
}

int tpm_hash_banks(const uint16_t *algs, unsigned nalgs, const void *data, size_t len,
		   struct tpm2_digests *d)
{
	memset(d, 0, sizeof(*d));
	if (nalgs > TPM2_MAX_BANKS)
		return -1;
	for (unsigned i = 0; i < nalgs; i++) {
		d->alg[i] = algs[i];
		if (tpm_hash(algs[i], data, len, d->digest[i]) < 0)
			return -1;
	}
	d->count = nalgs;
	return 0;
}

/* pcr = H(pcr || digest) */
static int extend(uint16_t alg, uint8_t *pcr, const uint8_t *digest)
{
	unsigned ds = tpm2_digest_size(alg);
	uint8_t in[2 * TPM2_MAX_DIGEST];
	memcpy(in, pcr, ds);
	memcpy(in + ds, digest, ds);
	return tpm_hash(alg, in, 2 * (size_t)ds, pcr);
}

int tpm_log_replay(const uint8_t *buf, size_t len, struct tpm_log_pcrs *out)
{
	memset(out, 0, sizeof(*out));
	/* The header event: SHA-1 format. */
	if (len < 32 + SPEC_ID_FIXED + 4 || le32_get(buf + 4) != TPM_EV_NO_ACTION)
		return -1;
	uint32_t evsize = le32_get(buf + 28);
	if (evsize > len - 32 || evsize < SPEC_ID_FIXED + 4)
		return -1;
	const uint8_t *s = buf + 32;
	if (memcmp(s, SPEC_ID_SIG, sizeof(SPEC_ID_SIG)) != 0)
		return -1;
	uint32_t nalgs = le32_get(s + 24);
	if (nalgs == 0 || nalgs > TPM2_MAX_BANKS || (evsize - SPEC_ID_FIXED - 4) / 4 < nalgs)
		return -1;
	for (uint32_t i = 0; i < nalgs; i++) {
		uint16_t alg = le16_get(s + 28 + 4 * i);
		if (!tpm2_digest_size(alg) || le16_get(s + 30 + 4 * i) != tpm2_digest_size(alg))
			return -1;
		out->algs[i] = alg;
	}
	out->nalgs = nalgs;
	size_t off = 32 + (size_t)evsize;
	while (len - off >= 12) {
		const uint8_t *p = buf + off;
		uint32_t pcr = le32_get(p), type = le32_get(p + 4), count = le32_get(p + 8);
		if (type == 0 && pcr == 0 && count == 0)
			break; /* the zero-filled rest of the area */
		if (pcr >= TPM_LOG_PCRS || count != nalgs)
			return -1;
		size_t q = 12;
		const uint8_t *dig[TPM2_MAX_BANKS];
		for (uint32_t i = 0; i < count; i++) {
			unsigned ds = tpm2_digest_size(out->algs[i]);
			if (len - off - q < 2 + (size_t)ds || le16_get(p + q) != out->algs[i])
				return -1;
			dig[i] = p + q + 2;
			q += 2 + ds;
		}
		if (len - off - q < 4)
			return -1;
		uint32_t dlen = le32_get(p + q);
		q += 4;
		if (len - off - q < dlen)
			return -1;
		q += dlen;
		if (type != TPM_EV_NO_ACTION) {
			for (uint32_t i = 0; i < count; i++)
				if (extend(out->algs[i], out->pcr[pcr][i], dig[i]) < 0)
					return -1;
			out->events++;
		}
		off += q;
	}
	return 0;
}
