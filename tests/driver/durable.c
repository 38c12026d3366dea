/* The durability pair of vu-blk-driver (see driver.h): write-flush writes check_pattern()
 * to sectors [0, --sectors) with --qd requests in flight, then one FLUSH; when the flush
 * is acked it prints "flushed" and exits at once (a test then kills the back end or the
 * host; --no-flush leaves the FLUSH out, the control that such a test can fail). verify
 * reads the same sectors back and compares them with the pattern (or with zeroes).
 * --first S moves the range to [S, S + N); --tag stamps each sector's number into its
 * first 8 bytes (little-endian), so that no two sectors (or 1 MiB chunks) are equal. */
#include "blk.h"
#include "driver.h"

#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DUR_BUF (64u << 10)
#define DUR_SECTORS (DUR_BUF / BLK_SECTOR)

static void fill(const struct drv_opts *o, uint8_t *buf, uint64_t sector, uint32_t n)
{
	check_pattern(buf, sector, n);
	for (uint32_t i = 0; o->tag && i < n; i++)
		for (int b = 0; b < 8; b++)
			buf[(size_t)i * BLK_SECTOR + b] = (uint8_t)((sector + i) >> (8 * b));
}

static int open_dev(struct blk_dev *d, const struct drv_opts *o, char *err, size_t errlen)
{
	if (blk_open(d, o->socket, o->mem, 1, 128, DUR_BUF, err, errlen))
		return -1;
	if (d->bd_capacity < o->sectors || d->bd_capacity - o->sectors < o->first) {
		snprintf(err, errlen, "disk of %llu sectors, asked for %llu",
			 (unsigned long long)d->bd_capacity, (unsigned long long)o->sectors);
		blk_close(d);
		return -1;
	}
	return 0;
}

int cmd_write_flush(const struct drv_opts *o)
{
	struct blk_dev d;
	char err[256];
	if (open_dev(&d, o, err, sizeof(err))) {
		warnmsg("%s", err);
		return 1;
	}
	struct blk_queue *q = &d.bd_q[0];
	uint64_t next = o->first, done = 0, end = o->first + o->sectors;
	unsigned inflight = 0, qd = o->qd < q->bq_nslots ? o->qd : q->bq_nslots;
	int rc = 0;
	while (done < o->sectors && !rc) {
		while (inflight < qd && next < end) {
			struct blk_req *r = blk_req_get(q);
			uint32_t n =
			    end - next < DUR_SECTORS ? (uint32_t)(end - next) : DUR_SECTORS;
			fill(o, r->data, next, n);
			r->cookie = (void *)(uintptr_t)n;
			blk_submit(q, r, BLK_T_OUT, next, n * BLK_SECTOR);
			next += n;
			inflight++;
		}
		blk_kick(q);
		struct blk_req *r;
		int got;
		while ((got = blk_reap(q, &r, err, sizeof(err))) == 1) {
			if (*r->status != BLK_S_OK) {
				warnmsg("write: status %u", *r->status);
				rc = 1;
			}
			done += (uintptr_t)r->cookie;
			inflight--;
			blk_req_put(q, r);
		}
		if (got < 0 ||
		    (inflight && !got && blk_wait(q, BLK_TIMEOUT_MS, err, sizeof(err)))) {
			warnmsg("%s", err);
			rc = 1;
		}
	}
	if (!rc && o->no_flush) {
		printf("written %llu sectors, not flushed\n", (unsigned long long)o->sectors);
		fflush(stdout);
	} else if (!rc) {
		int s = blk_flush(q, err, sizeof(err));
		if (s != BLK_S_OK) {
			warnmsg("flush: %s", s < 0 ? err : "status not OK");
			rc = 1;
		} else {
			printf("flushed %llu sectors\n", (unsigned long long)o->sectors);
			fflush(stdout);
		}
	}
	blk_close(&d);
	return rc;
}

int cmd_verify(const struct drv_opts *o)
{
	struct blk_dev d;
	char err[256];
	if (open_dev(&d, o, err, sizeof(err))) {
		warnmsg("%s", err);
		return 1;
	}
	uint8_t *buf = malloc(DUR_BUF), *want = malloc(DUR_BUF);
	int rc = !buf || !want;
	uint64_t end = o->first + o->sectors;
	for (uint64_t s = o->first; s < end && !rc; s += DUR_SECTORS) {
		uint32_t n = end - s < DUR_SECTORS ? (uint32_t)(end - s) : DUR_SECTORS;
		int st = blk_read(&d.bd_q[0], s, buf, n * BLK_SECTOR, err, sizeof(err));
		if (st != BLK_S_OK) {
			warnmsg("read sector %llu: %s", (unsigned long long)s,
				st < 0 ? err : "status not OK");
			rc = 1;
			break;
		}
		if (o->expect_zero)
			memset(want, 0, n * BLK_SECTOR);
		else
			fill(o, want, s, n);
		for (uint32_t i = 0; i < n; i++)
			if (memcmp(buf + i * BLK_SECTOR, want + i * BLK_SECTOR, BLK_SECTOR)) {
				printf("mismatch at sector %llu\n", (unsigned long long)(s + i));
				rc = 1;
				break;
			}
	}
	if (!rc)
		printf("verified %llu sectors\n", (unsigned long long)o->sectors);
	free(buf);
	free(want);
	blk_close(&d);
	return rc;
}
