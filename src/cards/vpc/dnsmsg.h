/* DNS messages (RFC 1035, EDNS0 RFC 6891) as the VPC resolver reads and writes them: a
 * strict parser of queries and of the upstream's responses, and the reply builder.
 *
 * Contract:
 * - Pure functions, no allocation, no globals: safe from any thread.
 * - Every input byte is hostile (a guest's query, an upstream's answer). Names are read
 *   with compression pointers that must point strictly backwards of the previous one (no
 *   loops), labels of 1..63 bytes, at most 255 bytes of wire name, nothing past the
 *   message. Bit patterns 01/10 (extended labels) are malformed.
 * - A name comes out twice: its wire form uncompressed with the sender's case (to echo
 *   back: DNS 0x20), and as text, lower case, dots between labels, no trailing dot ("" is
 *   the root); a byte that is not a printable non-space character, a dot or a backslash
 *   inside a label is written '?' (such a name never matches an instance's).
 */
#ifndef NITRO_CARDS_VPC_DNSMSG_H
#define NITRO_CARDS_VPC_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DNS_HLEN 12
#define DNS_WIRE_MAX 255   /* a name on the wire */
#define DNS_TEXT_MAX 253   /* its text, without the NUL */
#define DNS_UDP_MIN 512	   /* without EDNS */
#define DNS_EDNS_SIZE 1232 /* the size we announce (DNS flag day 2020) */

enum dns_rcode {
	DNS_NOERROR = 0,
	DNS_FORMERR = 1,
	DNS_SERVFAIL = 2,
	DNS_NXDOMAIN = 3,
	DNS_NOTIMP = 4,
	DNS_REFUSED = 5,
	DNS_BADVERS = 16, /* extended: needs the OPT record */
};

enum {
	DNS_T_A = 1,
	DNS_T_PTR = 12,
	DNS_T_AAAA = 28,
	DNS_T_OPT = 41,
	DNS_T_IXFR = 251,
	DNS_T_AXFR = 252,
	DNS_T_ANY = 255
};
enum { DNS_C_IN = 1, DNS_C_ANY = 255 };

/* Header bits (in dm_flags, host order). */
#define DNS_QR 0x8000
#define DNS_AA 0x0400
#define DNS_TC 0x0200
#define DNS_RD 0x0100
#define DNS_RA 0x0080
#define DNS_AD 0x0020
#define DNS_CD 0x0010
#define DNS_OPCODE(f) (((f) >> 11) & 15)
#define DNS_RCODE(f) ((f)&15)

struct dns_name {
	uint8_t wire[DNS_WIRE_MAX];
	size_t wire_len;
	char text[DNS_TEXT_MAX + 1];
	bool plain; /* no '?' substitutions */
};

struct dns_msg {
	uint16_t id, flags, qdcount, ancount, nscount, arcount;
	struct dns_name qname; /* the (only) question */
	uint16_t qtype, qclass;
	size_t qend;	    /* offset just past the question */
	bool edns;	    /* an OPT record was present */
	uint16_t edns_size; /* its UDP payload size (>= 512) */
	uint8_t edns_version;
	bool edns_do;
};

/* Reads the name at off: 0 with *name and *end (the offset after the name where it
 * started, not where a pointer led), -1 when malformed. */
int dns_read_name(const uint8_t *m, size_t n, size_t off, struct dns_name *name, size_t *end);

/* A query from a client. Returns -1 when there must be no answer at all (shorter than a
 * header, or QR set: a response), else the rcode the server answers with when it cannot
 * go on (DNS_FORMERR: not exactly one question, a malformed question or additional
 * section, answers or authority records in a query, two OPT records; DNS_NOTIMP: an
 * opcode other than QUERY; DNS_BADVERS: EDNS version > 0), or DNS_NOERROR. The header
 * fields are filled whenever the result is not -1; the question when it parsed. */
int dns_parse_query(const uint8_t *m, size_t n, struct dns_msg *q);

/* A response (the upstream's): 0 when it has a header with QR set and exactly one
 * question that parses (header and question filled), -1 otherwise. */
int dns_parse_response(const uint8_t *m, size_t n, struct dns_msg *r);

/* One answer record for dns_reply: the question's name as owner (compressed), class IN. */
struct dns_rr {
	uint16_t type; /* DNS_T_A (rdata: a) or DNS_T_PTR (rdata: ptr, a text name) */
	uint32_t ttl;
	uint32_t a; /* network order */
	const char *ptr;
};

/* Writes the reply to q into out (cap bytes): header (id, opcode, RD and CD copied; QR,
 * flags as given), the question when q has one (echoed with its case), the answers, and
 * an OPT record when q had EDNS. Answers that do not fit within max bytes (the client's
 * limit) are left out with TC set. Returns its length, or 0 when cap is too small for the
 * header and question. */
size_t dns_reply(uint8_t *out, size_t cap, size_t max, const struct dns_msg *q, bool has_question,
		 unsigned rcode, uint16_t flags, const struct dns_rr *rr, unsigned nrr);

/* The largest reply the client q accepts over UDP (512 without EDNS). */
static inline size_t dns_client_max(const struct dns_msg *q)
{
	return q->edns && q->edns_size > DNS_UDP_MIN ? q->edns_size : DNS_UDP_MIN;
}

#endif
