/* The VPC resolver of one interface (AWS's "Amazon-provided DNS", at the VPC base + 2 and
 * 169.254.169.253): it answers the instance names of its VPC itself and forwards the rest
 * to the host's resolver. No sockets here: the card does the I/O (svc_net.c).
 *
 * Contract:
 * - Single-threaded (the card's loop). Every query and every upstream answer is hostile.
 * - Its zone is the DHCP domain (<region>.compute.internal): ip-A-B-C-D.DOMAIN has an A
 *   record when the mapping service knows (vni, A.B.C.D); D.C.B.A.in-addr.arpa a PTR to
 *   that name. A name of the zone that is no instance, and the PTR of a VPC address no
 *   instance has, are NXDOMAIN; other types of an existing name NOERROR without answers.
 *   Answers are authoritative (AA), TTL DNS_TTL.
 * - Everything else is forwarded when there is an upstream (dns_forward gives the query
 *   with a fresh random id to send; the answer comes back through dns_upstream, matched
 *   on id and question, case included, and gets the client's id back, or TC and no
 *   records when it is larger than the client accepts); without one it is REFUSED.
 *   At most DNS_PENDING queries wait for the upstream; more replace the oldest; a query
 *   waits DNS_PENDING_NS at most.
 * - Malformed queries: FORMERR, opcodes other than QUERY NOTIMP, EDNS versions > 0
 *   BADVERS, zone transfers REFUSED, responses (QR) and messages shorter than a header
 *   get no answer.
 */
#ifndef NITRO_CARDS_VPC_DNS_H
#define NITRO_CARDS_VPC_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cards/vpc/dnsmsg.h"
#include "cards/vpc/vpc.h"

#define DNS_TTL 60
#define DNS_PENDING 256
#define DNS_PENDING_NS (10 * 1000000000ull)
#define DNS_MSG_MAX 4096 /* the largest upstream answer read */

struct dns_pending {
	bool used;
	uint16_t up_id, client_id, client_port; /* client_port network order */
	uint32_t server;			/* the address the client asked, network order */
	uint16_t qtype, qclass;
	uint8_t qwire[DNS_WIRE_MAX];
	uint8_t qwire_len;
	uint16_t max; /* the client's limit */
	uint64_t expires;
};

struct dns_stats {
	uint64_t queries, answered_local, nxdomain, formerr, refused, forwarded, upstream_answers,
	    upstream_bad, upstream_late, pending_evicted, truncated;
};

struct dns {
	uint32_t vni, net, mask; /* the VPC (mask, net: network order) */
	char domain[DNS_TEXT_MAX + 1];
	vpc_lookup_fn *lookup;
	void *ctx;
	bool upstream;
	uint64_t rng;
	struct dns_pending pend[DNS_PENDING];
	struct dns_stats st;
};

enum dns_verdict { DNS_V_DROP, DNS_V_REPLY, DNS_V_FORWARD };

/* domain: lower case, at most DNS_TEXT_MAX; seed: random. */
void dns_init(struct dns *d, uint32_t vni, uint32_t net, uint32_t mask, const char *domain,
	      vpc_lookup_fn *lookup, void *ctx, bool upstream, uint64_t seed);

/* A query (UDP payload q, n bytes) from client_port (network order) to server. DNS_V_REPLY:
 * out holds *len bytes for the client (at most max, its path's limit); DNS_V_FORWARD: out
 * holds the query to send upstream; DNS_V_DROP: nothing. out has DNS_MSG_MAX bytes. */
enum dns_verdict dns_query(struct dns *d, const uint8_t *q, size_t n, uint32_t server,
			   uint16_t client_port, size_t max, uint64_t now, uint8_t *out,
			   size_t *len);

/* An upstream answer (m, n bytes; rewritten in place). true: send *len bytes of m to
 * *client_port from *server; false: dropped (unknown id, another question, late). */
bool dns_upstream(struct dns *d, uint8_t *m, size_t n, uint64_t now, size_t *len, uint32_t *server,
		  uint16_t *client_port);

#endif
