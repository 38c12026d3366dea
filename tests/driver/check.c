/* The conformance pass of vu-blk-driver (see driver.h). */
#include "blk.h"
#include "driver.h"

#include "lib/util.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_BUF (64u << 10)
#define CHECK_QSIZE 128
#define CHECK_MIN_SECTORS 8192 /* 4 MiB: the fixed sectors below must fit */
#define INFLIGHT_SECTOR 2048
#define DISCARD_SECTOR 4096
#define ZEROES_SECTOR 4200

struct ctx {
	struct blk_dev *d;
	unsigned failed, passed, skipped;
	bool broken;	/* transport failure: later checks are not run */
	bool no_verify; /* the back end drops data (null-co): check statuses only */
	char err[256];
	uint8_t *buf, *buf2;
};

void check_pattern(uint8_t *buf, uint64_t sector, uint32_t nsectors)
{
	for (uint32_t s = 0; s < nsectors; s++)
		for (uint32_t j = 0; j < BLK_SECTOR; j++)
			buf[(size_t)s * BLK_SECTOR + j] = (uint8_t)((sector + s) * 37 + j + 0x5a);
}

static void line(struct ctx *c, const char *verdict, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void line(struct ctx *c, const char *verdict, const char *name, const char *fmt, ...)
{
	if (!strcmp(verdict, "ok"))
		c->passed++;
	else if (!strcmp(verdict, "FAIL"))
		c->failed++;
	else
		c->skipped++;
	printf("%-4s %s: ", verdict, name);
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static const char *status_name(int s)
{
	switch (s) {
	case BLK_S_OK:
		return "OK";
	case BLK_S_IOERR:
		return "IOERR";
	case BLK_S_UNSUPP:
		return "UNSUPP";
	case 0xff:
		return "never written";
	}
	return "invalid";
}

/* For a request that must return want: false (and a FAIL line) otherwise. */
static bool expect(struct ctx *c, const char *name, const char *what, int got, int want)
{
	if (got == want)
		return true;
	if (got < 0) {
		line(c, "FAIL", name, "%s: %s", what, c->err);
		c->broken = true;
	} else {
		line(c, "FAIL", name, "%s: status %d (%s), expected %d (%s)", what, got,
		     status_name(got), want, status_name(want));
	}
	return false;
}

static struct blk_queue *queue(struct ctx *c, unsigned i)
{
	return &c->d->bd_q[i % c->d->bd_nqueues];
}

static void check_write_read(struct ctx *c)
{
	const char *name = "write-read";
	uint64_t cap = c->d->bd_capacity;
	struct {
		uint64_t sector;
		uint32_t n;
	} ext[] = {{0, 1}, {1, 1}, {7, 1}, {1000, 8}, {1500, 128}, {cap - 1, 1}};
	char detail[256] = "";
	size_t off = 0;
	for (unsigned i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		struct blk_queue *q = queue(c, i);
		uint32_t len = ext[i].n * BLK_SECTOR;
		char what[64];
		snprintf(what, sizeof(what), "sectors %llu+%u on queue %u",
			 (unsigned long long)ext[i].sector, ext[i].n, q->bq_idx);
		check_pattern(c->buf, ext[i].sector, ext[i].n);
		if (!expect(c, name, what,
			    blk_write(q, ext[i].sector, c->buf, len, c->err, sizeof(c->err)),
			    BLK_S_OK))
			return;
		memset(c->buf2, 0, len);
		if (!expect(c, name, what,
			    blk_read(q, ext[i].sector, c->buf2, len, c->err, sizeof(c->err)),
			    BLK_S_OK))
			return;
		if (!c->no_verify && memcmp(c->buf, c->buf2, len)) {
			line(c, "FAIL", name, "%s: data read back differs", what);
			return;
		}
		off += (size_t)snprintf(detail + off, sizeof(detail) - off, "%s%llu+%u",
					i ? " " : "", (unsigned long long)ext[i].sector, ext[i].n);
	}
	line(c, "ok", name, "%s", detail);
}

/* Many writes in flight on every queue at once, then all read back. */
static void check_inflight(struct ctx *c)
{
	const char *name = "in-flight";
	const uint32_t n = 8, len = n * BLK_SECTOR; /* 4 KiB each */
	unsigned per_q = queue(c, 0)->bq_nslots < 32 ? queue(c, 0)->bq_nslots : 32;
	unsigned total = per_q * c->d->bd_nqueues;
	for (unsigned qi = 0; qi < c->d->bd_nqueues; qi++) {
		struct blk_queue *q = queue(c, qi);
		for (unsigned i = 0; i < per_q; i++) {
			struct blk_req *r = blk_req_get(q);
			uint64_t sector = INFLIGHT_SECTOR + (uint64_t)(qi * per_q + i) * n;
			check_pattern(r->data, sector, n);
			blk_submit(q, r, BLK_T_OUT, sector, len);
		}
		blk_kick(q);
	}
	unsigned done = 0, bad = 0;
	while (done < total) {
		bool any = false;
		for (unsigned qi = 0; qi < c->d->bd_nqueues; qi++) {
			struct blk_queue *q = queue(c, qi);
			struct blk_req *r;
			int got;
			while ((got = blk_reap(q, &r, c->err, sizeof(c->err))) == 1) {
				any = true;
				done++;
				bad += *r->status != BLK_S_OK;
				blk_req_put(q, r);
			}
			if (got < 0) {
				expect(c, name, "reap", -1, 0);
				return;
			}
		}
		if (any || done == total)
			continue;
		/* Nothing ready: wait on a queue that still has requests (the eventfd
		 * counter keeps a signal that arrives before the wait). */
		for (unsigned qi = 0; qi < c->d->bd_nqueues; qi++) {
			struct blk_queue *q = queue(c, qi);
			if (q->bq_inflight == 0)
				continue;
			if (blk_wait(q, BLK_TIMEOUT_MS, c->err, sizeof(c->err))) {
				expect(c, name, "waiting for completions", -1, 0);
				return;
			}
			break;
		}
	}
	if (bad) {
		line(c, "FAIL", name, "%u of %u writes in flight did not complete OK", bad, total);
		return;
	}
	for (unsigned i = 0; i < total; i++) {
		uint64_t sector = INFLIGHT_SECTOR + (uint64_t)i * n;
		check_pattern(c->buf, sector, n);
		if (!expect(c, name, "read back",
			    blk_read(queue(c, i), sector, c->buf2, len, c->err, sizeof(c->err)),
			    BLK_S_OK))
			return;
		if (!c->no_verify && memcmp(c->buf, c->buf2, len)) {
			line(c, "FAIL", name, "sector %llu: data read back differs",
			     (unsigned long long)sector);
			return;
		}
	}
	line(c, "ok", name, "%u x %u bytes in flight on %u queue(s), sectors %u+%u", total, len,
	     c->d->bd_nqueues, INFLIGHT_SECTOR, total * n);
}

static void check_flush(struct ctx *c)
{
	if (!blk_has(c->d, VIRTIO_BLK_F_FLUSH)) {
		line(c, "skip", "flush", "VIRTIO_BLK_F_FLUSH not offered");
		return;
	}
	if (expect(c, "flush", "flush", blk_flush(queue(c, 0), c->err, sizeof(c->err)), BLK_S_OK))
		line(c, "ok", "flush", "status OK");
}

static void check_get_id(struct ctx *c)
{
	char id[BLK_ID_BYTES + 1];
	int s = blk_get_id(queue(c, 0), id, c->err, sizeof(c->err));
	if (s == BLK_S_UNSUPP) {
		line(c, "skip", "get-id", "device answers UNSUPP");
		return;
	}
	if (!expect(c, "get-id", "get-id", s, BLK_S_OK))
		return;
	for (char *p = id; *p; p++)
		if (!isprint((unsigned char)*p) || *p == '"')
			*p = '?';
	line(c, "ok", "get-id", "\"%s\"", id);
}

static void check_discard(struct ctx *c)
{
	const char *name = "discard";
	if (!blk_has(c->d, VIRTIO_BLK_F_DISCARD)) {
		line(c, "skip", name, "VIRTIO_BLK_F_DISCARD not offered");
		return;
	}
	if (!expect(c, name, "discard 8 sectors",
		    blk_discard(queue(c, 0), DISCARD_SECTOR, 8, c->err, sizeof(c->err)), BLK_S_OK))
		return;
	/* The contents are unspecified after a discard; reading must still work. */
	if (expect(c, name, "read after discard",
		   blk_read(queue(c, 0), DISCARD_SECTOR, c->buf2, 8 * BLK_SECTOR, c->err,
			    sizeof(c->err)),
		   BLK_S_OK))
		line(c, "ok", name, "sectors %u+8 (max_discard_sectors=%u)", DISCARD_SECTOR,
		     c->d->bd_max_discard_sectors);
}

static void check_write_zeroes(struct ctx *c)
{
	const char *name = "write-zeroes";
	if (!blk_has(c->d, VIRTIO_BLK_F_WRITE_ZEROES)) {
		line(c, "skip", name, "VIRTIO_BLK_F_WRITE_ZEROES not offered");
		return;
	}
	struct blk_queue *q = queue(c, 0);
	uint32_t len = 8 * BLK_SECTOR;
	check_pattern(c->buf, ZEROES_SECTOR, 8);
	if (!expect(c, name, "write pattern",
		    blk_write(q, ZEROES_SECTOR, c->buf, len, c->err, sizeof(c->err)), BLK_S_OK) ||
	    !expect(c, name, "write zeroes 8 sectors",
		    blk_write_zeroes(q, ZEROES_SECTOR, 8, false, c->err, sizeof(c->err)),
		    BLK_S_OK) ||
	    !expect(c, name, "read back",
		    blk_read(q, ZEROES_SECTOR, c->buf2, len, c->err, sizeof(c->err)), BLK_S_OK))
		return;
	for (uint32_t i = 0; i < len && !c->no_verify; i++)
		if (c->buf2[i]) {
			line(c, "FAIL", name, "byte %u of sectors %u+8 is 0x%02x, not zero", i,
			     ZEROES_SECTOR, c->buf2[i]);
			return;
		}
	if (c->no_verify)
		line(c, "ok", name, "sectors %u+8 status OK (not verified)", ZEROES_SECTOR);
	else
		line(c, "ok", name, "sectors %u+8 read back as zeroes", ZEROES_SECTOR);
}

static void check_past_end(struct ctx *c)
{
	const char *name = "past-end";
	struct blk_queue *q = queue(c, 0);
	uint64_t cap = c->d->bd_capacity;
	check_pattern(c->buf, cap, 2);
	if (!expect(c, name, "read at capacity",
		    blk_read(q, cap, c->buf2, BLK_SECTOR, c->err, sizeof(c->err)), BLK_S_IOERR) ||
	    !expect(c, name, "read across the end",
		    blk_read(q, cap - 1, c->buf2, 2 * BLK_SECTOR, c->err, sizeof(c->err)),
		    BLK_S_IOERR) ||
	    !expect(c, name, "write at capacity",
		    blk_write(q, cap, c->buf, BLK_SECTOR, c->err, sizeof(c->err)), BLK_S_IOERR) ||
	    !expect(c, name, "read at sector 2^63",
		    blk_read(q, 1ull << 63, c->buf2, BLK_SECTOR, c->err, sizeof(c->err)),
		    BLK_S_IOERR))
		return;
	line(c, "ok", name, "reads and writes past sector %llu return IOERR",
	     (unsigned long long)cap);
}

static void check_unknown_type(struct ctx *c)
{
	if (expect(c, "unknown-type", "request type 99",
		   blk_do(queue(c, 0), 99, 0, c->buf2, BLK_SECTOR, c->err, sizeof(c->err)),
		   BLK_S_UNSUPP))
		line(c, "ok", "unknown-type", "type 99 returns UNSUPP");
}

static void check_alive(struct ctx *c)
{
	check_pattern(c->buf, 0, 1);
	if (expect(c, "alive", "read sector 0",
		   blk_read(queue(c, 0), 0, c->buf2, BLK_SECTOR, c->err, sizeof(c->err)),
		   BLK_S_OK)) {
		if (!c->no_verify && memcmp(c->buf, c->buf2, BLK_SECTOR))
			line(c, "FAIL", "alive", "sector 0 changed");
		else
			line(c, "ok", "alive", "sector 0 intact after the error cases");
	}
}

/* VIRTIO_BLK_F_RO: reads work, writes return IOERR and change nothing. */
static void check_read_only(struct ctx *c)
{
	const char *name = "read-only";
	struct blk_queue *q = queue(c, 0);
	uint64_t last = c->d->bd_capacity - 1;
	if (!expect(c, name, "read sector 0",
		    blk_read(q, 0, c->buf, BLK_SECTOR, c->err, sizeof(c->err)), BLK_S_OK) ||
	    !expect(c, name, "read the last sector",
		    blk_read(q, last, c->buf2, BLK_SECTOR, c->err, sizeof(c->err)), BLK_S_OK))
		return;
	check_pattern(c->buf2, 0, 1);
	if (!expect(c, name, "write sector 0",
		    blk_write(q, 0, c->buf2, BLK_SECTOR, c->err, sizeof(c->err)), BLK_S_IOERR) ||
	    !expect(c, name, "read sector 0 again",
		    blk_read(q, 0, c->buf2, BLK_SECTOR, c->err, sizeof(c->err)), BLK_S_OK))
		return;
	if (!c->no_verify && memcmp(c->buf, c->buf2, BLK_SECTOR)) {
		line(c, "FAIL", name, "the refused write changed sector 0");
		return;
	}
	line(c, "ok", name, "reads OK, a write returns IOERR and changes nothing");
}

int cmd_check(const struct drv_opts *o)
{
	struct blk_dev d;
	struct ctx c = {.d = &d, .no_verify = o->no_verify};
	if (blk_open(&d, o->socket, o->mem, o->queues, CHECK_QSIZE, CHECK_BUF, c.err,
		     sizeof(c.err))) {
		line(&c, "FAIL", "connect", "%s", c.err);
		return 1;
	}
	line(&c, "ok", "connect", "features=0x%llx acked=0x%llx protocol=0x%llx max_queues=%u",
	     (unsigned long long)d.bd_vf.vf_features, (unsigned long long)d.bd_vf.vf_acked,
	     (unsigned long long)d.bd_vf.vf_proto, d.bd_vf.vf_max_queues);
	if (d.bd_capacity < CHECK_MIN_SECTORS) {
		line(&c, "FAIL", "config", "capacity %llu sectors, the check needs %u",
		     (unsigned long long)d.bd_capacity, CHECK_MIN_SECTORS);
		blk_close(&d);
		return 1;
	}
	line(&c, "ok", "config", "capacity=%llu blk_size=%u num_queues=%u ro=%d%s",
	     (unsigned long long)d.bd_capacity, d.bd_blk_size, d.bd_num_queues,
	     blk_has(&d, VIRTIO_BLK_F_RO), c.no_verify ? " (--no-verify: statuses only)" : "");
	c.buf = malloc(CHECK_BUF);
	c.buf2 = malloc(CHECK_BUF);
	if (!c.buf || !c.buf2) {
		line(&c, "FAIL", "setup", "out of memory");
		blk_close(&d);
		return 1;
	}
	void (*rw_checks[])(struct ctx *) = {
	    check_write_read,	check_inflight, check_flush,	    check_get_id, check_discard,
	    check_write_zeroes, check_past_end, check_unknown_type, check_alive};
	void (*ro_checks[])(struct ctx *) = {check_read_only, check_get_id, check_past_end,
					     check_unknown_type};
	bool ro = blk_has(&d, VIRTIO_BLK_F_RO);
	void (**checks)(struct ctx *) = ro ? ro_checks : rw_checks;
	size_t n = ro ? ARRAY_SIZE(ro_checks) : ARRAY_SIZE(rw_checks);
	for (size_t i = 0; i < n && !c.broken; i++)
		checks[i](&c);
	if (c.broken)
		printf("FAIL transport: remaining checks not run\n");
	printf("result: %u ok, %u failed, %u skipped\n", c.passed, c.failed, c.skipped);
	free(c.buf);
	free(c.buf2);
	blk_close(&d);
	return c.failed ? 1 : 0;
}
