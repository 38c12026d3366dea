/* The control protocol between nitro-hv (which owns an NVMe controller's PCI function and
 * register file) and an NVMe card (which owns every queue, the admin queue included).
 * Framing: src/lib/vu_wire.h (12-byte header, payload, fds by SCM_RIGHTS); the request
 * numbers below are their own space (NVW_*), every request is answered by a reply with
 * VU_FLAG_REPLY and a u64 status (0: done), except HELLO, whose reply is nvw_hello.
 *
 * Sequence (docs/nvme.md): HELLO (versions, the card's geometry) -> MEM (guest memory:
 * the vhost-user memory table and one memfd per region, at most 8; more with MEM_ADD; at
 * any time later MEM_ADD / MEM_REM change the table without a controller reset: memory
 * donated to an enclave and given back, docs/enclaves.md) -> SHARED (a memfd of NVW_SHARED_SIZE
 * bytes, struct nvw_shared) -> KICK x nqids (eventfd per queue id: the SQ tail and CQ head
 * doorbells of that qid signal it) -> CALL x nvectors (eventfd per MSI-X vector: a KVM
 * irqfd) -> NOTE (eventfd: the card signals the hypervisor that ns_flags changed) ->
 * ENABLE / DISABLE / SHUTDOWN as the driver writes CC; after a card restart with the
 * controller enabled, RESUME instead of ENABLE.
 *
 * Hostile input: the card checks every field (queue addresses against guest memory);
 * nitro-hv checks every reply and the shared page's flags only as hints (it validates
 * nothing else it reads from there).
 */
#ifndef NITRO_LIB_NVME_WIRE_H
#define NITRO_LIB_NVME_WIRE_H

#include <stdint.h>

#define NVW_VERSION 3

enum nvw_request {
	NVW_HELLO = 0x4e00, /* payload u32 version; reply struct nvw_hello */
	NVW_MEM,	    /* struct vu_mem_table + one fd per region */
	NVW_SHARED,	    /* no payload, one fd: the shared memfd (NVW_SHARED_SIZE bytes) */
	NVW_KICK,	    /* u64 qid, one eventfd */
	NVW_CALL,	    /* u64 vector, one eventfd */
	NVW_NOTE,	    /* no payload, one eventfd */
	NVW_ENABLE,	    /* struct nvw_enable */
	NVW_DISABLE,	    /* no payload: CC.EN 1 -> 0 (controller reset) */
	NVW_SHUTDOWN,	    /* no payload: CC.SHN: finish and flush; reply when done */
	NVW_RESUME,	    /* struct nvw_enable: a restarted card takes the running controller
			     * over from the state in the shared memfd (struct nvw_state) */
	NVW_MEM_ADD,	    /* struct vu_mem_region_single + one fd: one more region of guest
			     * memory (vhost-user's ADD_MEM_REG); may overlap one already there
			     * only as the same view of the same memfd */
	NVW_MEM_REM,	    /* struct vu_mem_region_single (gpa, size, uva): that region goes
			     * (REM_MEM_REG): commands in flight complete first, queues are
			     * translated again; one left outside guest memory fails the
			     * controller. A PRP into removed memory fails its command. */
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

/* The controller's state as the card keeps it in the shared memfd, so that a card that
 * restarts (a crash, an upgrade) continues where the last one stopped: the guest sees a
 * pause, not a reset (docs/nvme.md, "Card restarts"). Written only by the card, in an
 * order that makes every point at which it can die recoverable; read by the next card
 * (NVW_RESUME), which checks every field as it checks the guest's own commands. nitro-hv
 * never reads it. */
struct nvw_queue_state {
	uint64_t qs_sq_addr, qs_cq_addr;
	uint64_t qs_sq_seq; /* commands taken from the SQ since its creation; the head is
			     * qs_sq_seq % qs_sq_size (qs_sq_head: for the reader's eyes) */
	uint32_t qs_sq_size, qs_cq_size; /* 0: no such queue */
	uint32_t qs_sq_head, qs_cq_tail;
	uint16_t qs_sq_cqid, qs_cq_vector;
	uint8_t qs_cq_phase, qs_cq_irq, qs_pad[2];
};

/* An I/O command taken from its SQ and not completed yet (its SQ entry may be reused by
 * the driver meanwhile, so the card keeps the copy). Freed before the completion's
 * queue tail is saved: a completion found in the CQ past the saved tail frees it too. */
struct nvw_slot {
	uint8_t sl_cmd[64];
	uint64_t sl_seq;  /* the SQ's qs_sq_seq when it was taken */
	uint16_t sl_sqid; /* 0: free */
	uint16_t sl_pad[3];
};

#define NVW_MAX_SLOTS 256
#define NVW_STATE_VALID 0x4e565354u /* "NVST": an enabled controller */
struct nvw_state {
	uint32_t st_valid;
	uint32_t st_cc;
	uint64_t st_dbs, st_eis; /* Doorbell Buffer Config pages, 0: none */
	uint16_t st_nsqa, st_ncqa;
	uint8_t st_queues_set, st_vwc, st_naer, st_pad;
	uint32_t st_coalesce, st_aec, st_kato;
	uint16_t st_aer_cid[4];
	struct nvw_queue_state st_q[NVW_MAX_QIDS];
	struct nvw_slot st_slot[NVW_MAX_SLOTS];
};

struct nvw_shared {
	uint32_t s_flags;
	uint32_t s_pad;
	uint32_t s_db[2 * NVW_MAX_QIDS];
	struct nvw_state s_state;
};

#define NVW_SHARED_SIZE 32768u /* the memfd's size */
_Static_assert(sizeof(struct nvw_shared) <= NVW_SHARED_SIZE, "shared memfd too small");

#endif
