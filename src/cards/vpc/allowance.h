/* Token buckets for the interface allowances (packets/s, bytes/s). Integer only: tokens
 * are kept in units of 1e-9 of a packet or byte, so one nanosecond of time at rate R adds
 * R units. A bucket holds TB_BURST_NS of its rate (at least one `min_cost`) and starts
 * full. Rate 0 = unlimited (tb_take always succeeds).
 */
#ifndef NITRO_CARDS_VPC_ALLOWANCE_H
#define NITRO_CARDS_VPC_ALLOWANCE_H

#include <stdbool.h>
#include <stdint.h>

#define TB_BURST_NS 100000000ull    /* 100 ms */
#define TB_RATE_MAX 100000000000ull /* per second; keeps rate * TB_BURST_NS < 2^64 */

struct tbucket {
	uint64_t tb_rate;   /* per second (0 = unlimited) */
	uint64_t tb_depth;  /* units */
	uint64_t tb_tokens; /* units */
	uint64_t tb_last;   /* ns of the last refill */
};

void tb_init(struct tbucket *b, uint64_t rate, uint64_t min_cost, uint64_t now);
/* Refills up to now; true when `cost` is there now (not taken). */
bool tb_check(struct tbucket *b, uint64_t cost, uint64_t now);
/* Takes cost (after a tb_check that said yes). */
void tb_take(struct tbucket *b, uint64_t cost);

#endif
