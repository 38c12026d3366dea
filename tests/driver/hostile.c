/* The hostile-descriptor pass of vu-blk-driver (see driver.h). Each case connects afresh,
 * publishes one malformed chain on queue 0, watches for up to HOSTILE_WAIT_MS what the back
 * end does (completes it, stops the queue, or drops the connection), and then connects again
 * and reads sector 0: a back end passes when it still serves a new connection and never wrote
 * into a buffer the driver marked device-readable. */
#include "blk.h"
#include "driver.h"

#include "lib/util.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HOSTILE_QSIZE 128
#define HOSTILE_BUF 4096
#define HOSTILE_WAIT_MS 1000
#define CANARY 0xa5

struct hcase {
	const char *name;
	const char *what;
	/* Builds the chain with slot 0's (and 1's) buffers; returns the avail head. */
	uint16_t (*build)(struct blk_queue *q, uint16_t *step);
};

/* hdr (IN, sector 0) -> data (4 KiB, writable) -> status, at descriptors 0, 1, 2. */
static void good_chain(struct blk_queue *q)
{
	struct blk_req *r = &q->bq_slots[0];
	memset(r->hdr, 0, 16); /* type IN, sector 0 */
	*r->status = 0xff;
	blk_raw_desc(q, 0, r->hdr_gpa, 16, VRING_DESC_F_NEXT, 1);
	blk_raw_desc(q, 1, r->data_gpa, HOSTILE_BUF, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	blk_raw_desc(q, 2, r->status_gpa, 1, VRING_DESC_F_WRITE, 0);
}

static uint16_t b_outside(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 1, q->bq_vf->vf_mem_size + 4096, HOSTILE_BUF,
		     VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	return 0;
}

static uint16_t b_wrap(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 1, UINT64_MAX - 511, HOSTILE_BUF, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
		     2);
	return 0;
}

static uint16_t b_len_huge(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 1, q->bq_slots[0].data_gpa, UINT32_MAX,
		     VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 2);
	return 0;
}

static uint16_t b_loop(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 1, q->bq_slots[0].data_gpa, HOSTILE_BUF,
		     VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, 0);
	return 0;
}

static uint16_t b_long_chain(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	/* Every descriptor chained to the next, the last back to the first: longer than the
	 * queue without a two-element cycle. */
	struct blk_req *r = &q->bq_slots[0];
	memset(r->hdr, 0, 16);
	blk_raw_desc(q, 0, r->hdr_gpa, 16, VRING_DESC_F_NEXT, 1);
	for (uint16_t i = 1; i < q->bq_num; i++)
		blk_raw_desc(q, i, r->data_gpa, 512, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
			     (uint16_t)((i + 1) % q->bq_num));
	return 0;
}

static uint16_t b_next_range(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 1, q->bq_slots[0].data_gpa, HOSTILE_BUF,
		     VRING_DESC_F_NEXT | VRING_DESC_F_WRITE, (uint16_t)(q->bq_num + 7));
	return 0;
}

static uint16_t b_head_range(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	return (uint16_t)(q->bq_num + 3);
}

static uint16_t b_avail_jump(struct blk_queue *q, uint16_t *step)
{
	good_chain(q);
	*step = (uint16_t)(q->bq_num + 10);
	return 0;
}

static uint16_t b_indirect(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	/* A well-formed indirect table in slot 1's buffer, but INDIRECT_DESC is never acked. */
	struct blk_req *r = &q->bq_slots[0], *t = &q->bq_slots[1];
	uint8_t *d = t->data;
	uint64_t a[3] = {r->hdr_gpa, r->data_gpa, r->status_gpa};
	uint32_t l[3] = {16, 512, 1};
	uint16_t f[3] = {VRING_DESC_F_NEXT, VRING_DESC_F_NEXT | VRING_DESC_F_WRITE,
			 VRING_DESC_F_WRITE};
	for (int i = 0; i < 3; i++) {
		memcpy(d + 16 * i, &a[i], 8);
		memcpy(d + 16 * i + 8, &l[i], 4);
		memcpy(d + 16 * i + 12, &f[i], 2);
		uint16_t next = (uint16_t)(i + 1);
		memcpy(d + 16 * i + 14, &next, 2);
	}
	blk_raw_desc(q, 0, t->data_gpa, 48, VRING_DESC_F_INDIRECT, 0);
	return 0;
}

static uint16_t b_header_only(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 0, q->bq_slots[0].hdr_gpa, 16, 0, 0);
	return 0;
}

static uint16_t b_short_header(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 0, q->bq_slots[0].hdr_gpa, 8, VRING_DESC_F_NEXT, 1);
	return 0;
}

static uint16_t b_status_ro(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 2, q->bq_slots[0].status_gpa, 1, 0, 0);
	return 0;
}

static uint16_t b_data_ro(struct blk_queue *q, uint16_t *step)
{
	(void)step;
	good_chain(q);
	blk_raw_desc(q, 1, q->bq_slots[0].data_gpa, HOSTILE_BUF, VRING_DESC_F_NEXT, 2);
	return 0;
}

static const struct hcase cases[] = {
    {"addr-outside", "data descriptor 4 KiB past the end of guest memory", b_outside},
    {"addr-wraps", "data descriptor address wraps around 2^64", b_wrap},
    {"len-huge", "data descriptor of 4 GiB - 1 bytes", b_len_huge},
    {"loop", "descriptor 1 chains back to descriptor 0", b_loop},
    {"long-chain", "a cycle through every descriptor of the table", b_long_chain},
    {"next-range", "next index beyond the queue size", b_next_range},
    {"head-range", "avail head beyond the queue size", b_head_range},
    {"avail-jump", "avail index advanced by more than the queue size", b_avail_jump},
    {"indirect", "INDIRECT descriptor without VIRTIO_RING_F_INDIRECT_DESC", b_indirect},
    {"header-only", "a lone header: no data, no status", b_header_only},
    {"short-header", "an 8-byte request header", b_short_header},
    {"status-ro", "status in a device-readable descriptor", b_status_ro},
    {"data-ro", "read into a device-readable buffer", b_data_ro},
};

/* What the back end did within HOSTILE_WAIT_MS. */
static const char *watch(struct blk_dev *d, struct blk_queue *q, char *buf, size_t len)
{
	struct pollfd p[2] = {{.fd = q->bq_vr.vr_call, .events = POLLIN},
			      {.fd = d->bd_vf.vf_sock, .events = POLLIN}};
	uint64_t end = blk_now_ns() + (uint64_t)HOSTILE_WAIT_MS * 1000000;
	for (;;) {
		if (blk_used_idx(q) != 0) {
			snprintf(buf, len, "completed it with status %d", *q->bq_slots[0].status);
			return buf;
		}
		uint64_t now = blk_now_ns();
		if (now >= end)
			return "ignored it";
		if (poll(p, 2, (int)((end - now) / 1000000) + 1) > 0 && p[1].revents) {
			char c;
			if (recv(d->bd_vf.vf_sock, &c, 1, MSG_DONTWAIT) <= 0)
				return "closed the connection";
			return "sent an unexpected message";
		}
		if (p[0].revents) {
			uint64_t v;
			if (read(p[0].fd, &v, sizeof(v)) < 0) {
				/* only EAGAIN: the next round re-checks the used ring */
			}
		}
	}
}

int cmd_hostile(const struct drv_opts *o)
{
	unsigned failed = 0;
	char err[256], what[64];
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct hcase *h = &cases[i];
		struct blk_dev d;
		if (blk_open(&d, o->socket, o->mem, 1, HOSTILE_QSIZE, HOSTILE_BUF, err,
			     sizeof(err))) {
			printf("FAIL hostile-%s: connect: %s\n", h->name, err);
			failed++;
			break;
		}
		struct blk_queue *q = &d.bd_q[0];
		for (unsigned s = 0; s < 2; s++)
			memset(q->bq_slots[s].data, CANARY, HOSTILE_BUF);
		uint16_t step = 1;
		uint16_t head = h->build(q, &step);
		blk_raw_publish(q, head, step);
		blk_kick(q);
		const char *seen = watch(&d, q, what, sizeof(what));
		bool scribbled = false;
		for (unsigned j = 0; h->build == b_data_ro && j < HOSTILE_BUF; j++)
			scribbled |= q->bq_slots[0].data[j] != CANARY;
		blk_close(&d);

		/* The back end must still serve a new connection. */
		uint8_t sector[BLK_SECTOR];
		int st = -1;
		if (blk_open(&d, o->socket, o->mem, 1, HOSTILE_QSIZE, HOSTILE_BUF, err,
			     sizeof(err)) == 0) {
			st = blk_read(&d.bd_q[0], 0, sector, BLK_SECTOR, err, sizeof(err));
			blk_close(&d);
		}
		if (st != BLK_S_OK) {
			printf(
			    "FAIL hostile-%s: %s: back end %s, then a new connection failed: %s\n",
			    h->name, h->what, seen,
			    st < 0 ? err : "read of sector 0 did not return OK");
			failed++;
		} else if (scribbled) {
			printf("FAIL hostile-%s: %s: back end %s and wrote into a device-readable "
			       "buffer\n",
			       h->name, h->what, seen);
			failed++;
		} else {
			printf("ok   hostile-%s: %s: back end %s; still serves\n", h->name, h->what,
			       seen);
		}
		fflush(stdout);
	}
	printf("result: %zu cases, %u failed\n", ARRAY_SIZE(cases), failed);
	return failed ? 1 : 0;
}
