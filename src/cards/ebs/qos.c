/* Token buckets for IOPS and throughput. */
#include "cards/ebs/qos.h"

static void bucket_init(struct qos_bucket *b, uint64_t rate, double min_cap)
{
	b->qb_rate = (double)rate;
	b->qb_cap = b->qb_rate * QOS_BURST_MS / 1000.0;
	if (b->qb_cap < min_cap)
		b->qb_cap = min_cap;
	b->qb_tokens = b->qb_cap;
}

void qos_init(struct qos *q, uint64_t iops, uint64_t bytes_per_s, uint64_t now_ns)
{
	bucket_init(&q->q_ops, iops, 1.0);
	bucket_init(&q->q_bytes, bytes_per_s, 0.0);
	q->q_last_ns = now_ns;
}

static void refill(struct qos_bucket *b, double secs)
{
	if (b->qb_rate <= 0)
		return;
	b->qb_tokens += b->qb_rate * secs;
	if (b->qb_tokens > b->qb_cap)
		b->qb_tokens = b->qb_cap;
}

bool qos_admit(struct qos *q, uint64_t now_ns, uint64_t *wait_ns)
{
	if (now_ns > q->q_last_ns) {
		double secs = (double)(now_ns - q->q_last_ns) / 1e9;
		refill(&q->q_ops, secs);
		refill(&q->q_bytes, secs);
		q->q_last_ns = now_ns;
	}
	double wait = 0;
	if (q->q_ops.qb_rate > 0 && q->q_ops.qb_tokens < 1.0)
		wait = (1.0 - q->q_ops.qb_tokens) / q->q_ops.qb_rate;
	if (q->q_bytes.qb_rate > 0 && q->q_bytes.qb_tokens < 0) {
		double w = -q->q_bytes.qb_tokens / q->q_bytes.qb_rate;
		if (w > wait)
			wait = w;
	}
	if (wait <= 0)
		return true;
	*wait_ns = (uint64_t)(wait * 1e9) + 1000; /* round up past the boundary */
	return false;
}

void qos_charge(struct qos *q, bool op, uint64_t bytes)
{
	if (op && q->q_ops.qb_rate > 0)
		q->q_ops.qb_tokens -= 1.0;
	if (q->q_bytes.qb_rate > 0)
		q->q_bytes.qb_tokens -= (double)bytes;
}
