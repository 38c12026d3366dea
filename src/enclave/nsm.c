/* NSM request handling (see nsm.h). */
#include "enclave/nsm.h"

#include <cbor.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "enclave/cbw.h"

/* Request nesting allowed: {"Name": {"field": value}} is depth 3. */
#define REQ_MAX_DEPTH 8

void nsm_init(struct nsm_state *s, const char *module_id,
	      const uint8_t *const boot_pcrs[NSM_LOCKED_AT_BOOT], const struct nsm_ops *ops)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->module_id, sizeof(s->module_id), "%s", module_id ? module_id : "");
	for (unsigned i = 0; i < NSM_LOCKED_AT_BOOT; i++) {
		if (boot_pcrs && boot_pcrs[i])
			memcpy(s->pcr[i], boot_pcrs[i], NSM_PCR_LEN);
		s->locked[i] = true;
	}
	if (ops)
		s->ops = *ops;
}

enum nsm_error {
	E_NONE,
	E_INVALID_ARGUMENT,
	E_INVALID_INDEX,
	E_INVALID_RESPONSE,
	E_READ_ONLY_INDEX,
	E_INVALID_OPERATION,
	E_BUFFER_TOO_SMALL,
	E_INPUT_TOO_LARGE,
	E_INTERNAL_ERROR,
};

static const char *const error_names[] = {
    "",
    "InvalidArgument",
    "InvalidIndex",
    "InvalidResponse",
    "ReadOnlyIndex",
    "InvalidOperation",
    "BufferTooSmall",
    "InputTooLarge",
    "InternalError",
};

static bool is_text(cbor_item_t *it, const char *s)
{
	size_t n = strlen(s);
	return cbor_isa_string(it) && cbor_string_is_definite(it) && cbor_string_length(it) == n &&
	       !memcmp(cbor_string_handle(it), s, n);
}

/* The value of key in a definite map of text keys; NULL if absent. A repeated key makes
 * the request ambiguous: *dup is set. */
static cbor_item_t *field(cbor_item_t *m, const char *key, bool *dup)
{
	cbor_item_t *found = NULL;
	struct cbor_pair *p = cbor_map_handle(m);
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		if (!is_text(p[i].key, key))
			continue;
		if (found)
			*dup = true;
		found = p[i].value;
	}
	return found;
}

/* Only the named keys allowed (serde denies none, but unknown keys mean a request we do not
 * understand): true if every key is text and in names. */
static bool only_keys(cbor_item_t *m, const char *const *names, size_t n)
{
	struct cbor_pair *p = cbor_map_handle(m);
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		bool ok = false;
		for (size_t k = 0; k < n && !ok; k++)
			ok = is_text(p[i].key, names[k]);
		if (!ok)
			return false;
	}
	return true;
}

/* A u16 field (serde: index: u16, range: u16). */
static bool get_u16(cbor_item_t *it, unsigned *out)
{
	if (!it || !cbor_isa_uint(it) || cbor_get_int(it) > 0xffff)
		return false;
	*out = (unsigned)cbor_get_int(it);
	return true;
}

/* CBOR null. libcbor's cbor_is_null() asserts (aborts) on a float item (major type 7
 * with a width): a guest's float where bytes belong must not end the card. */
static bool is_null(cbor_item_t *it)
{
	return cbor_isa_float_ctrl(it) && cbor_float_get_width(it) == CBOR_FLOAT_0 &&
	       cbor_ctrl_value(it) == CBOR_CTRL_NULL;
}

/* An optional byte string: absent or null -> (NULL, 0, true); bstr -> its bytes. */
static bool get_opt_bytes(cbor_item_t *it, const uint8_t **p, size_t *n)
{
	*p = NULL;
	*n = 0;
	if (!it || is_null(it))
		return true;
	if (!cbor_isa_bytestring(it) || !cbor_bytestring_is_definite(it))
		return false;
	*p = cbor_bytestring_handle(it);
	*n = cbor_bytestring_length(it);
	if (!*p) /* libcbor gives NULL for h'' */
		*p = (const uint8_t *)"";
	return true;
}

static void put_error(struct cbw *w, enum nsm_error e)
{
	cbw_map(w, 1);
	cbw_text(w, "Error");
	cbw_text(w, error_names[e]);
}

static void describe_nsm(const struct nsm_state *s, struct cbw *w)
{
	unsigned nlocked = 0;
	for (unsigned i = 0; i < NSM_MAX_PCRS; i++)
		nlocked += s->locked[i];
	cbw_map(w, 1);
	cbw_text(w, "DescribeNSM");
	cbw_map(w, 7);
	cbw_text(w, "version_major");
	cbw_uint(w, NSM_VERSION_MAJOR);
	cbw_text(w, "version_minor");
	cbw_uint(w, NSM_VERSION_MINOR);
	cbw_text(w, "version_patch");
	cbw_uint(w, NSM_VERSION_PATCH);
	cbw_text(w, "module_id");
	cbw_text(w, s->module_id);
	cbw_text(w, "max_pcrs");
	cbw_uint(w, NSM_MAX_PCRS);
	cbw_text(w, "locked_pcrs");
	cbw_array(w, nlocked);
	for (unsigned i = 0; i < NSM_MAX_PCRS; i++)
		if (s->locked[i])
			cbw_uint(w, i);
	cbw_text(w, "digest");
	cbw_text(w, "SHA384");
}

static enum nsm_error get_random(struct nsm_state *s, struct cbw *w)
{
	uint8_t r[NSM_RANDOM_LEN];
	if (!s->ops.random || s->ops.random(s->ops.ctx, r, sizeof(r)) != 0)
		return E_INTERNAL_ERROR;
	/* A1 69 "GetRandom" A1 66 "random" 59 01 00 <256 bytes>: the driver's hwrng parser
	 * compares the first 18 bytes and takes a bstr with a 1-, 2-, 4- or 8-byte length. */
	cbw_map(w, 1);
	cbw_text(w, "GetRandom");
	cbw_map(w, 1);
	cbw_text(w, "random");
	cbw_bytes(w, r, sizeof(r));
	OPENSSL_cleanse(r, sizeof(r));
	return E_NONE;
}

static enum nsm_error extend_pcr(struct nsm_state *s, unsigned idx, const uint8_t *data, size_t n,
				 struct cbw *w)
{
	if (idx >= NSM_MAX_PCRS)
		return E_INVALID_INDEX;
	if (s->locked[idx])
		return E_READ_ONLY_INDEX;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t out[NSM_PCR_LEN];
	unsigned ol = 0;
	int ok = md && EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1 &&
		 EVP_DigestUpdate(md, s->pcr[idx], NSM_PCR_LEN) == 1 &&
		 EVP_DigestUpdate(md, data, n) == 1 && EVP_DigestFinal_ex(md, out, &ol) == 1 &&
		 ol == NSM_PCR_LEN;
	EVP_MD_CTX_free(md);
	if (!ok)
		return E_INTERNAL_ERROR;
	memcpy(s->pcr[idx], out, NSM_PCR_LEN);
	cbw_map(w, 1);
	cbw_text(w, "ExtendPCR");
	cbw_map(w, 1);
	cbw_text(w, "data");
	cbw_bytes(w, out, NSM_PCR_LEN);
	return E_NONE;
}

static void opt_bytes(struct cbw *w, const uint8_t *p, size_t n)
{
	if (p)
		cbw_bytes(w, p, n);
	else
		cbw_null(w);
}

static enum nsm_error attestation(struct nsm_state *s, const uint8_t *ud, size_t udl,
				  const uint8_t *nonce, size_t nl, const uint8_t *pk, size_t pkl,
				  struct cbw *w)
{
	if (udl > NSM_USER_DATA_MAX || nl > NSM_NONCE_MAX || pkl > NSM_PUBLIC_KEY_MAX)
		return E_INPUT_TOO_LARGE;
	if (!s->ops.sign || !s->cert || !s->ncabundle)
		return E_INTERNAL_ERROR;
	struct cbw pl, doc;
	cbw_init(&pl, 16384); /* reference §3: the whole payload <= 16384 bytes */
	cbw_map(&pl, 9);
	cbw_text(&pl, "module_id");
	cbw_text(&pl, s->module_id);
	cbw_text(&pl, "digest");
	cbw_text(&pl, "SHA384");
	cbw_text(&pl, "timestamp");
	cbw_uint(&pl, s->ops.now_ms ? s->ops.now_ms(s->ops.ctx) : 0);
	/* "Map of all locked PCRs at the moment the attestation document was generated"
	 * (nsm-api's AttestationDoc): 0-15 from boot, and any the enclave locked since. */
	unsigned nlocked = 0;
	for (unsigned i = 0; i < NSM_MAX_PCRS; i++)
		nlocked += s->locked[i];
	cbw_text(&pl, "pcrs");
	cbw_map(&pl, nlocked);
	for (unsigned i = 0; i < NSM_MAX_PCRS; i++) {
		if (!s->locked[i])
			continue;
		cbw_uint(&pl, i);
		cbw_bytes(&pl, s->pcr[i], NSM_PCR_LEN);
	}
	cbw_text(&pl, "certificate");
	cbw_bytes(&pl, s->cert, s->cert_len);
	cbw_text(&pl, "cabundle");
	cbw_array(&pl, s->ncabundle);
	for (unsigned i = 0; i < s->ncabundle && i < NSM_MAX_CABUNDLE; i++)
		cbw_bytes(&pl, s->cabundle[i], s->cabundle_len[i]);
	cbw_text(&pl, "public_key");
	opt_bytes(&pl, pk, pkl);
	cbw_text(&pl, "user_data");
	opt_bytes(&pl, ud, udl);
	cbw_text(&pl, "nonce");
	opt_bytes(&pl, nonce, nl);
	cbw_init(&doc, NSM_RESPONSE_MAX);
	enum nsm_error e = E_NONE;
	if (pl.failed)
		e = E_BUFFER_TOO_SMALL;
	else if (cose_sign1(&doc, pl.buf, pl.len, s->ops.sign, s->ops.sign_ctx) != 0)
		e = doc.failed ? E_BUFFER_TOO_SMALL : E_INTERNAL_ERROR;
	if (e == E_NONE) {
		cbw_map(w, 1);
		cbw_text(w, "Attestation");
		cbw_map(w, 1);
		cbw_text(w, "document");
		cbw_bytes(w, doc.buf, doc.len);
	}
	cbw_free(&pl);
	cbw_free(&doc);
	return e;
}

/* Dispatches a decoded request into w; the error to answer instead, or E_NONE. */
static enum nsm_error dispatch(struct nsm_state *s, cbor_item_t *req, struct cbw *w)
{
	if (is_text(req, "DescribeNSM")) {
		describe_nsm(s, w);
		return E_NONE;
	}
	if (is_text(req, "GetRandom"))
		return get_random(s, w);
	if (!cbor_isa_map(req) || !cbor_map_is_definite(req) || cbor_map_size(req) != 1)
		return E_INVALID_OPERATION;
	struct cbor_pair *top = cbor_map_handle(req);
	cbor_item_t *name = top[0].key, *args = top[0].value;
	static const char *const ops[] = {"DescribePCR", "ExtendPCR", "LockPCR", "LockPCRs",
					  "Attestation"};
	int op = -1;
	for (int i = 0; i < 5; i++)
		if (is_text(name, ops[i]))
			op = i;
	if (op < 0)
		return E_INVALID_OPERATION;
	if (!cbor_isa_map(args) || !cbor_map_is_definite(args))
		return E_INVALID_ARGUMENT;
	bool dup = false;
	unsigned idx = 0;
	switch (op) {
	case 0: { /* DescribePCR */
		static const char *const k[] = {"index"};
		if (!only_keys(args, k, 1) || !get_u16(field(args, "index", &dup), &idx) || dup)
			return E_INVALID_ARGUMENT;
		if (idx >= NSM_MAX_PCRS)
			return E_INVALID_INDEX;
		cbw_map(w, 1);
		cbw_text(w, "DescribePCR");
		cbw_map(w, 2);
		cbw_text(w, "lock");
		cbw_bool(w, s->locked[idx]);
		cbw_text(w, "data");
		cbw_bytes(w, s->pcr[idx], NSM_PCR_LEN);
		return E_NONE;
	}
	case 1: { /* ExtendPCR */
		static const char *const k[] = {"index", "data"};
		cbor_item_t *d = field(args, "data", &dup);
		const uint8_t *p;
		size_t n;
		if (!only_keys(args, k, 2) || !get_u16(field(args, "index", &dup), &idx) || !d ||
		    !get_opt_bytes(d, &p, &n) || !p || dup)
			return E_INVALID_ARGUMENT;
		return extend_pcr(s, idx, p, n, w);
	}
	case 2: { /* LockPCR */
		static const char *const k[] = {"index"};
		if (!only_keys(args, k, 1) || !get_u16(field(args, "index", &dup), &idx) || dup)
			return E_INVALID_ARGUMENT;
		if (idx >= NSM_MAX_PCRS)
			return E_INVALID_INDEX;
		s->locked[idx] = true;
		cbw_text(w, "LockPCR");
		return E_NONE;
	}
	case 3: { /* LockPCRs: 0..range-1 */
		static const char *const k[] = {"range"};
		if (!only_keys(args, k, 1) || !get_u16(field(args, "range", &dup), &idx) || dup)
			return E_INVALID_ARGUMENT;
		if (idx > NSM_MAX_PCRS)
			return E_INVALID_INDEX;
		for (unsigned i = 0; i < idx; i++)
			s->locked[i] = true;
		cbw_text(w, "LockPCRs");
		return E_NONE;
	}
	default: { /* Attestation */
		static const char *const k[] = {"user_data", "nonce", "public_key"};
		const uint8_t *ud, *nonce, *pk;
		size_t udl, nl, pkl;
		if (!only_keys(args, k, 3) ||
		    !get_opt_bytes(field(args, "user_data", &dup), &ud, &udl) ||
		    !get_opt_bytes(field(args, "nonce", &dup), &nonce, &nl) ||
		    !get_opt_bytes(field(args, "public_key", &dup), &pk, &pkl) || dup)
			return E_INVALID_ARGUMENT;
		return attestation(s, ud, udl, nonce, nl, pk, pkl, w);
	}
	}
}

size_t nsm_handle(struct nsm_state *s, const uint8_t *req, size_t len, uint8_t *resp, size_t cap)
{
	if (cap > NSM_RESPONSE_MAX)
		cap = NSM_RESPONSE_MAX;
	struct cbw w;
	cbw_init(&w, cap);
	enum nsm_error e = E_NONE;
	if (len > NSM_REQUEST_MAX) {
		e = E_INPUT_TOO_LARGE;
	} else if (len == 0 || cbor_check_wellformed(req, len, REQ_MAX_DEPTH) != 0) {
		e = E_INVALID_OPERATION;
	} else {
		struct cbor_load_result r;
		cbor_item_t *it = cbor_load(req, len, &r);
		if (!it || r.error.code != CBOR_ERR_NONE || r.read != len)
			e = it ? E_INVALID_OPERATION : E_INTERNAL_ERROR;
		else
			e = dispatch(s, it, &w);
		if (it)
			cbor_decref(&it);
		if (e == E_NONE && w.failed)
			e = E_BUFFER_TOO_SMALL;
	}
	if (e != E_NONE) {
		w.len = 0;
		w.failed = false;
		put_error(&w, e);
	}
	size_t n = w.failed ? 0 : w.len;
	if (n)
		memcpy(resp, w.buf, n);
	if (w.buf)
		OPENSSL_cleanse(w.buf, w.alloc);
	cbw_free(&w);
	return n;
}
