/* A tiny AML (ACPI Machine Language) encoder for the DSDT nitro builds.
 *
 * struct aml writes into a caller-owned, bounded byte buffer. Any write that would not
 * fit, and any malformed input (bad name, string or EisaId, PkgLength too large, unbalanced
 * begin/end), sets the sticky `error` flag; after that every call is a no-op, so a
 * sequence of calls is checked once at the end. Nothing is ever written outside buf.
 *
 * Objects with a PkgLength (Scope, Device, Package) are built with *_begin(), which
 * returns a mark, then their contents, then aml_end(mark): it measures the contents and
 * inserts the PkgLength in front of them, moving them up by the encoding's size.
 *
 * Resource templates are built into a second struct aml with the aml_res_*() helpers
 * and then emitted as a Buffer with aml_buffer().
 */
#ifndef NITRO_HV_AML_H
#define NITRO_HV_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AML_PKGLEN_MAX 0x0fffffffu /* largest value a 4-byte PkgLength holds */

struct aml {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool error;
};

void aml_init(struct aml *a, uint8_t *buf, size_t cap);
void aml_byte(struct aml *a, uint8_t b);
void aml_bytes(struct aml *a, const void *p, size_t n);

/* Encodes a PkgLength value (which counts its own bytes) into out; returns the number of
 * bytes (1..4), or 0 when value exceeds AML_PKGLEN_MAX. */
size_t aml_pkglen_encode(uint8_t out[4], uint32_t value);
/* Size of the PkgLength that precedes `payload` bytes of contents, or 0 if too large. */
size_t aml_pkglen_size(size_t payload);

/* NameString: optional leading '\' (root) or '^'s (parent), then '.'-separated segments
 * of 1..4 characters ([A-Z_][A-Z0-9_]*), padded with '_'. "" encodes NullName. */
void aml_namestring(struct aml *a, const char *path);

/* Data objects. */
void aml_integer(struct aml *a, uint64_t v);	/* Zero/One or the smallest prefix */
void aml_string(struct aml *a, const char *s);	/* ASCII 0x01..0x7f */
void aml_eisaid(struct aml *a, const char *id); /* "PNP0501" as a compressed DWord */
void aml_buffer(struct aml *a, const uint8_t *data, size_t n);

/* Name(path, <object>): the caller emits the object right after. */
void aml_name(struct aml *a, const char *path);

/* PkgLength objects: begin returns a mark for aml_end(). */
size_t aml_scope_begin(struct aml *a, const char *path);
size_t aml_device_begin(struct aml *a, const char *path);
size_t aml_package_begin(struct aml *a, uint8_t nelems);
void aml_end(struct aml *a, size_t mark);

/* Resource template descriptors (small resource items). */
void aml_res_io(struct aml *r, bool decode16, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len);
void aml_res_irq_noflags(struct aml *r, unsigned irq); /* irq 0..15 */
void aml_res_end(struct aml *r);		       /* End tag, checksum 0 */

/* Large resource descriptors. The address space ones describe a bridge's window:
 * ResourceProducer, PosDecode, MinFixed, MaxFixed, granularity 0, translation 0 and
 * length max - min + 1; min > max, or a length the field cannot hold, is an error. */
void aml_res_word_bus_number(struct aml *r, uint16_t min, uint16_t max); /* WordBusNumber */
void aml_res_dword_memory(struct aml *r, uint32_t min, uint32_t max);	 /* NonCacheable, RW */
void aml_res_memory32_fixed(struct aml *r, bool rw, uint32_t base, uint32_t len);

#endif
