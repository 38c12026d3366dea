/* The Nitro Enclaves device's command handler: the enclave slots of one parent VM and the
 * 11 commands the stock `nitro_enclaves` driver sends through the NE PCI device
 * (src/hv/ne_pci.c; reference enclaves.md §1, Linux drivers/virt/nitro_enclaves/). Pure:
 * no I/O, no locks; the enclave VM itself is behind struct ne_ops (the glue,
 * src/hv/enclave.c), called on START and on every end of a running slot.
 *
 * ne_cmd_handle() takes the command type and the 240 bytes of SEND_DATA exactly as the
 * guest left them (hostile: any type, any bytes) and writes the 72-byte reply into
 * RECV_DATA (the other 168 bytes zero). rc is 0 or a negative errno / NE error (256..275
 * of <linux/nitro_enclaves.h>); the driver returns it from the ioctl as is, so these
 * numbers are what a user sees:
 *   unknown command, unknown slot uid, bad count           -EINVAL
 *   SLOT_ALLOC with every slot in use                      -ENOSPC
 *   ADD_MEM/ADD_VCPU/BULK/START on a slot not in INIT      -NE_ERR_NOT_IN_INIT_STATE
 *   ADD_MEM: size 0 or not a multiple of 2 MiB             -NE_ERR_INVALID_MEM_REGION_SIZE
 *            address not 2 MiB aligned                     -NE_ERR_UNALIGNED_MEM_REGION_ADDR
 *            not wholly inside guest RAM                   -NE_ERR_INVALID_MEM_REGION_ADDR
 *            overlaps a range of any slot                  -NE_ERR_MEM_REGION_ALREADY_USED
 *            the slot has NE_MAX_REGIONS ranges            -NE_ERR_MEM_MAX_REGIONS
 *   ADD_VCPU: 0, or not a vCPU of this VM                  -NE_ERR_INVALID_VCPU
 *             already in a slot                            -NE_ERR_VCPU_ALREADY_USED
 *   BULK: not that many free vCPUs                         -NE_ERR_NO_CPUS_AVAIL_IN_POOL
 *   START: flags other than debug                          -NE_ERR_INVALID_FLAG_VALUE
 *          CID 1, 2, 3, U32_MAX, > 32 bits, or in use      -NE_ERR_INVALID_ENCLAVE_CID
 *          no memory / < 64 MiB / no vCPU                  -NE_ERR_NO_MEM_REGIONS_ADDED /
 *                                                          -NE_ERR_ENCLAVE_MEM_MIN_SIZE /
 *                                                          -NE_ERR_NO_VCPUS_ADDED
 *          no enclave VM support (no ops installed)        -EOPNOTSUPP
 *          the glue's own refusal                          its rc
 *   STOP of a slot in INIT                                 -EINVAL (STOPPED: 0, idempotent)
 *   NEXT_SLOT past the last slot                           -ENOENT
 * Slot uids start at 1 and are never reused (the driver takes uid 0 as "none"). START
 * with CID 0 picks the lowest CID >= NE_CID_AUTO_FIRST no other slot holds, before the
 * glue runs (s->cid is set when start is called).
 *
 * Not thread-safe: the caller (ne_pci.c) serialises every call on one struct ne_cmd.
 */
#ifndef NITRO_HV_NE_CMD_H
#define NITRO_HV_NE_CMD_H

#include <stdbool.h>
#include <stdint.h>

#define NE_DATA_SIZE 240 /* SEND_DATA and RECV_DATA */
#define NE_REPLY_SIZE 72
#define NE_MAX_REGIONS 256 /* per slot; what SLOT_ALLOC reports */
#define NE_MAX_VCPUS 256
#define NE_MAX_SLOTS 16
#define NE_REGION_ALIGN (2ull << 20)
#define NE_MIN_ENCLAVE_MEM (64ull << 20)
#define NE_PARENT_CID 3
#define NE_CID_AUTO_FIRST 16

enum ne_cmd_type {
	NE_CMD_ENCLAVE_START = 1,
	NE_CMD_ENCLAVE_GET_SLOT = 2,
	NE_CMD_ENCLAVE_STOP = 3,
	NE_CMD_SLOT_ALLOC = 4,
	NE_CMD_SLOT_FREE = 5,
	NE_CMD_SLOT_ADD_MEM = 6,
	NE_CMD_SLOT_ADD_VCPU = 7,
	NE_CMD_SLOT_COUNT = 8,
	NE_CMD_NEXT_SLOT = 9,
	NE_CMD_SLOT_INFO = 10,
	NE_CMD_SLOT_ADD_BULK_VCPUS = 11,
};

#define NE_STATE_INIT 0
#define NE_STATE_RUNNING 2
#define NE_STATE_STOPPED 0xffff

#define NE_START_DEBUG 1ull /* START flags: debug mode */

/* Request layouts in SEND_DATA (little-endian, offsets in bytes):
 *   START          u64 slot_uid @0, u64 enclave_cid @8, u64 flags @16
 *   GET_SLOT       u64 enclave_cid @0
 *   STOP, SLOT_FREE, NEXT_SLOT, SLOT_INFO    u64 slot_uid @0
 *   SLOT_ALLOC, SLOT_COUNT                   u8 unused
 *   ADD_MEM        u64 slot_uid @0, u64 paddr @8, u64 size @16
 *   ADD_VCPU       u64 slot_uid @0, u32 vcpu_id @8, 4 bytes padding
 *   ADD_BULK_VCPUS u64 slot_uid @0, u64 nr_vcpus @8
 * Reply in RECV_DATA: s32 rc @0, 4 pad, u64 slot_uid @8, enclave_cid @16, slot_count @24,
 * mem_regions @32, mem_size @40, nr_vcpus @48, flags @56, u16 state @64, 6 pad. */
struct ne_reply {
	int32_t rc;
	uint64_t slot_uid, enclave_cid, slot_count, mem_regions, mem_size, nr_vcpus, flags;
	uint16_t state;
};

void ne_reply_encode(const struct ne_reply *r, uint8_t out[NE_REPLY_SIZE]);
void ne_reply_decode(const uint8_t in[NE_REPLY_SIZE], struct ne_reply *r);

/* ---- the interface to the enclave glue (ENCLAVE-DESIGN.md; keep as written) ---- */

struct ne_mem_range {
	uint64_t gpa, size; /* parent guest-physical */
};

struct ne_slot {
	uint64_t uid, cid, flags;
	uint16_t state;
	unsigned nranges;
	struct ne_mem_range range[NE_MAX_REGIONS]; /* in the order ADD_MEM added them */
	unsigned nvcpus;
	uint32_t vcpu[NE_MAX_VCPUS];
};

struct ne_ops {
	/* START: the glue validates, splits memory, spawns; 0 (s->cid set, auto-assigned
	 * if it was 0) or a negative NE reply rc (the kernel maps it to an errno). */
	int (*start)(void *ctx, struct ne_slot *s);
	/* STOP / SLOT_FREE of a running slot / device reset: end it, scrub, give back. */
	void (*stop)(void *ctx, struct ne_slot *s);
	void *ctx;
};

struct ne_dev;
/* Called by the glue when an enclave exited on its own: state STOPPED, MSI-X vector 1.
 * Implemented by the device (ne_pci.c); takes the device lock, so the glue must not call
 * it from inside start or stop. */
void ne_enclave_exited(struct ne_dev *d, uint64_t slot_uid);

/* ---- the slot table ---- */

struct ne_cmd {
	/* The parent VM: its vCPU count and guest RAM ranges (boot/memory.h's layout). */
	unsigned nc_ncpus;
	unsigned nc_nram;
	struct ne_mem_range nc_ram[2];
	struct ne_ops nc_ops; /* start NULL: START answers -EOPNOTSUPP */
	uint64_t nc_next_uid;
	bool nc_used[NE_MAX_SLOTS];
	struct ne_slot nc_slot[NE_MAX_SLOTS];
};

/* Empty table for a VM of ncpus vCPUs whose RAM is ram[0..nram). */
void ne_cmd_init(struct ne_cmd *c, unsigned ncpus, const struct ne_mem_range *ram, unsigned nram);
/* Installs (or, with NULL, removes) the glue. */
void ne_cmd_set_ops(struct ne_cmd *c, const struct ne_ops *ops);
/* One command: req is SEND_DATA (NE_DATA_SIZE bytes), reply gets RECV_DATA. */
void ne_cmd_handle(struct ne_cmd *c, uint32_t type, const uint8_t *req, uint8_t *reply);
/* Device reset (ENABLE 0): every running slot stopped through the glue, every slot freed. */
void ne_cmd_reset(struct ne_cmd *c);
/* The enclave of slot uid ended on its own: RUNNING -> STOPPED. True if it was running. */
bool ne_cmd_exited(struct ne_cmd *c, uint64_t uid);
/* The slot with this uid, or NULL. */
struct ne_slot *ne_cmd_slot(struct ne_cmd *c, uint64_t uid);

#endif
