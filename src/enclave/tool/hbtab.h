/* The heartbeat broker's matching table (hb.c): which waiting `run` a heartbeat on vsock
 * port 9000 belongs to. Several `nitro-enclave run`s boot enclaves at once, but only one
 * socket can listen on the port: the broker listens for all of them, and each run is a
 * waiter here, first without a CID (before NE_START_ENCLAVE says which), then with it.
 *
 * A heartbeat whose CID no waiter holds is kept (as "seen") only while some waiter has no
 * CID yet: that waiter's enclave may have booted before its run learnt the CID. A kept CID
 * is handed to the waiter that then names it; the kept ones are forgotten once every
 * waiter has a CID, so a heartbeat of an enclave nobody waits for is never matched later.
 *
 * Contract: pure, no I/O, not thread-safe (one broker loop owns it). Keys are the caller's
 * (its connection fds), CIDs the enclaves' (hostile: any u32 a peer has). Bounded: at most
 * NET_HB_MAX waiters and NET_HB_MAX kept CIDs (the oldest kept one goes first). */
#ifndef NITRO_ENCLAVE_TOOL_HBTAB_H
#define NITRO_ENCLAVE_TOOL_HBTAB_H

#include <stdbool.h>
#include <stdint.h>

#define NET_HB_MAX 64

struct net_hb_waiter {
	int key;
	bool has_cid;
	uint64_t cid;
};

struct net_hb_table {
	unsigned nwait, nseen;
	struct net_hb_waiter wait[NET_HB_MAX];
	uint64_t seen[NET_HB_MAX];
};

void net_hb_init(struct net_hb_table *t);
/* A new waiter without a CID: 0, or -1 when the table is full. */
int net_hb_add(struct net_hb_table *t, int key);
/* The waiter key names its CID: true when that CID's heartbeat came already (the waiter
 * is then removed, its kept CID forgotten). A key not in the table: false. A waiter that
 * names a second CID keeps the first. */
bool net_hb_set_cid(struct net_hb_table *t, int key, uint64_t cid);
/* A heartbeat from cid: the key of the waiter it belongs to (removed), or -1 (kept if a
 * waiter has no CID yet). Two waiters naming one CID: the first. */
int net_hb_heartbeat(struct net_hb_table *t, uint64_t cid);
/* The waiter went away (its run ended or failed). */
void net_hb_remove(struct net_hb_table *t, int key);
/* No waiters: the broker may end. */
bool net_hb_idle(const struct net_hb_table *t);

#endif
