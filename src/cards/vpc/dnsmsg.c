/* DNS message parsing and replies (contract: dnsmsg.h). */
#include "cards/vpc/dnsmsg.h"

#include <string.h>

#include "lib/be.h"

int dns_read_name(const uint8_t *m, size_t n, size_t off, struct dns_name *name, size_t *end)
{
	size_t w = 0, t = 0;
	size_t limit = off; /* a pointer must lead strictly before this */
	bool jumped = false;
	name->plain = true;
	for (;;) {
		if (off >= n)
			return -1;
		uint8_t l = m[off];
		if ((l & 0xc0) == 0xc0) {
			if (off + 1 >= n)
				return -1;
			size_t to = (size_t)(l & 0x3f) << 8 | m[off + 1];
			if (!jumped)
				*end = off + 2;
			if (to >= limit)
				return -1; /* forwards, or a loop */
			limit = to;
			off = to;
			jumped = true;
			continue;
		}
		if (l & 0xc0)
			return -1; /* extended label types */
		if (l == 0) {
			if (w + 1 > DNS_WIRE_MAX)
				return -1;
			name->wire[w++] = 0;
			break;
		}
		if (off + 1 + l > n || w + 1 + l + 1 > DNS_WIRE_MAX)
			return -1;
		name->wire[w++] = l;
		memcpy(name->wire + w, m + off + 1, l);
		w += l;
		if (t)
			name->text[t++] = '.';
		for (size_t i = 0; i < l; i++) {
			uint8_t c = m[off + 1 + i];
			if (c >= 'A' && c <= 'Z')
				c = (uint8_t)(c - 'A' + 'a');
			else if (c <= ' ' || c >= 0x7f || c == '.' || c == '\\')
				c = '?', name->plain = false;
			name->text[t++] = (char)c;
		}
		off += 1 + (size_t)l;
	}
	name->wire_len = w;
	name->text[t] = 0;
	if (!jumped)
		*end = off + 1;
	return 0;
}

/* The fixed part of a record after its name: type, class, ttl, rdlength, rdata. */
struct rr_head {
	uint16_t type, class;
	uint32_t ttl;
	uint16_t rdlen;
	size_t end; /* after the rdata */
};

static int read_rr(const uint8_t *m, size_t n, size_t off, struct dns_name *owner,
		   struct rr_head *h)
{
	size_t p;
	if (dns_read_name(m, n, off, owner, &p) < 0 || p + 10 > n)
		return -1;
	h->type = be16_get(m + p);
	h->class = be16_get(m + p + 2);
	h->ttl = be32_get(m + p + 4);
	h->rdlen = be16_get(m + p + 8);
	if (p + 10 + h->rdlen > n)
		return -1;
	h->end = p + 10 + h->rdlen;
	return 0;
}

static void read_header(const uint8_t *m, struct dns_msg *q)
{
	q->id = be16_get(m);
	q->flags = be16_get(m + 2);
	q->qdcount = be16_get(m + 4);
	q->ancount = be16_get(m + 6);
	q->nscount = be16_get(m + 8);
	q->arcount = be16_get(m + 10);
	q->edns = false;
	q->edns_size = DNS_UDP_MIN;
	q->edns_version = 0;
	q->edns_do = false;
	q->qend = DNS_HLEN;
}

static int read_question(const uint8_t *m, size_t n, struct dns_msg *q)
{
	size_t p;
	if (q->qdcount != 1 || dns_read_name(m, n, DNS_HLEN, &q->qname, &p) < 0 || p + 4 > n)
		return -1;
	q->qtype = be16_get(m + p);
	q->qclass = be16_get(m + p + 2);
	q->qend = p + 4;
	return 0;
}

int dns_parse_query(const uint8_t *m, size_t n, struct dns_msg *q)
{
	if (n < DNS_HLEN)
		return -1;
	read_header(m, q);
	if (q->flags & DNS_QR)
		return -1;
	if (DNS_OPCODE(q->flags) != 0)
		return DNS_NOTIMP;
	if (read_question(m, n, q) < 0 || q->ancount || q->nscount)
		return DNS_FORMERR;
	if (q->qtype == DNS_T_OPT)
		return DNS_FORMERR;
	size_t off = q->qend;
	for (unsigned i = 0; i < q->arcount; i++) {
		struct dns_name owner;
		struct rr_head h;
		if (read_rr(m, n, off, &owner, &h) < 0)
			return DNS_FORMERR;
		off = h.end;
		if (h.type != DNS_T_OPT)
			continue; /* TSIG, ...: nothing we check */
		if (q->edns || owner.wire_len != 1)
			return DNS_FORMERR; /* RFC 6891 6.1.1: one OPT, owner the root */
		q->edns = true;
		q->edns_size = h.class < DNS_UDP_MIN ? DNS_UDP_MIN : h.class;
		q->edns_version = (uint8_t)(h.ttl >> 16);
		q->edns_do = h.ttl & 0x8000;
	}
	if (q->edns && q->edns_version > 0)
		return DNS_BADVERS;
	return DNS_NOERROR;
}

int dns_parse_response(const uint8_t *m, size_t n, struct dns_msg *r)
{
	if (n < DNS_HLEN)
		return -1;
	read_header(m, r);
	if (!(r->flags & DNS_QR) || read_question(m, n, r) < 0)
		return -1;
	return 0;
}

/* A text name (dots between labels, no escapes) in wire form: its length, 0 if bad. */
static size_t text_to_wire(const char *s, uint8_t *w, size_t cap)
{
	size_t o = 0;
	while (*s) {
		const char *dot = strchr(s, '.');
		size_t l = dot ? (size_t)(dot - s) : strlen(s);
		if (l == 0 || l > 63 || o + 1 + l + 1 > cap || o + 1 + l + 1 > DNS_WIRE_MAX)
			return 0;
		w[o++] = (uint8_t)l;
		memcpy(w + o, s, l);
		o += l;
		s += l + (dot ? 1 : 0);
	}
	if (o + 1 > cap)
		return 0;
	w[o++] = 0;
	return o;
}

size_t dns_reply(uint8_t *out, size_t cap, size_t max, const struct dns_msg *q, bool has_question,
		 unsigned rcode, uint16_t flags, const struct dns_rr *rr, unsigned nrr)
{
	size_t opt_len = q->edns ? 11 : 0;
	size_t lim = max < cap ? max : cap;
	size_t o = DNS_HLEN;
	if (has_question)
		o += q->qname.wire_len + 4;
	if (o + opt_len > lim)
		return 0;
	uint16_t f = (uint16_t)(DNS_QR | (q->flags & (0x7800 | DNS_RD | DNS_CD)) |
				(flags & (DNS_AA | DNS_TC | DNS_RA | DNS_AD)) | (rcode & 15));
	be16_put(out, q->id);
	be16_put(out + 4, has_question ? 1 : 0);
	be16_put(out + 8, 0);
	if (has_question) {
		memcpy(out + DNS_HLEN, q->qname.wire, q->qname.wire_len);
		be16_put(out + DNS_HLEN + q->qname.wire_len, q->qtype);
		be16_put(out + DNS_HLEN + q->qname.wire_len + 2, q->qclass);
	}
	unsigned an = 0;
	for (unsigned i = 0; i < nrr && has_question; i++) {
		uint8_t rd[DNS_WIRE_MAX];
		size_t rdlen = 4;
		if (rr[i].type == DNS_T_A)
			memcpy(rd, &rr[i].a, 4);
		else if (!(rdlen = text_to_wire(rr[i].ptr, rd, sizeof(rd))))
			continue;
		if (o + 12 + rdlen + opt_len > lim) {
			f |= DNS_TC;
			break;
		}
		be16_put(out + o, 0xc000 | DNS_HLEN); /* the question's name */
		be16_put(out + o + 2, rr[i].type);
		be16_put(out + o + 4, DNS_C_IN);
		be32_put(out + o + 6, rr[i].ttl);
		be16_put(out + o + 10, (uint16_t)rdlen);
		memcpy(out + o + 12, rd, rdlen);
		o += 12 + rdlen;
		an++;
	}
	be16_put(out + 2, f);
	be16_put(out + 6, (uint16_t)an);
	be16_put(out + 10, q->edns ? 1 : 0);
	if (q->edns) { /* root owner, OPT, our size, extended rcode, version 0, DO echoed */
		out[o] = 0;
		be16_put(out + o + 1, DNS_T_OPT);
		be16_put(out + o + 3, DNS_EDNS_SIZE);
		out[o + 5] = (uint8_t)(rcode >> 4);
		out[o + 6] = 0;
		be16_put(out + o + 7, q->edns_do ? 0x8000 : 0);
		be16_put(out + o + 9, 0);
		o += 11;
	}
	return o;
}
