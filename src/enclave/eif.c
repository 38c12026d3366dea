/* EIF parser, measurer and writer (see eif.h). */
#include "enclave/eif.h"

#include <cbor.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/cbw.h"
#include "enclave/cose.h"
#include "enclave/pki.h"
#include "lib/be.h"
#include "lib/crc32.h"

uint32_t eif_crc32(uint32_t crc, const void *data, size_t len)
{
	static crc32_table table;
	static int made; /* benign race: every thread writes the same values */
	if (!__atomic_load_n(&made, __ATOMIC_ACQUIRE)) {
		crc32_tables(table);
		__atomic_store_n(&made, 1, __ATOMIC_RELEASE);
	}
	return crc32_slice8((const uint32_t(*)[256])table, crc, data, len);
}

const char *eif_err_name(enum eif_err e)
{
	static const char *const n[] = {"ok",
					"truncated",
					"bad magic",
					"unsupported version",
					"bad section count",
					"inconsistent section layout",
					"bad section type",
					"CRC mismatch",
					"missing section",
					"trailing bytes"};
	return (unsigned)e < sizeof(n) / sizeof(n[0]) ? n[e] : "unknown";
}

const char *eif_section_name(uint16_t t)
{
	switch (t) {
	case EIF_SEC_KERNEL:
		return "kernel";
	case EIF_SEC_CMDLINE:
		return "cmdline";
	case EIF_SEC_RAMDISK:
		return "ramdisk";
	case EIF_SEC_SIGNATURE:
		return "signature";
	case EIF_SEC_METADATA:
		return "metadata";
	}
	return "invalid";
}

static enum eif_err fail(char *err, size_t errlen, enum eif_err e, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return e;
}

enum eif_err eif_parse(const uint8_t *buf, size_t len, struct eif_info *out, char *err,
		       size_t errlen)
{
	memset(out, 0, sizeof(*out));
	if (len < EIF_HDR_SIZE)
		return fail(err, errlen, EIF_E_TRUNCATED,
			    "image of %zu bytes is shorter than the %d-byte EIF header", len,
			    EIF_HDR_SIZE);
	if (memcmp(buf, EIF_MAGIC, 4) != 0)
		return fail(err, errlen, EIF_E_MAGIC, "not an EIF: magic is not \".eif\"");
	out->version = be16_get(buf + 4);
	out->flags = be16_get(buf + 6);
	out->default_mem = be64_get(buf + 8);
	out->default_cpus = be64_get(buf + 16);
	out->num_sections = be16_get(buf + 26);
	out->crc = be32_get(buf + EIF_HDR_SIZE - 4);
	if (out->version == 0 || out->version > EIF_VERSION)
		return fail(err, errlen, EIF_E_VERSION, "EIF version %u is not supported (1..%d)",
			    out->version, EIF_VERSION);
	unsigned n = out->num_sections;
	if (n == 0 || n > EIF_MAX_SECTIONS)
		return fail(err, errlen, EIF_E_NUM_SECTIONS, "EIF has %u sections (1..%d allowed)",
			    n, EIF_MAX_SECTIONS);
	const uint8_t *offs = buf + 28, *sizes = buf + 28 + 8 * EIF_MAX_SECTIONS;
	uint64_t pos = EIF_HDR_SIZE;
	for (unsigned i = 0; i < EIF_MAX_SECTIONS; i++) {
		uint64_t off = be64_get(offs + 8 * i), size = be64_get(sizes + 8 * i);
		if (i >= n) {
			if (off || size)
				return fail(err, errlen, EIF_E_SECTION_LAYOUT,
					    "section table entry %u is set but the header counts "
					    "%u sections",
					    i, n);
			continue;
		}
		if (off != pos)
			return fail(err, errlen, EIF_E_SECTION_LAYOUT,
				    "section %u starts at %llu, expected %llu (sections must "
				    "follow each other)",
				    i, (unsigned long long)off, (unsigned long long)pos);
		if (pos > len || len - pos < EIF_SEC_HDR_SIZE)
			return fail(
			    err, errlen, EIF_E_TRUNCATED,
			    "section %u header at %llu is past the end of the %zu-byte image", i,
			    (unsigned long long)pos, len);
		const uint8_t *sh = buf + pos;
		struct eif_section *s = &out->sec[i];
		s->type = be16_get(sh);
		s->flags = be16_get(sh + 2);
		s->size = be64_get(sh + 4);
		s->offset = off;
		if (s->size != size)
			return fail(
			    err, errlen, EIF_E_SECTION_LAYOUT,
			    "section %u: its header says %llu bytes, the section table %llu", i,
			    (unsigned long long)s->size, (unsigned long long)size);
		if (size > len - pos - EIF_SEC_HDR_SIZE)
			return fail(err, errlen, EIF_E_TRUNCATED,
				    "section %u (%llu bytes at %llu) runs past the end of the "
				    "%zu-byte image",
				    i, (unsigned long long)size, (unsigned long long)pos, len);
		s->body = sh + EIF_SEC_HDR_SIZE;
		pos += EIF_SEC_HDR_SIZE + size;
	}
	if (pos != len)
		return fail(err, errlen, EIF_E_TRAILING, "%llu bytes after the last section",
			    (unsigned long long)(len - pos));
	uint32_t crc = eif_crc32(0, buf, EIF_HDR_SIZE - 4);
	crc = eif_crc32(crc, buf + EIF_HDR_SIZE, len - EIF_HDR_SIZE);
	if (crc != out->crc)
		return fail(err, errlen, EIF_E_CRC,
			    "CRC32 is %08x, the header says %08x (image corrupted)", crc, out->crc);
	unsigned count[6] = {0};
	for (unsigned i = 0; i < n; i++) {
		uint16_t t = out->sec[i].type;
		if (t < EIF_SEC_KERNEL || t > EIF_SEC_METADATA)
			return fail(err, errlen, EIF_E_SECTION_TYPE,
				    "section %u has unknown type %u", i, t);
		count[t]++;
		if (t != EIF_SEC_RAMDISK && count[t] > 1)
			return fail(err, errlen, EIF_E_SECTION_TYPE, "more than one %s section",
				    eif_section_name(t));
	}
	if (!count[EIF_SEC_KERNEL] || !count[EIF_SEC_CMDLINE] || !count[EIF_SEC_RAMDISK])
		return fail(err, errlen, EIF_E_MISSING, "EIF has no %s section",
			    !count[EIF_SEC_KERNEL]    ? "kernel"
			    : !count[EIF_SEC_CMDLINE] ? "cmdline"
						      : "ramdisk");
	return EIF_OK;
}

/* extend(x) = SHA-384(48 zero bytes || SHA-384(x)), x given as an open digest context. */
static int finish_extend(EVP_MD_CTX *x, uint8_t out[EIF_DIGEST_LEN])
{
	uint8_t buf[2 * EIF_DIGEST_LEN] = {0};
	unsigned l = 0;
	if (EVP_DigestFinal_ex(x, buf + EIF_DIGEST_LEN, &l) != 1 || l != EIF_DIGEST_LEN)
		return -1;
	return EVP_Digest(buf, sizeof(buf), out, &l, EVP_sha384(), NULL) == 1 ? 0 : -1;
}

/* A byte string of a CBOR item: a bstr, or (serde's Vec<u8>) an array of uints < 256. */
static uint8_t *cbor_bytes_of(cbor_item_t *it, size_t *n)
{
	if (cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it)) {
		*n = cbor_bytestring_length(it);
		uint8_t *p = malloc(*n ? *n : 1);
		if (p && *n)
			memcpy(p, cbor_bytestring_handle(it), *n);
		return p;
	}
	if (!cbor_isa_array(it) || !cbor_array_is_definite(it))
		return NULL;
	*n = cbor_array_size(it);
	uint8_t *p = malloc(*n ? *n : 1);
	cbor_item_t **a = cbor_array_handle(it);
	for (size_t i = 0; p && i < *n; i++) {
		if (!cbor_isa_uint(a[i]) || cbor_get_int(a[i]) > 255) {
			free(p);
			return NULL;
		}
		p[i] = (uint8_t)cbor_get_int(a[i]);
	}
	return p;
}

static cbor_item_t *map_get(cbor_item_t *m, const char *key)
{
	if (!cbor_isa_map(m) || !cbor_map_is_definite(m))
		return NULL;
	struct cbor_pair *p = cbor_map_handle(m);
	size_t kl = strlen(key);
	for (size_t i = 0; i < cbor_map_size(m); i++)
		if (cbor_isa_string(p[i].key) && cbor_string_is_definite(p[i].key) &&
		    cbor_string_length(p[i].key) == kl &&
		    !memcmp(cbor_string_handle(p[i].key), key, kl))
			return p[i].value;
	return NULL;
}

/* The signature section (CBOR [{signing_certificate: PEM, signature: COSE_Sign1 of
 * {register_index: 0, register_value: PCR0}}, ...]): checks that the first entry's COSE
 * signature verifies with its certificate's key over this image's PCR0, and returns the
 * certificate's DER (malloc'd). NULL with err otherwise: a certificate copied from another
 * image, without its key, gives no PCR8. */
static uint8_t *sig_check(const uint8_t *body, size_t len, const uint8_t pcr0[EIF_DIGEST_LEN],
			  size_t *der_len, char *err, size_t errlen)
{
	struct cbor_load_result r;
	uint8_t *der = NULL, *pem = NULL, *cose_b = NULL, *val = NULL;
	cbor_item_t *it = NULL, *cose = NULL, *pl = NULL;
	const char *why = "not CBOR [{signing_certificate, signature}]";
	/* hostile bytes: no decoder allocation out of proportion to them */
	if (cbor_check_wellformed(body, len, 8) != 0)
		goto out;
	it = cbor_load(body, len, &r);
	if (!it || r.error.code != CBOR_ERR_NONE || r.read != len || !cbor_isa_array(it) ||
	    !cbor_array_is_definite(it) || cbor_array_size(it) < 1)
		goto out;
	cbor_item_t *c = map_get(cbor_array_handle(it)[0], "signing_certificate");
	cbor_item_t *sg = map_get(cbor_array_handle(it)[0], "signature");
	size_t pn, cn, vn;
	pem = c ? cbor_bytes_of(c, &pn) : NULL;
	cose_b = sg ? cbor_bytes_of(sg, &cn) : NULL;
	if (!pem || !cose_b)
		goto out;
	why = "the signing certificate is not a PEM certificate";
	der = pki_pem_to_der(pem, pn, der_len);
	if (!der)
		goto out;
	why = "the signature is not a COSE_Sign1 ES384 of {register_index: 0, register_value}";
	if (cbor_check_wellformed(cose_b, cn, 8) != 0)
		goto out;
	cose = cbor_load(cose_b, cn, &r);
	if (cose && cbor_isa_tag(cose) && cbor_tag_value(cose) == 18) {
		cbor_item_t *inner = cbor_tag_item(cose); /* a reference of our own */
		cbor_decref(&cose);
		cose = inner;
	}
	if (!cose || !cbor_isa_array(cose) || !cbor_array_is_definite(cose) ||
	    cbor_array_size(cose) != 4)
		goto out;
	cbor_item_t **a = cbor_array_handle(cose);
	static const uint8_t es384[] = {0xa1, 0x01, 0x38, 0x22};
	for (int k = 0; k < 4; k++)
		if (k != 1 && (!cbor_isa_bytestring(a[k]) || !cbor_bytestring_is_definite(a[k])))
			goto out;
	if (cbor_bytestring_length(a[0]) != sizeof(es384) ||
	    memcmp(cbor_bytestring_handle(a[0]), es384, sizeof(es384)) ||
	    cbor_bytestring_length(a[3]) != COSE_ES384_SIG_LEN)
		goto out;
	size_t pll = cbor_bytestring_length(a[2]);
	const uint8_t *plb = cbor_bytestring_handle(a[2]);
	if (!plb || cbor_check_wellformed(plb, pll, 4) != 0)
		goto out;
	pl = cbor_load(plb, pll, &r);
	cbor_item_t *idx = pl ? map_get(pl, "register_index") : NULL;
	cbor_item_t *v = pl ? map_get(pl, "register_value") : NULL;
	val = v ? cbor_bytes_of(v, &vn) : NULL;
	if (!idx || !cbor_isa_uint(idx) || cbor_get_int(idx) != 0 || !val)
		goto out;
	why = "the signature is over another image's PCR0";
	if (vn != EIF_DIGEST_LEN || memcmp(val, pcr0, EIF_DIGEST_LEN))
		goto out;
	why = "the signature does not verify with the signing certificate's key";
	struct cbw tbs;
	cbw_init(&tbs, pll + 64);
	cose_sig_structure(&tbs, plb, pll);
	int ok = !tbs.failed && pki_es384_verify(der, *der_len, tbs.buf, tbs.len,
						 cbor_bytestring_handle(a[3])) == 0;
	cbw_free(&tbs);
	if (ok)
		why = NULL;
out:
	if (why) {
		fail(err, errlen, 0, "signature section: %s", why);
		free(der);
		der = NULL;
	}
	free(pem);
	free(cose_b);
	free(val);
	if (pl)
		cbor_decref(&pl);
	if (cose)
		cbor_decref(&cose);
	if (it)
		cbor_decref(&it);
	return der;
}

int eif_measure(const struct eif_info *in, struct eif_pcrs *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof(*out));
	EVP_MD_CTX *c0 = EVP_MD_CTX_new(), *c1 = EVP_MD_CTX_new(), *c2 = EVP_MD_CTX_new();
	int rc = -1;
	if (!c0 || !c1 || !c2 || EVP_DigestInit_ex(c0, EVP_sha384(), NULL) != 1 ||
	    EVP_DigestInit_ex(c1, EVP_sha384(), NULL) != 1 ||
	    EVP_DigestInit_ex(c2, EVP_sha384(), NULL) != 1)
		goto out;
	/* Each byte hashed once: while no PCR2 section has come, PCR1's input is PCR0's, so
	 * c1 is a copy of c0 taken when the first one comes (or at the end); the kernel's own
	 * digest is a copy of c0 finished right after it when it is the first section. */
	bool first_rd = true, c1_is_c0 = true, c0_empty = true;
	const struct eif_section *sig = NULL, *kernel = NULL;
	for (unsigned i = 0; i < in->num_sections && i < EIF_MAX_SECTIONS; i++) {
		const struct eif_section *s = &in->sec[i];
		if (s->type == EIF_SEC_SIGNATURE) {
			sig = s;
			continue;
		}
		if (s->type != EIF_SEC_KERNEL && s->type != EIF_SEC_CMDLINE &&
		    s->type != EIF_SEC_RAMDISK)
			continue;
		bool to_c1 = s->type != EIF_SEC_RAMDISK || first_rd;
		if (s->type == EIF_SEC_RAMDISK)
			first_rd = false;
		if (!to_c1 && c1_is_c0) {
			if (EVP_MD_CTX_copy_ex(c1, c0) != 1)
				goto out;
			c1_is_c0 = false;
		}
		if (EVP_DigestUpdate(c0, s->body, s->size) != 1 ||
		    (!c1_is_c0 && EVP_DigestUpdate(to_c1 ? c1 : c2, s->body, s->size) != 1))
			goto out;
		if (s->type == EIF_SEC_KERNEL && !kernel) {
			kernel = s;
			unsigned l = 0;
			if (c0_empty && (EVP_MD_CTX_copy_ex(c2, c0) != 1 ||
					 EVP_DigestFinal_ex(c2, out->kernel, &l) != 1 ||
					 EVP_DigestInit_ex(c2, EVP_sha384(), NULL) != 1))
				goto out;
			if (!c0_empty &&
			    EVP_Digest(s->body, s->size, out->kernel, &l, EVP_sha384(), NULL) != 1)
				goto out;
			out->has_kernel = true;
		}
		c0_empty = false;
	}
	if (c1_is_c0 && EVP_MD_CTX_copy_ex(c1, c0) != 1)
		goto out;
	if (finish_extend(c0, out->pcr0) || finish_extend(c1, out->pcr1) ||
	    finish_extend(c2, out->pcr2))
		goto out;
	if (sig) {
		size_t dl;
		uint8_t *der = sig_check(sig->body, sig->size, out->pcr0, &dl, err, errlen);
		if (!der)
			goto out;
		EVP_MD_CTX *c8 = EVP_MD_CTX_new();
		int ok = c8 && EVP_DigestInit_ex(c8, EVP_sha384(), NULL) == 1 &&
			 EVP_DigestUpdate(c8, der, dl) == 1 && finish_extend(c8, out->pcr8) == 0;
		EVP_MD_CTX_free(c8);
		free(der);
		if (!ok)
			goto out;
		out->has_pcr8 = true;
	}
	rc = 0;
out:
	if (rc && err && errlen && !err[0])
		snprintf(err, errlen, "SHA-384 failed");
	EVP_MD_CTX_free(c0);
	EVP_MD_CTX_free(c1);
	EVP_MD_CTX_free(c2);
	return rc;
}

int eif_pcr_of_text(const char *text, uint8_t out[EIF_DIGEST_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	static const uint8_t zero[EIF_DIGEST_LEN];
	unsigned l = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1 &&
		 EVP_DigestUpdate(md, zero, sizeof(zero)) == 1 &&
		 EVP_DigestUpdate(md, text, strlen(text)) == 1 &&
		 EVP_DigestFinal_ex(md, out, &l) == 1;
	EVP_MD_CTX_free(md);
	return ok && l == EIF_DIGEST_LEN ? 0 : -1;
}

static void bytes_as_array(struct cbw *w, const uint8_t *p, size_t n)
{
	cbw_array(w, n);
	for (size_t i = 0; i < n; i++)
		cbw_uint(w, p[i]);
}

/* The signature section: CBOR [{"signing_certificate": PEM, "signature": COSE_Sign1 of
 * {"register_index": 0, "register_value": PCR0}}], byte strings as serde's Vec<u8>
 * (arrays of integers) as AWS's builder writes them. */
static int signature_section(const struct eif_build_in *in, const uint8_t pcr0[48], struct cbw *out,
			     char *err, size_t errlen)
{
	EVP_PKEY *key = pki_pem_key(in->key_pem, in->key_pem_len);
	size_t dl;
	uint8_t *der = pki_pem_to_der(in->cert_pem, in->cert_pem_len, &dl);
	int rc = -1;
	if (!key || !der) {
		fail(err, errlen, 0, "%s",
		     !key ? "--private-key: not an EC private key in PEM"
			  : "--signing-certificate: not a PEM certificate");
		goto out;
	}
	struct cbw pl, cose;
	cbw_init(&pl, 4096);
	cbw_map(&pl, 2);
	cbw_text(&pl, "register_index");
	cbw_uint(&pl, 0);
	cbw_text(&pl, "register_value");
	bytes_as_array(&pl, pcr0, EIF_DIGEST_LEN);
	cbw_init(&cose, 8192);
	if (pl.failed || cose_sign1(&cose, pl.buf, pl.len, pki_es384_sign, key) != 0) {
		fail(err, errlen, 0, "signing PCR0 failed (the key must be EC P-384)");
	} else {
		cbw_array(out, 1);
		cbw_map(out, 2);
		cbw_text(out, "signing_certificate");
		bytes_as_array(out, in->cert_pem, in->cert_pem_len);
		cbw_text(out, "signature");
		bytes_as_array(out, cose.buf, cose.len);
		rc = out->failed ? -1 : 0;
	}
	cbw_free(&pl);
	cbw_free(&cose);
out:
	EVP_PKEY_free(key);
	free(der);
	return rc;
}

/* Every field of AWS's EifIdentityInfo (so its readers deserialize it), with a fixed
 * BuildTime: the same inputs give the same image. */
static const char default_metadata[] =
    "{\"ImageName\":\"nitro-eif\",\"ImageVersion\":\"1.0\",\"BuildMetadata\":{"
    "\"BuildTime\":\"1970-01-01T00:00:00+00:00\",\"BuildTool\":\"nitro eif build\","
    "\"BuildToolVersion\":\"1\",\"OperatingSystem\":\"Linux\",\"KernelVersion\":\"\"},"
    "\"DockerInfo\":{},\"CustomMetadata\":null}";

uint8_t *eif_build(const struct eif_build_in *in, size_t *len, char *err, size_t errlen)
{
	const uint8_t *body[EIF_MAX_SECTIONS];
	uint64_t size[EIF_MAX_SECTIONS];
	uint16_t type[EIF_MAX_SECTIONS];
	unsigned n = 0;
	if (!in->kernel || !in->kernel_len || !in->nramdisks || in->nramdisks > EIF_MAX_RAMDISKS) {
		fail(err, errlen, 0, "an EIF needs a kernel and 1..%d ramdisks", EIF_MAX_RAMDISKS);
		return NULL;
	}
	if (!in->cert_pem != !in->key_pem) {
		fail(err, errlen, 0,
		     "a signed EIF needs both a signing certificate and a private key");
		return NULL;
	}
	const char *cmd = in->cmdline ? in->cmdline : "";
	const char *meta = in->metadata_json ? in->metadata_json : default_metadata;
	type[n] = EIF_SEC_KERNEL, body[n] = in->kernel, size[n++] = in->kernel_len;
	type[n] = EIF_SEC_CMDLINE, body[n] = (const uint8_t *)cmd, size[n++] = strlen(cmd);
	type[n] = EIF_SEC_METADATA, body[n] = (const uint8_t *)meta, size[n++] = strlen(meta);
	for (unsigned i = 0; i < in->nramdisks; i++)
		type[n] = EIF_SEC_RAMDISK, body[n] = in->ramdisk[i], size[n++] = in->ramdisk_len[i];
	struct cbw sig;
	cbw_init(&sig, 1 << 20);
	if (in->cert_pem) {
		/* PCR0 of what is built so far (a signature section does not change PCR0). */
		struct eif_info tmp = {.num_sections = (uint16_t)n};
		for (unsigned i = 0; i < n; i++)
			tmp.sec[i] =
			    (struct eif_section){.type = type[i], .size = size[i], .body = body[i]};
		struct eif_pcrs p;
		if (eif_measure(&tmp, &p, err, errlen) ||
		    signature_section(in, p.pcr0, &sig, err, errlen)) {
			cbw_free(&sig);
			return NULL;
		}
		type[n] = EIF_SEC_SIGNATURE, body[n] = sig.buf, size[n++] = sig.len;
	}
	uint64_t total = EIF_HDR_SIZE;
	for (unsigned i = 0; i < n; i++)
		total += EIF_SEC_HDR_SIZE + size[i];
	uint8_t *img = calloc(1, total);
	if (!img) {
		cbw_free(&sig);
		fail(err, errlen, 0, "out of memory for a %llu-byte image",
		     (unsigned long long)total);
		return NULL;
	}
	memcpy(img, EIF_MAGIC, 4);
	be16_put(img + 4, EIF_VERSION);
	be16_put(img + 6, 0);
	be64_put(img + 8, 1024ull << 20); /* default_mem, as AWS's builder */
	be64_put(img + 16, 2);		  /* default_cpus */
	be16_put(img + 26, (uint16_t)n);
	uint64_t pos = EIF_HDR_SIZE;
	for (unsigned i = 0; i < n; i++) {
		be64_put(img + 28 + 8 * i, pos);
		be64_put(img + 28 + 8 * EIF_MAX_SECTIONS + 8 * i, size[i]);
		be16_put(img + pos, type[i]);
		be64_put(img + pos + 4, size[i]);
		if (size[i])
			memcpy(img + pos + EIF_SEC_HDR_SIZE, body[i], size[i]);
		pos += EIF_SEC_HDR_SIZE + size[i];
	}
	uint32_t crc = eif_crc32(0, img, EIF_HDR_SIZE - 4);
	crc = eif_crc32(crc, img + EIF_HDR_SIZE, total - EIF_HDR_SIZE);
	be32_put(img + EIF_HDR_SIZE - 4, crc);
	cbw_free(&sig);
	if (in->cert_pem) { /* the key must be the certificate's: read it back as a loader will */
		struct eif_info info;
		struct eif_pcrs p;
		char why[160] = "";
		if (eif_parse(img, total, &info, why, sizeof(why)) != EIF_OK ||
		    eif_measure(&info, &p, why, sizeof(why)) != 0) {
			free(img);
			fail(err, errlen, 0,
			     "the signed image does not verify (is --private-key the "
			     "signing certificate's key?): %s",
			     why);
			return NULL;
		}
	}
	*len = total;
	return img;
}
