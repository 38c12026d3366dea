/* A hostile guest NVMe driver, run as root inside a stock guest (tests/system/test_nvme.py):
 * it takes an NVMe controller away from the kernel's driver, drives it from user space
 * through the sysfs BAR with queues in its own locked pages (physical addresses from
 * /proc/self/pagemap), and posts commands whose PRPs are bad: outside guest RAM, a
 * misaligned PRP entry, a PRP list outside guest RAM, and queue creation abuse (a queue
 * outside guest RAM, a queue id past the limit, a size past CAP.MQES). A correct card fails
 * each command with an error status and keeps serving; a tail doorbell past the queue
 * fails the controller (CSTS.CFS), and a reset brings it back.
 *
 * usage: hostile-nvme PCI-SYSFS-DIR
 * Prints one line per step; exits 0 when every step saw what it expected.
 * BAR 0 is nitro-hv's (src/hv/nvme_pci.h): doorbells at 0x1000, stride 4.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest_pci.h"

#define QD 8
#define OUTSIDE 0x7fff00000000ull

static uint8_t *pg[6]; /* ASQ, ACQ, data (2 pages), I/O SQ, I/O CQ, PRP list */
static uint64_t pa[6];
static unsigned sq_tail[2], cq_head[2], phase[2];
static uint16_t cid;

static bool wait_csts(uint32_t mask, uint32_t want, double secs)
{
	for (double end = now() + secs; now() < end;) {
		if ((r32(0x1c) & mask) == want)
			return true;
		usleep(1000);
	}
	return false;
}

static void enable(void)
{
	w32(0x14, 0);
	if (!wait_csts(1, 0, 5))
		fail("CSTS.RDY did not clear");
	memset(pg[0], 0, 4096);
	memset(pg[1], 0, 4096);
	sq_tail[0] = cq_head[0] = 0;
	phase[0] = phase[1] = 1;
	w32(0x24, (QD - 1) << 16 | (QD - 1));
	w64(0x28, pa[0]);
	w64(0x30, pa[1]);
	w32(0x14, 1 | 6u << 16 | 4u << 20);
	if (!wait_csts(3, 1, 5))
		fail("CSTS.RDY did not set");
}

/* Submits cmd on queue q (0 admin, 1 I/O); returns the status field, or -1 on timeout. */
static int submit(unsigned q, uint8_t *cmd)
{
	uint8_t *sq = q ? pg[4] : pg[0], *cq = q ? pg[5] : pg[1];
	uint16_t id = ++cid;
	memcpy(cmd + 2, &id, 2);
	memcpy(sq + sq_tail[q] * 64, cmd, 64);
	sq_tail[q] = (sq_tail[q] + 1) % QD;
	__sync_synchronize();
	w32(0x1000 + 8 * q, sq_tail[q]);
	volatile uint8_t *e = cq + cq_head[q] * 16;
	for (double end = now() + 5; now() < end;) {
		uint16_t st = *(volatile uint16_t *)(e + 14);
		if ((st & 1) == phase[q]) {
			if (++cq_head[q] == QD) {
				cq_head[q] = 0;
				phase[q] ^= 1;
			}
			w32(0x1000 + 8 * q + 4, cq_head[q]);
			return st >> 1;
		}
		usleep(200);
	}
	return -1;
}

static void cmd_init(uint8_t *c, uint8_t op, uint32_t nsid, uint64_t prp1, uint64_t prp2)
{
	memset(c, 0, 64);
	c[0] = op;
	memcpy(c + 4, &nsid, 4);
	memcpy(c + 24, &prp1, 8);
	memcpy(c + 32, &prp2, 8);
}

static int identify(uint64_t prp1)
{
	uint8_t c[64];
	cmd_init(c, 0x06, 0, prp1, 0);
	c[40] = 1; /* CNS: controller */
	return submit(0, c);
}

static int create_queue(uint8_t op, uint16_t qid, uint16_t size, uint64_t addr, uint32_t dw11)
{
	uint8_t c[64];
	cmd_init(c, op, 0, addr, 0);
	uint32_t dw10 = (uint32_t)(size - 1) << 16 | qid;
	memcpy(c + 40, &dw10, 4);
	memcpy(c + 44, &dw11, 4);
	return submit(0, c);
}

static int read16k(uint64_t prp1, uint64_t prp2)
{
	uint8_t c[64];
	cmd_init(c, 0x02, 1, prp1, prp2);
	uint32_t nlb = 31; /* 32 blocks: 16 KiB, a PRP list */
	memcpy(c + 48, &nlb, 4);
	return submit(1, c);
}

static int expect(const char *what, int st, bool ok)
{
	printf("%s: status 0x%x\n", what, st < 0 ? 0xffff : st);
	if (st < 0 || (ok ? st != 0 : st == 0)) {
		printf("hostile-nvme: %s: expected %s\n", what, ok ? "success" : "an error");
		exit(1);
	}
	return st;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: hostile-nvme PCI-SYSFS-DIR\n");
		return 2;
	}
	pci_take(argv[1], 0x4000);
	for (unsigned i = 0; i < 6; i++)
		pg[i] = locked_page(&pa[i]);
	enable();
	expect("identify", identify(pa[2]), true);
	printf("model: %.26s\n", (char *)pg[2] + 24);
	expect("identify, PRP outside guest RAM", identify(OUTSIDE), false);
	expect("identify, misaligned PRP", identify(pa[2] + 1), false);
	expect("create CQ outside guest RAM", create_queue(0x05, 1, QD, OUTSIDE, 1), false);
	expect("create CQ, queue id 999", create_queue(0x05, 999, QD, pa[5], 1), false);
	expect("create CQ, 65536 entries", create_queue(0x05, 1, 0, pa[5], 1), false);
	expect("create SQ without its CQ", create_queue(0x01, 1, QD, pa[4], 1 | 1u << 16), false);
	/* the number of queues first (the controller grants I/O queues) */
	uint8_t c[64];
	cmd_init(c, 0x09, 0, 0, 0);
	c[40] = 0x07;
	expect("set features: queues", submit(0, c), true);
	expect("create CQ", create_queue(0x05, 1, QD, pa[5], 1), true);
	expect("create SQ", create_queue(0x01, 1, QD, pa[4], 1 | 1u << 16), true);
	/* I/O with a PRP list: valid first, then a list outside RAM, then entries outside */
	uint64_t lpa;
	uint8_t *lp = locked_page(&lpa);
	for (unsigned i = 0; i < 3; i++)
		memcpy(lp + 8 * i, &pa[3], 8);
	expect("read, PRP list", read16k(pa[2], lpa), true);
	expect("read, PRP list outside guest RAM", read16k(pa[2], OUTSIDE), false);
	uint64_t bad = OUTSIDE;
	memcpy(lp + 8, &bad, 8);
	expect("read, PRP entry outside guest RAM", read16k(pa[2], lpa), false);
	bad = pa[3] + 8;
	memcpy(lp + 8, &bad, 8);
	expect("read, misaligned PRP entry", read16k(pa[2], lpa), false);
	memcpy(lp + 8, &pa[3], 8);
	expect("read after the attacks", read16k(pa[2], lpa), true);
	/* a tail doorbell past the queue: the controller fails (CFS) */
	w32(0x1000, QD + 5);
	bool cfs = wait_csts(2, 2, 5);
	printf("doorbell past the queue: CSTS.CFS %s\n", cfs ? "set" : "not set");
	if (!cfs)
		return 1;
	enable();
	expect("identify after the reset", identify(pa[2]), true);
	printf("model: %.26s\n", (char *)pg[2] + 24);
	return 0;
}
