/* Ethernet / IPv4 / TCP / UDP / ICMP parsing and checksums for the VPC core.
 *
 * pkt_parse_ipv4() checks an IPv4 packet completely before anything looks at it:
 * version 4, header length 20..60 and inside the data, total length >= header and
 * <= data (bytes after it are Ethernet padding and get dropped), the header checksum,
 * no fragments (MF or an offset: the card never reassembles), and for TCP (data offset
 * inside the packet), UDP (length field == the IP payload, >= 8) and ICMP (>= 8 bytes) a
 * whole header. Ports and ICMP fields come out in host order. L4 checksums are not
 * verified (the receiving guest's stack does that; no offloads are negotiated).
 * Returns 0 (VPC_DROP_NONE) or the drop reason.
 */
#ifndef NITRO_CARDS_VPC_PKT_H
#define NITRO_CARDS_VPC_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cards/vpc/verdict.h"

#define ETH_HLEN_ 14
#define ETHERTYPE_IPV4_ 0x0800
#define ETHERTYPE_ARP_ 0x0806
#define ETHERTYPE_VLAN_ 0x8100
#define ETHERTYPE_QINQ_ 0x88a8
#define ETHERTYPE_QINQ_OLD_ 0x9100

#define IPPROTO_ICMP_ 1
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

#define TCP_FIN_ 0x01
#define TCP_SYN_ 0x02
#define TCP_RST_ 0x04
#define TCP_ACK_ 0x10

struct pkt {
	const uint8_t *pk_ip; /* the IPv4 header */
	unsigned pk_ihl;      /* its length in bytes */
	unsigned pk_len;      /* IPv4 total length */
	uint8_t pk_proto;
	uint8_t pk_ttl;
	uint32_t pk_src, pk_dst; /* network order */
	const uint8_t *pk_l4;	 /* pk_len - pk_ihl bytes */
	unsigned pk_l4len;
	uint16_t pk_sport, pk_dport; /* TCP/UDP, host order; 0 otherwise */
	uint8_t pk_tcp_flags;
	uint8_t pk_icmp_type, pk_icmp_code;
	uint16_t pk_icmp_id; /* echo/timestamp/info id, host order */
};

static inline uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}
/* An address in network order, stored / loaded as the 4 packet bytes. */
static inline uint32_t rdip(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static inline void wrip(uint8_t *p, uint32_t ip)
{
	memcpy(p, &ip, 4);
}
static inline bool mac_eq(const uint8_t *a, const uint8_t *b)
{
	uint32_t a4, b4;
	uint16_t a2, b2;
	memcpy(&a4, a, 4);
	memcpy(&b4, b, 4);
	memcpy(&a2, a + 4, 2);
	memcpy(&b2, b + 4, 2);
	return ((a4 ^ b4) | (uint32_t)(a2 ^ b2)) == 0;
}
static inline bool mac_is_group(const uint8_t *m)
{
	return m[0] & 1;
}

/* The 16-bit ones'-complement sum of len bytes added to sum (not folded, not inverted). */
uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len);
/* Folds and inverts: the checksum to store. */
uint16_t csum_fold(uint32_t sum);
/* Writes the IPv4 header checksum (the header's checksum field is overwritten). */
void ip_set_csum(uint8_t *ip, unsigned ihl);
/* The UDP checksum over the pseudo header and the UDP datagram (checksum field 0). */
uint16_t udp_csum(uint32_t src, uint32_t dst, const uint8_t *udp, unsigned len);

enum vpc_drop pkt_parse_ipv4(struct pkt *k, const uint8_t *ip, size_t len);
/* ICMP errors (unreachable, time exceeded, parameter problem, ...). */
bool icmp_is_error(uint8_t type);
/* ICMP queries that have an identifier (echo, timestamp, info, address mask). */
bool icmp_is_query(uint8_t type);
/* A query and its reply share a kind (the request's type, e.g. 8 for echo and echo reply)
 * so that a flow of echoes is not answered by timestamps. */
static inline uint16_t icmp_query_kind(uint8_t type)
{
	return type == 0 || type == 8 ? 8 : (type & 1) ? type : type - 1;
}

#endif
