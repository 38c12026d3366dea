/* virtio-blk over vhost-user, driven from this process: the guest side of split virtqueues.
 *
 * blk_open() connects, negotiates (vu_init), reads the config space and starts nqueues
 * rings of qsize entries. Each ring has qsize / 3 request slots; slot i owns descriptors
 * 3i (header, 16 bytes), 3i+1 (data, up to buf_size bytes of its own buffer in guest
 * memory) and 3i+2 (status byte), so at most qsize / 3 requests are in flight per queue.
 * Ring memory is assumed little-endian like the host (checked at compile time).
 *
 * Asynchronous use: blk_req_get, fill req->data, blk_submit (publishes in the avail ring),
 * blk_kick, then blk_reap (non-blocking) and blk_wait until done, blk_req_put. The
 * synchronous helpers (blk_read ...) do one request at a time with a timeout and return the
 * virtio status (BLK_S_OK, BLK_S_IOERR, BLK_S_UNSUPP, or what the device wrote), or -1 with
 * err set on a transport failure (timeout, device writing bad used entries).
 */
#ifndef NITRO_TESTS_DRIVER_BLK_H
#define NITRO_TESTS_DRIVER_BLK_H

#include "vu_front.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* VIRTIO_BLK_F_* (feature bit numbers), request types and status values. */
#include <linux/virtio_blk.h>
/* VRING_DESC_F_*, VRING_AVAIL_F_NO_INTERRUPT, VRING_USED_F_NO_NOTIFY */
#include <linux/virtio_ring.h>

#define BLK_T_IN VIRTIO_BLK_T_IN
#define BLK_T_OUT VIRTIO_BLK_T_OUT
#define BLK_T_FLUSH VIRTIO_BLK_T_FLUSH
#define BLK_T_GET_ID VIRTIO_BLK_T_GET_ID
#define BLK_T_DISCARD VIRTIO_BLK_T_DISCARD
#define BLK_T_WRITE_ZEROES VIRTIO_BLK_T_WRITE_ZEROES

#define BLK_S_OK VIRTIO_BLK_S_OK
#define BLK_S_IOERR VIRTIO_BLK_S_IOERR
#define BLK_S_UNSUPP VIRTIO_BLK_S_UNSUPP

#define BLK_SECTOR 512
#define BLK_ID_BYTES 20
#define BLK_CONFIG_LEN 60 /* virtio_blk_config up to write_zeroes_may_unmap + padding */
#define BLK_TIMEOUT_MS 10000

struct blk_req {
	uint8_t *hdr, *data, *status;
	uint64_t hdr_gpa, data_gpa, status_gpa;
	uint16_t head;	   /* first descriptor: 3 * slot */
	bool busy;	   /* submitted, not yet reaped */
	uint32_t used_len; /* bytes the device reported written */
	uint64_t t_submit; /* CLOCK_MONOTONIC ns at blk_submit */
	void *cookie;	   /* for the caller */
};

struct blk_queue {
	struct vu_front *bq_vf;
	unsigned bq_idx;
	uint16_t bq_num;
	uint8_t *bq_desc, *bq_avail, *bq_used;
	uint16_t bq_avail_idx; /* next free avail slot (free-running) */
	uint16_t bq_last_used; /* next used entry to consume (free-running) */
	struct vu_vring bq_vr;
	uint32_t bq_buf_size;
	unsigned bq_nslots, bq_nfree, bq_inflight;
	struct blk_req *bq_slots;
	uint16_t *bq_free; /* stack of free slot numbers */
};

struct blk_dev {
	struct vu_front bd_vf;
	uint64_t bd_capacity; /* 512-byte sectors */
	uint32_t bd_blk_size;
	uint16_t bd_num_queues; /* from config when MQ, else 1 */
	uint32_t bd_max_discard_sectors, bd_max_write_zeroes_sectors;
	unsigned bd_nqueues; /* started */
	struct blk_queue *bd_q;
};

int blk_open(struct blk_dev *d, const char *path, uint64_t mem_size, unsigned nqueues,
	     unsigned qsize, uint32_t buf_size, char *err, size_t errlen);
void blk_close(struct blk_dev *d);
bool blk_has(const struct blk_dev *d, unsigned feature);

struct blk_req *blk_req_get(struct blk_queue *q);
void blk_req_put(struct blk_queue *q, struct blk_req *r);
/* Publishes r: type, sector and len bytes of r->data (len 0: no data descriptor). */
void blk_submit(struct blk_queue *q, struct blk_req *r, uint32_t type, uint64_t sector,
		uint32_t len);
/* Notifies the back end unless it has asked not to be. */
void blk_kick(struct blk_queue *q);
/* 1 and *out when a request completed, 0 when none is pending, -1 on a bad used entry. */
int blk_reap(struct blk_queue *q, struct blk_req **out, char *err, size_t errlen);
/* Waits for the call eventfd: 0 when signalled, -1 on timeout or error. */
int blk_wait(struct blk_queue *q, int timeout_ms, char *err, size_t errlen);
/* Polling mode: asks the back end not to signal the call eventfd. */
void blk_set_no_interrupt(struct blk_queue *q, bool on);

/* Raw access for hostile tests (the slot bookkeeping is bypassed: use a fresh device and
 * close it afterwards): blk_raw_desc writes descriptor i verbatim, blk_raw_publish puts head
 * in the next avail entry and advances the avail index by step (normally 1). */
void blk_raw_desc(struct blk_queue *q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
		  uint16_t next);
void blk_raw_publish(struct blk_queue *q, uint16_t head, uint16_t step);
uint16_t blk_used_idx(struct blk_queue *q);

/* One request, synchronously; buf is copied in (device-readable types) or out. */
int blk_do(struct blk_queue *q, uint32_t type, uint64_t sector, void *buf, uint32_t len, char *err,
	   size_t errlen);
int blk_read(struct blk_queue *q, uint64_t sector, void *buf, uint32_t len, char *err,
	     size_t errlen);
int blk_write(struct blk_queue *q, uint64_t sector, const void *buf, uint32_t len, char *err,
	      size_t errlen);
int blk_flush(struct blk_queue *q, char *err, size_t errlen);
/* id gets up to 20 bytes and a terminating NUL (needs 21 bytes). */
int blk_get_id(struct blk_queue *q, char *id, char *err, size_t errlen);
int blk_discard(struct blk_queue *q, uint64_t sector, uint32_t nsectors, char *err, size_t errlen);
int blk_write_zeroes(struct blk_queue *q, uint64_t sector, uint32_t nsectors, bool unmap, char *err,
		     size_t errlen);

uint64_t blk_now_ns(void);

#endif
