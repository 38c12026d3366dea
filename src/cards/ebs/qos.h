/* Per-volume QoS: token buckets for operations and bytes per second (gp3-like defaults
 * 3000 IOPS and 125 MiB/s; a rate of 0 means unlimited).
 *
 * A request is admitted while the operation bucket holds a whole token and the byte bucket
 * is not in debt; it is then charged (the byte bucket may go negative for a large request,
 * which later requests pay back). Buckets hold at most QOS_BURST_MS of their rate, so a
 * measured rate over a few seconds stays within a few percent of the limit. Pure
 * arithmetic on a caller-supplied monotonic clock (ns), for the card's loop and for tests.
 */
#ifndef NITRO_CARDS_EBS_QOS_H
#define NITRO_CARDS_EBS_QOS_H

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

struct qos {
	struct qos_bucket q_ops, q_bytes;
	uint64_t q_last_ns;
};

void qos_init(struct qos *q, uint64_t iops, uint64_t bytes_per_s, uint64_t now_ns);
/* True when a request may start now; else *wait_ns is how long until one may. */
bool qos_admit(struct qos *q, uint64_t now_ns, uint64_t *wait_ns);
/* Charges one operation (when op) and bytes. */
void qos_charge(struct qos *q, bool op, uint64_t bytes);

#endif
