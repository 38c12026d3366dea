/* The EBS card's virtio-blk device: one volume served over vhost-user, single-threaded on
 * the card's event loop, over a block back end (bdev.h: io_uring file, null, NBD).
 *
 * Requests: IN, OUT, FLUSH, GET_ID (the volume id without its dash, like EC2's NVMe
 * serial: exactly 20 bytes), DISCARD and WRITE_ZEROES (at most EBS_MAX_RANGES ranges of
 * bounded length); anything else is UNSUPP. The 16-byte header (and the ranges) are copied
 * out of guest memory once, then validated; a request that is misaligned, runs past the
 * end, writes a read-only volume or is malformed gets IOERR and touches nothing.
 *
 * IN and OUT are asynchronous: up to EBS_MAX_INFLIGHT requests are in flight across all
 * queues and complete in any order. A request moves in steps of at most EBS_CHUNK bytes:
 * unencrypted data goes straight between guest memory and the back end (an iovec over the
 * chain's buffers); encrypted data (and scattered data for a back end that takes one
 * buffer) goes through the request's own bounce buffer, encrypted on the way out and
 * decrypted on the way in, so backing storage never holds plaintext. FLUSH is handed to
 * the back end when it arrives and covers every write completed before it (virtio-blk's
 * contract): an acked write survives a host crash once a later flush was acked. Before
 * guest memory is unmapped (queue stop, new memory table, disconnect) the card waits for
 * every request in flight. Used entries of one batch share one notification.
 *
 * QoS: before each chain is taken the token buckets must admit it; when they do not, the
 * card stops taking chains from every queue and arms a timerfd for the moment they will,
 * then resumes (no busy waiting). Optional gp2 burst credits (qos.h). Counters: ops,
 * bytes, throttled time, remaining credits.
 *
 * Polling (ebs_poll): with --poll-us the card, after each burst of work, keeps looking at
 * the rings and completions for that long (again after each new piece of work) with the
 * driver's kicks switched off, before it re-enables them and sleeps in epoll.
 */
#ifndef NITRO_CARDS_EBS_EBS_H
#define NITRO_CARDS_EBS_EBS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sys/uio.h>

#include "cards/bdev/bdev.h"
#include "cards/bdev/blkctl.h"
#include "cards/bdev/qos.h"
#include "cards/lib/loop.h"
#include "cards/lib/vhost_user.h"
#include "volume/volume.h"

#define EBS_CHUNK (1u << 20)
#define EBS_MAX_INFLIGHT 128
#define EBS_REQ_SEGS 256 /* data buffers per request */
#define EBS_MAX_SEGS VR_MAX_SIZE
#define EBS_SEG_MAX 254		   /* advertised data segments per request */
#define EBS_MAX_RANGES 16	   /* discard / write-zeroes ranges per request */
#define EBS_MAX_DISCARD (1u << 22) /* sectors per range (2 GiB) */
#define EBS_MAX_ZEROES (1u << 16)  /* sectors per range (32 MiB) */
#define EBS_CONFIG_SIZE 60

#define EBS_MAX_QUEUES 64

struct ebs_stats {
	uint64_t st_ops, st_reads, st_writes, st_flushes, st_other;
	uint64_t st_bytes_read, st_bytes_written;
	uint64_t st_errors;
	uint64_t st_throttled_ns;
	uint64_t st_completed; /* chains handed back */
};

struct ebs;

struct ebs_req {
	struct ebs *r_e;
	struct ebs_req *r_next;	 /* free list */
	struct ebs_req *r_order; /* the next chain taken from the same queue */
	bool r_finished;	 /* finished, waiting for the chains taken before it */
	uint32_t r_written;	 /* bytes written into the chain, for the used entry */
	unsigned r_q;
	uint16_t r_head;
	uint32_t r_type;
	uint64_t r_sector;
	uint64_t r_len;	 /* data bytes */
	uint64_t r_done; /* data bytes finished */
	size_t r_step;	 /* bytes of the step in flight */
	bool r_bounced;	 /* the step in flight uses r_bounce */
	uint8_t *r_status;
	unsigned r_nsegs;
	struct iovec r_segs[EBS_REQ_SEGS]; /* the data buffers, in guest memory */
	struct iovec r_iov[EBS_REQ_SEGS];  /* the step's slice of them */
	uint8_t *r_bounce;		   /* EBS_CHUNK bytes once needed */
	struct bdev_io r_io;
};

struct ebs {
	struct volume *e_vol;
	struct bdev *e_bdev;
	int e_bdev_fd; /* the back end's event fd as watched on the loop */
	struct ebs_req *e_reqs, *e_free;
	unsigned e_inflight;
	/* Per queue, the chains taken and not yet handed back, in the order they were taken:
	 * used entries are published in that order (see finish). */
	struct ebs_req *e_order_head[EBS_MAX_QUEUES], *e_order_tail[EBS_MAX_QUEUES];
	unsigned e_batch;  /* nesting of batches; notifications wait for the outermost */
	uint64_t e_notify; /* queues with used entries not yet notified */
	bool e_starved;	   /* stopped taking chains for want of a free request */
	bool e_polling;	   /* kicks are switched off */
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
	struct ebs_stats e_stats;
	/* Paused for a snapshot (ebs_pause): no chain is taken; e_on_quiet runs once nothing
	 * is in flight any more. */
	bool e_paused;
	void (*e_on_quiet)(struct ebs *e, void *opaque);
	void *e_quiet_opaque;
};

/* Sets up the device for volume v stored on back end b, with nqueues queues (at most 64)
 * and the given limits (0: none). */
int ebs_init(struct ebs *e, struct volume *v, struct bdev *b, struct loop *l, unsigned nqueues,
	     uint64_t iops, uint64_t bytes_per_s, char *err, size_t errlen);
/* gp2 instead of a fixed IOPS limit (credit_cap 0: the standard bucket). */
void ebs_set_gp2(struct ebs *e, double credit_cap);
/* One polling pass: takes available chains and back-end completions; returns how many
 * things it did (0: idle). */
unsigned ebs_poll(struct ebs *e);
/* Switches the driver's kicks off (true) or back on; true when work arrived meanwhile. */
bool ebs_set_polling(struct ebs *e, bool on);
/* Stops taking chains (every queue); on_quiet(e, opaque) runs once, on the loop, when no
 * request is in flight any more (at once when none is). ebs_resume() takes chains again.
 * For crash-consistent snapshots: ebs_ctl_ops is the pair the control socket uses
 * (src/cards/bdev/blkctl.h; dev is the struct ebs). */
void ebs_pause(struct ebs *e, void (*on_quiet)(struct ebs *e, void *opaque), void *opaque);
void ebs_resume(struct ebs *e);
extern const struct blkctl_ops ebs_ctl_ops;

/* The card cannot take more chains now (throttled, paused, or no free request). */
static inline bool ebs_blocked(const struct ebs *e)
{
	return e->e_throttled || e->e_paused || (e->e_starved && !e->e_free);
}
void ebs_fini(struct ebs *e);
/* One line: id, ops, bytes, throttled time. */
void ebs_print_stats(const struct ebs *e, FILE *f);
uint64_t ebs_now_ns(void);

#endif
