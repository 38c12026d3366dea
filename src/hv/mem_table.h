/* The memory table a card holds, kept in step with guest memory (vhost-user's table and
 * nvme_wire's MEM): what the card must map is the VM's RAM without its holes (memory
 * donated to enclaves, boot/memory.h). mem_table_want() computes it; mem_table_sync()
 * takes a card from the table it has to that one with single-region operations, every
 * addition before any removal: since all regions are views of the same memfd at the same
 * addresses, every address of guest memory stays mapped in the card until its removal,
 * and none is ever briefly missing (a card serving I/O meanwhile sees the old or the new
 * table, never neither). Pure apart from the op callback; not thread-safe (the caller
 * holds its device's lock).
 */
#ifndef NITRO_HV_MEM_TABLE_H
#define NITRO_HV_MEM_TABLE_H

#include <stdbool.h>

#include "boot/memory.h"
#include "lib/vhost_user_wire.h"

/* The card's table as last sent (regions in the wire layout; uva = this process's
 * mapping of the region). */
struct mem_table {
	struct vu_mem_region *r;
	unsigned n, cap;
};

/* The regions the card should have for m: malloc'd into *out (free() it); returns how
 * many, or -1 when out of memory. */
int mem_table_want(const struct guest_mem *m, struct vu_mem_region **out);
/* op: adds (add true) or removes one region in the card; 0 on success. */
typedef int (*mem_table_op)(void *ctx, bool add, const struct vu_mem_region *r);
/* From t to want (nwant regions): op(add) for each region of want not in t, then
 * op(remove) for each of t not in want; t follows every operation that succeeded. 0, or
 * the first failing op's value (t then says what the card has, as far as it is known). */
int mem_table_sync(struct mem_table *t, const struct vu_mem_region *want, unsigned nwant,
		   mem_table_op op, void *ctx);
/* t = r (n regions): what the card has after a whole-table message. 0 or -1 (memory). */
int mem_table_set(struct mem_table *t, const struct vu_mem_region *r, unsigned n);
void mem_table_free(struct mem_table *t);

#endif
