/* Token buckets (see allowance.h). */
#include "cards/vpc/allowance.h"

#define UNIT 1000000000ull

void tb_init(struct tbucket *b, uint64_t rate, uint64_t min_cost, uint64_t now)
{
	if (rate > TB_RATE_MAX)
		rate = TB_RATE_MAX;
	b->tb_rate = rate;
	b->tb_depth = rate * TB_BURST_NS;
	if (min_cost && b->tb_depth < min_cost * UNIT)
		b->tb_depth = min_cost * UNIT;
	b->tb_tokens = b->tb_depth;
	b->tb_last = now;
}

bool tb_check(struct tbucket *b, uint64_t cost, uint64_t now)
{
	if (!b->tb_rate)
		return true;
	if (now > b->tb_last) {
		uint64_t dt = now - b->tb_last;
		if (dt > TB_BURST_NS)
			dt = TB_BURST_NS;
		uint64_t add = dt * b->tb_rate;
		if (add >= b->tb_depth - b->tb_tokens)
			b->tb_tokens = b->tb_depth;
		else
			b->tb_tokens += add;
		b->tb_last = now;
	}
	return b->tb_tokens >= cost * UNIT;
}

void tb_take(struct tbucket *b, uint64_t cost)
{
	if (!b->tb_rate)
		return;
	uint64_t c = cost * UNIT;
	b->tb_tokens = b->tb_tokens > c ? b->tb_tokens - c : 0;
}
