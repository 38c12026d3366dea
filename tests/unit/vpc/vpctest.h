/* Shared fixtures of the VPC core unit tests: a mapping table the tests fill (the
 * caller's side of vpc_lookup_fn), frame builders with their own checksum code (so the
 * core's is not checking itself), and the standard interfaces the tests use:
 *   port A: VPC 7, 10.0.0.5/24, MAC 02:00:0a:00:00:05
 *   peer B: VPC 7, 10.0.0.6, MAC 02:00:0a:00:00:06, underlay 192.0.2.6:40006 (default group)
 *   peer R: VPC 7, 10.0.1.9 (another subnet), MAC 02:00:0a:00:01:09, 192.0.2.9:40109
 *   peer X: VPC 8, 10.0.0.6 (same IP as B, other VPC), MAC 02:00:0b:00:00:06, 192.0.2.66:40066
 */
#ifndef NITRO_TESTS_UNIT_VPC_VPCTEST_H
#define NITRO_TESTS_UNIT_VPC_VPCTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cards/vpc/vpc.h"

#define VT_MAX 64
#define NS 1000000000ull

struct vt_map {
	struct vpc_map_entry e[VT_MAX];
	unsigned n;
	unsigned calls;
};

extern const uint8_t MAC_A[6], MAC_B[6], MAC_R[6], MAC_X[6], MAC_GW[6], MAC_BCAST[6];

struct vt {
	struct vt_map map;
	struct vpc_port *p;
	uint8_t buf[VPC_OUT_MIN];
	struct vpc_out out;
	uint8_t frame[VPC_OUT_MIN];
	uint8_t ul[VPC_OUT_MIN];
};

uint32_t vt_ip(const char *s);
uint16_t vt_port(unsigned p); /* network order */
int vt_lookup(void *ctx, uint32_t vni, uint32_t ip, struct vpc_map_entry *out);
void vt_add(struct vt_map *m, uint32_t vni, const char *ip, const uint8_t mac[6], const char *ul,
	    unsigned port, bool def);
/* Fills the standard peers; a port for A with cfg (NULL: defaults, VPC 7, 10.0.0.5/24). */
void vt_setup(struct vt *t, const struct vpc_cfg *cfg);
void vt_teardown(struct vt *t);
/* cmocka setup and teardown of a test on the default configuration: *state is a struct vt
 * of this file's (teardown also ends one that a test's own setup gave vt_setup). */
int vt_state_setup(void **state);
int vt_state_teardown(void **state);
struct vpc_cfg vt_cfg(void);
void vt_out_reset(struct vt *t);

uint16_t vt_csum(const uint8_t *p, size_t len, uint32_t start);
/* Ethernet + IPv4 header (ihl 5, TTL 64, DF) with payload already at buf + 34; returns
 * the frame length. */
size_t vt_ipv4(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6], uint32_t sip,
	       uint32_t dip, uint8_t proto, size_t l4len);
size_t vt_udp(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6], const char *sip,
	      const char *dip, unsigned sport, unsigned dport, size_t plen);
/* The same with the given payload (vt_udp fills it with 0, 1, 2, ...). */
size_t vt_udp_data(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6],
		   const char *sip, const char *dip, unsigned sport, unsigned dport,
		   const uint8_t *payload, size_t plen);
size_t vt_tcp(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6], const char *sip,
	      const char *dip, unsigned sport, unsigned dport, uint8_t flags);
size_t vt_icmp(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6], const char *sip,
	       const char *dip, uint8_t type, uint8_t code, uint16_t id);
/* Geneve (no options) around frame into buf; returns the length. */
size_t vt_geneve(uint8_t *buf, uint32_t vni, const uint8_t *frame, size_t len);

/* Shortcuts on t: the guest sends frame; a datagram arrives from ul:port. */
enum vpc_action vt_guest(struct vt *t, const uint8_t *frame, size_t len, uint64_t now);
enum vpc_action vt_under(struct vt *t, const uint8_t *pl, size_t len, const char *ul, unsigned port,
			 uint64_t now);
uint64_t vt_drops(struct vt *t, enum vpc_drop r);

/* Port A (vt_cfg) in group g (NULL: the default group) with ct conntrack entries. */
/* The security group of text (named "sg"); a parse error fails the test (abort). */
struct vpc_sg *vt_sg(const char *text);
void vt_setup_sg(struct vt *t, struct vpc_sg *g, uint32_t ct);
/* A TCP segment from B (or R, 10.0.1.9, when r) to A over the underlay, and from A to B (or
 * R) out of the guest: the action. */
enum vpc_action vt_tcp_in(struct vt *t, bool r, unsigned sport, unsigned dport, uint8_t fl,
			  uint64_t now);
enum vpc_action vt_tcp_out(struct vt *t, bool r, unsigned sport, unsigned dport, uint8_t fl,
			   uint64_t now);

#endif
