/* The EBS card's virtio-blk device: one volume served over vhost-user, single-threaded on
 * the card's event loop.
 *
 * Requests: IN, OUT, FLUSH (fdatasync: an acked write survives a host crash once a flush
 * completed), GET_ID (the volume id without its dash, like EC2's NVMe serial: exactly 20
 * bytes), DISCARD and WRITE_ZEROES (at most EBS_MAX_RANGES ranges of bounded length);
 * anything else is UNSUPP. The 16-byte header (and the ranges) are copied out of guest
 * memory once, then validated; a request that is misaligned, runs past the end, writes a
 * read-only volume or is malformed gets IOERR and touches nothing. Data moves through a
 * bounce buffer in EBS_CHUNK pieces.
 *
 * QoS: before each chain is taken the token buckets must admit it; when they do not, the
 * card stops taking chains from every queue and arms a timerfd for the moment they will,
 * then resumes (no busy waiting). Counters: ops, bytes, throttled time.
 */
#ifndef NITRO_CARDS_EBS_EBS_H
#define NITRO_CARDS_EBS_EBS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cards/ebs/qos.h"
#include "cards/ebs/volume.h"
#include "cards/lib/loop.h"
#include "cards/lib/vhost_user.h"

#define EBS_CHUNK (1u << 20)
#define EBS_MAX_SEGS VR_MAX_SIZE
#define EBS_SEG_MAX 254		   /* advertised data segments per request */
#define EBS_MAX_RANGES 16	   /* discard / write-zeroes ranges per request */
#define EBS_MAX_DISCARD (1u << 22) /* sectors per range (2 GiB) */
#define EBS_MAX_ZEROES (1u << 16)  /* sectors per range (32 MiB) */
#define EBS_CONFIG_SIZE 60

struct ebs_stats {
	uint64_t st_ops, st_reads, st_writes, st_flushes, st_other;
	uint64_t st_bytes_read, st_bytes_written;
	uint64_t st_errors;
	uint64_t st_throttled_ns;
};

struct ebs {
	struct volume *e_vol;
	struct loop *e_loop;
	struct vu_dev e_dev;
	struct vu_ops e_ops;
	unsigned e_nqueues;
	struct qos e_qos;
	bool e_qos_on;
	int e_timer; /* timerfd, armed while throttled */
	bool e_throttled;
	uint64_t e_throttle_start;
	unsigned e_next_queue; /* where serving resumes after a throttle (fairness) */
	struct vr_seg *e_segs;
	uint8_t *e_buf; /* EBS_CHUNK bytes */
	struct ebs_stats e_stats;
};

/* Sets up the device for volume v with nqueues queues and the given limits (0: none). */
int ebs_init(struct ebs *e, struct volume *v, struct loop *l, unsigned nqueues, uint64_t iops,
	     uint64_t bytes_per_s, char *err, size_t errlen);
void ebs_fini(struct ebs *e);
/* One line: id, ops, bytes, throttled time. */
void ebs_print_stats(const struct ebs *e, FILE *f);
uint64_t ebs_now_ns(void);

#endif
