/* A small CBOR writer with exact, minimal-length heads (RFC 8949 preferred serialization),
 * so that what nitro emits is byte-for-byte predictable (NSM replies, COSE, attestation
 * payloads). Appends into a growing buffer capped at cap bytes: past the cap (or on
 * allocation failure) the writer is marked failed and later calls do nothing.
 * Not thread-safe per writer; no global state. */
#ifndef NITRO_ENCLAVE_CBW_H
#define NITRO_ENCLAVE_CBW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cbw {
	uint8_t *buf;
	size_t len, alloc, cap;
	bool failed;
};

void cbw_init(struct cbw *w, size_t cap);
void cbw_free(struct cbw *w);
void cbw_head(struct cbw *w, unsigned major, uint64_t val);
void cbw_uint(struct cbw *w, uint64_t v);
void cbw_int(struct cbw *w, int64_t v);
void cbw_bytes(struct cbw *w, const void *p, size_t n);
void cbw_text(struct cbw *w, const char *s);
void cbw_array(struct cbw *w, size_t n);
void cbw_map(struct cbw *w, size_t n);
void cbw_bool(struct cbw *w, bool b);
void cbw_null(struct cbw *w);
void cbw_raw(struct cbw *w, const void *p, size_t n);

/* The reading side's guard: checks that buf holds exactly one well-formed CBOR item with
 * nesting <= max_depth and every definite count plausible for the bytes left (so that a
 * decoder given it allocates in proportion to len). 0, or -1. */
int cbor_check_wellformed(const uint8_t *buf, size_t len, unsigned max_depth);

#endif
