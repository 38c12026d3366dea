/* The control protocol between nitro-hv (which owns an NVMe controller's PCI function and
 * register file) and an NVMe card (which owns every queue, the admin queue included).
 * Framing: src/lib/vu_wire.h (12-byte header, payload, fds by SCM_RIGHTS); the request
 * numbers below are their own space (NVW_*), every request is answered by a reply with
 * VU_FLAG_REPLY and a u64 status (0: done), except HELLO, whose reply is nvw_hello.
 *
 * Sequence (docs/nvme.md): HELLO (versions, the card's geometry) -> MEM (guest memory:
 * the vhost-user memory table and one memfd per region) -> SHARED (a 4 KiB memfd page,
 * struct nvw_shared) -> KICK x nqids (eventfd per queue id: the SQ tail and CQ head
 * doorbells of that qid signal it) -> CALL x nvectors (eventfd per MSI-X vector: a KVM
 * irqfd) -> NOTE (eventfd: the card signals the hypervisor that ns_flags changed) ->
 * ENABLE / DISABLE / SHUTDOWN as the driver writes CC.
 *
 * Hostile input: the card checks every field (queue addresses against guest memory);
 * nitro-hv checks every reply and the shared page's flags only as hints (it validates
 * nothing else it reads from there).
 */
#ifndef NITRO_LIB_NVME_WIRE_H
#define NITRO_LIB_NVME_WIRE_H

#include <stdint.h>

#define NVW_VERSION 1

enum nvw_request {
	NVW_HELLO = 0x4e00, /* payload u32 version; reply struct nvw_hello */
	NVW_MEM,	    /* struct vu_mem_table + one fd per region */
	NVW_SHARED,	    /* no payload, one fd: the shared page (memfd, 4096 bytes) */
	NVW_KICK,	    /* u64 qid, one eventfd */
	NVW_CALL,	    /* u64 vector, one eventfd */
	NVW_NOTE,	    /* no payload, one eventfd */
	NVW_ENABLE,	    /* struct nvw_enable */
	NVW_DISABLE,	    /* no payload: CC.EN 1 -> 0 (controller reset) */
	NVW_SHUTDOWN,	    /* no payload: CC.SHN: finish and flush; reply when done */
};

struct nvw_hello {
	uint32_t h_version;
	uint16_t h_device;   /* PCI device id: 0x8061 EBS, 0xcd01 instance storage */
	uint16_t h_nqids;    /* queue ids 0..h_nqids-1 (admin + I/O) */
	uint16_t h_nvectors; /* MSI-X vectors the card may signal */
	uint16_t h_mqes;     /* CAP.MQES: largest queue size - 1 */
};

struct nvw_enable {
	uint32_t e_cc;
	uint32_t e_aqa;
	uint64_t e_asq;
	uint64_t e_acq;
};

/* The shared page. db[]: the doorbell values the hypervisor saw by MMIO (SQ y tail at
 * 2y, CQ y head at 2y+1), written before it signals the qid's kick eventfd; used for
 * queues without a shadow doorbell (the admin queue, I/O queues before Doorbell Buffer
 * Config). flags: set by the card before it signals NOTE. */
#define NVW_F_DBBUF 1u /* shadow doorbells on: ioeventfds on the I/O doorbells will do */
#define NVW_F_FATAL 2u /* the controller failed: CSTS.CFS */
#define NVW_MAX_QIDS 64
struct nvw_shared {
	uint32_t s_flags;
	uint32_t s_pad;
	uint32_t s_db[2 * NVW_MAX_QIDS];
};

#endif
