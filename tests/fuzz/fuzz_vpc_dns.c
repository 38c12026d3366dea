/* libFuzzer target: the VPC resolver's DNS parser and answers (a guest's query to the
 * VPC base + 2 or 169.254.169.253) and the matching of the upstream's answers. The first
 * byte chooses: a query (every reply stays within the client's limit and carries its id;
 * a forwarded query is the input with a new id), an upstream answer to a pending query
 * (its id set to the pending one, so the question comparison runs), or names read at
 * every offset (bounded text and wire form, the end inside the message).
 */
// fuzz-extra: src/cards/vpc/dns.c src/cards/vpc/dnsmsg.c
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vpc/dns.h"

#include "fuzz.h"

static int lookup(void *ctx, uint32_t vni, uint32_t ip, struct vpc_map_entry *out)
{
	(void)ctx;
	if (ip != htonl(0x0a000006) && ip != htonl(0x0a000105))
		return -1;
	memset(out, 0, sizeof(*out));
	out->vm_vni = vni;
	out->vm_ip = ip;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dns d;
	static uint8_t out[DNS_MSG_MAX];
	if (size < 1)
		return 0;
	uint8_t mode = data[0] % 3;
	size_t n = size - 1;
	uint8_t *m = malloc(n ? n : 1); /* exact size: ASan sees any read past the end */
	CHECK(m);
	memcpy(m, data + 1, n);
	dns_init(&d, 7, htonl(0x0a000000), htonl(0xffffff00), "us-east-1.compute.internal", lookup,
		 NULL, true, 1);
	size_t len = 0;
	if (mode == 0) {
		size_t max = 512 + (data[0] >> 2) * 16;
		enum dns_verdict v =
		    dns_query(&d, m, n, htonl(0x0a000002), 1234, max, 0, out, &len);
		if (v == DNS_V_REPLY) {
			CHECK(len >= DNS_HLEN && len <= max && len <= sizeof(out));
			CHECK(!memcmp(out, m, 2) && (out[2] & 0x80));
		} else if (v == DNS_V_FORWARD) {
			CHECK(len == n && !memcmp(out + 2, m + 2, n - 2));
		}
	} else if (mode == 1) {
		static const uint8_t q[] = {0,	 1,   1,   0,	0,   1,	  0, 0,	  0,   0,
					    0,	 0,   3,   'w', 'w', 'w', 7, 'e', 'x', 'a',
					    'm', 'p', 'l', 'e', 0,   0,	  1, 0,	  1};
		CHECK(dns_query(&d, q, sizeof(q), htonl(0xa9fea9fd), 1234, 1500, 0, out, &len) ==
		      DNS_V_FORWARD);
		if (n >= 2)
			memcpy(m, out, 2);
		uint32_t server;
		uint16_t port;
		if (dns_upstream(&d, m, n, 1, &len, &server, &port)) {
			CHECK(len >= DNS_HLEN && len <= n && len <= DNS_UDP_MIN);
			CHECK(m[0] == 0 && m[1] == 1 && server == htonl(0xa9fea9fd) &&
			      port == 1234);
		}
	} else {
		for (size_t off = 0; off < n && off < 64; off++) {
			struct dns_name nm;
			size_t end = 0;
			if (dns_read_name(m, n, off, &nm, &end) == 0) {
				CHECK(nm.wire_len >= 1 && nm.wire_len <= DNS_WIRE_MAX);
				CHECK(strlen(nm.text) <= DNS_TEXT_MAX && end > off && end <= n);
			}
		}
	}
	free(m);
	return 0;
}
