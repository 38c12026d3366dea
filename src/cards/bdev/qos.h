/* Per-volume QoS: token buckets for operations and bytes per second (gp3-like defaults
 * 3000 IOPS and 125 MiB/s; a rate of 0 means unlimited).
 *
 * A request is admitted while the operation bucket holds a whole token and the byte bucket
 * is not in debt; it is then charged (the byte bucket may go negative for a large request,
 * which later requests pay back). Buckets hold at most QOS_BURST_MS of their rate, so a
 * measured rate over a few seconds stays within a few percent of the limit. Pure
 * arithmetic on a caller-supplied monotonic clock (ns), for the card's loop and for tests.
 *
 * gp2 (qos_init_gp2, instead of a fixed IOPS limit): a baseline of 3 IOPS per GiB (at
 * least 100, at most 16000) and, for volumes whose baseline is below 3000, bursts of up
 * to 3000 IOPS paid from an I/O credit bucket of 5.4 million credits (full at start) that
 * refills at the baseline rate: each operation spends one credit; while credits last the
 * operation bucket runs at the burst rate, then at the baseline.
 */
#ifndef NITRO_CARDS_BDEV_QOS_H
#define NITRO_CARDS_BDEV_QOS_H

#include <stdbool.h>
#include <stdint.h>

#define QOS_DEFAULT_IOPS 3000
#define QOS_DEFAULT_MIBPS 125
#define QOS_BURST_MS 50

struct qos_bucket {
	double qb_rate; /* tokens per second; 0: unlimited */
	double qb_cap;
	double qb_tokens;
};

#define QOS_GP2_BURST_IOPS 3000
#define QOS_GP2_CREDITS 5400000.0
#define QOS_GP2_MIN_IOPS 100
#define QOS_GP2_MAX_IOPS 16000

struct qos {
	struct qos_bucket q_ops, q_bytes;
	uint64_t q_last_ns;
	bool q_gp2;
	double q_baseline; /* gp2: IOPS without credits */
	double q_burst;	   /* gp2: IOPS while credits last */
	double q_credits, q_credit_cap;
};

void qos_init(struct qos *q, uint64_t iops, uint64_t bytes_per_s, uint64_t now_ns);
/* gp2 for a volume of size bytes; credit_cap 0 means QOS_GP2_CREDITS. */
void qos_init_gp2(struct qos *q, uint64_t size, double credit_cap, uint64_t bytes_per_s,
		  uint64_t now_ns);
/* True when a request may start now; else *wait_ns is how long until one may. */
bool qos_admit(struct qos *q, uint64_t now_ns, uint64_t *wait_ns);
/* Charges one operation (when op) and bytes. */
void qos_charge(struct qos *q, bool op, uint64_t bytes);

#endif
