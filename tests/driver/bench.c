/* The benchmark of vu-blk-driver (see driver.h): random reads or writes of --bs bytes with
 * --qd requests in flight on each queue for --seconds, one thread driving all queues. Each
 * request's latency runs from its publication in the avail ring to its reaping from the
 * used ring (CLOCK_MONOTONIC). */
#include "blk.h"
#include "driver.h"

#include "lib/le.h"
#include "lib/util.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct lat {
	uint32_t *ns;
	size_t n, cap;
};

static void lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 1 << 16;
		l->ns = realloc(l->ns, l->cap * sizeof(*l->ns));
		if (!l->ns)
			die("out of memory for latencies");
	}
	l->ns[l->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile, in microseconds. */
static unsigned long long pct_us(const struct lat *l, unsigned pct)
{
	if (!l->n)
		return 0;
	size_t rank = (l->n * pct + 99) / 100;
	return (l->ns[rank ? rank - 1 : 0] + 500) / 1000;
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

struct bench {
	struct blk_dev d;
	const struct drv_opts *o;
	uint64_t blocks; /* number of bs-sized blocks on the disk */
	uint64_t rng;
	uint64_t next_block; /* fill */
	struct lat lat;
	unsigned long long errors;
	char err[256];
};

static void submit_one(struct bench *b, struct blk_queue *q)
{
	struct blk_req *r = blk_req_get(q);
	uint32_t spb = b->o->bs / BLK_SECTOR;
	uint64_t sector = b->o->fill ? b->next_block++ * spb : rng_next(&b->rng) % b->blocks * spb;
	if (b->o->zeroes || b->o->discard) { /* one range: sector, count, flags 0 */
		le64_put(r->data, sector);
		le32_put(r->data + 8, spb);
		le32_put(r->data + 12, 0);
		blk_submit(q, r, b->o->zeroes ? BLK_T_WRITE_ZEROES : BLK_T_DISCARD, 0, 16);
		return;
	}
	blk_submit(q, r, b->o->randwrite ? BLK_T_OUT : BLK_T_IN, sector, b->o->bs);
}

/* Reaps what is done on q, resubmitting while submit is true; returns completions or -1. */
static int reap_queue(struct bench *b, struct blk_queue *q, bool submit, unsigned *resub)
{
	int n = 0, got;
	struct blk_req *r;
	while ((got = blk_reap(q, &r, b->err, sizeof(b->err))) == 1) {
		lat_add(&b->lat, blk_now_ns() - r->t_submit);
		if (*r->status != BLK_S_OK)
			b->errors++;
		blk_req_put(q, r);
		if (submit && !(b->o->fill && b->next_block >= b->blocks)) {
			submit_one(b, q);
			(*resub)++;
		}
		n++;
	}
	if (got < 0)
		return -1;
	if (*resub)
		blk_kick(q);
	return n;
}

/* Sleeps until some queue's call eventfd fires. */
static int wait_any(struct bench *b)
{
	struct pollfd p[64];
	unsigned n = b->d.bd_nqueues;
	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){.fd = b->d.bd_q[i].bq_vr.vr_call, .events = POLLIN};
	int r;
	do
		r = poll(p, n, BLK_TIMEOUT_MS);
	while (r < 0 && errno == EINTR);
	if (r <= 0) {
		snprintf(b->err, sizeof(b->err), "no completion within %d ms: %s", BLK_TIMEOUT_MS,
			 r ? strerror(errno) : "timed out");
		return -1;
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t v;
		if ((p[i].revents & POLLIN) && read(p[i].fd, &v, sizeof(v)) < 0 &&
		    errno != EAGAIN) {
			snprintf(b->err, sizeof(b->err), "read call eventfd: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int run(struct bench *b)
{
	const struct drv_opts *o = b->o;
	for (unsigned qi = 0; qi < b->d.bd_nqueues; qi++) {
		struct blk_queue *q = &b->d.bd_q[qi];
		if (o->randwrite)
			for (unsigned i = 0; i < q->bq_nslots; i++)
				memset(q->bq_slots[i].data, 0x5a ^ (int)i, o->bs);
		blk_set_no_interrupt(q, o->poll);
	}
	uint64_t start = blk_now_ns(), end = start + (uint64_t)o->seconds * 1000000000ull;
	unsigned long long inflight = 0;
	for (unsigned qi = 0; qi < b->d.bd_nqueues; qi++) {
		for (unsigned i = 0; i < o->qd && !(o->fill && b->next_block >= b->blocks); i++) {
			submit_one(b, &b->d.bd_q[qi]);
			inflight++;
		}
		blk_kick(&b->d.bd_q[qi]);
	}
	bool submitting = true;
	uint64_t idle_since = 0;
	while (inflight) {
		if (submitting && !o->fill && blk_now_ns() >= end)
			submitting = false;
		int total = 0;
		for (unsigned qi = 0; qi < b->d.bd_nqueues; qi++) {
			unsigned resub = 0;
			int n = reap_queue(b, &b->d.bd_q[qi], submitting, &resub);
			if (n < 0)
				return -1;
			total += n;
			inflight -= (unsigned)n - resub;
		}
		if (total) {
			idle_since = 0;
			continue;
		}
		if (!o->poll) {
			if (wait_any(b))
				return -1;
			continue;
		}
		uint64_t now = blk_now_ns();
		if (!idle_since)
			idle_since = now;
		else if (now - idle_since > (uint64_t)BLK_TIMEOUT_MS * 1000000) {
			snprintf(b->err, sizeof(b->err), "no completion within %d ms",
				 BLK_TIMEOUT_MS);
			return -1;
		}
	}
	double secs = (double)(blk_now_ns() - start) / 1e9;
	qsort(b->lat.ns, b->lat.n, sizeof(*b->lat.ns), cmp_u32);
	printf("rw=%s bs=%u qd=%u queues=%u poll=%d seconds=%.2f ios=%zu iops=%.0f p50_us=%llu "
	       "p99_us=%llu errors=%llu\n",
	       o->fill	      ? "fill"
	       : o->zeroes    ? "zeroes"
	       : o->discard   ? "discard"
	       : o->randwrite ? "randwrite"
			      : "randread",
	       o->bs, o->qd, b->d.bd_nqueues, o->poll, secs, b->lat.n, (double)b->lat.n / secs,
	       pct_us(&b->lat, 50), pct_us(&b->lat, 99), b->errors);
	return 0;
}

int cmd_bench(const struct drv_opts *o)
{
	static struct bench b;
	b.o = o;
	b.rng = blk_now_ns() | 1;
	unsigned qsize = 128;
	while (qsize < 3 * o->qd)
		qsize *= 2;
	if (blk_open(&b.d, o->socket, o->mem, o->queues, qsize, o->bs, b.err, sizeof(b.err))) {
		warnmsg("%s", b.err);
		return 1;
	}
	b.blocks = b.d.bd_capacity / (o->bs / BLK_SECTOR);
	int rc = 1;
	if (b.blocks == 0)
		warnmsg("disk of %llu sectors is smaller than one %u-byte block",
			(unsigned long long)b.d.bd_capacity, o->bs);
	else if (o->randwrite && blk_has(&b.d, VIRTIO_BLK_F_RO))
		warnmsg("randwrite on a read-only device");
	else if (run(&b))
		warnmsg("bench: %s", b.err);
	else
		rc = b.errors ? 1 : 0;
	free(b.lat.ns);
	blk_close(&b.d);
	return rc;
}
