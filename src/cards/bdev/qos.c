/* Token buckets for IOPS and throughput. */
#include "cards/bdev/qos.h"

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
	*q = (struct qos){0};
	bucket_init(&q->q_ops, iops, 1.0);
	bucket_init(&q->q_bytes, bytes_per_s, 0.0);
	q->q_last_ns = now_ns;
}

static void set_rate(struct qos_bucket *b, double rate)
{
	if (b->qb_rate == rate)
		return;
	b->qb_rate = rate;
	b->qb_cap = rate * QOS_BURST_MS / 1000.0;
	if (b->qb_cap < 1.0)
		b->qb_cap = 1.0;
	if (b->qb_tokens > b->qb_cap)
		b->qb_tokens = b->qb_cap;
}

static void refill(struct qos_bucket *b, double secs)
{
	if (b->qb_rate <= 0)
		return;
	b->qb_tokens += b->qb_rate * secs;
	if (b->qb_tokens > b->qb_cap)
		b->qb_tokens = b->qb_cap;
}

void qos_init_gp2(struct qos *q, uint64_t size, double credit_cap, uint64_t bytes_per_s,
		  uint64_t now_ns)
{
	double base = 3.0 * (double)size / (double)(1ull << 30);
	if (base < QOS_GP2_MIN_IOPS)
		base = QOS_GP2_MIN_IOPS;
	if (base > QOS_GP2_MAX_IOPS)
		base = QOS_GP2_MAX_IOPS;
	base = (double)(uint64_t)base;
	qos_init(q, (uint64_t)base, bytes_per_s, now_ns);
	q->q_gp2 = true;
	q->q_baseline = base;
	q->q_burst = base < QOS_GP2_BURST_IOPS ? QOS_GP2_BURST_IOPS : base;
	q->q_credit_cap = credit_cap > 0 ? credit_cap : QOS_GP2_CREDITS;
	q->q_credits = q->q_credit_cap;
	if (q->q_burst > base)
		set_rate(&q->q_ops, q->q_burst);
}

bool qos_admit(struct qos *q, uint64_t now_ns, uint64_t *wait_ns)
{
	if (now_ns > q->q_last_ns) {
		double secs = (double)(now_ns - q->q_last_ns) / 1e9;
		refill(&q->q_ops, secs);
		refill(&q->q_bytes, secs);
		if (q->q_gp2) {
			q->q_credits += q->q_baseline * secs;
			if (q->q_credits > q->q_credit_cap)
				q->q_credits = q->q_credit_cap;
		}
		q->q_last_ns = now_ns;
	}
	if (q->q_gp2) /* burst while credits last, else the baseline */
		set_rate(&q->q_ops, q->q_credits >= 1.0 ? q->q_burst : q->q_baseline);
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
	if (op && q->q_gp2 && q->q_credits > 0)
		q->q_credits -= 1.0;
	if (q->q_bytes.qb_rate > 0)
		q->q_bytes.qb_tokens -= (double)bytes;
}
