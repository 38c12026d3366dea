/* NVMe controller core of the NVMe cards (see nvme.h). */
#include "cards/nvme/nvme.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/util.h"

/* admin opcodes */
#define A_DELETE_SQ 0x00
#define A_CREATE_SQ 0x01
#define A_GET_LOG 0x02
#define A_DELETE_CQ 0x04
#define A_CREATE_CQ 0x05
#define A_IDENTIFY 0x06
#define A_ABORT 0x08
#define A_SET_FEATURES 0x09
#define A_GET_FEATURES 0x0a
#define A_AER 0x0c
#define A_KEEP_ALIVE 0x18
#define A_DBBUF 0x7c
/* I/O opcodes */
#define IO_FLUSH 0x00
#define IO_WRITE 0x01
#define IO_READ 0x02
#define IO_WRITE_ZEROES 0x08
#define IO_DSM 0x09
/* features */
#define F_ARB 0x01
#define F_POWER 0x02
#define F_TEMP 0x04
#define F_VWC 0x06
#define F_NUM_QUEUES 0x07
#define F_COALESCE 0x08
#define F_IV_CONFIG 0x09
#define F_WRITE_ATOMIC 0x0a
#define F_AEC 0x0b
#define F_KATO 0x0f

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static uint64_t nsze(const struct nvme_ctrl *c)
{
	return c->c_vol->v_size / NVME_LBA;
}

/* ---- doorbells ---- */

static uint32_t db_read(const struct nvme_ctrl *c, unsigned idx)
{
	if (idx >= 2 && c->c_dbs)
		return __atomic_load_n(&c->c_dbs[idx], __ATOMIC_ACQUIRE);
	return __atomic_load_n(&c->c_shared->s_db[idx], __ATOMIC_ACQUIRE);
}

static void ei_write(struct nvme_ctrl *c, unsigned idx, uint32_t v)
{
	if (idx >= 2 && c->c_eis) {
		__atomic_store_n(&c->c_eis[idx], v, __ATOMIC_RELEASE);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
}

static void note(struct nvme_ctrl *c, uint32_t flag, bool on)
{
	if (on)
		__atomic_fetch_or(&c->c_shared->s_flags, flag, __ATOMIC_SEQ_CST);
	else
		__atomic_fetch_and(&c->c_shared->s_flags, ~flag, __ATOMIC_SEQ_CST);
	uint64_t one = 1;
	if (c->c_note >= 0 && write(c->c_note, &one, sizeof(one)) != sizeof(one))
		warnmsg("nvme: cannot signal the hypervisor");
}

/* ---- the state a restarted card resumes from (nvw_state in the shared memfd) ----
 * The card can die between any two instructions; the stores below are ordered (compiler
 * barriers: the reader is the next card on the same machine, after this one has ended)
 * so that every point is recoverable: a command's copy is saved before its SQ head moves;
 * a completion is written, then its copy freed, then the CQ tail saved. */
#define ORDERED() __atomic_signal_fence(__ATOMIC_SEQ_CST)

static struct nvw_state *saved(const struct nvme_ctrl *c)
{
	return &c->c_shared->s_state;
}

static void save_sq(struct nvme_ctrl *c, unsigned q)
{
	const struct nvme_sq *sq = &c->c_sq[q];
	struct nvw_queue_state *s = &saved(c)->st_q[q];
	s->qs_sq_addr = sq->s_addr;
	s->qs_sq_cqid = sq->s_cqid;
	s->qs_sq_head = sq->s_head;
	s->qs_sq_seq = sq->s_seq;
	ORDERED();
	s->qs_sq_size = sq->s_live ? sq->s_size : 0;
}

static void save_cq(struct nvme_ctrl *c, unsigned q)
{
	const struct nvme_cq *cq = &c->c_cq[q];
	struct nvw_queue_state *s = &saved(c)->st_q[q];
	s->qs_cq_addr = cq->c_addr;
	s->qs_cq_vector = cq->c_vector;
	s->qs_cq_irq = cq->c_irq;
	s->qs_cq_tail = cq->c_tail;
	s->qs_cq_phase = cq->c_phase;
	ORDERED();
	s->qs_cq_size = cq->c_live ? cq->c_size : 0;
}

static void save_io_queues(struct nvme_ctrl *c)
{
	for (unsigned q = 1; q < c->c_info.ni_nqids; q++) {
		save_sq(c, q);
		save_cq(c, q);
	}
}

static void save_queues(struct nvme_ctrl *c)
{
	save_io_queues(c);
	save_cq(c, 0);
	save_sq(c, 0);
}

/* After each admin command: the controller-wide part. */
static void save_ctrl(struct nvme_ctrl *c)
{
	struct nvw_state *s = saved(c);
	s->st_cc = c->c_cc;
	s->st_dbs = c->c_dbs ? c->c_dbs_gpa : 0;
	s->st_eis = c->c_dbs ? c->c_eis_gpa : 0;
	s->st_nsqa = c->c_nsqa;
	s->st_ncqa = c->c_ncqa;
	s->st_queues_set = c->c_queues_set;
	s->st_vwc = c->c_vwc;
	s->st_coalesce = c->c_coalesce;
	s->st_aec = c->c_aec;
	s->st_kato = c->c_kato;
	s->st_naer = (uint8_t)c->c_naer;
	memcpy(s->st_aer_cid, c->c_aer_cid, sizeof(s->st_aer_cid));
	ORDERED();
	s->st_valid = c->c_enabled && !c->c_failed ? NVW_STATE_VALID : 0;
}

/* The copy of an I/O command about to be taken from SQ sqid; the request it will use. */
static int save_cmd(struct nvme_ctrl *c, unsigned sqid, const uint8_t *cmd, uint64_t seq)
{
	int slot = (int)(c->c_free - c->c_reqs);
	struct nvw_slot *sl = &saved(c)->st_slot[slot];
	memcpy(sl->sl_cmd, cmd, 64);
	sl->sl_seq = seq;
	ORDERED();
	sl->sl_sqid = (uint16_t)sqid;
	ORDERED();
	return slot;
}

void nvme_fail(struct nvme_ctrl *c, const char *why)
{
	if (c->c_failed)
		return;
	warnmsg("nvme %s: controller failed (CSTS.CFS): %s", c->c_info.ni_serial, why);
	c->c_failed = true;
	saved(c)->st_valid = 0; /* a restarted card does not resume a failed controller */
	note(c, NVW_F_FATAL, true);
	if (c->c_on_fail)
		c->c_on_fail(c, why);
}

/* ---- completions ---- */

static void error_log(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid, uint16_t status)
{
	uint8_t *e = c->c_errlog[c->c_err_count % 16];
	c->c_err_count++;
	c->c_smart.sm_err_entries++;
	memset(e, 0, 64);
	le64_put(e, c->c_err_count);
	le16_put(e + 8, sqid);
	le16_put(e + 10, cid);
	le16_put(e + 12, (uint16_t)(status << 1));
	le16_put(e + 14, 0xffff); /* parameter error location: not given */
}

/* Completes command cid of SQ sqid; slot: its saved copy (-1: none, an admin command). */
static void post(struct nvme_ctrl *c, uint16_t sqid, uint16_t cid, uint16_t status, uint32_t dw0,
		 int slot)
{
	struct nvme_sq *sq = &c->c_sq[sqid];
	struct nvme_cq *cq = &c->c_cq[sq->s_cqid];
	if (cq->c_reserved)
		cq->c_reserved--;
	if (status)
		error_log(c, sqid, cid, status);
	if (!cq->c_live || !c->c_enabled || c->c_failed) {
		if (slot >= 0)
			saved(c)->st_slot[slot].sl_sqid = 0;
		return;
	}
	uint8_t *e = cq->c_ring + (size_t)cq->c_tail * 16;
	le32_put(e, dw0);
	le32_put(e + 4, 0);
	le16_put(e + 8, (uint16_t)sq->s_head);
	le16_put(e + 10, sqid);
	le16_put(e + 12, cid);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	uint16_t st = (uint16_t)((status & 0x7ff) << 1 | cq->c_phase);
	__atomic_store_n((uint16_t *)(e + 14), st, __ATOMIC_RELEASE);
	ORDERED();
	if (slot >= 0)
		saved(c)->st_slot[slot].sl_sqid = 0;
	ORDERED();
	if (++cq->c_tail == cq->c_size) {
		cq->c_tail = 0;
		cq->c_phase ^= 1;
	}
	struct nvw_queue_state *qs = &saved(c)->st_q[sq->s_cqid];
	qs->qs_cq_tail = cq->c_tail;
	qs->qs_cq_phase = cq->c_phase;
	cq->c_pending_irq = true;
}

void nvme_flush_irqs(struct nvme_ctrl *c)
{
	for (unsigned i = 0; i < c->c_info.ni_nqids; i++) {
		struct nvme_cq *cq = &c->c_cq[i];
		if (!cq->c_pending_irq)
			continue;
		cq->c_pending_irq = false;
		uint64_t one = 1;
		if (!cq->c_irq || cq->c_vector >= NVME_MAX_VECTORS || c->c_call[cq->c_vector] < 0)
			continue;
		c->c_irqs++;
		if (write(c->c_call[cq->c_vector], &one, sizeof(one)) != sizeof(one))
			continue; /* the counter is full: the interrupt is pending anyway */
	}
}

/* Entries of cq the driver has not consumed yet, plus those promised. */
static bool cq_has_room(struct nvme_ctrl *c, unsigned cqid)
{
	struct nvme_cq *cq = &c->c_cq[cqid];
	uint32_t head = db_read(c, 2 * cqid + 1);
	if (head >= cq->c_size) {
		nvme_fail(c, "a completion queue head doorbell past the queue");
		return false;
	}
	cq->c_head = head;
	uint32_t used = (cq->c_tail + cq->c_size - head) % cq->c_size;
	if (used + cq->c_reserved + 1 < cq->c_size)
		return true;
	/* full: ask the driver to ring when it consumes (EventIdx), then look again */
	ei_write(c, 2 * cqid + 1, head);
	head = db_read(c, 2 * cqid + 1);
	if (head < cq->c_size)
		cq->c_head = head;
	used = (cq->c_tail + cq->c_size - cq->c_head) % cq->c_size;
	return used + cq->c_reserved + 1 < cq->c_size;
}

/* ---- data ---- */

static int add_iov(const struct gmem *m, uint64_t gpa, uint64_t len, struct iovec *iov, unsigned *n,
		   unsigned max)
{
	if (!len)
		return 0;
	void *p = gm_gpa(m, gpa, len);
	if (!p)
		return -NVME_SC_DATA_XFER_ERROR;
	if (*n && (uint8_t *)iov[*n - 1].iov_base + iov[*n - 1].iov_len == p) {
		iov[*n - 1].iov_len += len;
		return 0;
	}
	if (*n == max)
		return -NVME_SC_DATA_XFER_ERROR;
	iov[*n] = (struct iovec){p, len};
	(*n)++;
	return 0;
}

static int map_prp(const struct gmem *m, uint64_t prp1, uint64_t prp2, uint64_t len,
		   struct iovec *iov, unsigned max)
{
	unsigned n = 0;
	if (prp1 & 3)
		return -NVME_SC_INVALID_PRP_OFFSET;
	uint64_t first = NVME_PAGE - (prp1 & (NVME_PAGE - 1));
	if (first > len)
		first = len;
	int r = add_iov(m, prp1, first, iov, &n, max);
	if (r)
		return r;
	len -= first;
	if (!len)
		return (int)n;
	if (len <= NVME_PAGE) {
		if (prp2 & (NVME_PAGE - 1))
			return -NVME_SC_INVALID_PRP_OFFSET;
		r = add_iov(m, prp2, len, iov, &n, max);
		return r ? r : (int)n;
	}
	/* prp2 points to a PRP list; its last entry chains to the next list page */
	if (prp2 & 7)
		return -NVME_SC_INVALID_PRP_OFFSET;
	uint64_t list = prp2;
	unsigned pages = 0;
	while (len) {
		unsigned left_in_page = (unsigned)((NVME_PAGE - (list & (NVME_PAGE - 1))) / 8);
		const uint8_t *l = gm_gpa(m, list, (uint64_t)left_in_page * 8);
		if (!l)
			return -NVME_SC_DATA_XFER_ERROR;
		for (unsigned i = 0; i < left_in_page && len; i++) {
			uint64_t e = le64_get(l + 8 * i);
			if (i == left_in_page - 1 && len > NVME_PAGE) {
				if (e & 7)
					return -NVME_SC_INVALID_PRP_OFFSET;
				list = e; /* chain to the next list page */
				break;
			}
			if (e & (NVME_PAGE - 1))
				return -NVME_SC_INVALID_PRP_OFFSET;
			uint64_t k = len < NVME_PAGE ? len : NVME_PAGE;
			if ((r = add_iov(m, e, k, iov, &n, max)))
				return r;
			len -= k;
		}
		if (++pages > NVME_MAX_SEGS) /* bounded however the lists chain */
			return -NVME_SC_DATA_XFER_ERROR;
	}
	return (int)n;
}

#define SGL_DATA 0x0
#define SGL_BIT_BUCKET 0x1
#define SGL_SEGMENT 0x2
#define SGL_LAST 0x3

static int map_sgl(const struct gmem *m, const uint8_t *desc0, uint64_t len, struct iovec *iov,
		   unsigned max)
{
	unsigned n = 0, used = 0;
	uint8_t d[16];
	memcpy(d, desc0, 16);
	const uint8_t *seg = NULL;
	unsigned seg_n = 0, seg_i = 0;
	bool last_seg = false;
	for (;;) {
		uint8_t type = d[15] >> 4, sub = d[15] & 0xf;
		uint64_t addr = le64_get(d);
		uint32_t dlen = le32_get(d + 8);
		if (++used > NVME_MAX_SGL_DESC)
			return -NVME_SC_SGL_INVALID_COUNT;
		if (sub != 0)
			return -NVME_SC_SGL_INVALID_TYPE;
		if (type == SGL_DATA) {
			uint64_t k = dlen < len ? dlen : len;
			int r = add_iov(m, addr, k, iov, &n, max);
			if (r)
				return r;
			len -= k;
		} else if (type == SGL_SEGMENT || type == SGL_LAST) {
			if (seg && seg_i != seg_n) /* a segment descriptor must end its segment */
				return -NVME_SC_SGL_INVALID_LAST;
			if (last_seg || !dlen || dlen % 16 || dlen > 16 * NVME_MAX_SGL_DESC)
				return -NVME_SC_SGL_INVALID_DATA;
			seg = gm_gpa(m, addr, dlen);
			if (!seg)
				return -NVME_SC_DATA_XFER_ERROR;
			seg_n = dlen / 16;
			seg_i = 0;
			last_seg = type == SGL_LAST;
		} else {
			return -NVME_SC_SGL_INVALID_TYPE;
		}
		if (!len)
			return (int)n;
		if (!seg || seg_i == seg_n)
			return -NVME_SC_DATA_XFER_ERROR; /* the list ended before the data */
		memcpy(d, seg + 16 * seg_i, 16);	 /* copied once, then checked */
		seg_i++;
	}
}

int nvme_map_data(const struct gmem *m, const uint8_t cmd[64], uint64_t len, struct iovec *iov,
		  unsigned max)
{
	unsigned psdt = (cmd[1] >> 6) & 3;
	if (!len)
		return 0;
	if (psdt == 0)
		return map_prp(m, le64_get(cmd + 24), le64_get(cmd + 32), len, iov, max);
	if (psdt == 1 || psdt == 2)
		return map_sgl(m, cmd + 24, len, iov, max);
	return -NVME_SC_INVALID_FIELD;
}

static void iov_copy(const struct iovec *iov, unsigned n, uint8_t *buf, size_t len, bool to_guest)
{
	size_t off = 0;
	for (unsigned i = 0; i < n && off < len; i++) {
		size_t k = iov[i].iov_len < len - off ? iov[i].iov_len : len - off;
		if (to_guest)
			memcpy(iov[i].iov_base, buf + off, k);
		else
			memcpy(buf + off, iov[i].iov_base, k);
		off += k;
	}
}

/* Copies buf (len bytes) to the command's data buffer (admin commands). */
static uint16_t to_guest(struct nvme_ctrl *c, const uint8_t *cmd, const void *buf, size_t len)
{
	struct iovec iov[NVME_MAX_SEGS];
	int n = nvme_map_data(c->c_mem, cmd, len, iov, NVME_MAX_SEGS);
	if (n < 0)
		return (uint16_t)-n;
	iov_copy(iov, (unsigned)n, (uint8_t *)buf, len, true);
	return 0;
}

static uint16_t from_guest(struct nvme_ctrl *c, const uint8_t *cmd, void *buf, size_t len)
{
	struct iovec iov[NVME_MAX_SEGS];
	int n = nvme_map_data(c->c_mem, cmd, len, iov, NVME_MAX_SEGS);
	if (n < 0)
		return (uint16_t)-n;
	iov_copy(iov, (unsigned)n, buf, len, false);
	return 0;
}

/* ---- identify ---- */

static void put_str(uint8_t *dst, const char *s, size_t n)
{
	memset(dst, ' ', n);
	size_t l = strlen(s);
	memcpy(dst, s, l < n ? l : n);
}

static void identify_ctrl(const struct nvme_ctrl *c, uint8_t *d)
{
	le16_put(d + 0, 0x1d0f); /* VID */
	le16_put(d + 2, 0x1d0f); /* SSVID */
	put_str(d + 4, c->c_info.ni_serial, 20);
	put_str(d + 24, c->c_info.ni_model, 40);
	put_str(d + 64, "1.0", 8); /* FR */
	d[72] = 32;		   /* RAB */
	d[73] = 0xa0;
	d[74] = 0x02;
	d[75] = 0xdc; /* IEEE OUI (as EC2's controllers report) */
	d[77] = NVME_MDTS;
	le16_put(d + 78, 1);	   /* CNTLID */
	le32_put(d + 80, 0x10400); /* VER 1.4 */
	le32_put(d + 92, 1u << 8); /* OAES: namespace attribute notices */
	d[111] = 1;		   /* CNTRLTYPE: I/O controller */
	/* OACS: doorbell buffer config (bit 8) */
	le16_put(d + 256, 1u << 8);
	d[258] = 3;		  /* ACL: 4 aborts */
	d[259] = NVME_AERL;	  /* AERL */
	d[260] = 0x03;		  /* FRMW: slot 1 read-only, 1 slot */
	d[261] = 0x04;		  /* LPA: extended data for Get Log Page */
	d[262] = 15;		  /* ELPE: 16 error log entries */
	d[263] = 0;		  /* NPSS */
	le16_put(d + 266, 0x157); /* warning composite temperature 343 K */
	le16_put(d + 268, 0x160); /* critical 352 K */
	le16_put(d + 320, 100);	  /* KAS, 100 ms units (keep alive: accepted, not enforced) */
	d[512] = 0x66;		  /* SQES: 64 bytes */
	d[513] = 0x44;		  /* CQES: 16 bytes */
	le16_put(d + 514, 0);	  /* MAXCMD */
	le32_put(d + 516, 1);	  /* NN */
	/* ONCS: write zeroes (3), DSM (2) */
	le16_put(d + 520, 1u << 2 | 1u << 3);
	d[525] = 0x01;	      /* VWC present */
	le16_put(d + 526, 0); /* AWUN */
	le32_put(d + 536, 1); /* SGLS: SGLs supported, no alignment requirement */
	snprintf((char *)d + 768, 256, "nqn.2014.08.org.nvmexpress:1d0f1d0f%s",
		 c->c_info.ni_serial);
	/* EC2's vendor-specific area (bytes 3072..4095): the block device name at the
	 * start, padded with spaces, as ebsnvme-id reads it (32 bytes). */
	put_str(d + 3072, c->c_info.ni_bdev_name, 32);
}

static void identify_ns(const struct nvme_ctrl *c, uint8_t *d)
{
	uint64_t n = nsze(c);
	le64_put(d + 0, n);  /* NSZE */
	le64_put(d + 8, n);  /* NCAP */
	le64_put(d + 16, n); /* NUSE */
	d[24] = 0x04;	     /* NSFEAT: deallocated blocks read as zeroes (DLFEAT below) */
	d[25] = 0;	     /* NLBAF: one format */
	d[26] = 0;	     /* FLBAS */
	d[33] = 0x09;	     /* DLFEAT: deallocate reads zeroes, write zeroes deallocates */
	d[128 + 2] = 9;	     /* LBAF0: LBADS 2^9 = 512 */
	/* NGUID from the serial: stable per volume */
	for (size_t i = 0; i < 16 && c->c_info.ni_serial[i]; i++)
		d[104 + i] = (uint8_t)c->c_info.ni_serial[i];
}

static uint16_t admin_identify(struct nvme_ctrl *c, const uint8_t *cmd)
{
	uint8_t d[4096] = {0};
	uint32_t nsid = le32_get(cmd + 4), cns = cmd[40];
	switch (cns) {
	case 0x00:
		if (nsid != 1)
			return NVME_SC_INVALID_NS;
		identify_ns(c, d);
		break;
	case 0x01:
		identify_ctrl(c, d);
		break;
	case 0x02:
		if (nsid >= 0xfffffffe)
			return NVME_SC_INVALID_NS;
		if (nsid < 1)
			le32_put(d, 1);
		break;
	case 0x03:
		if (nsid != 1)
			return NVME_SC_INVALID_NS;
		d[0] = 3; /* NIDT: NGUID */
		d[1] = 16;
		for (size_t i = 0; i < 16 && c->c_info.ni_serial[i]; i++)
			d[4 + i] = (uint8_t)c->c_info.ni_serial[i];
		break;
	default:
		return NVME_SC_INVALID_FIELD;
	}
	return to_guest(c, cmd, d, sizeof(d));
}

/* ---- queues ---- */

static uint16_t create_cq(struct nvme_ctrl *c, const uint8_t *cmd)
{
	uint32_t dw10 = le32_get(cmd + 40), dw11 = le32_get(cmd + 44);
	unsigned qid = dw10 & 0xffff, size = (dw10 >> 16) + 1, vec = dw11 >> 16;
	uint64_t addr = le64_get(cmd + 24);
	if (!qid || qid >= c->c_info.ni_nqids || qid > (unsigned)c->c_ncqa + 1u ||
	    c->c_cq[qid].c_live)
		return NVME_SC_QID_INVALID;
	if (size < 2 || size > NVME_MQES + 1)
		return NVME_SC_QUEUE_SIZE;
	if (!(dw11 & 1))
		return NVME_SC_INVALID_FIELD; /* physically contiguous only (CAP.CQR) */
	if ((dw11 & 2) && vec >= NVME_MAX_VECTORS)
		return NVME_SC_INVALID_VECTOR;
	if (addr & (NVME_PAGE - 1))
		return NVME_SC_INVALID_PRP_OFFSET;
	uint8_t *ring = gm_gpa(c->c_mem, addr, (uint64_t)size * 16);
	if (!ring)
		return NVME_SC_DATA_XFER_ERROR;
	c->c_cq[qid] = (struct nvme_cq){.c_live = true,
					.c_irq = dw11 & 2,
					.c_vector = (uint16_t)vec,
					.c_size = size,
					.c_phase = 1,
					.c_addr = addr,
					.c_ring = ring};
	return 0;
}

static uint16_t create_sq(struct nvme_ctrl *c, const uint8_t *cmd)
{
	uint32_t dw10 = le32_get(cmd + 40), dw11 = le32_get(cmd + 44);
	unsigned qid = dw10 & 0xffff, size = (dw10 >> 16) + 1, cqid = dw11 >> 16;
	uint64_t addr = le64_get(cmd + 24);
	if (!qid || qid >= c->c_info.ni_nqids || qid > (unsigned)c->c_nsqa + 1u ||
	    c->c_sq[qid].s_live)
		return NVME_SC_QID_INVALID;
	if (!cqid || cqid >= c->c_info.ni_nqids || !c->c_cq[cqid].c_live)
		return NVME_SC_CQ_INVALID;
	if (size < 2 || size > NVME_MQES + 1)
		return NVME_SC_QUEUE_SIZE;
	if (!(dw11 & 1))
		return NVME_SC_INVALID_FIELD;
	if (addr & (NVME_PAGE - 1))
		return NVME_SC_INVALID_PRP_OFFSET;
	uint8_t *ring = gm_gpa(c->c_mem, addr, (uint64_t)size * 64);
	if (!ring)
		return NVME_SC_DATA_XFER_ERROR;
	c->c_sq[qid] = (struct nvme_sq){.s_live = true,
					.s_cqid = (uint16_t)cqid,
					.s_size = size,
					.s_addr = addr,
					.s_ring = ring};
	/* the doorbell starts at 0 for a new queue */
	c->c_shared->s_db[2 * qid] = 0;
	if (c->c_dbs)
		c->c_eis[2 * qid] = 0;
	return 0;
}

static void drain(struct nvme_ctrl *c)
{
	if (c->c_inflight && c->c_bdev->bd_ops->bo_drain)
		c->c_bdev->bd_ops->bo_drain(c->c_bdev);
}

static uint16_t delete_sq(struct nvme_ctrl *c, const uint8_t *cmd)
{
	unsigned qid = le32_get(cmd + 40) & 0xffff;
	if (!qid || qid >= c->c_info.ni_nqids || !c->c_sq[qid].s_live)
		return NVME_SC_QID_INVALID;
	if (c->c_sq[qid].s_inflight)
		drain(c); /* completions of the deleted queue still land in its CQ */
	c->c_sq[qid].s_live = false;
	return 0;
}

static uint16_t delete_cq(struct nvme_ctrl *c, const uint8_t *cmd)
{
	unsigned qid = le32_get(cmd + 40) & 0xffff;
	if (!qid || qid >= c->c_info.ni_nqids || !c->c_cq[qid].c_live)
		return NVME_SC_QID_INVALID;
	for (unsigned i = 1; i < c->c_info.ni_nqids; i++)
		if (c->c_sq[i].s_live && c->c_sq[i].s_cqid == qid)
			return NVME_SC_DELETE_CQ_INVALID;
	c->c_cq[qid].c_live = false;
	return 0;
}

/* ---- features and logs ---- */

static uint16_t features(struct nvme_ctrl *c, const uint8_t *cmd, bool set, uint32_t *dw0)
{
	uint32_t dw10 = le32_get(cmd + 40), dw11 = le32_get(cmd + 44);
	uint8_t fid = (uint8_t)dw10;
	if (set && (dw10 >> 31))
		return NVME_SC_FEATURE_NOT_SAVEABLE;
	unsigned sel = (dw10 >> 8) & 7;
	if (!set && sel == 3) { /* supported capabilities: changeable */
		*dw0 = 0x4;
		return 0;
	}
	switch (fid) {
	case F_NUM_QUEUES: {
		unsigned max = c->c_info.ni_nqids - 2;
		if (set) {
			unsigned nsq = dw11 & 0xffff, ncq = dw11 >> 16;
			if (nsq == 0xffff || ncq == 0xffff)
				return NVME_SC_INVALID_FIELD;
			if (!c->c_queues_set) {
				c->c_nsqa = (uint16_t)(nsq < max ? nsq : max);
				c->c_ncqa = (uint16_t)(ncq < max ? ncq : max);
				c->c_queues_set = true;
			}
		}
		*dw0 = (uint32_t)c->c_ncqa << 16 | c->c_nsqa;
		return 0;
	}
	case F_COALESCE:
		if (set)
			c->c_coalesce = dw11 & 0xffff;
		*dw0 = c->c_coalesce;
		return 0;
	case F_VWC:
		if (set)
			c->c_vwc = dw11 & 1;
		*dw0 = c->c_vwc;
		return 0;
	case F_AEC:
		if (set)
			c->c_aec = dw11;
		*dw0 = c->c_aec;
		return 0;
	case F_KATO:
		if (set)
			c->c_kato = dw11;
		*dw0 = c->c_kato;
		return 0;
	case F_ARB:
	case F_POWER:
	case F_WRITE_ATOMIC:
		*dw0 = 0;
		return 0;
	case F_TEMP:
		*dw0 = set ? 0 : 0x157;
		return 0;
	case F_IV_CONFIG:
		if ((dw11 & 0xffff) >= NVME_MAX_VECTORS)
			return NVME_SC_INVALID_FIELD;
		*dw0 = dw11 & 0x1ffff;
		return 0;
	default:
		return NVME_SC_INVALID_FIELD;
	}
}

static void put128(uint8_t *d, uint64_t v)
{
	le64_put(d, v);
	le64_put(d + 8, 0);
}

static uint16_t get_log(struct nvme_ctrl *c, const uint8_t *cmd)
{
	uint32_t dw10 = le32_get(cmd + 40), dw11 = le32_get(cmd + 44);
	uint64_t off = le32_get(cmd + 48) | (uint64_t)le32_get(cmd + 52) << 32;
	uint8_t lid = (uint8_t)dw10;
	uint64_t numd = ((dw10 >> 16) | (uint64_t)(dw11 & 0xffff) << 16) + 1;
	uint64_t len = numd * 4;
	uint8_t d[1024] = {0};
	size_t dlen;
	switch (lid) {
	case 0x01: /* error information: newest first */
		for (unsigned i = 0; i < 16 && i < c->c_err_count; i++)
			memcpy(d + 64 * i, c->c_errlog[(c->c_err_count - 1 - i) % 16], 64);
		dlen = 1024;
		break;
	case 0x02: { /* SMART / health */
		const struct nvme_smart *s = &c->c_smart;
		d[0] = 0;		/* critical warning */
		le16_put(d + 1, 0x13d); /* composite temperature: 317 K */
		d[3] = 100;		/* available spare */
		d[4] = 10;		/* threshold */
		put128(d + 32, (s->sm_read_bytes / 512 + 999) / 1000);
		put128(d + 48, (s->sm_written_bytes / 512 + 999) / 1000);
		put128(d + 64, s->sm_read_cmds);
		put128(d + 80, s->sm_write_cmds);
		put128(d + 112, 1); /* power cycles */
		put128(d + 128, (now_ns() - c->c_start_ns) / 3600000000000ull);
		put128(d + 160, s->sm_media_errors);
		put128(d + 176, s->sm_err_entries);
		dlen = 512;
		break;
	}
	case 0x03: /* firmware slot */
		d[0] = 1;
		put_str(d + 8, "1.0", 8);
		dlen = 512;
		break;
	default:
		return NVME_SC_INVALID_LOG_PAGE;
	}
	if (off & 3 || off > dlen)
		return NVME_SC_INVALID_FIELD;
	if (len > NVME_MAX_XFER)
		return NVME_SC_INVALID_FIELD;
	uint8_t *out = calloc(1, len);
	if (!out)
		return NVME_SC_INTERNAL;
	memcpy(out, d + off, len < dlen - off ? len : dlen - off);
	uint16_t st = to_guest(c, cmd, out, len);
	free(out);
	return st;
}

static uint16_t dbbuf(struct nvme_ctrl *c, const uint8_t *cmd)
{
	uint64_t dbs = le64_get(cmd + 24), eis = le64_get(cmd + 32);
	if ((dbs | eis) & (NVME_PAGE - 1) || dbs == eis)
		return NVME_SC_INVALID_FIELD;
	uint32_t *pd = gm_gpa(c->c_mem, dbs, NVME_PAGE), *pe = gm_gpa(c->c_mem, eis, NVME_PAGE);
	if (!pd || !pe)
		return NVME_SC_INVALID_FIELD;
	c->c_dbs = pd;
	c->c_eis = pe;
	c->c_dbs_gpa = dbs;
	c->c_eis_gpa = eis;
	/* queues created before: their shadow starts where their doorbell is */
	for (unsigned q = 1; q < c->c_info.ni_nqids; q++) {
		if (c->c_sq[q].s_live) {
			pd[2 * q] = c->c_sq[q].s_tail;
			pe[2 * q] = c->c_sq[q].s_tail;
		}
		if (c->c_cq[q].c_live) {
			pd[2 * q + 1] = c->c_cq[q].c_head;
			pe[2 * q + 1] = c->c_cq[q].c_head;
		}
	}
	note(c, NVW_F_DBBUF, true);
	return 0;
}

static void admin(struct nvme_ctrl *c, const uint8_t *cmd)
{
	uint8_t op = cmd[0];
	uint16_t cid = le16_get(cmd + 2), st = 0;
	uint32_t dw0 = 0;
	if (((cmd[1] >> 6) & 3) && op != A_IDENTIFY && op != A_GET_LOG) {
		st = NVME_SC_INVALID_FIELD; /* SGLs are for I/O commands (and these two) */
		goto done;
	}
	switch (op) {
	case A_IDENTIFY:
		st = admin_identify(c, cmd);
		break;
	case A_CREATE_CQ:
		st = create_cq(c, cmd);
		break;
	case A_CREATE_SQ:
		st = create_sq(c, cmd);
		break;
	case A_DELETE_SQ:
		st = delete_sq(c, cmd);
		break;
	case A_DELETE_CQ:
		st = delete_cq(c, cmd);
		break;
	case A_SET_FEATURES:
	case A_GET_FEATURES:
		st = features(c, cmd, op == A_SET_FEATURES, &dw0);
		break;
	case A_GET_LOG:
		st = get_log(c, cmd);
		break;
	case A_ABORT:
		dw0 = 1; /* not aborted: commands finish quickly here */
		break;
	case A_AER:
		if (c->c_naer > NVME_AERL) {
			st = NVME_SC_AER_LIMIT;
			break;
		}
		c->c_aer_cid[c->c_naer++] = cid;
		return; /* held until an event (none is raised yet) */
	case A_KEEP_ALIVE:
		break;
	case A_DBBUF:
		st = dbbuf(c, cmd);
		break;
	default:
		st = NVME_SC_INVALID_OPCODE;
	}
done:
	/* the command's effect is saved before its completion, its SQ head after it */
	save_io_queues(c);
	save_ctrl(c);
	post(c, 0, cid, st, dw0, -1);
}

/* ---- I/O ---- */

static void req_free(struct nvme_ctrl *c, struct nvme_req *r)
{
	r->q_next = c->c_free;
	c->c_free = r;
	c->c_inflight--;
	c->c_sq[r->q_sqid].s_inflight--;
	if (!c->c_inflight && c->c_on_quiet) { /* a pause waited for this one (pause.h) */
		void (*quiet)(void *) = c->c_on_quiet;
		c->c_on_quiet = NULL;
		quiet(c->c_quiet_opaque);
	}
}

static void io_done(struct bdev_io *io, int res)
{
	struct nvme_req *r = (struct nvme_req *)((uint8_t *)io - offsetof(struct nvme_req, q_io));
	struct nvme_ctrl *c = r->q_c;
	uint16_t st = 0;
	if (res < 0 || (r->q_opcode != IO_FLUSH && (uint64_t)res != r->q_len)) {
		st = r->q_opcode == IO_READ    ? NVME_SC_READ_ERROR
		     : r->q_opcode == IO_WRITE ? NVME_SC_WRITE_FAULT
					       : NVME_SC_INTERNAL;
		c->c_smart.sm_media_errors++;
	} else if (r->q_opcode == IO_READ) {
		if (r->q_bounced && c->c_vol->v_crypt &&
		    vol_decrypt(c->c_vol, r->q_slba, r->q_bounce, r->q_bounce, r->q_len))
			st = NVME_SC_READ_ERROR;
		else if (r->q_bounced)
			iov_copy(r->q_iov, r->q_niov, r->q_bounce, r->q_len, true);
		c->c_smart.sm_read_bytes += r->q_len;
	} else if (r->q_opcode == IO_WRITE) {
		c->c_smart.sm_written_bytes += r->q_len;
	}
	post(c, r->q_sqid, r->q_cid, st, 0, (int)(r - c->c_reqs));
	req_free(c, r);
	if (!c->c_batch)
		nvme_flush_irqs(c);
}

static uint16_t io_range(const struct nvme_ctrl *c, uint64_t slba, uint64_t nlb)
{
	if (slba > nsze(c) || nlb > nsze(c) - slba)
		return NVME_SC_LBA_RANGE;
	return 0;
}

static uint16_t io_zero(struct nvme_ctrl *c, uint64_t slba, uint64_t nlb, bool unmap, bool discard)
{
	struct bdev *b = c->c_bdev;
	char err[256];
	uint64_t off = slba * NVME_LBA, len = nlb * NVME_LBA;
	int ret = 0;
	if (discard) {
		ret = b->bd_ops->bo_discard(b, off, len, err, sizeof(err));
	} else if (!c->c_vol->v_crypt) {
		ret = b->bd_ops->bo_zero(b, off, len, unmap, err, sizeof(err));
	} else {
		static const uint8_t zero[64 * NVME_LBA];
		uint8_t buf[sizeof(zero)];
		for (uint64_t s = 0; s < nlb && !ret; s += 64) {
			uint64_t k = nlb - s < 64 ? nlb - s : 64;
			if (vol_encrypt(c->c_vol, slba + s, zero, buf, k * NVME_LBA))
				return NVME_SC_INTERNAL;
			ret = b->bd_ops->bo_pwrite(b, (slba + s) * NVME_LBA, buf, k * NVME_LBA, err,
						   sizeof(err));
		}
	}
	if (ret) {
		warnmsg("%s", err);
		return NVME_SC_WRITE_FAULT;
	}
	return 0;
}

static uint16_t io_dsm(struct nvme_ctrl *c, const uint8_t *cmd)
{
	uint32_t nr = (le32_get(cmd + 40) & 0xff) + 1, attr = le32_get(cmd + 44);
	uint8_t ranges[256 * 16];
	uint16_t st = from_guest(c, cmd, ranges, nr * 16);
	if (st)
		return st;
	if (!(attr & 4))
		return 0; /* only deallocate does anything */
	if (c->c_vol->v_readonly)
		return NVME_SC_WRITE_PROTECTED;
	for (unsigned i = 0; i < nr; i++) {
		uint32_t nlb = le32_get(ranges + 16 * i + 4);
		uint64_t slba = le64_get(ranges + 16 * i + 8);
		if ((st = io_range(c, slba, nlb)))
			return st;
	}
	for (unsigned i = 0; i < nr; i++) {
		uint32_t nlb = le32_get(ranges + 16 * i + 4);
		uint64_t slba = le64_get(ranges + 16 * i + 8);
		if (nlb && (st = io_zero(c, slba, nlb, true, true)))
			return st;
	}
	return 0;
}

/* Starts (or completes) one I/O command; false when it must wait (no request free). */
static void io(struct nvme_ctrl *c, unsigned sqid, const uint8_t *cmd, int slot)
{
	uint8_t op = cmd[0];
	uint16_t cid = le16_get(cmd + 2), st = 0;
	uint32_t nsid = le32_get(cmd + 4);
	uint64_t slba = le64_get(cmd + 40);
	uint64_t nlb = (le32_get(cmd + 48) & 0xffff) + 1ull;
	if (nsid != 1 && !(op == IO_FLUSH && nsid == 0xffffffff)) {
		st = NVME_SC_INVALID_NS;
		goto done;
	}
	switch (op) {
	case IO_READ:
	case IO_WRITE:
	case IO_FLUSH:
		break;
	case IO_WRITE_ZEROES:
		if (c->c_vol->v_readonly)
			st = NVME_SC_WRITE_PROTECTED;
		else if (!(st = io_range(c, slba, nlb)))
			st = io_zero(c, slba, nlb, le32_get(cmd + 48) & (1u << 25), false);
		goto done;
	case IO_DSM:
		st = io_dsm(c, cmd);
		goto done;
	default:
		st = NVME_SC_INVALID_OPCODE;
		goto done;
	}
	if (op != IO_FLUSH) {
		if ((st = io_range(c, slba, nlb)))
			goto done;
		if (nlb * NVME_LBA > NVME_MAX_XFER) {
			st = NVME_SC_INVALID_FIELD;
			goto done;
		}
		if (op == IO_WRITE && c->c_vol->v_readonly) {
			st = NVME_SC_WRITE_PROTECTED;
			goto done;
		}
	}
	struct nvme_req *r = c->c_free;
	c->c_free = r->q_next;
	c->c_inflight++;
	c->c_sq[sqid].s_inflight++;
	r->q_sqid = (uint16_t)sqid;
	r->q_cid = cid;
	r->q_opcode = op;
	r->q_slba = slba;
	r->q_len = op == IO_FLUSH ? 0 : nlb * NVME_LBA;
	r->q_niov = 0;
	r->q_io =
	    (struct bdev_io){.bi_off = slba * NVME_LBA, .bi_len = r->q_len, .bi_done = io_done};
	if (op == IO_FLUSH) {
		r->q_io.bi_op = BDEV_FLUSH;
	} else {
		int n = nvme_map_data(c->c_mem, cmd, r->q_len, r->q_iov,
				      sizeof(r->q_iov) / sizeof(r->q_iov[0]));
		if (n < 0) {
			req_free(c, r);
			st = (uint16_t)-n;
			goto done;
		}
		r->q_niov = (unsigned)n;
		bool bounce = c->c_vol->v_crypt || (c->c_bdev->bd_contiguous && n > 1);
		if (bounce && !r->q_bounce && !(r->q_bounce = malloc(NVME_MAX_XFER))) {
			req_free(c, r);
			st = NVME_SC_INTERNAL;
			goto done;
		}
		r->q_bounced = bounce;
		if (bounce) {
			r->q_biov = (struct iovec){r->q_bounce, r->q_len};
			if (op == IO_WRITE) {
				iov_copy(r->q_iov, r->q_niov, r->q_bounce, r->q_len, false);
				if (c->c_vol->v_crypt && vol_encrypt(c->c_vol, slba, r->q_bounce,
								     r->q_bounce, r->q_len)) {
					req_free(c, r);
					st = NVME_SC_INTERNAL;
					goto done;
				}
			}
			r->q_io.bi_iov = &r->q_biov;
			r->q_io.bi_niov = 1;
		} else {
			r->q_biov.iov_base = NULL;
			r->q_io.bi_iov = r->q_iov;
			r->q_io.bi_niov = r->q_niov;
		}
		r->q_io.bi_op = op == IO_READ ? BDEV_READ : BDEV_WRITE;
		if (op == IO_READ)
			c->c_smart.sm_read_cmds++;
		else
			c->c_smart.sm_write_cmds++;
	}
	int ret = c->c_bdev->bd_ops->bo_submit(c->c_bdev, &r->q_io);
	if (ret < 0) {
		req_free(c, r);
		st = op == IO_READ ? NVME_SC_READ_ERROR : NVME_SC_WRITE_FAULT;
		goto done;
	}
	return;
done:
	post(c, (uint16_t)sqid, cid, st, 0, slot);
}

/* ---- submission queues ---- */

/* EventIdx of an I/O SQ (virtio's event-index rule, as the Linux driver applies it in
 * nvme_dbbuf_need_event: it writes the MMIO doorbell only when the EventIdx lies in
 * [old tail, new tail)). At the tail the card saw last, the driver's next submission
 * rings. One behind it, a position the driver has already passed, no submission rings
 * (until its index wraps: the driver compares 16-bit values and the queue is smaller, so
 * it rings once at the wrap, harmless): the EventIdx while the card polls. */
static void sq_event_quiet(struct nvme_ctrl *c, unsigned qid)
{
	const struct nvme_sq *sq = &c->c_sq[qid];
	ei_write(c, 2 * qid, (sq->s_tail + sq->s_size - 1) % sq->s_size);
}

static void process_sq(struct nvme_ctrl *c, unsigned qid)
{
	struct nvme_sq *sq = &c->c_sq[qid];
	for (;;) {
		if (!sq->s_live || !c->c_enabled || c->c_failed)
			return;
		uint32_t tail = db_read(c, 2 * qid);
		if (tail >= sq->s_size) {
			nvme_fail(c, "a submission queue tail doorbell past the queue");
			return;
		}
		sq->s_tail = tail;
		while (sq->s_head != sq->s_tail) {
			if (!sq->s_live || c->c_failed || !c->c_enabled)
				return;
			if (qid && !c->c_free) {
				c->c_starved = true; /* resumed when a request is free */
				return;
			}
			if (qid && (c->c_qos_wait_ns || c->c_paused))
				return; /* resumed when the throttle or the pause ends */
			if (!cq_has_room(c, sq->s_cqid))
				return; /* resumed by the CQ head doorbell */
			uint8_t cmd[64];
			memcpy(cmd, sq->s_ring + (size_t)sq->s_head * 64, 64);
			if (qid && c->c_qos &&
			    (cmd[0] == IO_READ || cmd[0] == IO_WRITE ||
			     cmd[0] == IO_WRITE_ZEROES)) {
				uint64_t wait;
				if (!qos_admit(c->c_qos, c->c_now(), &wait)) {
					c->c_qos_wait_ns = wait ? wait : 1;
					c->c_throttled++;
					return;
				}
				qos_charge(c->c_qos, true,
					   ((le32_get(cmd + 48) & 0xffff) + 1ull) * NVME_LBA);
			}
			int slot = qid ? save_cmd(c, qid, cmd, sq->s_seq) : -1;
			sq->s_head = (sq->s_head + 1) % sq->s_size;
			sq->s_seq++;
			c->c_cq[sq->s_cqid].c_reserved++;
			if (qid) {
				struct nvw_queue_state *qs = &saved(c)->st_q[qid];
				qs->qs_sq_seq = sq->s_seq; /* the commit: head = seq % size */
				ORDERED();
				qs->qs_sq_head = sq->s_head;
				io(c, qid, cmd, slot);
			} else {
				/* an admin command runs at once; the next card runs it again
				 * when this one dies before its completion */
				admin(c, cmd);
				save_ctrl(c);
				save_sq(c, 0);
			}
		}
		if (!qid || !c->c_eis)
			return;
		if (c->c_polling) {
			/* the poll loop looks again: the driver need not ring */
			sq_event_quiet(c, qid);
			return;
		}
		/* EventIdx: ring again only for entries past what was seen; then look again */
		ei_write(c, 2 * qid, sq->s_tail);
		if (db_read(c, 2 * qid) == sq->s_tail)
			return;
	}
}

void nvme_kick(struct nvme_ctrl *c, unsigned qid)
{
	if (qid >= c->c_info.ni_nqids || !c->c_enabled || c->c_failed)
		return;
	c->c_batch++;
	if (c->c_sq[qid].s_live)
		process_sq(c, qid);
	/* CQ head moved: a queue waiting for room in it may go on */
	if (c->c_cq[qid].c_live)
		for (unsigned i = 0; i < c->c_info.ni_nqids; i++)
			if (i != qid && c->c_sq[i].s_live && c->c_sq[i].s_cqid == qid)
				process_sq(c, i);
	if (c->c_bdev->bd_ops->bo_commit)
		c->c_bdev->bd_ops->bo_commit(c->c_bdev);
	c->c_batch--;
	nvme_flush_irqs(c);
}

static uint64_t taken(const struct nvme_ctrl *c)
{
	uint64_t n = 0;
	for (unsigned q = 1; q < c->c_info.ni_nqids; q++)
		n += c->c_sq[q].s_seq;
	return n;
}

bool nvme_poll(struct nvme_ctrl *c)
{
	if (!c->c_enabled || c->c_failed || !c->c_eis)
		return false;
	uint64_t before = taken(c);
	c->c_batch++;
	for (unsigned q = 1; q < c->c_info.ni_nqids; q++) {
		struct nvme_sq *sq = &c->c_sq[q];
		/* a new tail (checked in process_sq), or entries left waiting for room */
		if (sq->s_live && (db_read(c, 2 * q) != sq->s_tail || sq->s_head != sq->s_tail))
			process_sq(c, q);
	}
	if (c->c_bdev->bd_ops->bo_commit)
		c->c_bdev->bd_ops->bo_commit(c->c_bdev);
	c->c_batch--;
	nvme_flush_irqs(c);
	return taken(c) != before;
}

bool nvme_set_polling(struct nvme_ctrl *c, bool on)
{
	c->c_polling = on;
	if (!c->c_enabled || c->c_failed || !c->c_eis)
		return false;
	for (unsigned q = 1; q < c->c_info.ni_nqids; q++) {
		const struct nvme_sq *sq = &c->c_sq[q];
		if (!sq->s_live)
			continue;
		if (on)
			sq_event_quiet(c, q);
		else
			ei_write(c, 2 * q, sq->s_tail); /* then look once more: the race */
	}
	return on ? false : nvme_poll(c);
}

void nvme_kick_all(struct nvme_ctrl *c)
{
	for (unsigned i = 0; i < c->c_info.ni_nqids; i++)
		nvme_kick(c, i);
}

/* ---- life cycle ---- */

int nvme_init(struct nvme_ctrl *c, const struct nvme_info *info, struct gmem *mem,
	      struct volume *vol, struct bdev *b, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->c_info = *info;
	if (info->ni_nqids < 2 || info->ni_nqids > NVME_MAX_QIDS)
		RETURN_ERR(-EINVAL, "nvme: %u queue ids (2..%u)", info->ni_nqids, NVME_MAX_QIDS);
	c->c_mem = mem;
	c->c_vol = vol;
	c->c_bdev = b;
	c->c_note = -1;
	for (unsigned i = 0; i < NVME_MAX_VECTORS; i++)
		c->c_call[i] = -1;
	c->c_now = now_ns;
	c->c_start_ns = now_ns();
	c->c_reqs = calloc(NVME_MAX_INFLIGHT, sizeof(*c->c_reqs));
	if (!c->c_reqs)
		RETURN_ERR(-ENOMEM, "nvme: out of memory");
	for (unsigned i = 0; i < NVME_MAX_INFLIGHT; i++) {
		c->c_reqs[i].q_c = c;
		c->c_reqs[i].q_next = c->c_free;
		c->c_free = &c->c_reqs[i];
	}
	c->c_vwc = true;
	return 0;
}

void nvme_fini(struct nvme_ctrl *c)
{
	nvme_disable(c);
	for (unsigned i = 0; c->c_reqs && i < NVME_MAX_INFLIGHT; i++)
		free(c->c_reqs[i].q_bounce);
	free(c->c_reqs);
	c->c_reqs = NULL;
}

/* The admin queue from the registers CC, AQA, ASQ, ACQ; NULL or why it cannot be. */
static const char *setup_admin(struct nvme_ctrl *c, const struct nvw_enable *e)
{
	unsigned asqs = (e->e_aqa & 0xfff) + 1, acqs = ((e->e_aqa >> 16) & 0xfff) + 1;
	unsigned mps = (e->e_cc >> 7) & 0xf, css = (e->e_cc >> 4) & 7;
	unsigned iosqes = (e->e_cc >> 16) & 0xf, iocqes = (e->e_cc >> 20) & 0xf;
	uint8_t *sq = NULL, *cq = NULL;
	c->c_cc = e->e_cc;
	if (mps != 0 || css != 0)
		return "CC.MPS or CC.CSS not supported";
	if ((iosqes && iosqes != 6) || (iocqes && iocqes != 4))
		return "CC.IOSQES/IOCQES not 64/16 bytes";
	if (asqs < 2 || acqs < 2)
		return "admin queue smaller than 2 entries";
	if ((e->e_asq | e->e_acq) & (NVME_PAGE - 1))
		return "admin queue base not page aligned";
	if (!(sq = gm_gpa(c->c_mem, e->e_asq, (uint64_t)asqs * 64)) ||
	    !(cq = gm_gpa(c->c_mem, e->e_acq, (uint64_t)acqs * 16)))
		return "admin queue outside guest memory";
	c->c_sq[0] =
	    (struct nvme_sq){.s_live = true, .s_size = asqs, .s_addr = e->e_asq, .s_ring = sq};
	c->c_cq[0] = (struct nvme_cq){.c_live = true,
				      .c_irq = true,
				      .c_size = acqs,
				      .c_phase = 1,
				      .c_addr = e->e_acq,
				      .c_ring = cq};
	return NULL;
}

bool nvme_enable(struct nvme_ctrl *c, const struct nvw_enable *e)
{
	nvme_disable(c);
	c->c_failed = false;
	note(c, NVW_F_FATAL, false);
	const char *why = setup_admin(c, e);
	if (why) {
		c->c_enabled = true; /* so that disable clears the state */
		nvme_fail(c, why);
		return false;
	}
	c->c_shared->s_db[0] = c->c_shared->s_db[1] = 0;
	c->c_enabled = true;
	save_queues(c);
	save_ctrl(c);
	return true;
}

/* ---- resuming after a card restart ---- */

static const char *resume_queues(struct nvme_ctrl *c, const struct nvw_state *s)
{
	unsigned n = c->c_info.ni_nqids;
	const struct nvw_queue_state *q0 = &s->st_q[0];
	if (q0->qs_cq_tail >= c->c_cq[0].c_size || q0->qs_cq_phase > 1)
		return "saved admin queue positions out of range";
	/* an SQ's head is its count of commands taken modulo its size: one 8-byte store
	 * saves both */
	c->c_sq[0].s_head = (uint32_t)(q0->qs_sq_seq % c->c_sq[0].s_size);
	c->c_sq[0].s_seq = q0->qs_sq_seq;
	c->c_cq[0].c_tail = q0->qs_cq_tail;
	c->c_cq[0].c_phase = q0->qs_cq_phase;
	for (unsigned q = 1; q < n; q++) { /* checked as Create I/O CQ checks */
		const struct nvw_queue_state *qs = &s->st_q[q];
		uint32_t size = qs->qs_cq_size;
		if (!size)
			continue;
		uint8_t *ring = NULL;
		if (size < 2 || size > NVME_MQES + 1 || qs->qs_cq_addr & (NVME_PAGE - 1) ||
		    qs->qs_cq_vector >= NVME_MAX_VECTORS || qs->qs_cq_tail >= size ||
		    qs->qs_cq_phase > 1 || q > (unsigned)c->c_ncqa + 1u ||
		    !(ring = gm_gpa(c->c_mem, qs->qs_cq_addr, (uint64_t)size * 16)))
			return "a saved completion queue is not valid";
		c->c_cq[q] = (struct nvme_cq){.c_live = true,
					      .c_irq = qs->qs_cq_irq != 0,
					      .c_vector = qs->qs_cq_vector,
					      .c_size = size,
					      .c_tail = qs->qs_cq_tail,
					      .c_phase = qs->qs_cq_phase,
					      .c_addr = qs->qs_cq_addr,
					      .c_ring = ring};
	}
	for (unsigned q = 1; q < n; q++) { /* as Create I/O SQ */
		const struct nvw_queue_state *qs = &s->st_q[q];
		uint32_t size = qs->qs_sq_size;
		if (!size)
			continue;
		uint8_t *ring = NULL;
		if (size < 2 || size > NVME_MQES + 1 || qs->qs_sq_addr & (NVME_PAGE - 1) ||
		    !qs->qs_sq_cqid || qs->qs_sq_cqid >= n || !c->c_cq[qs->qs_sq_cqid].c_live ||
		    q > (unsigned)c->c_nsqa + 1u ||
		    !(ring = gm_gpa(c->c_mem, qs->qs_sq_addr, (uint64_t)size * 64)))
			return "a saved submission queue is not valid";
		c->c_sq[q] = (struct nvme_sq){.s_live = true,
					      .s_cqid = qs->qs_sq_cqid,
					      .s_size = size,
					      .s_head = (uint32_t)(qs->qs_sq_seq % size),
					      .s_tail = (uint32_t)(qs->qs_sq_seq % size),
					      .s_seq = qs->qs_sq_seq,
					      .s_addr = qs->qs_sq_addr,
					      .s_ring = ring};
	}
	if (s->st_dbs || s->st_eis) { /* as Doorbell Buffer Config */
		uint32_t *pd = NULL, *pe = NULL;
		if ((s->st_dbs | s->st_eis) & (NVME_PAGE - 1) || s->st_dbs == s->st_eis ||
		    !(pd = gm_gpa(c->c_mem, s->st_dbs, NVME_PAGE)) ||
		    !(pe = gm_gpa(c->c_mem, s->st_eis, NVME_PAGE)))
			return "saved shadow doorbell pages not valid";
		c->c_dbs = pd;
		c->c_eis = pe;
		c->c_dbs_gpa = s->st_dbs;
		c->c_eis_gpa = s->st_eis;
	}
	return NULL;
}

/* Completions the last card wrote after it saved the CQ's tail (it died in between):
 * the entries at the tail that carry the current phase. Their commands' copies go. */
static void resume_cq_tails(struct nvme_ctrl *c, struct nvw_state *s)
{
	for (unsigned q = 0; q < c->c_info.ni_nqids; q++) {
		struct nvme_cq *cq = &c->c_cq[q];
		if (!cq->c_live)
			continue;
		for (uint32_t k = 0; k + 1 < cq->c_size; k++) {
			const uint8_t *e = cq->c_ring + (size_t)cq->c_tail * 16;
			if ((le16_get(e + 14) & 1) != cq->c_phase)
				break;
			uint16_t sqid = le16_get(e + 10), cid = le16_get(e + 12);
			for (unsigned i = 0; sqid && i < NVW_MAX_SLOTS; i++)
				if (s->st_slot[i].sl_sqid == sqid &&
				    le16_get(s->st_slot[i].sl_cmd + 2) == cid)
					s->st_slot[i].sl_sqid = 0;
			if (++cq->c_tail == cq->c_size) {
				cq->c_tail = 0;
				cq->c_phase ^= 1;
			}
		}
	}
	/* An admin command completed before its SQ head was saved: the head its last
	 * completion reports, when that is one past the saved head. */
	struct nvme_cq *cq = &c->c_cq[0];
	struct nvme_sq *sq = &c->c_sq[0];
	uint32_t last = (cq->c_tail + cq->c_size - 1) % cq->c_size;
	const uint8_t *e = cq->c_ring + (size_t)last * 16;
	uint8_t phase = cq->c_tail ? cq->c_phase : cq->c_phase ^ 1;
	uint16_t sqhd = le16_get(e + 8);
	if ((le16_get(e + 14) & 1) == phase && le16_get(e + 10) == 0 && sqhd < sq->s_size &&
	    sqhd == (sq->s_head + 1) % sq->s_size) {
		sq->s_head = sqhd;
		sq->s_seq++;
	}
}

bool nvme_resume(struct nvme_ctrl *c, const struct nvw_enable *e)
{
	if (c->c_enabled)
		nvme_disable(c);
	struct nvw_state *s = malloc(sizeof(*s));
	if (!s)
		return false;
	memcpy(s, saved(c), sizeof(*s)); /* copied once, then checked */
	unsigned n = c->c_info.ni_nqids, max = n - 2;
	c->c_failed = false;
	const char *why = NULL;
	if (s->st_valid != NVW_STATE_VALID || s->st_cc != e->e_cc)
		why = "no saved state of this controller to resume from";
	else
		why = setup_admin(c, e);
	if (!why) {
		c->c_nsqa = (uint16_t)(s->st_nsqa < max ? s->st_nsqa : max);
		c->c_ncqa = (uint16_t)(s->st_ncqa < max ? s->st_ncqa : max);
		c->c_queues_set = s->st_queues_set != 0;
		c->c_vwc = s->st_vwc != 0;
		c->c_coalesce = s->st_coalesce;
		c->c_aec = s->st_aec;
		c->c_kato = s->st_kato;
		c->c_naer = s->st_naer <= NVME_AERL + 1 ? s->st_naer : NVME_AERL + 1;
		memcpy(c->c_aer_cid, s->st_aer_cid, sizeof(c->c_aer_cid));
		why = resume_queues(c, s);
	}
	c->c_enabled = true;
	if (why) {
		free(s);
		nvme_fail(c, why);
		return false;
	}
	resume_cq_tails(c, s);
	/* Commands the last card took without saving the SQ head yet (at most one per
	 * queue: it saves the head right after the copy). */
	for (unsigned i = 0; i < NVW_MAX_SLOTS; i++) {
		unsigned q = s->st_slot[i].sl_sqid;
		if (q && q < n && c->c_sq[q].s_live && s->st_slot[i].sl_seq == c->c_sq[q].s_seq) {
			c->c_sq[q].s_head = (c->c_sq[q].s_head + 1) % c->c_sq[q].s_size;
			c->c_sq[q].s_seq++;
		}
	}
	memset(saved(c)->st_slot, 0, sizeof(saved(c)->st_slot));
	save_queues(c);
	save_ctrl(c);
	/* The commands in flight when the last card ended run again (reads, writes of the
	 * data still in the guest's buffers, flushes: the same result twice). */
	c->c_batch++;
	for (unsigned i = 0; i < NVW_MAX_SLOTS && c->c_free; i++) {
		const struct nvw_slot *sl = &s->st_slot[i];
		unsigned q = sl->sl_sqid;
		if (!q || q >= n || !c->c_sq[q].s_live)
			continue; /* its queue is gone: nobody waits for it */
		c->c_cq[c->c_sq[q].s_cqid].c_reserved++;
		io(c, q, sl->sl_cmd, save_cmd(c, q, sl->sl_cmd, sl->sl_seq));
	}
	free(s);
	if (c->c_bdev->bd_ops->bo_commit)
		c->c_bdev->bd_ops->bo_commit(c->c_bdev);
	c->c_batch--;
	/* completions the last card posted may not have been signalled */
	for (unsigned q = 0; q < n; q++)
		c->c_cq[q].c_pending_irq = c->c_cq[q].c_live;
	if (c->c_dbs)
		note(c, NVW_F_DBBUF, true);
	nvme_kick_all(c);
	return true;
}

void nvme_mem_changing(struct nvme_ctrl *c)
{
	if (c->c_inflight)
		drain(c);
	nvme_flush_irqs(c);
}

bool nvme_remap(struct nvme_ctrl *c)
{
	const char *why = NULL;
	if (!c->c_enabled)
		return true;
	for (unsigned q = 0; q < c->c_info.ni_nqids; q++) {
		struct nvme_sq *sq = &c->c_sq[q];
		struct nvme_cq *cq = &c->c_cq[q];
		if (sq->s_live &&
		    !(sq->s_ring = gm_gpa(c->c_mem, sq->s_addr, (uint64_t)sq->s_size * 64))) {
			sq->s_live = false;
			why = "a submission queue lies in memory taken from the guest";
		}
		if (cq->c_live &&
		    !(cq->c_ring = gm_gpa(c->c_mem, cq->c_addr, (uint64_t)cq->c_size * 16))) {
			cq->c_live = false;
			why = "a completion queue lies in memory taken from the guest";
		}
	}
	if (c->c_dbs) {
		uint32_t *pd = gm_gpa(c->c_mem, c->c_dbs_gpa, NVME_PAGE),
			 *pe = gm_gpa(c->c_mem, c->c_eis_gpa, NVME_PAGE);
		if (pd && pe) {
			c->c_dbs = pd;
			c->c_eis = pe;
		} else {
			c->c_dbs = c->c_eis = NULL;
			why = "the shadow doorbells lie in memory taken from the guest";
		}
	}
	if (why)
		nvme_fail(c, why);
	return !why;
}

void nvme_detach(struct nvme_ctrl *c, struct nvw_shared *dummy)
{
	if (c->c_inflight)
		drain(c);
	nvme_flush_irqs(c);
	c->c_shared = dummy;
}

void nvme_disable(struct nvme_ctrl *c)
{
	if (c->c_inflight)
		drain(c);
	c->c_enabled = false;
	memset(c->c_sq, 0, sizeof(c->c_sq));
	memset(c->c_cq, 0, sizeof(c->c_cq));
	c->c_dbs = c->c_eis = NULL;
	c->c_dbs_gpa = c->c_eis_gpa = 0;
	c->c_queues_set = false;
	c->c_nsqa = c->c_ncqa = 0;
	c->c_naer = 0;
	c->c_qos_wait_ns = 0;
	if (c->c_shared) {
		memset(c->c_shared->s_db, 0, sizeof(c->c_shared->s_db));
		memset(saved(c), 0, sizeof(*saved(c)));
		if (c->c_shared->s_flags & NVW_F_DBBUF)
			note(c, NVW_F_DBBUF, false);
	}
}

void nvme_shutdown(struct nvme_ctrl *c)
{
	char err[256];
	if (c->c_inflight)
		drain(c);
	/* writes acknowledged are on stable storage once the volume file is synced */
	if (c->c_vol->v_fd >= 0 && !c->c_vol->v_readonly &&
	    vol_flush(c->c_vol, err, sizeof(err)) < 0)
		warnmsg("%s", err);
	c->c_enabled = false;
	if (c->c_shared)
		save_ctrl(c); /* a shut-down controller is not resumed */
}
