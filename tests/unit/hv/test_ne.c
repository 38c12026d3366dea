/* Unit tests for the Nitro Enclaves device: the slot table and its commands
 * (src/hv/ne_cmd.c) and the PCI function in front of it (src/hv/ne_pci.c), without KVM.
 *
 * ne_cmd: the 72-byte reply layout; every command in every slot state (no slot, INIT,
 * RUNNING, STOPPED) against a table of expected rc values; SLOT_ALLOC limits and uids;
 * ADD_MEM alignment, size, RAM bounds (both sides of the PCI hole, wrap-around), overlap
 * within and across slots, the 256-range limit; ADD_VCPU and bulk vCPUs; START's flag, CID
 * and resource rules, auto CIDs, the missing glue, the glue's refusal; STOP, SLOT_FREE and
 * reset ending running enclaves through the glue; an enclave's own exit; NEXT_SLOT walks.
 * ne_pci: config space (ids, class, BAR 3, MSI-X capability with BIR 3), the driver's
 * probe sequence through the MMIO bus, commands through SEND_DATA/COMMAND/RECV_DATA,
 * EVTCNT, MSI-X masking with pending bits, the event vector, hostile accesses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <linux/nitro_enclaves.h>

#include "boot/memory.h"
#include "hv/mmio.h"
#include "hv/ne_cmd.h"
#include "hv/ne_pci.h"
#include "hv/pci.h"
#include "hv/vm.h"
#include "lib/le.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define NCPUS 8

/* ---- helpers ---- */

struct glue {
	unsigned starts, stops;
	int start_rc;
	uint64_t last_cid, last_uid;
	unsigned last_nranges, last_nvcpus;
};

static int g_start(void *ctx, struct ne_slot *s)
{
	struct glue *g = ctx;
	g->starts++;
	g->last_cid = s->cid;
	g->last_uid = s->uid;
	g->last_nranges = s->nranges;
	g->last_nvcpus = s->nvcpus;
	return g->start_rc;
}

static void g_stop(void *ctx, struct ne_slot *s)
{
	struct glue *g = ctx;
	assert_int_equal(s->state, NE_STATE_RUNNING);
	g->stops++;
}

/* A parent of NCPUS vCPUs and 5 GiB of RAM: [0, 3 GiB) and [4 GiB, 6 GiB). */
static void init5g(struct ne_cmd *c)
{
	struct guest_mem m;
	mem_layout(&m, 5 * GiB);
	struct ne_mem_range ram[2];
	for (unsigned i = 0; i < m.gm_nregions; i++)
		ram[i] = (struct ne_mem_range){m.gm_regions[i].mr_gpa, m.gm_regions[i].mr_size};
	ne_cmd_init(c, NCPUS, ram, m.gm_nregions);
}

static struct ne_reply cmd_raw(struct ne_cmd *c, uint32_t type, const uint8_t *req)
{
	uint8_t rep[NE_DATA_SIZE];
	memset(rep, 0xee, sizeof(rep));
	ne_cmd_handle(c, type, req, rep);
	for (unsigned i = NE_REPLY_SIZE; i < NE_DATA_SIZE; i++)
		assert_int_equal(rep[i], 0);
	/* padding bytes of the reply are zero */
	for (unsigned i = 4; i < 8; i++)
		assert_int_equal(rep[i], 0);
	for (unsigned i = 66; i < 72; i++)
		assert_int_equal(rep[i], 0);
	struct ne_reply r;
	ne_reply_decode(rep, &r);
	return r;
}

static struct ne_reply cmd(struct ne_cmd *c, uint32_t type, uint64_t a0, uint64_t a1, uint64_t a2)
{
	uint8_t req[NE_DATA_SIZE] = {0};
	le64_put(req, a0);
	le64_put(req + 8, a1);
	le64_put(req + 16, a2);
	return cmd_raw(c, type, req);
}

static uint64_t alloc(struct ne_cmd *c)
{
	struct ne_reply r = cmd(c, NE_CMD_SLOT_ALLOC, 0, 0, 0);
	assert_int_equal(r.rc, 0);
	return r.slot_uid;
}

/* ---- ne_cmd ---- */

static void test_reply_layout(void **state)
{
	(void)state;
	struct ne_reply r = {.rc = -NE_ERR_INVALID_VCPU,
			     .slot_uid = 0x0102030405060708ull,
			     .enclave_cid = 0x11,
			     .slot_count = 0x22,
			     .mem_regions = 0x33,
			     .mem_size = 0x44,
			     .nr_vcpus = 0x55,
			     .flags = 0x66,
			     .state = 0xffff};
	uint8_t b[NE_REPLY_SIZE];
	ne_reply_encode(&r, b);
	assert_int_equal((int32_t)le32_get(b), -271);
	assert_int_equal(le64_get(b + 8), 0x0102030405060708ull);
	assert_int_equal(le64_get(b + 16), 0x11);
	assert_int_equal(le64_get(b + 24), 0x22);
	assert_int_equal(le64_get(b + 32), 0x33);
	assert_int_equal(le64_get(b + 40), 0x44);
	assert_int_equal(le64_get(b + 48), 0x55);
	assert_int_equal(le64_get(b + 56), 0x66);
	assert_int_equal(le16_get(b + 64), 0xffff);
	struct ne_reply d;
	ne_reply_decode(b, &d);
	assert_memory_equal(&d.slot_uid, &r.slot_uid, 8);
	assert_int_equal(d.rc, r.rc);
	assert_int_equal(d.state, r.state);
}

enum slot_state { S_NONE, S_INIT, S_RUNNING, S_STOPPED };

/* Expected rc of each command (index = type) for each slot state, with a request that is
 * otherwise valid. */
static const int expect_rc[4][12] = {
    [S_NONE] = {-EINVAL, -EINVAL, -EINVAL, -EINVAL, 0, -EINVAL, -EINVAL, -EINVAL, 0, -ENOENT,
		-EINVAL, -EINVAL},
    [S_INIT] = {-EINVAL, 0, -EINVAL, -EINVAL, 0, 0, 0, 0, 0, 0, 0, 0},
    [S_RUNNING] = {-EINVAL, -NE_ERR_NOT_IN_INIT_STATE, 0, 0, 0, 0, -NE_ERR_NOT_IN_INIT_STATE,
		   -NE_ERR_NOT_IN_INIT_STATE, 0, 0, 0, -NE_ERR_NOT_IN_INIT_STATE},
    [S_STOPPED] = {-EINVAL, -NE_ERR_NOT_IN_INIT_STATE, 0, 0, 0, 0, -NE_ERR_NOT_IN_INIT_STATE,
		   -NE_ERR_NOT_IN_INIT_STATE, 0, 0, 0, -NE_ERR_NOT_IN_INIT_STATE},
};

static void test_every_command_every_state(void **state)
{
	(void)state;
	static const uint16_t st[4] = {0, NE_STATE_INIT, NE_STATE_RUNNING, NE_STATE_STOPPED};
	for (unsigned ss = S_NONE; ss <= S_STOPPED; ss++) {
		for (uint32_t type = 0; type <= 11; type++) {
			struct ne_cmd c;
			struct glue g = {0};
			struct ne_ops ops = {g_start, g_stop, &g};
			init5g(&c);
			ne_cmd_set_ops(&c, &ops);
			uint64_t uid = 77; /* no such slot */
			if (ss != S_NONE) {
				uid = alloc(&c);
				assert_int_equal(
				    cmd(&c, NE_CMD_SLOT_ADD_MEM, uid, 64 * MiB, 64 * MiB).rc, 0);
				assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, uid, 1, 0).rc, 0);
			}
			if (ss >= S_RUNNING)
				assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, uid, 0, 0).rc, 0);
			if (ss == S_STOPPED)
				assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_STOP, uid, 0, 0).rc, 0);
			unsigned stops = g.stops;
			uint64_t a1 = 0, a2 = 0;
			switch (type) {
			case NE_CMD_ENCLAVE_GET_SLOT:
				uid = NE_CID_AUTO_FIRST; /* the auto CID a started slot got */
				break;
			case NE_CMD_SLOT_ADD_MEM:
				a1 = 256 * MiB, a2 = 2 * MiB;
				break;
			case NE_CMD_SLOT_ADD_VCPU:
				a1 = 2;
				break;
			case NE_CMD_NEXT_SLOT:
				uid = 0;
				break;
			case NE_CMD_SLOT_ADD_BULK_VCPUS:
				a1 = 1;
				break;
			}
			struct ne_reply r = cmd(&c, type, uid, a1, a2);
			if (r.rc != expect_rc[ss][type])
				fail_msg("state %u command %u: rc %d, expected %d", ss, type, r.rc,
					 expect_rc[ss][type]);
			/* Only STOP and SLOT_FREE of a running slot reach the glue's stop. */
			bool ends = ss == S_RUNNING &&
				    (type == NE_CMD_ENCLAVE_STOP || type == NE_CMD_SLOT_FREE);
			assert_int_equal(g.stops, stops + (ends ? 1 : 0));
			if (type == NE_CMD_SLOT_INFO && ss != S_NONE) {
				assert_int_equal(r.state, st[ss]);
				assert_int_equal(r.slot_uid, uid);
				assert_int_equal(r.mem_size, 64 * MiB);
				assert_int_equal(r.mem_regions, 1);
				assert_int_equal(r.nr_vcpus, 1);
				assert_int_equal(r.enclave_cid, ss >= S_RUNNING ? 16 : 0);
			}
			if (type == NE_CMD_SLOT_COUNT)
				assert_int_equal(r.slot_count, ss == S_NONE ? 0 : 1);
			if (type == NE_CMD_ENCLAVE_STOP && r.rc == 0)
				assert_int_equal(r.state, NE_STATE_STOPPED);
			if (type == NE_CMD_ENCLAVE_START && r.rc == 0) {
				assert_int_equal(r.enclave_cid, NE_CID_AUTO_FIRST);
				assert_int_equal(g.starts, 1);
			}
			if (type == NE_CMD_SLOT_FREE && r.rc == 0) {
				assert_null(ne_cmd_slot(&c, uid));
				assert_int_equal(cmd(&c, NE_CMD_SLOT_INFO, uid, 0, 0).rc, -EINVAL);
			}
		}
	}
}

static void test_slot_alloc(void **state)
{
	(void)state;
	struct ne_cmd c;
	init5g(&c);
	struct ne_reply r = cmd(&c, NE_CMD_SLOT_ALLOC, 0, 0, 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.slot_uid, 1);
	assert_true(r.mem_regions >= 256);
	assert_int_equal(r.state, NE_STATE_INIT);
	for (unsigned i = 1; i < NE_MAX_SLOTS; i++)
		assert_int_equal(alloc(&c), i + 1);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_COUNT, 0, 0, 0).slot_count, NE_MAX_SLOTS);
	r = cmd(&c, NE_CMD_SLOT_ALLOC, 0, 0, 0);
	assert_int_equal(r.rc, -ENOSPC);
	assert_int_equal(r.slot_uid, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_FREE, 5, 0, 0).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_FREE, 5, 0, 0).rc, -EINVAL);
	/* a freed uid is never handed out again */
	assert_int_equal(alloc(&c), NE_MAX_SLOTS + 1);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_INFO, 5, 0, 0).rc, -EINVAL);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_INFO, 0, 0, 0).rc, -EINVAL);
}

static void test_add_mem(void **state)
{
	(void)state;
	struct ne_cmd c;
	init5g(&c);
	uint64_t a = alloc(&c), b = alloc(&c);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 64 * MiB, 2 * MiB).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 64 * MiB + 4096, 2 * MiB).rc,
			 -NE_ERR_UNALIGNED_MEM_REGION_ADDR);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 1 * MiB, 2 * MiB).rc,
			 -NE_ERR_UNALIGNED_MEM_REGION_ADDR);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 96 * MiB, 3 * MiB).rc,
			 -NE_ERR_INVALID_MEM_REGION_SIZE);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 96 * MiB, 0).rc,
			 -NE_ERR_INVALID_MEM_REGION_SIZE);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 96 * MiB, 4096).rc,
			 -NE_ERR_INVALID_MEM_REGION_SIZE);
	/* RAM bounds: the last 2 MiB below the hole, into the hole, in it, above 4 GiB, past
	 * the end, wrapping around */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 3 * GiB - 2 * MiB, 2 * MiB).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 3 * GiB - 2 * MiB, 4 * MiB).rc,
			 -NE_ERR_INVALID_MEM_REGION_ADDR);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 3 * GiB, 2 * MiB).rc,
			 -NE_ERR_INVALID_MEM_REGION_ADDR);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 4 * GiB, 2 * MiB).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 6 * GiB - 2 * MiB, 2 * MiB).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 6 * GiB, 2 * MiB).rc,
			 -NE_ERR_INVALID_MEM_REGION_ADDR);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 4 * GiB + 2 * MiB, 0ull - 4 * GiB).rc,
			 -NE_ERR_INVALID_MEM_REGION_ADDR);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 0ull - 2 * MiB, 4 * MiB).rc,
			 -NE_ERR_INVALID_MEM_REGION_ADDR);
	/* overlap: the same range, a containing one, a partial one, in the same slot and in
	 * another; adjacent is fine */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 64 * MiB, 2 * MiB).rc,
			 -NE_ERR_MEM_REGION_ALREADY_USED);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 64 * MiB, 2 * MiB).rc,
			 -NE_ERR_MEM_REGION_ALREADY_USED);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 62 * MiB, 8 * MiB).rc,
			 -NE_ERR_MEM_REGION_ALREADY_USED);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 62 * MiB, 4 * MiB).rc,
			 -NE_ERR_MEM_REGION_ALREADY_USED);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 66 * MiB, 2 * MiB).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 62 * MiB, 2 * MiB).rc, 0);
	/* an unknown slot */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, 99, 128 * MiB, 2 * MiB).rc, -EINVAL);
	struct ne_reply r = cmd(&c, NE_CMD_SLOT_INFO, a, 0, 0);
	assert_int_equal(r.mem_regions, 2);
	assert_int_equal(r.mem_size, 4 * MiB);
	/* the ranges are kept in the order they were added */
	struct ne_slot *s = ne_cmd_slot(&c, b);
	assert_non_null(s);
	assert_int_equal(s->nranges, 4);
	assert_int_equal(s->range[0].gpa, 4 * GiB);
	assert_int_equal(s->range[3].gpa, 62 * MiB);
	/* freeing a slot gives its ranges back */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_FREE, a, 0, 0).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, b, 64 * MiB, 2 * MiB).rc, 0);
}

static void test_add_mem_max_regions(void **state)
{
	(void)state;
	struct ne_cmd c;
	init5g(&c);
	uint64_t a = alloc(&c);
	/* 256 separate 2 MiB regions (every other one) */
	for (unsigned i = 0; i < NE_MAX_REGIONS; i++)
		assert_int_equal(
		    cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 256 * MiB + i * 4 * MiB, 2 * MiB).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 2 * GiB, 2 * MiB).rc,
			 -NE_ERR_MEM_MAX_REGIONS);
	struct ne_reply r = cmd(&c, NE_CMD_SLOT_INFO, a, 0, 0);
	assert_int_equal(r.mem_regions, 256);
	assert_int_equal(r.mem_size, 512 * MiB);
}

static void test_add_vcpu(void **state)
{
	(void)state;
	struct ne_cmd c;
	init5g(&c);
	uint64_t a = alloc(&c), b = alloc(&c);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, 0, 0).rc, -NE_ERR_INVALID_VCPU);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, NCPUS, 0).rc, -NE_ERR_INVALID_VCPU);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, 0xffffffffu, 0).rc, -NE_ERR_INVALID_VCPU);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, NCPUS - 1, 0).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, NCPUS - 1, 0).rc,
			 -NE_ERR_VCPU_ALREADY_USED);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, b, NCPUS - 1, 0).rc,
			 -NE_ERR_VCPU_ALREADY_USED);
	/* the id is a u32; the 4 padding bytes after it do not count */
	uint8_t req[NE_DATA_SIZE] = {0};
	le64_put(req, b);
	le32_put(req + 8, 2);
	memset(req + 12, 0xff, 4);
	assert_int_equal(cmd_raw(&c, NE_CMD_SLOT_ADD_VCPU, req).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_INFO, b, 0, 0).nr_vcpus, 1);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, 99, 3, 0).rc, -EINVAL);
	/* freed vCPUs can be donated again */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_FREE, a, 0, 0).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, b, NCPUS - 1, 0).rc, 0);
}

static void test_add_bulk_vcpus(void **state)
{
	(void)state;
	struct ne_cmd c;
	init5g(&c);
	uint64_t a = alloc(&c), b = alloc(&c);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, 2, 0).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_BULK_VCPUS, b, 0, 0).rc, -EINVAL);
	/* 7 vCPUs besides 0, one taken: 6 free */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_BULK_VCPUS, b, 7, 0).rc,
			 -NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_BULK_VCPUS, b, 1ull << 63, 0).rc,
			 -NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_BULK_VCPUS, b, 3, 0).rc, 0);
	struct ne_slot *s = ne_cmd_slot(&c, b);
	assert_int_equal(s->nvcpus, 3);
	assert_int_equal(s->vcpu[0], 1);
	assert_int_equal(s->vcpu[1], 3);
	assert_int_equal(s->vcpu[2], 4);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_BULK_VCPUS, a, 4, 0).rc,
			 -NE_ERR_NO_CPUS_AVAIL_IN_POOL);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_BULK_VCPUS, a, 3, 0).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, 1, 0).rc, -NE_ERR_VCPU_ALREADY_USED);
}

/* A slot ready to start: 64 MiB at gpa, vCPU cpu. */
static uint64_t ready(struct ne_cmd *c, uint64_t gpa, uint32_t cpu)
{
	uint64_t u = alloc(c);
	assert_int_equal(cmd(c, NE_CMD_SLOT_ADD_MEM, u, gpa, 64 * MiB).rc, 0);
	assert_int_equal(cmd(c, NE_CMD_SLOT_ADD_VCPU, u, cpu, 0).rc, 0);
	return u;
}

static void test_start_checks_without_glue(void **state)
{
	(void)state;
	struct ne_cmd c;
	init5g(&c);
	uint64_t a = alloc(&c);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, a, 0, 0).rc, -NE_ERR_NO_MEM_REGIONS_ADDED);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 64 * MiB, 62 * MiB).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, a, 0, 0).rc, -NE_ERR_ENCLAVE_MEM_MIN_SIZE);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 256 * MiB, 2 * MiB).rc, 0);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, a, 0, 0).rc, -NE_ERR_NO_VCPUS_ADDED);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, 1, 0).rc, 0);
	/* flags and CIDs are checked first */
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, a, 0, 2).rc, -NE_ERR_INVALID_FLAG_VALUE);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, a, 0, 1ull << 40).rc,
			 -NE_ERR_INVALID_FLAG_VALUE);
	static const uint64_t bad_cid[] = {1, 2, 3, 0xffffffffull, 1ull << 32, UINT64_MAX};
	for (unsigned i = 0; i < sizeof(bad_cid) / sizeof(bad_cid[0]); i++)
		assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, a, bad_cid[i], 0).rc,
				 -NE_ERR_INVALID_ENCLAVE_CID);
	/* all good, but no enclave VM support behind the device */
	struct ne_reply r = cmd(&c, NE_CMD_ENCLAVE_START, a, 0, NE_START_DEBUG);
	assert_int_equal(r.rc, -EOPNOTSUPP);
	assert_int_equal(r.enclave_cid, 0);
	r = cmd(&c, NE_CMD_SLOT_INFO, a, 0, 0);
	assert_int_equal(r.state, NE_STATE_INIT);
	assert_int_equal(r.enclave_cid, 0);
	assert_int_equal(r.flags, 0);
	/* still in INIT: more memory can be added */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 512 * MiB, 2 * MiB).rc, 0);
}

static void test_start_with_glue(void **state)
{
	(void)state;
	struct ne_cmd c;
	struct glue g = {0};
	struct ne_ops ops = {g_start, g_stop, &g};
	init5g(&c);
	ne_cmd_set_ops(&c, &ops);
	uint64_t a = ready(&c, 64 * MiB, 1), b = ready(&c, 128 * MiB, 2),
		 d = ready(&c, 192 * MiB, 3), e = ready(&c, 256 * MiB, 4);
	struct ne_reply r = cmd(&c, NE_CMD_ENCLAVE_START, a, 0, NE_START_DEBUG);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.enclave_cid, 16);
	assert_int_equal(r.slot_uid, a);
	assert_int_equal(g.last_cid, 16);
	assert_int_equal(g.last_uid, a);
	assert_int_equal(g.last_nranges, 1);
	assert_int_equal(g.last_nvcpus, 1);
	/* a chosen CID; then one already in use */
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, b, 17, 0).enclave_cid, 17);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, d, 16, 0).rc, -NE_ERR_INVALID_ENCLAVE_CID);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, d, 17, 0).rc, -NE_ERR_INVALID_ENCLAVE_CID);
	/* the glue refuses: its rc, the slot stays in INIT */
	g.start_rc = -NE_ERR_ENCLAVE_MEM_MIN_SIZE;
	r = cmd(&c, NE_CMD_ENCLAVE_START, d, 0, 0);
	assert_int_equal(r.rc, -NE_ERR_ENCLAVE_MEM_MIN_SIZE);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_INFO, d, 0, 0).state, NE_STATE_INIT);
	g.start_rc = 5; /* not a valid rc: still a refusal */
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, d, 0, 0).rc, -EINVAL);
	g.start_rc = 0;
	/* auto CID skips the ones in use */
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, d, 0, 0).enclave_cid, 18);
	r = cmd(&c, NE_CMD_SLOT_INFO, a, 0, 0);
	assert_int_equal(r.state, NE_STATE_RUNNING);
	assert_int_equal(r.flags, NE_START_DEBUG);
	assert_int_equal(r.enclave_cid, 16);
	/* GET_SLOT by CID */
	r = cmd(&c, NE_CMD_ENCLAVE_GET_SLOT, 17, 0, 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.slot_uid, b);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_GET_SLOT, 19, 0, 0).rc, -EINVAL);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_GET_SLOT, 0, 0, 0).rc, -EINVAL);
	/* a running slot takes no more resources and no second start */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_MEM, a, 512 * MiB, 2 * MiB).rc,
			 -NE_ERR_NOT_IN_INIT_STATE);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, a, 5, 0).rc, -NE_ERR_NOT_IN_INIT_STATE);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_BULK_VCPUS, a, 1, 0).rc,
			 -NE_ERR_NOT_IN_INIT_STATE);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, a, 0, 0).rc, -NE_ERR_NOT_IN_INIT_STATE);
	/* its resources stay taken */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_ADD_VCPU, e, 1, 0).rc, -NE_ERR_VCPU_ALREADY_USED);
	/* STOP: the glue ends it once; a second STOP answers 0 without the glue */
	assert_int_equal(g.stops, 0);
	r = cmd(&c, NE_CMD_ENCLAVE_STOP, a, 0, 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.state, NE_STATE_STOPPED);
	assert_int_equal(g.stops, 1);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_STOP, a, 0, 0).rc, 0);
	assert_int_equal(g.stops, 1);
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_STOP, e, 0, 0).rc, -EINVAL);
	/* a stopped slot cannot start again */
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, a, 0, 0).rc, -NE_ERR_NOT_IN_INIT_STATE);
	/* SLOT_FREE of a running slot ends it first */
	assert_int_equal(cmd(&c, NE_CMD_SLOT_FREE, b, 0, 0).rc, 0);
	assert_int_equal(g.stops, 2);
	/* the enclave of d exits on its own */
	assert_true(ne_cmd_exited(&c, d));
	assert_false(ne_cmd_exited(&c, d));
	assert_false(ne_cmd_exited(&c, e));
	assert_false(ne_cmd_exited(&c, 999));
	assert_int_equal(cmd(&c, NE_CMD_SLOT_INFO, d, 0, 0).state, NE_STATE_STOPPED);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_FREE, d, 0, 0).rc, 0);
	assert_int_equal(g.stops, 2); /* it had ended already */
	/* reset: the one still running is stopped, every slot freed */
	assert_int_equal(cmd(&c, NE_CMD_ENCLAVE_START, e, 0, 0).rc, 0);
	ne_cmd_reset(&c);
	assert_int_equal(g.stops, 3);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_COUNT, 0, 0, 0).slot_count, 0);
}

static void test_next_slot_and_unknown(void **state)
{
	(void)state;
	struct ne_cmd c;
	init5g(&c);
	uint64_t u[4];
	for (unsigned i = 0; i < 4; i++)
		u[i] = alloc(&c);
	assert_int_equal(cmd(&c, NE_CMD_SLOT_FREE, u[1], 0, 0).rc, 0);
	uint64_t seen[4];
	unsigned n = 0;
	for (struct ne_reply r = cmd(&c, NE_CMD_NEXT_SLOT, 0, 0, 0); r.rc == 0;
	     r = cmd(&c, NE_CMD_NEXT_SLOT, r.slot_uid, 0, 0)) {
		assert_true(n < 4);
		assert_int_equal(r.state, NE_STATE_INIT);
		seen[n++] = r.slot_uid;
	}
	assert_int_equal(n, 3);
	assert_int_equal(seen[0], u[0]);
	assert_int_equal(seen[1], u[2]);
	assert_int_equal(seen[2], u[3]);
	assert_int_equal(cmd(&c, NE_CMD_NEXT_SLOT, u[3], 0, 0).rc, -ENOENT);
	static const uint32_t bad[] = {0, 12, 13, 0x100, 0x80000001u, 0xffffffffu};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct ne_reply r = cmd(&c, bad[i], u[0], 0, 0);
		assert_int_equal(r.rc, -EINVAL);
		assert_int_equal(r.slot_uid, 0);
	}
	assert_int_equal(cmd(&c, NE_CMD_SLOT_COUNT, 0, 0, 0).slot_count, 3);
}

/* ---- ne_pci ---- */

struct fix {
	struct vm vm;
	struct pci_bus bus;
	struct ne_dev d;
	uint64_t bar;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->vm.vm_fd = f->vm.vm_kvm_fd = -1;
	f->vm.vm_ncpus = 4;
	mmio_init(&f->vm.vm_mmio);
	mem_layout(&f->vm.vm_mem, 512 * MiB);
	char err[256];
	if (pci_init(&f->bus, &f->vm.vm_mmio) != 0 ||
	    ne_pci_create(&f->d, &f->vm, &f->bus, err, sizeof(err)) != 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static uint32_t cfg_read(struct fix *f, unsigned reg, unsigned size)
{
	uint8_t b[4] = {0};
	pci_ecam_access(&f->bus, (uint64_t)f->d.nd_pci.pd_slot << 15 | reg, b, size, false);
	return le32_get(b);
}

static void cfg_write(struct fix *f, unsigned reg, uint32_t v, unsigned size)
{
	uint8_t b[4];
	le32_put(b, v);
	pci_ecam_access(&f->bus, (uint64_t)f->d.nd_pci.pd_slot << 15 | reg, b, size, true);
}

static uint64_t mm_read(struct fix *f, unsigned off, unsigned size)
{
	uint8_t b[8] = {0};
	assert_true(mmio_access(&f->vm.vm_mmio, f->bar + off, b, size, false));
	return le64_get(b);
}

static void mm_write(struct fix *f, unsigned off, uint64_t v, unsigned size)
{
	uint8_t b[8];
	le64_put(b, v);
	assert_true(mmio_access(&f->vm.vm_mmio, f->bar + off, b, size, true));
}

/* The driver's probe: memory space on, ENABLE 0, VERSION 1, ENABLE 1. */
static void probe(struct fix *f)
{
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER, 2);
	f->bar = f->d.nd_pci.pd_bar_addr;
	assert_true(f->bar != 0);
	mm_write(f, NE_R_ENABLE, 0, 1);
	assert_int_equal(mm_read(f, NE_R_ENABLE, 1), 0);
	mm_write(f, NE_R_VERSION, 1, 2);
	assert_int_equal(mm_read(f, NE_R_VERSION, 2), 1);
	mm_write(f, NE_R_ENABLE, 1, 1);
	assert_int_equal(mm_read(f, NE_R_ENABLE, 1), 1);
}

/* What the driver's ne_do_request does: request into SEND_DATA (here 8 bytes at a time),
 * type into COMMAND, reply out of RECV_DATA. */
static struct ne_reply do_request(struct fix *f, uint32_t type, uint64_t a0, uint64_t a1,
				  uint64_t a2)
{
	mm_write(f, NE_R_SEND, a0, 8);
	mm_write(f, NE_R_SEND + 8, a1, 8);
	mm_write(f, NE_R_SEND + 16, a2, 8);
	mm_write(f, NE_R_COMMAND, type, 4);
	uint8_t rep[NE_REPLY_SIZE];
	for (unsigned i = 0; i < NE_REPLY_SIZE; i += 4)
		le32_put(rep + i, (uint32_t)mm_read(f, NE_R_RECV + i, 4));
	struct ne_reply r;
	ne_reply_decode(rep, &r);
	return r;
}

static void test_pci_config(void **state)
{
	struct fix *f = *state;
	assert_int_equal(cfg_read(f, PCI_VENDOR_ID, 2), 0x1d0f);
	assert_int_equal(cfg_read(f, PCI_DEVICE_ID, 2), 0xe4c1);
	assert_int_equal(cfg_read(f, PCI_REVISION, 4) >> 8, 0x088000);
	/* BAR 0 is unused; BAR 3 is the 4 KiB memory BAR */
	assert_int_equal(cfg_read(f, PCI_BAR0, 4), 0);
	cfg_write(f, PCI_BAR0, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, PCI_BAR0, 4), 0);
	uint32_t bar3 = cfg_read(f, PCI_BAR0 + 12, 4);
	assert_int_equal(bar3 & 0xf, 0x4);
	assert_true((bar3 & ~0xfu) != 0);
	cfg_write(f, PCI_BAR0 + 12, 0xffffffff, 4);
	assert_int_equal(cfg_read(f, PCI_BAR0 + 12, 4), ~(uint32_t)(NE_BAR_SIZE - 1) | 0x4);
	cfg_write(f, PCI_BAR0 + 12, bar3, 4);
	/* MSI-X: 2 vectors, table and PBA in BAR 3 */
	unsigned cap = cfg_read(f, PCI_CAP_PTR, 1);
	assert_int_equal(cfg_read(f, cap, 1), 0x11);
	assert_int_equal(cfg_read(f, cap + 2, 2) & 0x7ff, NE_VECTORS - 1);
	assert_int_equal(cfg_read(f, cap + 4, 4), NE_OFF_MSIX | 3);
	assert_int_equal(cfg_read(f, cap + 8, 4), NE_OFF_PBA | 3);
	/* no decoding before memory space is on */
	uint8_t b[4];
	assert_false(mmio_access(&f->vm.vm_mmio, (bar3 & ~0xfu) + NE_R_VERSION, b, 2, false));
}

static void test_pci_probe_and_commands(void **state)
{
	struct fix *f = *state;
	/* ENABLE 1 before a version is chosen does not take */
	cfg_write(f, PCI_COMMAND, PCI_COMMAND_MEMORY, 2);
	f->bar = f->d.nd_pci.pd_bar_addr;
	mm_write(f, NE_R_ENABLE, 1, 1);
	assert_int_equal(mm_read(f, NE_R_ENABLE, 1), 0);
	mm_write(f, NE_R_VERSION, 2, 2);
	assert_int_equal(mm_read(f, NE_R_VERSION, 2), 0);
	/* a command while disabled is dropped */
	mm_write(f, NE_R_COMMAND, NE_CMD_SLOT_ALLOC, 4);
	assert_int_equal(mm_read(f, NE_R_EVTCNT, 4), 0);
	probe(f);
	struct ne_reply r = do_request(f, NE_CMD_SLOT_ALLOC, 0, 0, 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.slot_uid, 1);
	assert_int_equal(r.mem_regions, 256);
	assert_int_equal(mm_read(f, NE_R_EVTCNT, 4), 1);
	/* the parent's RAM is 512 MiB: beyond is refused; vCPU 3 of 4 is fine, 4 is not */
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_MEM, 1, 512 * MiB, 2 * MiB).rc,
			 -NE_ERR_INVALID_MEM_REGION_ADDR);
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_MEM, 1, 256 * MiB, 64 * MiB).rc, 0);
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_VCPU, 1, 4, 0).rc, -NE_ERR_INVALID_VCPU);
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_VCPU, 1, 3, 0).rc, 0);
	/* no glue in nitro-hv yet: START answers -EOPNOTSUPP */
	assert_int_equal(do_request(f, NE_CMD_ENCLAVE_START, 1, 0, 0).rc, -EOPNOTSUPP);
	assert_int_equal(mm_read(f, NE_R_EVTCNT, 4), 6);
	/* RECV_DATA and EVTCNT are read-only, COMMAND reads 0 */
	mm_write(f, NE_R_RECV, 0x1234, 4);
	mm_write(f, NE_R_EVTCNT, 0, 4);
	assert_int_equal((int32_t)mm_read(f, NE_R_RECV, 4), -EOPNOTSUPP);
	assert_int_equal(mm_read(f, NE_R_EVTCNT, 4), 6);
	assert_int_equal(mm_read(f, NE_R_COMMAND, 4), 0);
	/* SEND_DATA reads back */
	assert_int_equal(mm_read(f, NE_R_SEND, 8), 1);
	/* ENABLE 0 ends every slot */
	mm_write(f, NE_R_ENABLE, 0, 1);
	assert_int_equal(mm_read(f, NE_R_ENABLE, 1), 0);
	mm_write(f, NE_R_ENABLE, 1, 1);
	assert_int_equal(do_request(f, NE_CMD_SLOT_COUNT, 0, 0, 0).slot_count, 0);
	/* the vCPU and the range are free again */
	assert_int_equal(do_request(f, NE_CMD_SLOT_ALLOC, 0, 0, 0).slot_uid, 2);
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_MEM, 2, 256 * MiB, 64 * MiB).rc, 0);
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_VCPU, 2, 3, 0).rc, 0);
}

static void test_pci_msix(void **state)
{
	struct fix *f = *state;
	probe(f);
	unsigned cap = cfg_read(f, PCI_CAP_PTR, 1);
	/* MSI-X off: the reply is pending, nothing sent */
	do_request(f, NE_CMD_SLOT_COUNT, 0, 0, 0);
	assert_int_equal(f->d.nd_msis[0], 0);
	assert_int_equal(mm_read(f, NE_OFF_PBA, 8), 1);
	/* on, function masked, entry masked: still pending */
	cfg_write(f, cap + 2, 0xc000, 2);
	assert_int_equal(cfg_read(f, cap + 2, 2) & 0xc000, 0xc000);
	mm_write(f, NE_OFF_MSIX, 0xfee00000, 8);
	mm_write(f, NE_OFF_MSIX + 8, 0x41, 4);
	mm_write(f, NE_OFF_MSIX + 12, 0, 4);
	assert_int_equal(f->d.nd_msis[0], 0);
	/* function mask off: the pending reply goes out */
	cfg_write(f, cap + 2, 0x8000, 2);
	assert_int_equal(f->d.nd_msis[0], 1);
	assert_int_equal(mm_read(f, NE_OFF_PBA, 8), 0);
	assert_int_equal(mm_read(f, NE_OFF_MSIX + 8, 4), 0x41);
	do_request(f, NE_CMD_SLOT_COUNT, 0, 0, 0);
	assert_int_equal(f->d.nd_msis[0], 2);
	/* entry masked again: pending, then delivered on unmask */
	mm_write(f, NE_OFF_MSIX + 12, 1, 4);
	do_request(f, NE_CMD_SLOT_COUNT, 0, 0, 0);
	assert_int_equal(f->d.nd_msis[0], 2);
	assert_int_equal(mm_read(f, NE_OFF_PBA, 1), 1);
	mm_write(f, NE_OFF_MSIX + 12, 0, 4);
	assert_int_equal(f->d.nd_msis[0], 3);
	assert_int_equal(f->d.nd_msis[1], 0);
}

static void test_pci_event(void **state)
{
	struct fix *f = *state;
	struct glue g = {0};
	struct ne_ops ops = {g_start, g_stop, &g};
	probe(f);
	ne_pci_set_ops(&f->d, &ops);
	unsigned cap = cfg_read(f, PCI_CAP_PTR, 1);
	cfg_write(f, cap + 2, 0x8000, 2);
	for (unsigned v = 0; v < 2; v++) {
		mm_write(f, NE_OFF_MSIX + v * 16, 0xfee00000, 8);
		mm_write(f, NE_OFF_MSIX + v * 16 + 12, 0, 4);
	}
	uint64_t u = do_request(f, NE_CMD_SLOT_ALLOC, 0, 0, 0).slot_uid;
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_MEM, u, 64 * MiB, 64 * MiB).rc, 0);
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_BULK_VCPUS, u, 2, 0).rc, 0);
	struct ne_reply r = do_request(f, NE_CMD_ENCLAVE_START, u, 0, 0);
	assert_int_equal(r.rc, 0);
	assert_int_equal(r.enclave_cid, 16);
	assert_int_equal(g.last_nvcpus, 2);
	ne_enclave_exited(&f->d, u);
	assert_int_equal(mm_read(f, NE_R_EVTCNT, 4) >> 16, 1);
	assert_int_equal(f->d.nd_msis[1], 1);
	assert_int_equal(do_request(f, NE_CMD_SLOT_INFO, u, 0, 0).state, NE_STATE_STOPPED);
	/* not running any more: no second event */
	ne_enclave_exited(&f->d, u);
	assert_int_equal(f->d.nd_msis[1], 1);
	assert_int_equal(g.stops, 0);
	/* the parent's shutdown ends running enclaves through the glue */
	u = do_request(f, NE_CMD_SLOT_ALLOC, 0, 0, 0).slot_uid;
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_MEM, u, 128 * MiB, 64 * MiB).rc, 0);
	assert_int_equal(do_request(f, NE_CMD_SLOT_ADD_VCPU, u, 3, 0).rc, 0);
	assert_int_equal(do_request(f, NE_CMD_ENCLAVE_START, u, 0, 0).rc, 0);
	ne_pci_shutdown(&f->d);
	assert_int_equal(g.stops, 1);
}

static void test_pci_hostile_access(void **state)
{
	struct fix *f = *state;
	probe(f);
	uint8_t b[16];
	/* past the BAR, any size: all ones, no crash */
	memset(b, 0, sizeof(b));
	ne_pci_bar_access(&f->d, NE_BAR_SIZE - 4, b, 8, false);
	assert_int_equal(b[0], 0xff);
	ne_pci_bar_access(&f->d, UINT64_MAX - 2, b, 8, false);
	ne_pci_bar_access(&f->d, UINT64_MAX - 2, b, 8, true);
	ne_pci_bar_access(&f->d, 0, b, 0, true);
	/* an 8-byte read at the end of RECV_DATA */
	ne_pci_bar_access(&f->d, NE_R_END - 4, b, 8, false);
	/* an 8-byte write straddling the end of SEND_DATA stops at it */
	memset(b, 0xab, sizeof(b));
	ne_pci_bar_access(&f->d, NE_R_RECV - 4, b, 8, true);
	assert_int_equal(f->d.nd_send[NE_DATA_SIZE - 1], 0xab);
	assert_int_equal(f->d.nd_recv[0], 0);
	/* odd-sized writes to ENABLE, VERSION, COMMAND are ignored */
	unsigned replies = f->d.nd_replies;
	le32_put(b, 0);
	ne_pci_bar_access(&f->d, NE_R_ENABLE, b, 2, true);
	assert_int_equal(f->d.nd_enable, 1);
	ne_pci_bar_access(&f->d, NE_R_COMMAND, b, 2, true);
	ne_pci_bar_access(&f->d, NE_R_COMMAND + 1, b, 4, true);
	assert_int_equal(f->d.nd_replies, replies);
	/* the MSI-X table: an access straddling its end is dropped */
	memset(b, 0x77, sizeof(b));
	ne_pci_bar_access(&f->d, NE_OFF_MSIX + 28, b, 8, true);
	assert_int_equal(f->d.nd_msix_table[28], 0x01); /* entry 1's mask bit, untouched */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reply_layout),
	    cmocka_unit_test(test_every_command_every_state),
	    cmocka_unit_test(test_slot_alloc),
	    cmocka_unit_test(test_add_mem),
	    cmocka_unit_test(test_add_mem_max_regions),
	    cmocka_unit_test(test_add_vcpu),
	    cmocka_unit_test(test_add_bulk_vcpus),
	    cmocka_unit_test(test_start_checks_without_glue),
	    cmocka_unit_test(test_start_with_glue),
	    cmocka_unit_test(test_next_slot_and_unknown),
	    cmocka_unit_test_setup_teardown(test_pci_config, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_probe_and_commands, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_msix, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_event, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_pci_hostile_access, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
