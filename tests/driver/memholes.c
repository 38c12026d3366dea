/* The memholes pass of vu-blk-driver (see driver.h): the attack of a parent instance on the
 * memory it donated to an enclave, at the card's level. With CONFIGURE_MEM_SLOTS the
 * driver takes a 2 MiB range V out of the card's memory table as nitro-hv does when an
 * enclave starts (ADD_MEM_REG of the pieces around it, then REM_MEM_REG of the whole
 * region), then points a request's data descriptor into V: a read must fail with IOERR
 * and leave V as it was, a write must fail and leave the disk as it was, I/O elsewhere
 * goes on, a REM_MEM_REG of a region the card does not have is refused. After ADD_MEM_REG
 * of V (the enclave stopped) the same requests succeed. One ok/FAIL line per check. */
#include "blk.h"
#include "driver.h"

#include "lib/le.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MH_QSIZE 128
#define MH_BUF 4096u
#define MH_HOLE (2ull << 20)
#define MH_CANARY 0xa5

/* One request whose data descriptor points at data_gpa (anywhere), synchronously: the
 * status the device wrote, or -1 with err. */
static int submit_at(struct blk_queue *q, uint32_t type, uint64_t sector, uint64_t data_gpa,
		     uint32_t len, char *err, size_t errlen)
{
	struct blk_req *r = blk_req_get(q);
	if (!r)
		RETURN_ERR(-1, "no free request slot");
	uint16_t h = r->head;
	le32_put(r->hdr, type);
	le32_put(r->hdr + 4, 0);
	le64_put(r->hdr + 8, sector);
	*r->status = 0xff;
	blk_raw_desc(q, h, r->hdr_gpa, 16, VRING_DESC_F_NEXT, (uint16_t)(h + 1));
	blk_raw_desc(q, (uint16_t)(h + 1), data_gpa, len,
		     VRING_DESC_F_NEXT | (type == BLK_T_IN ? VRING_DESC_F_WRITE : 0),
		     (uint16_t)(h + 2));
	blk_raw_desc(q, (uint16_t)(h + 2), r->status_gpa, 1, VRING_DESC_F_WRITE, 0);
	r->busy = true;
	r->used_len = 0;
	q->bq_inflight++;
	blk_raw_publish(q, h, 1);
	blk_kick(q);
	for (;;) {
		struct blk_req *done;
		int k = blk_reap(q, &done, err, errlen);
		if (k < 0)
			return -1;
		if (k == 1) {
			int st = *done->status;
			blk_req_put(q, done);
			if (done != r)
				RETURN_ERR(-1, "another request completed");
			return st;
		}
		if (blk_wait(q, BLK_TIMEOUT_MS, err, errlen) < 0)
			return -1;
	}
}

static unsigned failures;

static void report(bool ok, const char *name, const char *what)
{
	printf("%s %s: %s\n", ok ? "ok  " : "FAIL", name, what);
	if (!ok)
		failures++;
}

static bool all(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

int cmd_memholes(const struct drv_opts *o)
{
	struct blk_dev d;
	char err[256];
	if (blk_open(&d, o->socket, o->mem, 1, MH_QSIZE, MH_BUF, err, sizeof(err))) {
		printf("FAIL open: %s\n", err);
		return 1;
	}
	struct vu_front *f = &d.bd_vf;
	struct blk_queue *q = &d.bd_q[0];
	uint64_t slots = 0, mem = f->vf_mem_size;
	uint64_t v = vu_alloc(f, MH_HOLE, MH_HOLE);
	static uint8_t a[MH_BUF], x[MH_BUF], y[MH_BUF], buf[MH_BUF];
	memset(a, 0x3c, sizeof(a));
	memset(x, 0x77, sizeof(x));
	memset(y, 0x11, sizeof(y));
	if (v == UINT64_MAX || v + MH_HOLE >= mem) {
		printf("FAIL setup: guest memory too small for a 2 MiB hole (--mem)\n");
		blk_close(&d);
		return 1;
	}
	uint8_t *vp = vu_ptr(f, v);
	report(vu_max_mem_slots(f, &slots, err, sizeof(err)) == 0 && slots >= 8, "max-slots",
	       "GET_MAX_MEM_SLOTS answers at least 8");
	report(blk_write(q, 0, a, MH_BUF, err, sizeof(err)) == BLK_S_OK &&
		   blk_write(q, 8, y, MH_BUF, err, sizeof(err)) == BLK_S_OK,
	       "setup", "sectors 0 and 8 written");

	/* The enclave starts: V leaves the card's table, the rest never does. */
	bool split = vu_mem_add(f, 0, v, err, sizeof(err)) == 0 &&
		     vu_mem_add(f, v + MH_HOLE, mem - v - MH_HOLE, err, sizeof(err)) == 0 &&
		     vu_mem_rem(f, 0, mem, err, sizeof(err)) == 0;
	report(split, "split", split ? "ADD_MEM_REG x2, REM_MEM_REG acknowledged" : err);
	if (!split) {
		blk_close(&d);
		return 1;
	}
	memset(vp, MH_CANARY, MH_BUF);
	int st = submit_at(q, BLK_T_IN, 0, v, MH_BUF, err, sizeof(err));
	report(st == BLK_S_IOERR && all(vp, MH_BUF, MH_CANARY), "read-into-hole",
	       "a read into the removed range fails with IOERR and writes nothing there");
	memcpy(vp, x, MH_BUF);
	st = submit_at(q, BLK_T_OUT, 8, v, MH_BUF, err, sizeof(err));
	int st2 = blk_read(q, 8, buf, MH_BUF, err, sizeof(err));
	report(st == BLK_S_IOERR && st2 == BLK_S_OK && !memcmp(buf, y, MH_BUF), "write-from-hole",
	       "a write from the removed range fails with IOERR and the disk keeps its data");
	st = blk_read(q, 0, buf, MH_BUF, err, sizeof(err));
	report(st == BLK_S_OK && !memcmp(buf, a, MH_BUF), "beside-hole",
	       "I/O outside the removed range goes on (same connection, same queue)");
	bool refused = vu_mem_rem(f, v, MH_HOLE, err, sizeof(err)) < 0;
	st = blk_read(q, 0, buf, MH_BUF, err, sizeof(err));
	report(refused && st == BLK_S_OK, "rem-unknown",
	       "REM_MEM_REG of a region the card does not have is refused, the card serves on");

	/* The enclave stopped: V comes back. */
	bool back = vu_mem_add(f, v, MH_HOLE, err, sizeof(err)) == 0;
	report(back, "re-add", back ? "ADD_MEM_REG of the range acknowledged" : err);
	memset(vp, MH_CANARY, MH_BUF);
	st = submit_at(q, BLK_T_IN, 0, v, MH_BUF, err, sizeof(err));
	report(st == BLK_S_OK && !memcmp(vp, a, MH_BUF), "read-after",
	       "a read into the range given back succeeds");
	memcpy(vp, x, MH_BUF);
	st = submit_at(q, BLK_T_OUT, 8, v, MH_BUF, err, sizeof(err));
	st2 = blk_read(q, 8, buf, MH_BUF, err, sizeof(err));
	report(st == BLK_S_OK && st2 == BLK_S_OK && !memcmp(buf, x, MH_BUF), "write-after",
	       "a write from the range given back succeeds");
	blk_close(&d);
	printf("%s\n", failures ? "memholes: FAILED" : "memholes: passed");
	return failures ? 1 : 0;
}
