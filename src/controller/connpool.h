/* The fair share of the API's connection slots among uids (issue 10 item 3, http.c).
 *
 * Counts the connections each key holds (a key is a uid, or CP_KEY_NOT_ALLOWED for all
 * uids that may not use nitrod together), keeps each key's connections in the order they
 * were added, and knows the key holding the most: every operation is O(1) (a hash of keys,
 * keys linked in buckets by count), but cp_oldest (O(that key's count)).
 * When the slots are full, cp_evict_for says whether a new connection of a key may take
 * the slot of a connection of the key holding the most: only when the key holds less than
 * its fair share (slots / keys holding connections, counting it) and the top key holds at
 * least two more than it, so an eviction always narrows the gap (no two keys evict each
 * other back and forth). No set of keys can then keep another key below its fair share.
 * Not thread-safe (http.c holds its conns_lock). Keys and links come from nitrod, not from
 * a caller's bytes.
 */
#ifndef NITRO_CONTROLLER_CONNPOOL_H
#define NITRO_CONTROLLER_CONNPOOL_H

#include <stdbool.h>
#include <stdint.h>

#define CP_KEY_NOT_ALLOWED ((uint64_t)1 << 32) /* no uid_t is this */

struct cp_link {
	struct cp_link *cl_prev, *cl_next; /* the key's connections, oldest first */
	int cl_ent;			   /* its key's entry */
};

struct connpool;

/* A pool for at most max_links links at once (and so as many keys); NULL on ENOMEM. */
struct connpool *cp_new(unsigned max_links);
void cp_free(struct connpool *p);

/* Connections key holds. */
unsigned cp_count(const struct connpool *p, uint64_t key);
/* Keys holding at least one connection. */
unsigned cp_keys(const struct connpool *p);
/* Adds l as key's newest connection: 0, or -1 when max_links are held. */
int cp_add(struct connpool *p, uint64_t key, struct cp_link *l);
/* Removes l (added, not yet removed). */
void cp_del(struct connpool *p, struct cp_link *l);
/* The key holding the most connections (any of them on a tie), false when none. */
bool cp_top(const struct connpool *p, uint64_t *key, unsigned *count);
/* Key's oldest connection, or NULL. Follow cl_next for the next oldest. */
struct cp_link *cp_oldest(const struct connpool *p, uint64_t key);
/* The slots (slots in all) are full and key wants one more: true with *victim the key one
 * of whose connections should be closed to make room (see above), false when key must be
 * refused. *fair is key's fair share. */
bool cp_evict_for(const struct connpool *p, uint64_t key, unsigned slots, uint64_t *victim,
		  unsigned *fair);

#endif
