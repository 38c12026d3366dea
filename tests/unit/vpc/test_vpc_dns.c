/* The VPC resolver: the DNS message parser (hostile input: compression pointer loops,
 * truncation, counts that promise more than the message holds), the resolver's answers
 * for instance names and PTRs, forwarding with fresh ids and the matching of the
 * upstream's answers; and the time server's NTP replies. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "cards/vpc/dns.h"
#include "cards/vpc/dnsmsg.h"
#include "cards/vpc/ntp.h"
#include "vpctest.h"

#define DOMAIN "eu-west-1.compute.internal"

/* A query for name (text, dots) of type qtype: its length. */
static size_t mkquery(uint8_t *m, uint16_t id, uint16_t flags, const char *name, uint16_t qtype)
{
	uint8_t h[12] = {(uint8_t)(id >> 8), (uint8_t)id, (uint8_t)(flags >> 8),
			 (uint8_t)flags,     0,		  1};
	memcpy(m, h, 12);
	size_t o = 12;
	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);
		m[o++] = (uint8_t)l;
		memcpy(m + o, name, l);
		o += l;
		name += l + (dot ? 1 : 0);
	}
	m[o++] = 0;
	m[o++] = (uint8_t)(qtype >> 8);
	m[o++] = (uint8_t)qtype;
	m[o++] = 0;
	m[o++] = 1;
	return o;
}

static void names(void **state)
{
	(void)state;
	struct dns_name nm;
	size_t end;
	/* "Ab.c" at 12, then "x" + a pointer to it at 18 */
	uint8_t m[64] = {0};
	const uint8_t body[] = {2, 'A', 'b', 1, 'c', 0, 1, 'x', 0xc0, 12};
	memcpy(m + 12, body, sizeof(body));
	assert_int_equal(dns_read_name(m, 22, 12, &nm, &end), 0);
	assert_string_equal(nm.text, "ab.c");
	assert_int_equal(nm.wire_len, 6);
	assert_memory_equal(nm.wire, body, 6); /* the sender's case */
	assert_int_equal(end, 18);
	assert_int_equal(dns_read_name(m, 22, 18, &nm, &end), 0);
	assert_string_equal(nm.text, "x.ab.c");
	assert_int_equal(end, 22);
	assert_true(nm.plain);
	/* the pointer cut off by the end of the message */
	assert_int_equal(dns_read_name(m, 21, 18, &nm, &end), -1);
	/* a pointer to itself, forwards, and two pointing at each other */
	m[30] = 0xc0, m[31] = 30;
	assert_int_equal(dns_read_name(m, 32, 30, &nm, &end), -1);
	m[30] = 0xc0, m[31] = 40;
	m[40] = 0;
	assert_int_equal(dns_read_name(m, 41, 30, &nm, &end), -1);
	m[30] = 1, m[31] = 'a', m[32] = 0xc0, m[33] = 34, m[34] = 0xc0, m[35] = 30;
	assert_int_equal(dns_read_name(m, 36, 34, &nm, &end), -1);
	/* a label into itself through a pointer: "a" + pointer back to "a" */
	m[32] = 0xc0, m[33] = 30;
	assert_int_equal(dns_read_name(m, 36, 30, &nm, &end), -1);
	/* extended label types, a label running past the end, no terminator */
	m[12] = 0x40;
	assert_int_equal(dns_read_name(m, 64, 12, &nm, &end), -1);
	m[12] = 0x80;
	assert_int_equal(dns_read_name(m, 64, 12, &nm, &end), -1);
	m[12] = 10;
	assert_int_equal(dns_read_name(m, 16, 12, &nm, &end), -1);
	m[12] = 1, m[13] = 'a';
	assert_int_equal(dns_read_name(m, 14, 12, &nm, &end), -1);
	/* dots, spaces, backslashes and bytes >= 0x7f inside a label */
	const uint8_t odd[] = {4, 'a', '.', ' ', 0xff, 1, '\\', 0};
	assert_int_equal(dns_read_name(odd, sizeof(odd), 0, &nm, &end), 0);
	assert_string_equal(nm.text, "a???.?");
	assert_false(nm.plain);
}

static void name_lengths(void **state)
{
	(void)state;
	uint8_t m[600];
	struct dns_name nm;
	size_t end, o = 0;
	/* 4 labels of 63 + 1 of 1: 4*64 + 2 + 1 = 259 > 255; 3*64 + 61 + 1 + 1 = 255 fits */
	for (int i = 0; i < 3; i++) {
		m[o++] = 63;
		memset(m + o, 'a', 63);
		o += 63;
	}
	m[o++] = 61;
	memset(m + o, 'b', 61);
	o += 61;
	m[o++] = 0;
	assert_int_equal(o, 255);
	assert_int_equal(dns_read_name(m, o, 0, &nm, &end), 0);
	assert_int_equal(nm.wire_len, 255);
	assert_int_equal(strlen(nm.text), 253);
	m[192] = 62; /* one byte more */
	memset(m + 193, 'b', 62);
	m[255] = 0;
	assert_int_equal(dns_read_name(m, 256, 0, &nm, &end), -1);
	/* many pointers, each one further back: fine while the name stays short */
	o = 0;
	m[o++] = 0;
	for (int i = 1; i < 200; i++) {
		m[o] = 0xc0;
		m[o + 1] = (uint8_t)(o - 2 < o ? (i == 1 ? 0 : o - 2) : 0);
		o += 2;
	}
	assert_int_equal(dns_read_name(m, o, o - 2, &nm, &end), 0);
	assert_string_equal(nm.text, "");
}

static void queries(void **state)
{
	(void)state;
	uint8_t m[512];
	struct dns_msg q;
	size_t n = mkquery(m, 0x1234, DNS_RD, "Www.Example.com", DNS_T_A);
	assert_int_equal(dns_parse_query(m, n, &q), DNS_NOERROR);
	assert_int_equal(q.id, 0x1234);
	assert_string_equal(q.qname.text, "www.example.com");
	assert_int_equal(q.qtype, DNS_T_A);
	assert_int_equal(q.qend, n);
	assert_false(q.edns);
	assert_int_equal(dns_client_max(&q), 512);
	assert_int_equal(dns_parse_query(m, 11, &q), -1);	      /* no header */
	assert_int_equal(dns_parse_query(m, n - 1, &q), DNS_FORMERR); /* truncated class */
	m[2] |= 0x80;						      /* QR: a response */
	assert_int_equal(dns_parse_query(m, n, &q), -1);
	m[2] = (uint8_t)(2 << 3 | 1); /* opcode STATUS */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_NOTIMP);
	m[2] = 1;
	m[5] = 0; /* no question */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_FORMERR);
	m[5] = 2; /* two, only one there */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_FORMERR);
	m[5] = 1;
	m[7] = 1; /* an answer in a query */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_FORMERR);
	m[7] = 0;
	m[10] = 0xff, m[11] = 0xff; /* 65535 additional records promised, none there */
	assert_int_equal(dns_parse_query(m, n, &q), DNS_FORMERR);
	/* EDNS: one OPT with the root as owner */
	m[10] = 0, m[11] = 1;
	const uint8_t opt[] = {0, 0, 41, 0x10, 0, 0, 0, 0x80, 0, 0, 0};
	memcpy(m + n, opt, sizeof(opt));
	assert_int_equal(dns_parse_query(m, n + 11, &q), DNS_NOERROR);
	assert_true(q.edns && q.edns_do);
	assert_int_equal(q.edns_size, 4096);
	assert_int_equal(dns_client_max(&q), 4096);
	m[n + 3] = 0, m[n + 4] = 100; /* a size under 512 counts as 512 */
	assert_int_equal(dns_parse_query(m, n + 11, &q), DNS_NOERROR);
	assert_int_equal(q.edns_size, 512);
	m[n + 6] = 1; /* version 1 */
	assert_int_equal(dns_parse_query(m, n + 11, &q), DNS_BADVERS);
	m[n + 6] = 0;
	memcpy(m + n + 11, opt, sizeof(opt)); /* two OPTs */
	m[11] = 2;
	assert_int_equal(dns_parse_query(m, n + 22, &q), DNS_FORMERR);
	m[11] = 1;
	const uint8_t named_opt[] = {1, 'x', 0, 0, 41, 0x10, 0, 0, 0, 0, 0, 0, 0};
	memcpy(m + n, named_opt, sizeof(named_opt));
	assert_int_equal(dns_parse_query(m, n + sizeof(named_opt), &q), DNS_FORMERR);
	/* an OPT whose rdata runs past the end */
	memcpy(m + n, opt, sizeof(opt));
	m[n + 10] = 4;
	assert_int_equal(dns_parse_query(m, n + 11, &q), DNS_FORMERR);
	/* a question of type OPT */
	n = mkquery(m, 1, 0, "a", DNS_T_OPT);
	assert_int_equal(dns_parse_query(m, n, &q), DNS_FORMERR);
}

static struct vt_map map;

static void resolver(struct dns *d, bool upstream)
{
	memset(&map, 0, sizeof(map));
	vt_add(&map, 7, "10.0.0.5", MAC_A, "192.0.2.5", 40005, true);
	vt_add(&map, 7, "10.0.0.6", MAC_B, "192.0.2.6", 40006, true);
	vt_add(&map, 7, "10.0.1.9", MAC_R, "192.0.2.9", 40109, true); /* another subnet */
	vt_add(&map, 8, "10.0.0.7", MAC_X, "192.0.2.66", 40066, true);
	dns_init(d, 7, vt_ip("10.0.0.0"), vt_ip("255.255.255.0"), "EU-west-1.compute.internal",
		 vt_lookup, &map, upstream, 42);
}

/* Asks d; returns the verdict, the reply in out. */
static enum dns_verdict ask(struct dns *d, const char *name, uint16_t qtype, uint8_t *out,
			    size_t *len)
{
	uint8_t m[512];
	size_t n = mkquery(m, 0xabcd, DNS_RD, name, qtype);
	return dns_query(d, m, n, vt_ip("10.0.0.2"), htons(33333), 1500, 0, out, len);
}

static unsigned rcode(const uint8_t *r)
{
	return r[3] & 15;
}

static unsigned ancount(const uint8_t *r)
{
	return (unsigned)(r[6] << 8 | r[7]);
}

static void instance_names(void **state)
{
	(void)state;
	static struct dns d;
	uint8_t out[DNS_MSG_MAX];
	size_t len;
	resolver(&d, false);
	assert_int_equal(ask(&d, "ip-10-0-0-6." DOMAIN, DNS_T_A, out, &len), DNS_V_REPLY);
	assert_int_equal(out[0] << 8 | out[1], 0xabcd);
	assert_int_equal(out[2], 0x80 | 0x04 | 0x01); /* QR AA RD */
	assert_int_equal(out[3], 0);		      /* no RA without upstream, NOERROR */
	assert_int_equal(ancount(out), 1);
	uint32_t peer = vt_ip("10.0.0.6");
	assert_memory_equal(out + len - 4, &peer, 4);
	assert_int_equal(out[len - 8] << 8 | out[len - 7], 60); /* TTL low half */
	/* a routed subnet of the VPC too */
	assert_int_equal(ask(&d, "ip-10-0-1-9." DOMAIN, DNS_T_ANY, out, &len), DNS_V_REPLY);
	assert_int_equal(ancount(out), 1);
	assert_int_equal(ask(&d, "ip-10-0-0-6." DOMAIN, DNS_T_AAAA, out, &len), DNS_V_REPLY);
	assert_int_equal(rcode(out), DNS_NOERROR);
	assert_int_equal(ancount(out), 0);
	assert_int_equal(ask(&d, DOMAIN, DNS_T_A, out, &len), DNS_V_REPLY);
	assert_int_equal(rcode(out), DNS_NOERROR);
	const char *nx[] = {"ip-10-0-0-9." DOMAIN,   "ip-10-0-0-7." DOMAIN, /* VPC 8's */
			    "ip-10-0-0-06." DOMAIN,  "ip-10-0-0." DOMAIN,
			    "ip-10-0-0-6-1." DOMAIN, "ip-10-0-0-256." DOMAIN,
			    "a.ip-10-0-0-6." DOMAIN, "ip-." DOMAIN,
			    "ip--10-0-0-6." DOMAIN,  "www." DOMAIN};
	for (size_t i = 0; i < sizeof(nx) / sizeof(nx[0]); i++) {
		assert_int_equal(ask(&d, nx[i], DNS_T_A, out, &len), DNS_V_REPLY);
		assert_int_equal(rcode(out), DNS_NXDOMAIN);
		assert_int_equal(out[2] & 0x04, 0x04);
	}
	assert_int_equal(ask(&d, DOMAIN, DNS_T_AXFR, out, &len), DNS_V_REPLY);
	assert_int_equal(rcode(out), DNS_REFUSED);
	/* PTR */
	assert_int_equal(ask(&d, "6.0.0.10.in-addr.arpa", DNS_T_PTR, out, &len), DNS_V_REPLY);
	assert_int_equal(ancount(out), 1);
	static const char want[] = "\x0bip-10-0-0-6\x09"
				   "eu-west-1\x07"
				   "compute\x08internal";
	assert_memory_equal(out + len - sizeof(want), want, sizeof(want));
	assert_int_equal(ask(&d, "9.0.0.10.in-addr.arpa", DNS_T_PTR, out, &len), DNS_V_REPLY);
	assert_int_equal(rcode(out), DNS_NXDOMAIN);
	/* outside the VPC, or not an address: the host's resolver's (REFUSED without one) */
	assert_int_equal(ask(&d, "8.8.8.8.in-addr.arpa", DNS_T_PTR, out, &len), DNS_V_REPLY);
	assert_int_equal(rcode(out), DNS_REFUSED);
	assert_int_equal(ask(&d, "0.10.in-addr.arpa", DNS_T_PTR, out, &len), DNS_V_REPLY);
	assert_int_equal(rcode(out), DNS_REFUSED);
	assert_int_equal(ask(&d, "www.example.com", DNS_T_A, out, &len), DNS_V_REPLY);
	assert_int_equal(rcode(out), DNS_REFUSED);
	assert_int_equal(d.st.nxdomain, 11);
}

static void forwarding(void **state)
{
	(void)state;
	static struct dns d;
	uint8_t q[512], up[DNS_MSG_MAX], ans[DNS_MSG_MAX];
	size_t n, len;
	uint32_t server;
	uint16_t port;
	resolver(&d, true);
	n = mkquery(q, 0x1111, DNS_RD, "WWW.example.com", DNS_T_A);
	assert_int_equal(
	    dns_query(&d, q, n, vt_ip("169.254.169.253"), htons(40000), 1500, 0, up, &len),
	    DNS_V_FORWARD);
	assert_int_equal(len, n);
	assert_memory_equal(up + 2, q + 2, n - 2); /* the query as it was, a new id */
	uint16_t id = (uint16_t)(up[0] << 8 | up[1]);
	/* the answer: the question, one A */
	memcpy(ans, up, len);
	ans[2] = 0x81, ans[3] = 0x80, ans[7] = 1;
	const uint8_t rr[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 0, 0, 4, 192, 0, 2, 1};
	memcpy(ans + len, rr, sizeof(rr));
	size_t alen = len + sizeof(rr);
	uint8_t copy[DNS_MSG_MAX];
	/* another question (even only its case) or id: not the answer */
	memcpy(copy, ans, alen);
	copy[13] = 'w';
	assert_false(dns_upstream(&d, copy, alen, 1, &len, &server, &port));
	memcpy(copy, ans, alen);
	copy[1] ^= 1;
	assert_false(dns_upstream(&d, copy, alen, 1, &len, &server, &port));
	memcpy(copy, ans, alen);
	copy[2] &= 0x7f; /* not a response */
	assert_false(dns_upstream(&d, copy, alen, 1, &len, &server, &port));
	assert_int_equal(d.st.upstream_bad, 3);
	memcpy(copy, ans, alen);
	assert_true(dns_upstream(&d, copy, alen, 1, &len, &server, &port));
	assert_int_equal(len, alen);
	assert_int_equal(copy[0] << 8 | copy[1], 0x1111);
	assert_int_equal(server, vt_ip("169.254.169.253"));
	assert_int_equal(port, htons(40000));
	/* answered once: a second copy is not passed on */
	memcpy(copy, ans, alen);
	assert_false(dns_upstream(&d, copy, alen, 1, &len, &server, &port));
	/* too large for the client (512, no EDNS): TC, the question only */
	assert_int_equal(dns_query(&d, q, n, vt_ip("10.0.0.2"), htons(40001), 1500, 0, up, &len),
			 DNS_V_FORWARD);
	memcpy(ans, up, 2);
	memset(ans + alen, 0, 600);
	assert_true(dns_upstream(&d, ans, alen + 600, 1, &len, &server, &port));
	assert_int_equal(len, n);
	assert_int_equal(ans[2] & 0x02, 0x02);
	assert_int_equal(ancount(ans), 0);
	/* late: after DNS_PENDING_NS the answer is dropped */
	assert_int_equal(dns_query(&d, q, n, vt_ip("10.0.0.2"), htons(40002), 1500, 0, up, &len),
			 DNS_V_FORWARD);
	memcpy(ans, up, 2);
	assert_false(dns_upstream(&d, ans, alen, DNS_PENDING_NS, &len, &server, &port));
	assert_int_equal(d.st.upstream_late, 1);
	/* a flood: the table keeps DNS_PENDING, each with its own id, the oldest go */
	for (unsigned i = 0; i < DNS_PENDING + 10; i++)
		assert_int_equal(
		    dns_query(&d, q, n, vt_ip("10.0.0.2"), htons(40003), 1500, 10 + i, up, &len),
		    DNS_V_FORWARD);
	assert_int_equal(d.st.pending_evicted, 10);
	for (unsigned i = 0; i < DNS_PENDING; i++)
		for (unsigned j = i + 1; j < DNS_PENDING; j++)
			assert_true(d.pend[i].up_id != d.pend[j].up_id);
	(void)id;
}

static void replies(void **state)
{
	(void)state;
	uint8_t m[512], out[600];
	struct dns_msg q;
	size_t n = mkquery(m, 7, DNS_RD | DNS_CD, "a.b", DNS_T_A);
	assert_int_equal(dns_parse_query(m, n, &q), 0);
	struct dns_rr rr = {.type = DNS_T_A, .ttl = 60, .a = vt_ip("10.0.0.6")};
	size_t len = dns_reply(out, sizeof(out), 512, &q, true, 0, DNS_AA, &rr, 1);
	assert_int_equal(len, n + 16);
	assert_int_equal(out[2], 0x80 | 0x04 | 0x01);
	assert_int_equal(out[3], 0x10); /* CD echoed */
	/* the answer does not fit the client's limit: TC, no answer */
	len = dns_reply(out, sizeof(out), n + 15, &q, true, 0, DNS_AA, &rr, 1);
	assert_int_equal(len, n);
	assert_int_equal(out[2] & 0x02, 0x02);
	/* not even the question: 0 */
	assert_int_equal(dns_reply(out, sizeof(out), n - 1, &q, true, 0, 0, &rr, 1), 0);
	/* a PTR target longer than a name can be is left out */
	char longname[300];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[299] = 0;
	rr = (struct dns_rr){.type = DNS_T_PTR, .ttl = 60, .ptr = longname};
	len = dns_reply(out, sizeof(out), 512, &q, true, 0, 0, &rr, 1);
	assert_int_equal(ancount(out), 0);
}

static size_t ntp_req(uint8_t *r, unsigned vn, unsigned mode)
{
	memset(r, 0, 48);
	r[0] = (uint8_t)(vn << 3 | mode);
	r[2] = 2; /* poll 4 s: clamped to 16 */
	memcpy(r + 40, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	return 48;
}

static void ntp(void **state)
{
	(void)state;
	uint8_t r[64], out[NTP_LEN];
	struct timespec rx = {.tv_sec = 1700000000, .tv_nsec = 500000000};
	struct timespec tx = {.tv_sec = 1700000000, .tv_nsec = 750000000};
	assert_int_equal(ntp_answer(r, ntp_req(r, 4, 3), &rx, &tx, out), NTP_LEN);
	assert_int_equal(out[0], 4 << 3 | 4);
	assert_int_equal(out[1], NTP_STRATUM);
	assert_int_equal(out[2], 4);
	assert_int_equal((int8_t)out[3], -20);
	assert_memory_equal(out + 24, r + 40, 8);
	const uint8_t rxw[8] = {0xe8, 0xfe, 0x6f, 0x80, 0x80, 0, 0, 0}; /* 1700000000 + 70 y */
	assert_memory_equal(out + 32, rxw, 8);
	assert_memory_equal(out + 16, rxw, 4); /* reference: the second */
	assert_int_equal(out[44], 0xc0);       /* .75 */
	assert_int_equal(ntp_timestamp(&(struct timespec){0, 0}), NTP_UNIX_OFFSET << 32);
	assert_int_equal(ntp_answer(r, ntp_req(r, 3, 3), &rx, &tx, out), NTP_LEN);
	assert_int_equal(out[0], 3 << 3 | 4);
	ntp_req(r, 4, 3);
	r[2] = 40;
	assert_int_equal(ntp_answer(r, 60, &rx, &tx, out), NTP_LEN); /* extensions ignored */
	assert_int_equal(out[2], 17);
	assert_int_equal(ntp_answer(r, 47, &rx, &tx, out), 0);
	assert_int_equal(ntp_answer(r, ntp_req(r, 0, 3), &rx, &tx, out), 0);
	assert_int_equal(ntp_answer(r, ntp_req(r, 5, 3), &rx, &tx, out), 0);
	for (unsigned mode = 0; mode < 8; mode++)
		if (mode != 3)
			assert_int_equal(ntp_answer(r, ntp_req(r, 4, mode), &rx, &tx, out), 0);
	ntp_req(r, 4, 3);
	memset(r + 40, 0, 8);
	assert_int_equal(ntp_answer(r, 48, &rx, &tx, out), 0);
}

/* The core hands UDP to the resolver's and the time server's ports to the card (after the
 * link-local allowance); anything else to those addresses has no route. */
static void core_routes_services(void **state)
{
	(void)state;
	static struct vt t;
	vt_setup(&t, NULL);
	struct {
		const char *dst;
		unsigned dport;
		bool udp;
		enum vpc_action want;
	} c[] = {
	    {"10.0.0.2", 53, true, VPC_TO_SERVICE},
	    {"169.254.169.253", 53, true, VPC_TO_SERVICE},
	    {"169.254.169.123", 123, true, VPC_TO_SERVICE},
	    {"169.254.169.123", 53, true, VPC_DROP},
	    {"169.254.169.253", 123, true, VPC_DROP},
	    {"10.0.0.2", 53, false, VPC_DROP},
	    {"169.254.169.254", 53, true, VPC_DROP},
	    {"169.254.169.254", 80, false, VPC_TO_IMDS},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t n = c[i].udp ? vt_udp(t.frame, MAC_GW, MAC_A, "10.0.0.5", c[i].dst, 40000,
					     c[i].dport, 20)
				    : vt_tcp(t.frame, MAC_GW, MAC_A, "10.0.0.5", c[i].dst, 40000,
					     c[i].dport, 0x02);
		vt_out_reset(&t);
		assert_int_equal(vpc_from_guest(t.p, t.frame, n, 0, &t.out), c[i].want);
		if (c[i].want == VPC_DROP)
			assert_int_equal(t.out.vo_drop, VPC_DROP_NO_ROUTE);
		else
			assert_int_equal(t.out.vo_len, n - 14);
	}
	/* a spoofed source is not served */
	size_t n = vt_udp(t.frame, MAC_GW, MAC_A, "10.0.0.9", "10.0.0.2", 40000, 53, 20);
	vt_out_reset(&t);
	assert_int_equal(vpc_from_guest(t.p, t.frame, n, 0, &t.out), VPC_DROP);
	assert_int_equal(t.out.vo_drop, VPC_DROP_SPOOF_OUT);
	struct vpc_stats st;
	vpc_port_stats(t.p, &st);
	assert_int_equal(st.st_service_packets, 3);
	/* the resolver in the subnet (.2) answers ARP with the gateway's MAC */
	uint8_t *f = t.frame;
	memset(f, 0, 42);
	memcpy(f, MAC_BCAST, 6);
	memcpy(f + 6, MAC_A, 6);
	f[12] = 0x08, f[13] = 0x06;
	const uint8_t hdr[8] = {0, 1, 8, 0, 6, 4, 0, 1};
	memcpy(f + 14, hdr, 8);
	memcpy(f + 22, MAC_A, 6);
	uint32_t sip = vt_ip("10.0.0.5"), tip = vt_ip("10.0.0.2");
	memcpy(f + 28, &sip, 4);
	memcpy(f + 38, &tip, 4);
	vt_out_reset(&t);
	assert_int_equal(vpc_from_guest(t.p, f, 42, 0, &t.out), VPC_TO_GUEST);
	assert_memory_equal(t.out.vo_data + 22, MAC_GW, 6);
	vt_teardown(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(names),	  cmocka_unit_test(name_lengths),
	    cmocka_unit_test(queries),	  cmocka_unit_test(instance_names),
	    cmocka_unit_test(forwarding), cmocka_unit_test(replies),
	    cmocka_unit_test(ntp),	  cmocka_unit_test(core_routes_services),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
