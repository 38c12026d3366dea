/* cmocka tests of the NVMe card core (src/cards/nvme/nvme.c) on heap guest memory and a
 * null back end: identify data (EC2's model, serial, vendor area), the PRP and SGL walk
 * (every bad address or offset fails the command, never the card), queue creation abuse,
 * doorbells past the queue (CSTS.CFS), I/O with shadow doorbells and EventIdx (also while
 * the card polls), SMART. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "nvmetest.h"

#define OUTSIDE 0x7fff00000000ull

static int setup(void **state)
{
	static struct nt t;
	*state = &t;
	return nt_init(&t, 16u << 20, false);
}

static int teardown(void **state)
{
	nt_fini(*state);
	return 0;
}

static int identify(struct nt *t, uint8_t cns, uint32_t nsid, uint64_t prp1, uint64_t prp2)
{
	uint8_t c[64];
	nt_cmd(c, 0x06, nsid, prp1, prp2);
	c[40] = cns;
	return nt_post(t, 0, c, NULL);
}

static void test_identify(void **state)
{
	struct nt *t = *state;
	assert_int_equal(identify(t, 1, 0, NT_DATA, 0), 0);
	uint8_t *d = nt_ptr(t, NT_DATA);
	assert_int_equal(le16_get(d), 0x1d0f);
	assert_memory_equal(d + 4, "vol0123456789abcdef0", 20);
	assert_memory_equal(d + 24, "Amazon Elastic Block Store      ", 32);
	assert_memory_equal(d + 3072, "sdf ", 4);		  /* EC2's vendor area */
	assert_int_equal(le16_get(d + 256) & (1u << 8), 1u << 8); /* OACS: doorbell buffer */
	assert_int_equal(le32_get(d + 80), 0x10400);
	assert_int_equal(identify(t, 0, 1, NT_DATA, 0), 0);
	assert_int_equal(le64_get(d), (16u << 20) / 512); /* NSZE */
	assert_int_equal(identify(t, 0, 2, NT_DATA, 0), NVME_SC_INVALID_NS);
	assert_int_equal(identify(t, 2, 0, NT_DATA, 0), 0);
	assert_int_equal(le32_get(d), 1);
	assert_int_equal(le32_get(d + 4), 0);
	assert_int_equal(identify(t, 0x7f, 0, NT_DATA, 0), NVME_SC_INVALID_FIELD);
	/* an offset PRP1: the rest goes to PRP2, which must be page aligned */
	assert_int_equal(identify(t, 1, 0, NT_DATA + 0x800, NT_DATA + 0x1000), 0);
	assert_int_equal(identify(t, 1, 0, NT_DATA + 0x800, NT_DATA + 0x1008),
			 NVME_SC_INVALID_PRP_OFFSET);
	assert_int_equal(identify(t, 1, 0, NT_DATA + 1, 0), NVME_SC_INVALID_PRP_OFFSET);
	assert_int_equal(identify(t, 1, 0, OUTSIDE, 0), NVME_SC_DATA_XFER_ERROR);
	assert_int_equal(identify(t, 1, 0, NT_GPA + NT_MEM - 0x800, NT_GPA + NT_MEM),
			 NVME_SC_DATA_XFER_ERROR); /* the second page is past guest RAM */
	assert_false(t->c.c_failed);
}

static void test_prp_lists(void **state)
{
	struct nt *t = *state;
	uint8_t c[64] = {0};
	struct iovec iov[NVME_MAX_SEGS];
	uint64_t *list = (uint64_t *)nt_ptr(t, NT_DATA + 0x10000);
	/* 5 pages: PRP1 + a list of 4, contiguous pages merge into one iovec */
	for (unsigned i = 0; i < 4; i++)
		list[i] = NT_DATA + 0x1000 * (i + 1);
	nt_cmd(c, 0x02, 1, NT_DATA, NT_DATA + 0x10000);
	assert_int_equal(nvme_map_data(&t->gm, c, 5 * 4096, iov, NVME_MAX_SEGS), 1);
	assert_int_equal(iov[0].iov_len, 5 * 4096);
	/* a list entry outside RAM, misaligned, and a list pointer outside RAM */
	list[2] = OUTSIDE;
	assert_int_equal(nvme_map_data(&t->gm, c, 5 * 4096, iov, NVME_MAX_SEGS),
			 -NVME_SC_DATA_XFER_ERROR);
	list[2] = NT_DATA + 0x3004;
	assert_int_equal(nvme_map_data(&t->gm, c, 5 * 4096, iov, NVME_MAX_SEGS),
			 -NVME_SC_INVALID_PRP_OFFSET);
	list[2] = NT_DATA + 0x3000;
	nt_cmd(c, 0x02, 1, NT_DATA, OUTSIDE);
	assert_int_equal(nvme_map_data(&t->gm, c, 5 * 4096, iov, NVME_MAX_SEGS),
			 -NVME_SC_DATA_XFER_ERROR);
	/* a list that chains to itself ends at the transfer's length, bounded */
	uint64_t *l2 = (uint64_t *)nt_ptr(t, NT_DATA + 0x11000);
	for (unsigned i = 0; i < 511; i++)
		l2[i] = NT_DATA;
	l2[511] = NT_DATA + 0x11000;
	nt_cmd(c, 0x02, 1, NT_DATA, NT_DATA + 0x11000);
	assert_true(nvme_map_data(&t->gm, c, NVME_MAX_XFER, iov, NVME_MAX_SEGS) > 0);
	/* more iovecs than the caller has room for */
	for (unsigned i = 0; i < 511; i++)
		l2[i] = NT_DATA + (i % 2) * 0x2000;
	assert_int_equal(nvme_map_data(&t->gm, c, NVME_MAX_XFER, iov, 4), -NVME_SC_DATA_XFER_ERROR);
}

static void sgl_desc(uint8_t *d, uint64_t addr, uint32_t len, uint8_t type)
{
	memset(d, 0, 16);
	le64_put(d, addr);
	le32_put(d + 8, len);
	d[15] = (uint8_t)(type << 4);
}

static void test_sgl(void **state)
{
	struct nt *t = *state;
	uint8_t c[64];
	struct iovec iov[8];
	nt_cmd(c, 0x02, 1, 0, 0);
	c[1] = 1 << 6; /* PSDT: SGL */
	sgl_desc(c + 24, NT_DATA, 4096, 0);
	assert_int_equal(nvme_map_data(&t->gm, c, 4096, iov, 8), 1);
	/* a last segment of two data blocks */
	uint8_t *seg = nt_ptr(t, NT_DATA + 0x8000);
	sgl_desc(seg, NT_DATA, 1024, 0);
	sgl_desc(seg + 16, NT_DATA + 0x4000, 3072, 0);
	sgl_desc(c + 24, NT_DATA + 0x8000, 32, 3);
	assert_int_equal(nvme_map_data(&t->gm, c, 4096, iov, 8), 2);
	/* a data block outside RAM, a reserved type, a segment shorter than the data */
	sgl_desc(seg + 16, OUTSIDE, 3072, 0);
	assert_int_equal(nvme_map_data(&t->gm, c, 4096, iov, 8), -NVME_SC_DATA_XFER_ERROR);
	sgl_desc(seg + 16, NT_DATA, 3072, 7);
	assert_int_equal(nvme_map_data(&t->gm, c, 4096, iov, 8), -NVME_SC_SGL_INVALID_TYPE);
	sgl_desc(c + 24, NT_DATA + 0x8000, 16, 3);
	sgl_desc(seg, NT_DATA, 1024, 0);
	assert_int_equal(nvme_map_data(&t->gm, c, 4096, iov, 8), -NVME_SC_DATA_XFER_ERROR);
	/* a segment that points at itself: bounded by the descriptor count */
	sgl_desc(seg, NT_DATA + 0x8000, 16, 2);
	sgl_desc(c + 24, NT_DATA + 0x8000, 16, 2);
	assert_true(nvme_map_data(&t->gm, c, 4096, iov, 8) < 0);
}

static int create(struct nt *t, uint8_t op, unsigned qid, unsigned size, uint64_t addr,
		  uint32_t dw11)
{
	uint8_t c[64];
	nt_cmd(c, op, 0, addr, 0);
	le32_put(c + 40, (uint32_t)(size - 1) << 16 | qid);
	le32_put(c + 44, dw11);
	return nt_post(t, 0, c, NULL);
}

static int set_queues(struct nt *t, unsigned n)
{
	uint8_t c[64];
	uint32_t dw0;
	nt_cmd(c, 0x09, 0, 0, 0);
	c[40] = 0x07;
	le32_put(c + 44, (n - 1) << 16 | (n - 1));
	int st = nt_post(t, 0, c, &dw0);
	return st ? st : (int)(dw0 & 0xffff) + 1;
}

static void test_queue_creation_abuse(void **state)
{
	struct nt *t = *state;
	uint64_t sq = NT_DATA + 0x4000, cq = NT_DATA + 0x6000;
	assert_int_equal(set_queues(t, 100), 4); /* nqids 5: 4 I/O queue pairs granted */
	assert_int_equal(create(t, 0x05, 0, NT_QD, cq, 1), NVME_SC_QID_INVALID);
	assert_int_equal(create(t, 0x05, 5, NT_QD, cq, 1), NVME_SC_QID_INVALID);
	assert_int_equal(create(t, 0x05, 0xffff, NT_QD, cq, 1), NVME_SC_QID_INVALID);
	assert_int_equal(create(t, 0x05, 1, 1, cq, 1), NVME_SC_QUEUE_SIZE);
	assert_int_equal(create(t, 0x05, 1, 65536, cq, 1), NVME_SC_QUEUE_SIZE);
	assert_int_equal(create(t, 0x05, 1, NT_QD, OUTSIDE, 1), NVME_SC_DATA_XFER_ERROR);
	assert_int_equal(create(t, 0x05, 1, 1024, NT_GPA + NT_MEM - 4096, 1),
			 NVME_SC_DATA_XFER_ERROR); /* runs past guest RAM */
	assert_int_equal(create(t, 0x05, 1, NT_QD, cq + 8, 1), NVME_SC_INVALID_PRP_OFFSET);
	assert_int_equal(create(t, 0x05, 1, NT_QD, cq, 0), NVME_SC_INVALID_FIELD);
	assert_int_equal(create(t, 0x05, 1, NT_QD, cq, 3 | 200u << 16), NVME_SC_INVALID_VECTOR);
	assert_int_equal(create(t, 0x01, 1, NT_QD, sq, 1 | 1u << 16), NVME_SC_CQ_INVALID);
	assert_int_equal(create(t, 0x05, 1, NT_QD, cq, 3), 0);
	assert_int_equal(create(t, 0x05, 1, NT_QD, cq, 3), NVME_SC_QID_INVALID); /* exists */
	assert_int_equal(create(t, 0x01, 1, NT_QD, sq, 1 | 9u << 16), NVME_SC_CQ_INVALID);
	assert_int_equal(create(t, 0x01, 1, NT_QD, sq, 1 | 1u << 16), 0);
	assert_int_equal(create(t, 0x04, 1, NT_QD, 0, 0), NVME_SC_DELETE_CQ_INVALID); /* in use */
	assert_int_equal(create(t, 0x00, 3, NT_QD, 0, 0), NVME_SC_QID_INVALID);
	assert_int_equal(create(t, 0x00, 1, NT_QD, 0, 0), 0);
	assert_int_equal(create(t, 0x04, 1, NT_QD, 0, 0), 0);
	assert_false(t->c.c_failed);
}

static void io_queue(struct nt *t)
{
	assert_int_equal(set_queues(t, 1), 1);
	t->sq[1] = NT_DATA + 0x4000;
	t->cq[1] = NT_DATA + 0x6000;
	assert_int_equal(create(t, 0x05, 1, NT_QD, t->cq[1], 3), 0);
	assert_int_equal(create(t, 0x01, 1, NT_QD, t->sq[1], 1 | 1u << 16), 0);
}

static int rw(struct nt *t, uint8_t op, uint64_t slba, unsigned nlb, uint64_t prp1, uint64_t prp2)
{
	uint8_t c[64];
	nt_cmd(c, op, 1, prp1, prp2);
	le64_put(c + 40, slba);
	le32_put(c + 48, nlb - 1);
	return nt_post(t, 1, c, NULL);
}

static void test_io_and_doorbells(void **state)
{
	struct nt *t = *state;
	io_queue(t);
	memset(nt_ptr(t, NT_DATA + 0x8000), 0xab, 4096);
	assert_int_equal(rw(t, 0x01, 0, 8, NT_DATA + 0x8000, 0), 0);
	assert_int_equal(rw(t, 0x02, 0, 8, NT_DATA + 0x8000, 0), 0);
	assert_int_equal(nt_ptr(t, NT_DATA + 0x8000)[100], 0); /* null back end: zeroes */
	uint64_t nlbas = (16u << 20) / 512;
	assert_int_equal(rw(t, 0x02, nlbas - 1, 2, NT_DATA + 0x8000, 0), NVME_SC_LBA_RANGE);
	assert_int_equal(rw(t, 0x02, UINT64_MAX, 2, NT_DATA + 0x8000, 0), NVME_SC_LBA_RANGE);
	assert_int_equal(rw(t, 0x02, 0, 512, NT_DATA + 0x8000, 0), NVME_SC_INVALID_FIELD);
	assert_int_equal(rw(t, 0x02, 0, 8, OUTSIDE, 0), NVME_SC_DATA_XFER_ERROR);
	assert_int_equal(rw(t, 0x7f, 0, 8, NT_DATA, 0), NVME_SC_INVALID_OPCODE);
	assert_int_equal(t->c.c_smart.sm_read_cmds, 1);
	/* shadow doorbells: the card reads tails from guest memory and sets EventIdx */
	uint8_t c[64];
	nt_cmd(c, 0x7c, 0, NT_DATA + 0xa000, NT_DATA + 0xb000);
	assert_int_equal(nt_post(t, 0, c, NULL), 0);
	assert_int_equal(t->sh.s_flags & NVW_F_DBBUF, NVW_F_DBBUF);
	assert_int_equal(rw(t, 0x02, 0, 8, NT_DATA + 0x8000, 0), 0);
	uint32_t *ei = (uint32_t *)nt_ptr(t, NT_DATA + 0xb000);
	assert_int_equal(ei[2], t->tail[1]);
	/* the error log holds the failed commands */
	nt_cmd(c, 0x02, 0, NT_DATA, 0);
	le32_put(c + 40, 0x01 | (64u * 16 / 4 - 1) << 16);
	assert_int_equal(nt_post(t, 0, c, NULL), 0);
	assert_true(le64_get(nt_ptr(t, NT_DATA)) >= 5);
	/* a tail past the queue fails the controller, never the card */
	uint32_t *db = (uint32_t *)nt_ptr(t, NT_DATA + 0xa000);
	db[2] = NT_QD + 3;
	nvme_kick(&t->c, 1);
	assert_true(t->c.c_failed);
	assert_int_equal(t->sh.s_flags & NVW_F_FATAL, NVW_F_FATAL);
}

/* The Linux driver's rule (nvme_dbbuf_need_event): ring when the EventIdx lies in
 * [old, new), in 16-bit arithmetic. */
static bool need_event(uint16_t ei, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - ei - 1) < (uint16_t)(new_idx - old);
}

/* The driver's submission with shadow doorbells: the entry, the shadow tail, and whether
 * it would write the MMIO doorbell (no kick here: the test decides). */
static bool submit(struct nt *t, unsigned q, uint8_t op, uint64_t slba)
{
	uint8_t c[64];
	nt_cmd(c, op, 1, NT_DATA + 0x8000, 0);
	le64_put(c + 40, slba);
	le16_put(c + 2, ++t->cid);
	memcpy(nt_ptr(t, t->sq[q]) + t->tail[q] * 64, c, 64);
	uint16_t old = (uint16_t)t->tail[q];
	t->tail[q] = (t->tail[q] + 1) % NT_QD;
	t->c.c_dbs[2 * q] = t->tail[q];
	return need_event((uint16_t)t->c.c_eis[2 * q], (uint16_t)t->tail[q], old);
}

/* Completions posted on CQ q since the last call (the driver's head moves with them). */
static unsigned reap(struct nt *t, unsigned q)
{
	unsigned n = 0;
	for (;;) {
		uint8_t *e = nt_ptr(t, t->cq[q]) + t->head[q] * 16;
		uint16_t st = le16_get(e + 14);
		if ((st & 1) != t->phase[q])
			return n;
		assert_int_equal(st >> 1, 0);
		n++;
		if (++t->head[q] == NT_QD) {
			t->head[q] = 0;
			t->phase[q] ^= 1;
		}
		t->c.c_dbs[2 * q + 1] = t->head[q];
	}
}

/* Busy-poll window: the EventIdx keeps the driver from ringing while the card polls,
 * then asks for the next ring again, and what raced in meanwhile is taken. */
static void test_eventidx_while_polling(void **state)
{
	struct nt *t = *state;
	io_queue(t);
	assert_false(nvme_poll(&t->c)); /* no shadow doorbells yet: nothing to poll */
	uint8_t c[64];
	nt_cmd(c, 0x7c, 0, NT_DATA + 0xa000, NT_DATA + 0xb000);
	assert_int_equal(nt_post(t, 0, c, NULL), 0);
	/* not polling: the first submission after the card caught up rings, later ones not */
	assert_true(submit(t, 1, 0x02, 0));
	nvme_kick(&t->c, 1);
	assert_int_equal(reap(t, 1), 1);
	assert_true(submit(t, 1, 0x02, 8));
	assert_false(submit(t, 1, 0x02, 16)); /* the card has not looked yet */
	nvme_kick(&t->c, 1);
	assert_int_equal(reap(t, 1), 2);
	/* polling: no submission rings, 3 queue lengths (the wrap of a 16-entry queue in the
	 * driver's 16-bit arithmetic may ring: at most once per wrap) */
	assert_false(nvme_set_polling(&t->c, true));
	unsigned rings = 0, done = 0;
	for (unsigned i = 0; i < 3 * NT_QD; i++) {
		rings += submit(t, 1, 0x02, i);
		if (i % 3 == 2) {
			assert_true(nvme_poll(&t->c));
			done += reap(t, 1);
		}
	}
	assert_true(rings <= 3);
	nvme_poll(&t->c);
	done += reap(t, 1);
	assert_int_equal(done, 3 * NT_QD);
	assert_false(nvme_poll(&t->c)); /* nothing new */
	/* a submission that raced the end of the window: going back to doorbells takes it */
	assert_false(submit(t, 1, 0x02, 0));
	assert_true(nvme_set_polling(&t->c, false));
	assert_int_equal(reap(t, 1), 1);
	assert_int_equal(t->c.c_eis[2], t->tail[1]);
	assert_true(submit(t, 1, 0x02, 0)); /* the next one rings again */
	nvme_kick(&t->c, 1);
	assert_int_equal(reap(t, 1), 1);
	/* hostile: a shadow tail past the queue while polling fails the controller */
	assert_false(nvme_set_polling(&t->c, true));
	t->c.c_dbs[2] = NT_QD + 1;
	assert_false(nvme_poll(&t->c));
	assert_true(t->c.c_failed);
	assert_false(nvme_poll(&t->c));
	assert_false(nvme_set_polling(&t->c, false));
}

static void test_bad_enable(void **state)
{
	struct nt *t = *state;
	struct nvw_enable e = {.e_cc = 1, .e_aqa = 0, .e_asq = NT_ASQ, .e_acq = NT_ACQ};
	assert_false(nvme_enable(&t->c, &e)); /* 1-entry queues */
	e.e_aqa = 15 << 16 | 15;
	e.e_asq = OUTSIDE;
	assert_false(nvme_enable(&t->c, &e));
	e.e_asq = NT_ASQ + 64;
	assert_false(nvme_enable(&t->c, &e));
	e.e_asq = NT_ASQ;
	e.e_cc = 1 | 1u << 7; /* 8 KiB pages */
	assert_false(nvme_enable(&t->c, &e));
	e.e_cc = 1;
	assert_true(nvme_enable(&t->c, &e));
	assert_false(t->c.c_failed);
	assert_int_equal(t->sh.s_flags & NVW_F_FATAL, 0);
}

static void test_encrypted_roundtrip_features_logs(void **state)
{
	(void)state;
	struct nt t;
	assert_int_equal(nt_init(&t, 1u << 20, true), 0);
	io_queue(&t);
	assert_int_equal(rw(&t, 0x08, 0, 8, 0, 0), 0); /* write zeroes */
	uint8_t c[64];
	uint8_t *r = nt_ptr(&t, NT_DATA + 0x9000);
	memset(r, 0, 16);
	le32_put(r + 4, 8);
	le64_put(r + 8, 0);
	nt_cmd(c, 0x09, 1, NT_DATA + 0x9000, 0);
	le32_put(c + 44, 4); /* deallocate */
	assert_int_equal(nt_post(&t, 1, c, NULL), 0);
	le64_put(r + 8, 1u << 20);
	assert_int_equal(nt_post(&t, 1, c, NULL), NVME_SC_LBA_RANGE);
	uint32_t dw0;
	nt_cmd(c, 0x0a, 0, 0, 0);
	c[40] = 0x06;
	assert_int_equal(nt_post(&t, 0, c, &dw0), 0);
	assert_int_equal(dw0, 1); /* volatile write cache on */
	nt_cmd(c, 0x0a, 0, 0, 0);
	c[40] = 0x42;
	assert_int_equal(nt_post(&t, 0, c, &dw0), NVME_SC_INVALID_FIELD);
	nt_cmd(c, 0x02, 0, NT_DATA, 0);
	le32_put(c + 40, 0x02 | (512u / 4 - 1) << 16);
	assert_int_equal(nt_post(&t, 0, c, NULL), 0);
	nt_cmd(c, 0x02, 0, NT_DATA, 0);
	le32_put(c + 40, 0x33 | (512u / 4 - 1) << 16);
	assert_int_equal(nt_post(&t, 0, c, NULL), NVME_SC_INVALID_LOG_PAGE);
	/* async event requests are held, past the limit refused */
	for (unsigned i = 0; i <= NVME_AERL; i++) {
		nt_cmd(c, 0x0c, 0, 0, 0);
		assert_int_equal(nt_post(&t, 0, c, NULL), -1);
	}
	nt_cmd(c, 0x0c, 0, 0, 0);
	assert_int_equal(nt_post(&t, 0, c, NULL), NVME_SC_AER_LIMIT);
	nt_fini(&t);
}

/* The card dies (nothing of it survives but the shared memfd and guest memory) and a new
 * one starts on the same memfd and resumes. */
static bool restart(struct nt *t)
{
	static struct nvw_shared gone;
	struct nvme_info info = t->c.c_info;
	char err[256];
	t->c.c_shared = &gone; /* a killed card writes nothing more */
	nvme_fini(&t->c);
	assert_int_equal(nvme_init(&t->c, &info, &t->gm, &t->vol, &t->b, err, sizeof(err)), 0);
	t->c.c_shared = &t->sh;
	struct nvw_enable e = {.e_cc = 1 | 6u << 16 | 4u << 20,
			       .e_aqa = (NT_QD - 1) << 16 | (NT_QD - 1),
			       .e_asq = NT_ASQ,
			       .e_acq = NT_ACQ};
	return nvme_resume(&t->c, &e);
}

/* Puts a command in SQ q and moves its shadow tail, without the card seeing it. */
static uint16_t queue_cmd(struct nt *t, unsigned q, uint8_t *cmd)
{
	le16_put(cmd + 2, ++t->cid);
	memcpy(nt_ptr(t, t->sq[q]) + t->tail[q] * 64, cmd, 64);
	t->tail[q] = (t->tail[q] + 1) % NT_QD;
	t->c.c_dbs[2 * q] = t->tail[q];
	return t->cid;
}

static void test_resume_after_card_restart(void **state)
{
	struct nt *t = *state;
	io_queue(t);
	uint8_t c[64];
	nt_cmd(c, 0x7c, 0, NT_DATA + 0xa000, NT_DATA + 0xb000);
	assert_int_equal(nt_post(t, 0, c, NULL), 0);
	assert_int_equal(rw(t, 0x02, 0, 8, NT_DATA + 0x8000, 0), 0);
	struct nvw_state *s = &t->sh.s_state;
	assert_int_equal(s->st_valid, NVW_STATE_VALID);
	assert_int_equal(s->st_q[1].qs_sq_seq, 1);
	assert_int_equal(s->st_q[1].qs_cq_tail, 1);
	/* Where the last card may have died: A taken (in flight), C taken and completed but
	 * the CQ tail not saved yet, B taken but the SQ head not saved yet. */
	uint8_t *buf = nt_ptr(t, NT_DATA + 0x8000);
	memset(buf, 0xab, 4096);
	uint16_t cid[3];
	for (unsigned i = 0; i < 3; i++) {
		nt_cmd(c, 0x02, 1, NT_DATA + 0x8000, 0);
		le32_put(c + 48, 7);
		cid[i] = queue_cmd(t, 1, c);
		struct nvw_slot *sl = &s->st_slot[10 + i];
		memcpy(sl->sl_cmd, c, 64);
		sl->sl_seq = s->st_q[1].qs_sq_seq;
		sl->sl_sqid = 1;
		if (i < 2)
			s->st_q[1].qs_sq_seq++;
	}
	uint8_t *e = nt_ptr(t, t->cq[1]) + s->st_q[1].qs_cq_tail * 16;
	memset(e, 0, 16);
	le16_put(e + 10, 1);
	le16_put(e + 12, cid[1]);
	le16_put(e + 14, s->st_q[1].qs_cq_phase);
	assert_true(restart(t));
	assert_false(t->c.c_failed);
	/* C's completion once, then A's and B's, each once; nothing else */
	uint16_t seen[4];
	unsigned n = 0;
	for (; n < 4; n++) {
		e = nt_ptr(t, t->cq[1]) + t->head[1] * 16;
		if ((le16_get(e + 14) & 1) != t->phase[1])
			break;
		assert_int_equal(le16_get(e + 14) >> 1, 0);
		seen[n] = le16_get(e + 12);
		if (++t->head[1] == NT_QD) {
			t->head[1] = 0;
			t->phase[1] ^= 1;
		}
	}
	t->c.c_dbs[3] = t->head[1];
	assert_int_equal(n, 3);
	assert_int_equal(seen[0], cid[1]);
	assert_int_equal(seen[1], cid[0]);
	assert_int_equal(seen[2], cid[2]);
	assert_int_equal(buf[100], 0); /* read again: the null back end's zeroes */
	assert_int_equal(s->st_q[1].qs_sq_seq, 4);
	for (unsigned i = 0; i < NVW_MAX_SLOTS; i++)
		assert_int_equal(s->st_slot[i].sl_sqid, 0);
	/* and the queues go on: I/O and admin */
	assert_int_equal(rw(t, 0x02, 0, 8, NT_DATA + 0x8000, 0), 0);
	assert_int_equal(identify(t, 1, 0, NT_DATA, 0), 0);
	assert_int_equal(t->c.c_smart.sm_read_cmds, 3);

	/* A saved state that is not valid (a card the guest subverted may have written
	 * anything there) fails the controller, never the card; the driver's reset works. */
	s->st_q[1].qs_cq_size = 5000;
	assert_false(restart(t));
	assert_true(t->c.c_failed);
	assert_int_equal(t->sh.s_flags & NVW_F_FATAL, NVW_F_FATAL);
	assert_false(restart(t)); /* nothing to resume from a failed controller */
	memset(s, 0x5a, sizeof(*s));
	s->st_valid = NVW_STATE_VALID;
	s->st_cc = 1 | 6u << 16 | 4u << 20;
	assert_false(restart(t));
	struct nvw_enable en = {.e_cc = 1 | 6u << 16 | 4u << 20,
				.e_aqa = (NT_QD - 1) << 16 | (NT_QD - 1),
				.e_asq = NT_ASQ,
				.e_acq = NT_ACQ};
	assert_true(nvme_enable(&t->c, &en));
	memset(t->head, 0, sizeof(t->head));
	memset(t->tail, 0, sizeof(t->tail));
	for (unsigned i = 0; i < NVME_MAX_QIDS; i++)
		t->phase[i] = 1;
	memset(nt_ptr(t, NT_ACQ), 0, 4096);
	assert_int_equal(identify(t, 1, 0, NT_DATA, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_identify, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_prp_lists, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sgl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_queue_creation_abuse, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_io_and_doorbells, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_eventidx_while_polling, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_enable, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_after_card_restart, setup, teardown),
	    cmocka_unit_test(test_encrypted_roundtrip_features_logs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
