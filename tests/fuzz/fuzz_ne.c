/* libFuzzer target for the Nitro Enclaves device (src/hv/ne_cmd.c, src/hv/ne_pci.c): one
 * device of a 6-vCPU parent with 5 GiB of RAM (both sides of the PCI hole), a glue that
 * accepts or refuses START as the input says, driven by a sequence of records.
 *
 * Input: records of 28 bytes: op (1), a selector (1), request words (3 x 8, little-endian),
 * 2 spare bytes. op bit 7 clear: a command of type op & 15 (op bit 6: type 0xffffffff)
 * straight to ne_cmd_handle, the slot uid word replaced (selector bit 7 clear) by the uid
 * of one of the allocated slots (selector & 15), memory addresses made 2 MiB aligned when
 * selector bit 6 is set; the glue's start answers selector bit 5 ? -NE_ERR_INVALID_VCPU
 * : 0; selector bit 4: the enclave of the chosen slot exits on its own afterwards.
 * op bit 7 set: one BAR 3 access at offset word0 & 0x1fff, size (op & 7) + 1 (write if
 * op bit 3; data from word 1), or (op bit 4) a device reset, ENABLE 0 then VERSION and
 * ENABLE 1.
 *
 * Invariants (after every record): replies are 72 bytes with zero padding and zero after
 * them; rc is 0, -EINVAL, -ENOSPC, -ENOENT, -EOPNOTSUPP or an NE error 256..275; the slot
 * table stays consistent: uids unique, non-zero, below the next uid; states INIT,
 * RUNNING or STOPPED; at most 256 ranges per slot, each 2 MiB aligned, a multiple of
 * 2 MiB, inside guest RAM, disjoint from every other range of every slot; vCPUs in
 * [1, 6), each in at most one slot; running and stopped slots hold a CID above 3 and below
 * U32_MAX, no two slots the same; the glue ran stop exactly once for each started slot
 * that ended by STOP, SLOT_FREE or reset (not for one that exited on its own).
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <linux/nitro_enclaves.h>

#include "fuzz.h"
#include "hv/mmio.h"
#include "hv/ne_cmd.h"
#include "hv/ne_pci.h"
#include "hv/pci.h"
#include "hv/vm.h"
#include "lib/le.h"

// fuzz-extra: src/hv/ne_cmd.c src/hv/ne_pci.c src/hv/vm.c src/hv/kvmstats.c src/hv/cpuid.c
// fuzz-extra: src/hv/cpuid_cache.c src/hv/pio.c

#define NCPUS 6
#define GiB (1ull << 30)
#define REC 28

static struct vm vm;
static struct pci_bus bus;
static struct ne_dev dev;
static int start_rc;
static unsigned starts, stops, running_expected;

static int g_start(void *ctx, struct ne_slot *s)
{
	(void)ctx;
	CHECK(s->state == NE_STATE_INIT);
	CHECK(s->cid > NE_PARENT_CID && s->cid < UINT32_MAX);
	CHECK(s->nranges > 0 && s->nvcpus > 0);
	if (start_rc == 0) {
		starts++;
		running_expected++;
	}
	return start_rc;
}

static void g_stop(void *ctx, struct ne_slot *s)
{
	(void)ctx;
	CHECK(s->state == NE_STATE_RUNNING);
	CHECK(running_expected > 0);
	stops++;
	running_expected--;
}

static bool rc_ok(int32_t rc)
{
	return rc == 0 || rc == -EINVAL || rc == -ENOSPC || rc == -ENOENT || rc == -EOPNOTSUPP ||
	       (rc <= -NE_ERR_VCPU_ALREADY_USED && rc >= -NE_ERR_INVALID_ENCLAVE_CID);
}

static bool in_ram(uint64_t gpa, uint64_t size)
{
	for (unsigned i = 0; i < vm.vm_mem.gm_nregions; i++) {
		const struct mem_region *r = &vm.vm_mem.gm_regions[i];
		if (gpa >= r->mr_gpa && gpa + size <= r->mr_gpa + r->mr_size && gpa + size > gpa)
			return true;
	}
	return false;
}

static void check_table(const struct ne_cmd *c)
{
	unsigned owner[NCPUS] = {0};
	unsigned running = 0;
	for (unsigned i = 0; i < NE_MAX_SLOTS; i++) {
		if (!c->nc_used[i])
			continue;
		const struct ne_slot *s = &c->nc_slot[i];
		CHECK(s->uid != 0 && s->uid < c->nc_next_uid);
		CHECK(s->state == NE_STATE_INIT || s->state == NE_STATE_RUNNING ||
		      s->state == NE_STATE_STOPPED);
		running += s->state == NE_STATE_RUNNING;
		CHECK(s->nranges <= NE_MAX_REGIONS);
		CHECK(s->nvcpus < NCPUS);
		if (s->state != NE_STATE_INIT)
			CHECK(s->cid > NE_PARENT_CID && s->cid < UINT32_MAX);
		for (unsigned k = 0; k < s->nranges; k++) {
			const struct ne_mem_range *r = &s->range[k];
			CHECK(r->size && r->size % NE_REGION_ALIGN == 0);
			CHECK(r->gpa % NE_REGION_ALIGN == 0);
			CHECK(in_ram(r->gpa, r->size));
		}
		for (unsigned k = 0; k < s->nvcpus; k++) {
			CHECK(s->vcpu[k] >= 1 && s->vcpu[k] < NCPUS);
			CHECK(owner[s->vcpu[k]] == 0);
			owner[s->vcpu[k]] = i + 1;
		}
		for (unsigned j = i + 1; j < NE_MAX_SLOTS; j++) {
			if (!c->nc_used[j])
				continue;
			const struct ne_slot *t = &c->nc_slot[j];
			CHECK(t->uid != s->uid);
			CHECK(!s->cid || t->cid != s->cid);
		}
	}
	/* every range against every other, across slots */
	for (unsigned i = 0; i < NE_MAX_SLOTS; i++)
		for (unsigned k = 0; c->nc_used[i] && k < c->nc_slot[i].nranges; k++)
			for (unsigned j = i; j < NE_MAX_SLOTS; j++)
				for (unsigned l = (j == i ? k + 1 : 0);
				     c->nc_used[j] && l < c->nc_slot[j].nranges; l++) {
					const struct ne_mem_range *a = &c->nc_slot[i].range[k],
								  *b = &c->nc_slot[j].range[l];
					CHECK(a->gpa + a->size <= b->gpa ||
					      b->gpa + b->size <= a->gpa);
				}
	CHECK(running == running_expected);
}

static void reset(void)
{
	static bool made;
	if (!made) {
		vm.vm_fd = vm.vm_kvm_fd = -1;
		vm.vm_ncpus = NCPUS;
		mem_layout(&vm.vm_mem, 5 * GiB);
		made = true;
	}
	mmio_init(&vm.vm_mmio);
	CHECK(pci_init(&bus, &vm.vm_mmio) == 0);
	char err[128];
	CHECK(ne_pci_create(&dev, &vm, &bus, err, sizeof(err)) == 0);
	static const struct ne_ops ops = {g_start, g_stop, NULL};
	ne_pci_set_ops(&dev, &ops);
	start_rc = 0;
	starts = stops = running_expected = 0;
	uint8_t b[2] = {1, 0};
	ne_pci_bar_access(&dev, NE_R_VERSION, b, 2, true);
	ne_pci_bar_access(&dev, NE_R_ENABLE, b, 1, true);
	CHECK(dev.nd_enable == 1);
}

static uint64_t pick_uid(const struct ne_cmd *c, unsigned sel)
{
	unsigned n = 0;
	for (unsigned i = 0; i < NE_MAX_SLOTS; i++)
		if (c->nc_used[i] && n++ == (sel & 15))
			return c->nc_slot[i].uid;
	return (uint64_t)(sel & 15) + 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	reset();
	for (size_t i = 0; i + REC <= size && i < REC * 2048; i += REC) {
		const uint8_t *r = data + i;
		unsigned op = r[0], sel = r[1];
		uint64_t w[3] = {le64_get(r + 2), le64_get(r + 10), le64_get(r + 18)};
		if (op & 0x80) {
			uint8_t buf[16];
			memset(buf, 0xcc, sizeof(buf));
			if (op & 0x10) {
				uint8_t b[2] = {0, 0};
				unsigned before = running_expected;
				ne_pci_bar_access(&dev, NE_R_ENABLE, b, 1, true);
				CHECK(stops >= before && running_expected == 0);
				b[0] = 1;
				ne_pci_bar_access(&dev, NE_R_VERSION, b, 2, true);
				ne_pci_bar_access(&dev, NE_R_ENABLE, b, 1, true);
				for (unsigned k = 0; k < NE_MAX_SLOTS; k++)
					CHECK(!dev.nd_cmd.nc_used[k]);
			} else {
				unsigned sz = (op & 7) + 1;
				bool wr = op & 8;
				if (wr)
					le64_put(buf, w[1]);
				unsigned replies = dev.nd_replies;
				ne_pci_bar_access(&dev, w[0] & 0x1fff, buf, sz, wr);
				for (unsigned k = wr ? 8 : sz; k < sizeof(buf); k++)
					CHECK(buf[k] == 0xcc);
				CHECK(dev.nd_replies == replies ||
				      (wr && (w[0] & 0x1fff) == NE_R_COMMAND && sz == 4));
				if (dev.nd_replies != replies) {
					int32_t rc = (int32_t)le32_get(dev.nd_recv);
					CHECK(rc_ok(rc));
					for (unsigned k = NE_REPLY_SIZE; k < NE_DATA_SIZE; k++)
						CHECK(dev.nd_recv[k] == 0);
				}
			}
			check_table(&dev.nd_cmd);
			continue;
		}
		uint32_t type = (op & 0x40) ? 0xffffffffu : (op & 15);
		uint8_t req[NE_DATA_SIZE], rep[NE_DATA_SIZE];
		memset(req, 0, sizeof(req));
		memcpy(req + 24, r, REC); /* garbage after the fields */
		if (!(sel & 0x80) && type != NE_CMD_ENCLAVE_GET_SLOT && type != NE_CMD_SLOT_ALLOC &&
		    type != NE_CMD_SLOT_COUNT)
			w[0] = pick_uid(&dev.nd_cmd, sel);
		if ((sel & 0x40) && type == NE_CMD_SLOT_ADD_MEM) {
			w[1] = (w[1] % (6 * GiB)) & ~(NE_REGION_ALIGN - 1);
			w[2] = ((w[2] % 64) + 1) * NE_REGION_ALIGN;
		}
		if ((sel & 0x40) && type == NE_CMD_SLOT_ADD_VCPU)
			w[1] %= NCPUS + 1;
		for (unsigned k = 0; k < 3; k++)
			le64_put(req + 8 * k, w[k]);
		start_rc = (sel & 0x20) ? -NE_ERR_INVALID_VCPU : 0;
		memset(rep, 0xcc, sizeof(rep));
		ne_cmd_handle(&dev.nd_cmd, type, req, rep);
		struct ne_reply rp;
		ne_reply_decode(rep, &rp);
		CHECK(rc_ok(rp.rc));
		for (unsigned k = 4; k < 8; k++)
			CHECK(rep[k] == 0);
		for (unsigned k = 66; k < NE_DATA_SIZE; k++)
			CHECK(rep[k] == 0);
		if (type == NE_CMD_SLOT_ALLOC && rp.rc == 0)
			CHECK(rp.mem_regions >= 256 && rp.state == NE_STATE_INIT);
		if (type == NE_CMD_ENCLAVE_START && rp.rc == 0)
			CHECK(rp.enclave_cid > NE_PARENT_CID);
		if (sel & 0x10) {
			uint64_t uid = pick_uid(&dev.nd_cmd, sel);
			struct ne_slot *s = ne_cmd_slot(&dev.nd_cmd, uid);
			bool was = s && s->state == NE_STATE_RUNNING;
			ne_enclave_exited(&dev, uid);
			if (was)
				running_expected--;
			CHECK(!s || s->state != NE_STATE_RUNNING);
		}
		check_table(&dev.nd_cmd);
	}
	CHECK(starts >= stops);
	return 0;
}
