/* A tiny AML encoder: bounded byte buffer, PkgLength, names, data objects, Scope/Device/
 * Package with backpatched PkgLength, and small resource descriptors (see aml.h).
 * Encodings follow ACPI 6.x section 20 (AML) and 6.4 (resource data types).
 */
#include "hv/aml.h"

#include <string.h>

enum {
	AML_ZERO_OP = 0x00,
	AML_ONE_OP = 0x01,
	AML_NAME_OP = 0x08,
	AML_BYTE_PREFIX = 0x0a,
	AML_WORD_PREFIX = 0x0b,
	AML_DWORD_PREFIX = 0x0c,
	AML_STRING_PREFIX = 0x0d,
	AML_QWORD_PREFIX = 0x0e,
	AML_SCOPE_OP = 0x10,
	AML_BUFFER_OP = 0x11,
	AML_PACKAGE_OP = 0x12,
	AML_DUAL_NAME_PREFIX = 0x2e,
	AML_MULTI_NAME_PREFIX = 0x2f,
	AML_EXT_OP_PREFIX = 0x5b,
	AML_DEVICE_OP = 0x82, /* after AML_EXT_OP_PREFIX */
	AML_ROOT_CHAR = '\\',
	AML_PARENT_CHAR = '^',
	AML_NULL_NAME = 0x00,
};

enum {
	RES_IO_PORT = 0x47,	   /* small item 0x08, length 7 */
	RES_IRQ_NOFLAGS = 0x22,	   /* small item 0x04, length 2 */
	RES_END_TAG = 0x79,	   /* small item 0x0f, length 1 */
	RES_MEMORY32_FIXED = 0x86, /* large item 0x06 */
	RES_DWORD_ADDRESS = 0x87,  /* large item 0x07 */
	RES_WORD_ADDRESS = 0x88,   /* large item 0x08 */
};

/* Large items: tag byte, then a 16-bit length of what follows. */
#define RES_MEMORY32_FIXED_LEN 9 /* info, base, length */
#define RES_DWORD_ADDRESS_LEN 23 /* type, 2 flags, 5 DWords */
#define RES_WORD_ADDRESS_LEN 13	 /* type, 2 flags, 5 Words */

/* Address space descriptor: resource type and general flags (bit 0 consumer, bit 1
 * subtractive decode, bit 2 min fixed, bit 3 max fixed). */
enum { RES_ADDR_MEMORY = 0, RES_ADDR_BUS_NUMBER = 2 };
#define RES_ADDR_PRODUCER_FIXED 0x0c /* producer, positive decode, min and max fixed */
#define RES_MEM_RW 0x01		     /* memory type-specific flag: read/write */

#define AML_NAMESEG_LEN 4
#define AML_MAX_SEGS 255

void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	a->buf = buf;
	a->cap = buf ? cap : 0;
	a->len = 0;
	a->error = false;
}

void aml_byte(struct aml *a, uint8_t b)
{
	if (a->error)
		return;
	if (a->len >= a->cap) {
		a->error = true;
		return;
	}
	a->buf[a->len++] = b;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (a->error || n == 0)
		return;
	if (n > a->cap - a->len) {
		a->error = true;
		return;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

/* PkgLength: one byte holds 0..63; otherwise bits 7:6 of the lead byte count the
 * following bytes (1..3), its bits 3:0 hold the low nibble and each following byte the
 * next 8 bits. */
size_t aml_pkglen_encode(uint8_t out[4], uint32_t value)
{
	size_t extra;

	if (value <= 0x3f) {
		out[0] = (uint8_t)value;
		return 1;
	}
	if (value <= 0xfff)
		extra = 1;
	else if (value <= 0xfffff)
		extra = 2;
	else if (value <= AML_PKGLEN_MAX)
		extra = 3;
	else
		return 0;
	out[0] = (uint8_t)((extra << 6) | (value & 0x0f));
	for (size_t i = 1; i <= extra; i++)
		out[i] = (uint8_t)(value >> (4 + 8 * (i - 1)));
	return extra + 1;
}

size_t aml_pkglen_size(size_t payload)
{
	static const uint32_t limit[] = {0x3f, 0xfff, 0xfffff, AML_PKGLEN_MAX};

	if (payload > AML_PKGLEN_MAX)
		return 0;
	for (size_t k = 1; k <= 4; k++)
		if (payload + k <= limit[k - 1])
			return k;
	return 0;
}

static bool nameseg_char_ok(char c, bool first)
{
	if ((c >= 'A' && c <= 'Z') || c == '_')
		return true;
	return !first && c >= '0' && c <= '9';
}

/* Checks the segments of a dotted path; returns their number, or -1 if malformed. */
static int count_namesegs(const char *p)
{
	int nsegs = 0;
	size_t seglen = 0;

	if (*p == '\0')
		return 0;
	for (;; p++) {
		if (*p == '.' || *p == '\0') {
			if (seglen == 0 || ++nsegs > AML_MAX_SEGS)
				return -1;
			if (*p == '\0')
				return nsegs;
			seglen = 0;
		} else if (seglen >= AML_NAMESEG_LEN || !nameseg_char_ok(*p, seglen == 0)) {
			return -1;
		} else {
			seglen++;
		}
	}
}

static void emit_namesegs(struct aml *a, const char *p)
{
	while (*p) {
		size_t n = strcspn(p, ".");
		char seg[AML_NAMESEG_LEN] = {'_', '_', '_', '_'};

		memcpy(seg, p, n);
		aml_bytes(a, seg, sizeof(seg));
		p += n;
		if (*p == '.')
			p++;
	}
}

void aml_namestring(struct aml *a, const char *path)
{
	const char *p = path;
	int nsegs;

	if (*p == AML_ROOT_CHAR)
		p++;
	else
		while (*p == AML_PARENT_CHAR)
			p++;
	nsegs = count_namesegs(p);
	if (nsegs < 0) {
		a->error = true;
		return;
	}
	aml_bytes(a, path, (size_t)(p - path));
	if (nsegs == 0) {
		aml_byte(a, AML_NULL_NAME);
	} else if (nsegs == 2) {
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	} else if (nsegs > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nsegs);
	}
	emit_namesegs(a, p);
}

static void emit_le(struct aml *a, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		aml_byte(a, (uint8_t)(v >> (8 * i)));
}

void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v <= UINT8_MAX) {
		aml_byte(a, AML_BYTE_PREFIX);
		emit_le(a, v, 1);
	} else if (v <= UINT16_MAX) {
		aml_byte(a, AML_WORD_PREFIX);
		emit_le(a, v, 2);
	} else if (v <= UINT32_MAX) {
		aml_byte(a, AML_DWORD_PREFIX);
		emit_le(a, v, 4);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		emit_le(a, v, 8);
	}
}

void aml_string(struct aml *a, const char *s)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)s[i] > 0x7f) {
			a->error = true;
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, n + 1); /* with the NUL */
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* EisaId: three letters of 5 bits each (letter - 0x40) and four hex digits, packed
 * into 32 bits and stored big-endian. */
void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v = 0;

	if (strlen(id) != 7) {
		a->error = true;
		return;
	}
	for (int i = 0; i < 3; i++) {
		if (id[i] < 'A' || id[i] > 'Z') {
			a->error = true;
			return;
		}
		v = (v << 5) | (uint32_t)(id[i] - 0x40);
	}
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);

		if (d < 0) {
			a->error = true;
			return;
		}
		v = (v << 4) | (uint32_t)d;
	}
	aml_byte(a, AML_DWORD_PREFIX);
	aml_byte(a, (uint8_t)(v >> 24));
	aml_byte(a, (uint8_t)(v >> 16));
	aml_byte(a, (uint8_t)(v >> 8));
	aml_byte(a, (uint8_t)v);
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, path);
}

/* The mark is where the PkgLength goes: right after the opcode. */
size_t aml_scope_begin(struct aml *a, const char *path)
{
	size_t mark;

	aml_byte(a, AML_SCOPE_OP);
	mark = a->len;
	aml_namestring(a, path);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *path)
{
	size_t mark;

	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	mark = a->len;
	aml_namestring(a, path);
	return mark;
}

size_t aml_package_begin(struct aml *a, uint8_t nelems)
{
	size_t mark;

	aml_byte(a, AML_PACKAGE_OP);
	mark = a->len;
	aml_byte(a, nelems);
	return mark;
}

void aml_end(struct aml *a, size_t mark)
{
	uint8_t enc[4];
	size_t payload, k;

	if (a->error)
		return;
	if (mark > a->len) {
		a->error = true;
		return;
	}
	payload = a->len - mark;
	k = aml_pkglen_size(payload);
	if (k == 0 || k > a->cap - a->len) {
		a->error = true;
		return;
	}
	aml_pkglen_encode(enc, (uint32_t)(payload + k));
	memmove(a->buf + mark + k, a->buf + mark, payload);
	memcpy(a->buf + mark, enc, k);
	a->len += k;
}

void aml_buffer(struct aml *a, const uint8_t *data, size_t n)
{
	size_t mark;

	aml_byte(a, AML_BUFFER_OP);
	mark = a->len;
	aml_integer(a, n);
	aml_bytes(a, data, n);
	aml_end(a, mark);
}

void aml_res_io(struct aml *r, bool decode16, uint16_t min, uint16_t max, uint8_t align,
		uint8_t len)
{
	aml_byte(r, RES_IO_PORT);
	aml_byte(r, decode16 ? 1 : 0);
	emit_le(r, min, 2);
	emit_le(r, max, 2);
	aml_byte(r, align);
	aml_byte(r, len);
}

void aml_res_irq_noflags(struct aml *r, unsigned irq)
{
	if (irq > 15) {
		r->error = true;
		return;
	}
	aml_byte(r, RES_IRQ_NOFLAGS);
	emit_le(r, 1u << irq, 2);
}

void aml_res_end(struct aml *r)
{
	aml_byte(r, RES_END_TAG);
	aml_byte(r, 0); /* checksum 0: "treat as valid" */
}

/* Word/DWord address space descriptor with a fixed [min, max] window: granularity 0,
 * translation 0, length max - min + 1 (which must fit in `size` bytes). */
static void res_address(struct aml *r, uint8_t tag, uint16_t len, size_t size, uint8_t type,
			uint8_t type_flags, uint64_t min, uint64_t max)
{
	uint64_t limit = size == 2 ? UINT16_MAX : UINT32_MAX;

	if (min > max || max - min >= limit) {
		r->error = true;
		return;
	}
	aml_byte(r, tag);
	emit_le(r, len, 2);
	aml_byte(r, type);
	aml_byte(r, RES_ADDR_PRODUCER_FIXED);
	aml_byte(r, type_flags);
	emit_le(r, 0, size); /* granularity */
	emit_le(r, min, size);
	emit_le(r, max, size);
	emit_le(r, 0, size); /* translation offset */
	emit_le(r, max - min + 1, size);
}

void aml_res_word_bus_number(struct aml *r, uint16_t min, uint16_t max)
{
	res_address(r, RES_WORD_ADDRESS, RES_WORD_ADDRESS_LEN, 2, RES_ADDR_BUS_NUMBER, 0, min, max);
}

void aml_res_dword_memory(struct aml *r, uint32_t min, uint32_t max)
{
	res_address(r, RES_DWORD_ADDRESS, RES_DWORD_ADDRESS_LEN, 4, RES_ADDR_MEMORY, RES_MEM_RW,
		    min, max);
}

void aml_res_memory32_fixed(struct aml *r, bool rw, uint32_t base, uint32_t len)
{
	aml_byte(r, RES_MEMORY32_FIXED);
	emit_le(r, RES_MEMORY32_FIXED_LEN, 2);
	aml_byte(r, rw ? 1 : 0);
	emit_le(r, base, 4);
	emit_le(r, len, 4);
}
