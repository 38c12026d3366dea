/* The scatter pass of vu-blk-driver (see driver.h): requests whose data is split across
 * several descriptors at lengths that are not multiples of a sector (so one sector spans
 * two buffers), as a guest's page-crossing I/O does. A write of 8 sectors from 4 odd
 * pieces, then a read into 5 other odd pieces, each on a fresh connection with raw
 * descriptors, then a plain read; all three must agree with check_pattern(). */
#include "blk.h"
#include "driver.h"

#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SC_QSIZE 128
#define SC_BUF (64u << 10)
#define SC_SECTOR 777
#define SC_BYTES 4096u
#define SC_GAP 8192u /* pieces sit this far apart in the data buffer */

/* One request with its data in npieces descriptors (lengths len[]), synchronous. */
static int scattered(const struct drv_opts *o, bool write, const uint32_t *len, unsigned npieces,
		     uint8_t *data, char *err, size_t errlen)
{
	struct blk_dev d;
	if (blk_open(&d, o->socket, o->mem, 1, SC_QSIZE, SC_BUF, err, errlen))
		return -1;
	struct blk_queue *q = &d.bd_q[0];
	struct blk_req *r = &q->bq_slots[0];
	int rc = -1;
	memset(r->hdr, 0, 16);
	r->hdr[0] = write ? BLK_T_OUT : BLK_T_IN;
	for (int i = 0; i < 8; i++)
		r->hdr[8 + i] = (uint8_t)((uint64_t)SC_SECTOR >> (8 * i));
	*r->status = 0xff;
	blk_raw_desc(q, 0, r->hdr_gpa, 16, VRING_DESC_F_NEXT, 1);
	uint32_t off = 0;
	for (unsigned k = 0; k < npieces; k++) {
		uint8_t *p = r->data + k * SC_GAP;
		if (write)
			memcpy(p, data + off, len[k]);
		else
			memset(p, 0xa5, len[k]);
		blk_raw_desc(q, (uint16_t)(1 + k), r->data_gpa + k * SC_GAP, len[k],
			     VRING_DESC_F_NEXT | (write ? 0 : VRING_DESC_F_WRITE),
			     (uint16_t)(2 + k));
		off += len[k];
	}
	blk_raw_desc(q, (uint16_t)(1 + npieces), r->status_gpa, 1, VRING_DESC_F_WRITE, 0);
	blk_raw_publish(q, 0, 1);
	blk_kick(q);
	uint64_t deadline = blk_now_ns() + (uint64_t)BLK_TIMEOUT_MS * 1000000;
	while (blk_used_idx(q) == 0 && blk_now_ns() < deadline)
		if (blk_wait(q, 100, err, errlen) && blk_used_idx(q) == 0 &&
		    blk_now_ns() >= deadline)
			break;
	if (blk_used_idx(q) == 0) {
		snprintf(err, errlen, "no completion within %d ms", BLK_TIMEOUT_MS);
	} else if (*r->status != BLK_S_OK) {
		snprintf(err, errlen, "status %u", *r->status);
	} else {
		off = 0;
		for (unsigned k = 0; k < npieces && !write; k++) {
			memcpy(data + off, r->data + k * SC_GAP, len[k]);
			off += len[k];
		}
		rc = 0;
	}
	blk_close(&d);
	return rc;
}

int cmd_scatter(const struct drv_opts *o)
{
	static const uint32_t wlen[] = {100, 1000, 300, 2696};
	static const uint32_t rlen[] = {519, 1, 3000, 64, 512};
	uint8_t want[SC_BYTES], got[SC_BYTES];
	char err[256];
	int failed = 0;
	check_pattern(want, SC_SECTOR, SC_BYTES / BLK_SECTOR);
	if (scattered(o, true, wlen, 4, want, err, sizeof(err))) {
		printf("FAIL scatter-write: %s\n", err);
		return 1;
	}
	printf("ok   scatter-write: 8 sectors from pieces of 100, 1000, 300, 2696 bytes\n");
	memset(got, 0, sizeof(got));
	if (scattered(o, false, rlen, 5, got, err, sizeof(err))) {
		printf("FAIL scatter-read: %s\n", err);
		failed++;
	} else if (memcmp(got, want, SC_BYTES)) {
		printf("FAIL scatter-read: data differs from what was written\n");
		failed++;
	} else {
		printf("ok   scatter-read: into pieces of 519, 1, 3000, 64, 512 bytes\n");
	}
	struct blk_dev d;
	memset(got, 0, sizeof(got));
	if (blk_open(&d, o->socket, o->mem, 1, SC_QSIZE, SC_BUF, err, sizeof(err)) ||
	    blk_read(&d.bd_q[0], SC_SECTOR, got, SC_BYTES, err, sizeof(err)) != BLK_S_OK) {
		printf("FAIL plain-read: %s\n", err);
		failed++;
	} else if (memcmp(got, want, SC_BYTES)) {
		printf("FAIL plain-read: data differs from the scattered write\n");
		failed++;
	} else {
		printf("ok   plain-read: one buffer\n");
	}
	blk_close(&d);
	printf("result: %d failed\n", failed);
	return failed ? 1 : 0;
}
