/* The connection-tracking table of one interface: a fixed open-addressing hash table
 * (linear probing, at most half full, backward-shift deletion), allocated once at port
 * creation, so the per-packet path never allocates.
 *
 * A flow is keyed from the interface's side: (protocol, remote IP, local port, remote
 * port); ICMP queries use (id, 0). Entries expire at ce_expires (monotonic ns); expired
 * entries met by a lookup are reaped on the spot, ct_sweep() reaps the rest. ct_insert()
 * fails (NULL) when ct_count reached the maximum: the caller drops the new flow.
 * The hash is keyed with a per-table random seed, so a peer cannot aim flows at one chain.
 */
#ifndef NITRO_CARDS_VPC_CONNTRACK_H
#define NITRO_CARDS_VPC_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ce_flags */
#define CT_OUT 0x01	   /* the flow started with a packet the guest sent */
#define CT_REPLIED 0x02	   /* packets seen in both directions */
#define CT_FIN_OUT 0x04	   /* TCP: FIN sent by the guest */
#define CT_FIN_IN 0x08	   /* TCP: FIN received */
#define CT_CLOSED 0x10	   /* TCP: RST, or FIN both ways */
#define CT_UDP_STREAM 0x20 /* UDP: replied, then more traffic: the longer timeout */

#define CT_FULL_SWEEP 64

struct ct_key {
	uint32_t k_rip; /* remote IP, network order */
	uint16_t k_lport, k_rport;
	uint8_t k_proto;
};

struct ct_entry {
	uint64_t ce_expires; /* 0: slot empty */
	uint32_t ce_rip;
	uint16_t ce_lport, ce_rport;
	uint8_t ce_proto;
	uint8_t ce_flags;
};

struct ct_table {
	struct ct_entry *ct_slots;
	uint32_t ct_mask; /* slots - 1 */
	uint32_t ct_max;  /* entries allowed */
	uint32_t ct_count;
	uint32_t ct_cursor; /* ct_sweep's position */
	uint32_t ct_hint;   /* the empty slot where the last failed ct_find stopped */
	uint64_t ct_seed;
};

int ct_init(struct ct_table *t, uint32_t max, uint64_t seed);
void ct_fini(struct ct_table *t);
/* The live entry for k, or NULL (then ct_insert may follow with no other call between). */
struct ct_entry *ct_find(struct ct_table *t, const struct ct_key *k, uint64_t now);
/* A new entry for k (after a ct_find that missed), expiring at expires. When the table is
 * full it first reaps expired entries among the next CT_FULL_SWEEP slots; NULL when it is
 * still full. */
struct ct_entry *ct_insert(struct ct_table *t, const struct ct_key *k, uint64_t now,
			   uint64_t expires);
/* Reaps expired entries among the next budget slots (the whole table: budget = slots). */
void ct_sweep(struct ct_table *t, uint64_t now, uint32_t budget);
static inline uint32_t ct_slots(const struct ct_table *t)
{
	return t->ct_mask + 1;
}

#endif
