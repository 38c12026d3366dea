/* The connection-tracking table of one interface: a fixed open-addressing hash table
 * (linear probing, at most half full, backward-shift deletion), allocated once at port
 * creation, so the per-packet path never allocates.
 *
 * A flow is keyed from the interface's side: (protocol, remote IP, local port, remote
 * port); ICMP queries use (id, 0). Entries expire at ce_expires (monotonic ns); expired
 * entries met by a lookup are reaped on the spot, ct_sweep() reaps the rest.
 *
 * Entries that are not "assured" (a TCP handshake not completed, a closed connection, a
 * flow never answered: the caller decides, ct_set_assured) sit on an eviction list in the
 * order they became so, oldest first. When the table is full, ct_insert() reaps expired
 * entries among the next CT_FULL_SWEEP slots, then evicts the oldest unassured entry
 * (counted in ct_evicted), like Linux's early_drop of unassured conntracks: a flood of
 * half-open flows can neither push out established ones nor lock new ones out. It fails
 * (NULL) only when every entry is assured: the caller drops the new flow.
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
#define CT_UDP_STREAM 0x20 /* UDP: replied, then more traffic: the longer timeout */

#define CT_FULL_SWEEP 64

/* ce_state of a TCP flow (the VPC core's tracking, after Linux nf_conntrack_proto_tcp):
 * "orig" is the side that sent the flow's first packet. */
enum ct_tcp_state {
	CT_TCP_NONE = 0,    /* opened by a segment without SYN (picked up mid-stream) */
	CT_TCP_SYN_SENT,    /* orig sent SYN */
	CT_TCP_SYN_RECV,    /* the other side answered SYN+ACK */
	CT_TCP_ESTABLISHED, /* orig ACKed the SYN+ACK (or a picked-up flow was answered) */
	CT_TCP_FIN_WAIT,    /* one side sent FIN */
	CT_TCP_CLOSE,	    /* RST, or FIN both ways */
};

struct ct_key {
	uint32_t k_rip; /* remote IP, network order */
	uint16_t k_lport, k_rport;
	uint8_t k_proto;
};

#define CT_NIL UINT32_MAX

struct ct_entry {
	uint64_t ce_expires; /* 0: slot empty */
	uint32_t ce_rip;
	uint16_t ce_lport, ce_rport;
	uint8_t ce_proto;
	uint8_t ce_flags;
	uint8_t ce_state;	   /* the caller's (TCP state); 0 when inserted */
	uint8_t ce_listed;	   /* on the eviction list (unassured) */
	uint32_t ce_prev, ce_next; /* eviction list: slot indices, CT_NIL at the ends */
};

struct ct_table {
	struct ct_entry *ct_slots;
	uint32_t ct_mask; /* slots - 1 */
	uint32_t ct_max;  /* entries allowed */
	uint32_t ct_count;
	uint32_t ct_cursor;	   /* ct_sweep's position */
	uint32_t ct_hint;	   /* the empty slot where the last failed ct_find stopped */
	uint32_t ct_head, ct_tail; /* eviction list: oldest unassured first */
	uint32_t ct_unassured;	   /* entries on it */
	uint64_t ct_evicted;	   /* unassured entries evicted to make room */
	uint64_t ct_seed;
};

int ct_init(struct ct_table *t, uint32_t max, uint64_t seed);
void ct_fini(struct ct_table *t);
/* The live entry for k, or NULL (then ct_insert may follow with no other call between). */
struct ct_entry *ct_find(struct ct_table *t, const struct ct_key *k, uint64_t now);
/* A new entry for k (after a ct_find that missed), expiring at expires, unassured (at the
 * young end of the eviction list), ce_flags and ce_state 0. When the table is full it
 * first reaps expired entries among the next CT_FULL_SWEEP slots, then evicts the oldest
 * unassured entry; NULL when every entry is assured. Pointers from earlier ct_find calls
 * are invalid afterwards (entries move). */
struct ct_entry *ct_insert(struct ct_table *t, const struct ct_key *k, uint64_t now,
			   uint64_t expires);
/* Assured entries are never evicted; an entry that stops being assured (closed) goes to
 * the young end of the eviction list. Entries do not move. */
void ct_set_assured(struct ct_table *t, struct ct_entry *e, bool assured);
/* An unassured entry starts again as the youngest (a new connection on an old tuple). */
void ct_requeue(struct ct_table *t, struct ct_entry *e);
/* Reaps expired entries among the next budget slots (the whole table: budget = slots). */
void ct_sweep(struct ct_table *t, uint64_t now, uint32_t budget);
static inline uint32_t ct_slots(const struct ct_table *t)
{
	return t->ct_mask + 1;
}

#endif
