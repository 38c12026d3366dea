/* vu-blk-driver order: are used entries handed back in the order the requests were
 * submitted? nitro's cards promise that per queue (nitro-hv resumes a restarted card from
 * the used index, which is only exact then); other back ends need not, so this is its own
 * subcommand. One batch on queue 0: writes that dirty the page cache, a FLUSH (slow: an
 * fdatasync), then reads that a back end can finish at once. Prints the completion order
 * and "order: ok" or "order: FAIL ...", exit 0 or 1. */
#include <stdio.h>
#include <string.h>

#include "blk.h"
#include "driver.h"

#define ORDER_QSIZE 128
#define ORDER_BUF 65536

int cmd_order(const struct drv_opts *o)
{
	struct blk_dev d;
	char err[256];
	if (blk_open(&d, o->socket, o->mem, 1, ORDER_QSIZE, ORDER_BUF, err, sizeof(err))) {
		printf("order: FAIL connect: %s\n", err);
		return 1;
	}
	struct blk_queue *q = &d.bd_q[0];
	unsigned n = q->bq_nslots < 40 ? q->bq_nslots : 40, nwrites = 8;
	struct blk_req *sent[40];
	for (unsigned i = 0; i < n; i++) {
		struct blk_req *r = blk_req_get(q);
		r->cookie = (void *)(uintptr_t)i;
		if (i < nwrites) {
			check_pattern(r->data, (uint64_t)i * 128, 128);
			blk_submit(q, r, BLK_T_OUT, (uint64_t)i * 128, ORDER_BUF);
		} else if (i == nwrites) {
			blk_submit(q, r, BLK_T_FLUSH, 0, 0);
		} else {
			blk_submit(q, r, BLK_T_IN, (uint64_t)(i - nwrites) * 8, 4096);
		}
		sent[i] = r;
	}
	blk_kick(q);
	unsigned got = 0, first_bad = n;
	char order[40 * 4 + 1] = "";
	while (got < n) {
		struct blk_req *r;
		int rc = blk_reap(q, &r, err, sizeof(err));
		if (rc < 0) {
			printf("order: FAIL reap: %s\n", err);
			blk_close(&d);
			return 1;
		}
		if (rc == 0) {
			if (blk_wait(q, BLK_TIMEOUT_MS, err, sizeof(err))) {
				printf("order: FAIL waiting: %s\n", err);
				blk_close(&d);
				return 1;
			}
			continue;
		}
		unsigned i = (unsigned)(uintptr_t)r->cookie;
		snprintf(order + strlen(order), sizeof(order) - strlen(order), " %u", i);
		if (r != sent[got] && first_bad == n)
			first_bad = got;
		if (*r->status != BLK_S_OK && first_bad == n)
			first_bad = got;
		got++;
		blk_req_put(q, r);
	}
	blk_close(&d);
	printf("completion order:%s\n", order);
	if (first_bad < n) {
		printf("order: FAIL completion %u is not request %u (or not OK)\n", first_bad,
		       first_bad);
		return 1;
	}
	printf("order: ok (%u writes, a flush, %u reads)\n", nwrites, n - nwrites - 1);
	return 0;
}
