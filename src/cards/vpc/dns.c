/* The VPC resolver (contract: dns.h). */
#include "cards/vpc/dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

void dns_init(struct dns *d, uint32_t vni, uint32_t net, uint32_t mask, const char *domain,
	      vpc_lookup_fn *lookup, void *ctx, bool upstream, uint64_t seed)
{
	memset(d, 0, sizeof(*d));
	d->vni = vni;
	d->net = net;
	d->mask = mask;
	snprintf(d->domain, sizeof(d->domain), "%s", domain);
	for (char *c = d->domain; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	d->lookup = lookup;
	d->ctx = ctx;
	d->upstream = upstream;
	d->rng = seed | 1;
}

static uint16_t rnd16(struct dns *d)
{
	d->rng ^= d->rng >> 12;
	d->rng ^= d->rng << 25;
	d->rng ^= d->rng >> 27;
	return (uint16_t)((d->rng * 0x2545f4914f6cdd1dull) >> 48);
}

/* A decimal 0..255 without leading zeros, l bytes. */
static bool octet(const char *s, size_t l, uint8_t *v)
{
	unsigned x = 0;
	if (l < 1 || l > 3 || (l > 1 && s[0] == '0'))
		return false;
	for (size_t i = 0; i < l; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		x = x * 10 + (unsigned)(s[i] - '0');
	}
	if (x > 255)
		return false;
	*v = (uint8_t)x;
	return true;
}

/* Exactly four octets separated by sep in s[0..l). */
static bool four(const char *s, size_t l, char sep, uint8_t o[4])
{
	size_t start = 0;
	for (int i = 0; i < 4; i++) {
		size_t e = start;
		while (e < l && s[e] != sep)
			e++;
		if ((i < 3) != (e < l) || !octet(s + start, e - start, &o[i]))
			return false;
		start = e + 1;
	}
	return true;
}

static bool ends_with(const char *s, size_t l, const char *suf, size_t *prefix)
{
	size_t k = strlen(suf);
	if (l < k + 2 || memcmp(s + l - k, suf, k) || s[l - k - 1] != '.')
		return false;
	*prefix = l - k - 1;
	return true;
}

static bool instance(struct dns *d, uint32_t ip)
{
	struct vpc_map_entry e;
	return d->lookup(d->ctx, d->vni, ip, &e) == 0 && e.vm_vni == d->vni && e.vm_ip == ip;
}

/* The answer when the name is ours: true with *rcode and the record; false: forward. */
static bool local(struct dns *d, const struct dns_msg *q, unsigned *rcode, struct dns_rr *rr,
		  unsigned *nrr, char *ptr, size_t ptrlen)
{
	const char *t = q->qname.text;
	size_t l = strlen(t), pl;
	uint8_t o[4];
	uint32_t ip;
	bool any = q->qtype == DNS_T_ANY;
	*nrr = 0;
	*rcode = DNS_NOERROR;
	if (q->qclass != DNS_C_IN && q->qclass != DNS_C_ANY)
		return false;
	if (!strcmp(t, d->domain) || ends_with(t, l, d->domain, &pl)) {
		if (q->qtype == DNS_T_AXFR || q->qtype == DNS_T_IXFR) {
			*rcode = DNS_REFUSED;
			return true;
		}
		if (!strcmp(t, d->domain))
			return true; /* the zone's apex: no records we serve */
		if (pl < 3 || memcmp(t, "ip-", 3) || memchr(t, '.', pl) ||
		    !four(t + 3, pl - 3, '-', o) || (memcpy(&ip, o, 4), !instance(d, ip))) {
			*rcode = DNS_NXDOMAIN;
			return true;
		}
		if (q->qtype == DNS_T_A || any) {
			*rr = (struct dns_rr){.type = DNS_T_A, .ttl = DNS_TTL, .a = ip};
			*nrr = 1;
		}
		return true;
	}
	if (!ends_with(t, l, "in-addr.arpa", &pl) || !four(t, pl, '.', o))
		return false;
	uint8_t r[4] = {o[3], o[2], o[1], o[0]};
	memcpy(&ip, r, 4);
	if (!instance(d, ip)) {
		if ((ip & d->mask) != d->net)
			return false; /* not the VPC's: the host's resolver knows */
		*rcode = DNS_NXDOMAIN;
		return true;
	}
	if (q->qtype == DNS_T_PTR || any) {
		snprintf(ptr, ptrlen, "ip-%u-%u-%u-%u.%s", r[0], r[1], r[2], r[3], d->domain);
		*rr = (struct dns_rr){.type = DNS_T_PTR, .ttl = DNS_TTL, .ptr = ptr};
		*nrr = 1;
	}
	return true;
}

static struct dns_pending *slot(struct dns *d, uint64_t now)
{
	struct dns_pending *best = &d->pend[0];
	for (unsigned i = 0; i < DNS_PENDING; i++) {
		struct dns_pending *p = &d->pend[i];
		if (!p->used || p->expires <= now)
			return p;
		if (p->expires < best->expires)
			best = p;
	}
	d->st.pending_evicted++;
	return best;
}

static bool id_in_use(const struct dns *d, uint16_t id, uint64_t now)
{
	for (unsigned i = 0; i < DNS_PENDING; i++)
		if (d->pend[i].used && d->pend[i].expires > now && d->pend[i].up_id == id)
			return true;
	return false;
}

enum dns_verdict dns_query(struct dns *d, const uint8_t *q, size_t n, uint32_t server,
			   uint16_t client_port, size_t max, uint64_t now, uint8_t *out,
			   size_t *len)
{
	struct dns_msg m;
	d->st.queries++;
	int r = dns_parse_query(q, n, &m);
	if (r < 0)
		return DNS_V_DROP;
	size_t lim = dns_client_max(&m);
	if (lim > max)
		lim = max;
	uint16_t ra = d->upstream ? DNS_RA : 0;
	if (r != DNS_NOERROR) {
		if (r == DNS_FORMERR)
			d->st.formerr++;
		*len = dns_reply(out, DNS_MSG_MAX, lim, &m, r == DNS_BADVERS, (unsigned)r, ra, NULL,
				 0);
		if (!*len) /* the question did not fit: the header alone */
			*len =
			    dns_reply(out, DNS_MSG_MAX, lim, &m, false, (unsigned)r, ra, NULL, 0);
		return *len ? DNS_V_REPLY : DNS_V_DROP;
	}
	unsigned rcode, nrr;
	struct dns_rr rr;
	char ptr[DNS_TEXT_MAX + 32]; /* longer than a name can be: dns_reply refuses it */
	if (local(d, &m, &rcode, &rr, &nrr, ptr, sizeof(ptr))) {
		d->st.answered_local++;
		if (rcode == DNS_NXDOMAIN)
			d->st.nxdomain++;
		if (rcode == DNS_REFUSED)
			d->st.refused++;
		*len = dns_reply(out, DNS_MSG_MAX, lim, &m, true, rcode, DNS_AA | ra, &rr, nrr);
		return *len ? DNS_V_REPLY : DNS_V_DROP;
	}
	if (!d->upstream || n > DNS_MSG_MAX) {
		d->st.refused++;
		*len = dns_reply(out, DNS_MSG_MAX, lim, &m, true, DNS_REFUSED, 0, NULL, 0);
		return *len ? DNS_V_REPLY : DNS_V_DROP;
	}
	struct dns_pending *p = slot(d, now);
	uint16_t id;
	do
		id = rnd16(d);
	while (id_in_use(d, id, now));
	*p = (struct dns_pending){.used = true,
				  .up_id = id,
				  .client_id = m.id,
				  .client_port = client_port,
				  .server = server,
				  .qtype = m.qtype,
				  .qclass = m.qclass,
				  .qwire_len = (uint8_t)m.qname.wire_len,
				  .max = (uint16_t)lim,
				  .expires = now + DNS_PENDING_NS};
	memcpy(p->qwire, m.qname.wire, m.qname.wire_len);
	memcpy(out, q, n);
	out[0] = (uint8_t)(id >> 8);
	out[1] = (uint8_t)id;
	*len = n;
	d->st.forwarded++;
	return DNS_V_FORWARD;
}

bool dns_upstream(struct dns *d, uint8_t *m, size_t n, uint64_t now, size_t *len, uint32_t *server,
		  uint16_t *client_port)
{
	struct dns_msg r;
	if (dns_parse_response(m, n, &r) < 0) {
		d->st.upstream_bad++;
		return false;
	}
	struct dns_pending *p = NULL;
	for (unsigned i = 0; i < DNS_PENDING && !p; i++)
		if (d->pend[i].used && d->pend[i].up_id == r.id)
			p = &d->pend[i];
	if (!p || p->qwire_len != r.qname.wire_len ||
	    memcmp(p->qwire, r.qname.wire, p->qwire_len) || p->qtype != r.qtype ||
	    p->qclass != r.qclass) {
		d->st.upstream_bad++;
		return false; /* not an answer we wait for (the real one may still come) */
	}
	p->used = false;
	if (p->expires <= now) {
		d->st.upstream_late++;
		return false;
	}
	m[0] = (uint8_t)(p->client_id >> 8);
	m[1] = (uint8_t)p->client_id;
	*len = n;
	if (n > p->max) { /* too large for the client: TC, the question only */
		m[2] |= DNS_TC >> 8;
		memset(m + 6, 0, 6);
		*len = r.qend;
		d->st.truncated++;
	}
	*server = p->server;
	*client_port = p->client_port;
	d->st.upstream_answers++;
	return true;
}
