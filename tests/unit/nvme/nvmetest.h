/* A controller (src/cards/nvme) over guest memory that is a heap buffer at gpa 0x100000
 * and a null back end, for the cmocka tests and the fuzz target: the admin queue at
 * NT_ASQ/NT_ACQ, commands posted by nt_post(), the doorbell written as the hypervisor
 * would (the shared page) and the card kicked. */
#ifndef NITRO_TESTS_NVMETEST_H
#define NITRO_TESTS_NVMETEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/nvme/nvme.h"
#include "lib/le.h"

#define NT_GPA 0x100000ull
#define NT_MEM (256u << 10)
#define NT_ASQ (NT_GPA + 0x0000) /* 16 entries */
#define NT_ACQ (NT_GPA + 0x1000)
#define NT_DATA (NT_GPA + 0x2000) /* data pages up to 0x20000 */
#define NT_QD 16u

struct nt {
	uint8_t *mem;
	struct gmem gm;
	struct volume vol;
	struct bdev b;
	struct nvme_ctrl c;
	struct nvw_shared sh;
	unsigned tail[NVME_MAX_QIDS], head[NVME_MAX_QIDS], phase[NVME_MAX_QIDS];
	uint64_t sq[NVME_MAX_QIDS], cq[NVME_MAX_QIDS];
	uint16_t cid;
};

static inline uint8_t *nt_ptr(struct nt *t, uint64_t gpa)
{
	return t->mem + (gpa - NT_GPA);
}

static inline int nt_init(struct nt *t, uint64_t size, bool encrypted)
{
	char err[256];
	memset(t, 0, sizeof(*t));
	t->mem = calloc(1, NT_MEM);
	gm_init(&t->gm);
	if (!t->mem || gm_add_borrowed(&t->gm, NT_GPA, NT_GPA, t->mem, NT_MEM, err, sizeof(err)))
		return -1;
	if (bdev_null_open(&t->b, size, err, sizeof(err)))
		return -1;
	vol_init_raw(&t->vol, "null:test", size, false);
	if (encrypted && vol_set_ephemeral_key(&t->vol, err, sizeof(err)))
		return -1;
	struct nvme_info info = {.ni_device = 0x8061,
				 .ni_model = "Amazon Elastic Block Store",
				 .ni_serial = "vol0123456789abcdef0",
				 .ni_bdev_name = "sdf",
				 .ni_nqids = 5};
	if (nvme_init(&t->c, &info, &t->gm, &t->vol, &t->b, err, sizeof(err)))
		return -1;
	t->c.c_shared = &t->sh;
	struct nvw_enable e = {.e_cc = 1 | 6u << 16 | 4u << 20,
			       .e_aqa = (NT_QD - 1) << 16 | (NT_QD - 1),
			       .e_asq = NT_ASQ,
			       .e_acq = NT_ACQ};
	t->sq[0] = NT_ASQ;
	t->cq[0] = NT_ACQ;
	for (unsigned i = 0; i < NVME_MAX_QIDS; i++)
		t->phase[i] = 1;
	return nvme_enable(&t->c, &e) ? 0 : -1;
}

static inline void nt_fini(struct nt *t)
{
	nvme_fini(&t->c);
	gm_clear(&t->gm);
	bdev_close(&t->b);
	vol_close(&t->vol);
	free(t->mem);
}

static inline void nt_cmd(uint8_t *c, uint8_t op, uint32_t nsid, uint64_t prp1, uint64_t prp2)
{
	memset(c, 0, 64);
	c[0] = op;
	le32_put(c + 4, nsid);
	le64_put(c + 24, prp1);
	le64_put(c + 32, prp2);
}

/* Posts cmd on SQ q (its CQ has the same id), rings, kicks; returns the completion's status
 * (-1: none was posted). */
static inline int nt_post(struct nt *t, unsigned q, uint8_t *cmd, uint32_t *dw0)
{
	le16_put(cmd + 2, ++t->cid);
	memcpy(nt_ptr(t, t->sq[q]) + t->tail[q] * 64, cmd, 64);
	t->tail[q] = (t->tail[q] + 1) % NT_QD;
	if (q && t->c.c_dbs)
		t->c.c_dbs[2 * q] = t->tail[q];
	else
		t->sh.s_db[2 * q] = t->tail[q];
	nvme_kick(&t->c, q);
	uint8_t *e = nt_ptr(t, t->cq[q]) + t->head[q] * 16;
	uint16_t st = le16_get(e + 14);
	if ((st & 1) != t->phase[q])
		return -1;
	if (dw0)
		*dw0 = le32_get(e);
	if (++t->head[q] == NT_QD) {
		t->head[q] = 0;
		t->phase[q] ^= 1;
	}
	if (q && t->c.c_dbs)
		t->c.c_dbs[2 * q + 1] = t->head[q];
	else
		t->sh.s_db[2 * q + 1] = t->head[q];
	return st >> 1;
}

#endif
