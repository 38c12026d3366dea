/* CBOR writer (see cbw.h). */
#include "enclave/cbw.h"

#include <stdlib.h>
#include <string.h>

void cbw_init(struct cbw *w, size_t cap)
{
	memset(w, 0, sizeof(*w));
	w->cap = cap;
}

void cbw_free(struct cbw *w)
{
	free(w->buf);
	memset(w, 0, sizeof(*w));
}

void cbw_raw(struct cbw *w, const void *p, size_t n)
{
	if (w->failed)
		return;
	if (n > w->cap || w->len > w->cap - n) {
		w->failed = true;
		return;
	}
	if (w->len + n > w->alloc) {
		size_t na = w->alloc ? w->alloc : 256;
		while (na < w->len + n)
			na *= 2;
		uint8_t *nb = realloc(w->buf, na);
		if (!nb) {
			w->failed = true;
			return;
		}
		w->buf = nb;
		w->alloc = na;
	}
	if (n)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

void cbw_head(struct cbw *w, unsigned major, uint64_t v)
{
	uint8_t h[9];
	size_t n;
	uint8_t m = (uint8_t)(major << 5);
	if (v < 24) {
		h[0] = m | (uint8_t)v;
		n = 1;
	} else if (v <= 0xff) {
		h[0] = m | 24;
		h[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = m | 25;
		h[1] = (uint8_t)(v >> 8);
		h[2] = (uint8_t)v;
		n = 3;
	} else if (v <= 0xffffffffu) {
		h[0] = m | 26;
		for (int i = 0; i < 4; i++)
			h[1 + i] = (uint8_t)(v >> (24 - 8 * i));
		n = 5;
	} else {
		h[0] = m | 27;
		for (int i = 0; i < 8; i++)
			h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		n = 9;
	}
	cbw_raw(w, h, n);
}

void cbw_uint(struct cbw *w, uint64_t v)
{
	cbw_head(w, 0, v);
}

void cbw_int(struct cbw *w, int64_t v)
{
	if (v >= 0)
		cbw_head(w, 0, (uint64_t)v);
	else
		cbw_head(w, 1, (uint64_t)(-(v + 1)));
}

void cbw_bytes(struct cbw *w, const void *p, size_t n)
{
	cbw_head(w, 2, n);
	cbw_raw(w, p, n);
}

void cbw_text(struct cbw *w, const char *s)
{
	size_t n = strlen(s);
	cbw_head(w, 3, n);
	cbw_raw(w, s, n);
}

void cbw_array(struct cbw *w, size_t n)
{
	cbw_head(w, 4, n);
}
void cbw_map(struct cbw *w, size_t n)
{
	cbw_head(w, 5, n);
}

void cbw_bool(struct cbw *w, bool b)
{
	uint8_t c = b ? 0xf5 : 0xf4;
	cbw_raw(w, &c, 1);
}

void cbw_null(struct cbw *w)
{
	uint8_t c = 0xf6;
	cbw_raw(w, &c, 1);
}

/* One item at *pos; depth left. 0 or -1. */
static int check_item(const uint8_t *b, size_t len, size_t *pos, unsigned depth)
{
	if (*pos >= len)
		return -1;
	uint8_t ib = b[(*pos)++];
	unsigned major = ib >> 5, ai = ib & 31;
	uint64_t v = ai;
	if (ai >= 24 && ai <= 27) {
		size_t n = (size_t)1 << (ai - 24);
		if (len - *pos < n)
			return -1;
		v = 0;
		for (size_t i = 0; i < n; i++)
			v = v << 8 | b[(*pos)++];
	} else if (ai >= 28 && ai <= 30) {
		return -1;
	}
	if (ai == 31) { /* indefinite length, or break (handled by the caller) */
		if (major < 2 || major == 6 || major == 7)
			return -1;
		if (depth == 0)
			return -1;
		for (;;) {
			if (*pos >= len)
				return -1;
			if (b[*pos] == 0xff) {
				(*pos)++;
				return 0;
			}
			if (major == 2 ||
			    major == 3) { /* chunks: definite strings of the same type */
				if ((b[*pos] >> 5) != major || (b[*pos] & 31) == 31)
					return -1;
			}
			if (check_item(b, len, pos, depth - 1))
				return -1;
			if (major == 5 && check_item(b, len, pos, depth - 1))
				return -1;
		}
	}
	switch (major) {
	case 0:
	case 1:
		return 0;
	case 2:
	case 3:
		if (v > len - *pos)
			return -1;
		*pos += (size_t)v;
		return 0;
	case 4:
	case 5:
		if (depth == 0 || v > (len - *pos) / (major == 5 ? 2 : 1))
			return -1;
		for (uint64_t i = 0; i < v * (major == 5 ? 2 : 1); i++)
			if (check_item(b, len, pos, depth - 1))
				return -1;
		return 0;
	case 6:
		return depth == 0 ? -1 : check_item(b, len, pos, depth - 1);
	default: /* simple values and floats */
		return 0;
	}
}

int cbor_check_wellformed(const uint8_t *buf, size_t len, unsigned max_depth)
{
	size_t pos = 0;
	if (check_item(buf, len, &pos, max_depth))
		return -1;
	return pos == len ? 0 : -1;
}
