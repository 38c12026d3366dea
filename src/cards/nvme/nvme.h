/* An NVMe controller as a card serves it (NVMe 1.4 base spec, NVM command set): the admin
 * queue and every I/O queue pair, the commands, and the data walk, over the EBS card's
 * block back ends (src/cards/bdev/bdev.h) and the volume's encryption (src/volume). The
 * register file and PCI function are nitro-hv's (src/hv/nvme_pci.c); what crosses between
 * the two is src/lib/nvme_wire.h. Used by nitro-card-ebs --nvme (EBS) and
 * nitro-card-instance (instance storage).
 *
 * Hostile input: everything in guest memory (submission entries, PRP lists, SGL
 * descriptors, the shadow doorbells) and every doorbell value. Addresses are resolved
 * only through gm_gpa() (whole range inside one region); an entry is copied out once
 * and then checked. A bad command (bad PRP, LBA range past the end, unknown opcode) gets
 * an error status; a queue misuse that NVMe calls fatal (a doorbell value past the queue
 * size, a write to a doorbell of a queue that does not exist) fails the controller
 * (nvme_fail: CSTS.CFS through the hypervisor), never the process.
 *
 * Single-threaded: everything runs on the card's event loop. Reads and writes are
 * asynchronous (bdev), at most NVME_MAX_INFLIGHT at once; completions are posted in the
 * order they finish, one interrupt per batch and completion queue.
 *
 * Card restarts: the queues' state and a copy of every I/O command in flight are kept in
 * the shared memfd (struct nvw_state), which nitro-hv holds across card restarts; a new
 * card continues from there (nvme_resume).
 */
#ifndef NITRO_CARDS_NVME_NVME_H
#define NITRO_CARDS_NVME_NVME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cards/bdev/bdev.h"
#include "cards/bdev/qos.h"
#include "cards/lib/guestmem.h"
#include "lib/nvme_wire.h"
#include "volume/volume.h"

#define NVME_PAGE 4096u
#define NVME_MAX_QIDS 17 /* admin + 16 I/O queue pairs */
#define NVME_MAX_VECTORS 17
#define NVME_MQES 1023 /* largest queue: 1024 entries */
#define NVME_MDTS 5    /* 2^5 pages: 128 KiB per command */
#define NVME_MAX_XFER (NVME_PAGE << NVME_MDTS)
#define NVME_MAX_SEGS (NVME_MAX_XFER / NVME_PAGE + 1)
#define NVME_MAX_SGL_DESC 256 /* descriptors one command may use */
#define NVME_MAX_INFLIGHT 256 /* one nvw_slot each in the shared memfd */
_Static_assert(NVME_MAX_INFLIGHT <= NVW_MAX_SLOTS, "one saved slot per request");
_Static_assert(NVME_MAX_QIDS <= NVW_MAX_QIDS, "one saved state per queue id");
#define NVME_AERL 3 /* 4 async event requests held */
#define NVME_LBA 512u

/* Status codes (generic, SCT 0) */
#define NVME_SC_SUCCESS 0x00
#define NVME_SC_INVALID_OPCODE 0x01
#define NVME_SC_INVALID_FIELD 0x02
#define NVME_SC_DATA_XFER_ERROR 0x04
#define NVME_SC_INTERNAL 0x06
#define NVME_SC_ABORT_SQ_DELETED 0x08
#define NVME_SC_INVALID_NS 0x0b
#define NVME_SC_INVALID_PRP_OFFSET 0x13
#define NVME_SC_SGL_INVALID_LAST 0x0f
#define NVME_SC_SGL_INVALID_COUNT 0x10
#define NVME_SC_SGL_INVALID_DATA 0x11
#define NVME_SC_SGL_INVALID_TYPE 0x11
#define NVME_SC_LBA_RANGE 0x80
#define NVME_SC_NS_NOT_READY 0x82
/* command specific (SCT 1) */
#define NVME_SC_CQ_INVALID 0x100
#define NVME_SC_QID_INVALID 0x101
#define NVME_SC_QUEUE_SIZE 0x102
#define NVME_SC_ABORT_LIMIT 0x103
#define NVME_SC_AER_LIMIT 0x105
#define NVME_SC_INVALID_VECTOR 0x108
#define NVME_SC_INVALID_LOG_PAGE 0x109
#define NVME_SC_DELETE_CQ_INVALID 0x10c
#define NVME_SC_FEATURE_NOT_SAVEABLE 0x10d
/* media errors (SCT 2) */
#define NVME_SC_WRITE_FAULT 0x280
#define NVME_SC_READ_ERROR 0x281
#define NVME_SC_WRITE_PROTECTED 0x20 /* generic: namespace is write protected */

/* The SMART / health counters (log page 2), kept as NVMe counts them. */
struct nvme_smart {
	uint64_t sm_units_read, sm_units_written; /* thousands of 512-byte units */
	uint64_t sm_read_cmds, sm_write_cmds;
	uint64_t sm_media_errors;
	uint64_t sm_err_entries;
	uint64_t sm_read_bytes, sm_written_bytes;
	uint64_t sm_power_on_ns;
};

struct nvme_sq {
	bool s_live;
	uint16_t s_cqid;
	uint32_t s_size;
	uint32_t s_head;
	uint32_t s_tail; /* last tail read from the doorbell */
	uint64_t s_seq;	 /* commands taken since the queue was created */
	uint64_t s_addr;
	uint8_t *s_ring; /* s_size * 64 bytes in guest memory */
	unsigned s_inflight;
};

struct nvme_cq {
	bool c_live;
	bool c_irq;
	uint16_t c_vector;
	uint32_t c_size;
	uint32_t c_tail;
	uint32_t c_head; /* last head read from the doorbell */
	uint8_t c_phase;
	uint64_t c_addr;
	uint8_t *c_ring;     /* c_size * 16 bytes in guest memory */
	unsigned c_reserved; /* entries promised to commands in flight */
	bool c_pending_irq;
};

struct nvme_ctrl;

struct nvme_req {
	struct nvme_ctrl *q_c;
	struct nvme_req *q_next;
	uint16_t q_sqid, q_cid;
	uint8_t q_opcode;
	uint64_t q_slba;
	uint64_t q_len;
	unsigned q_niov;
	struct iovec q_iov[NVME_MAX_SEGS + NVME_MAX_SGL_DESC];
	uint8_t *q_bounce; /* NVME_MAX_XFER bytes, for encrypted or scattered data */
	bool q_bounced;	   /* this command's data goes through q_bounce */
	struct iovec q_biov;
	struct bdev_io q_io;
};

/* What the card sets before nvme_init. */
struct nvme_info {
	uint16_t ni_device;	  /* PCI device id (EBS 0x8061, instance storage 0xcd01) */
	const char *ni_model;	  /* "Amazon Elastic Block Store" */
	const char *ni_serial;	  /* the volume id without its dash */
	const char *ni_bdev_name; /* EC2's vendor area: "sdf", "/dev/sda1" */
	unsigned ni_nqids;	  /* 2..NVME_MAX_QIDS */
};

struct nvme_ctrl {
	struct nvme_info c_info;
	struct gmem *c_mem;
	struct volume *c_vol;
	struct bdev *c_bdev;
	struct nvw_shared *c_shared;  /* the hypervisor's doorbell values and the flags */
	int c_call[NVME_MAX_VECTORS]; /* eventfds (KVM irqfds), -1 when not given */
	int c_note;		      /* eventfd to the hypervisor, -1 when not given */
	bool c_enabled, c_failed;
	uint32_t c_cc;
	struct nvme_sq c_sq[NVME_MAX_QIDS];
	struct nvme_cq c_cq[NVME_MAX_QIDS];
	/* Doorbell Buffer Config: shadow doorbells and EventIdx (guest pages) */
	uint32_t *c_dbs, *c_eis;
	uint64_t c_dbs_gpa, c_eis_gpa;
	/* features */
	uint16_t c_nsqa, c_ncqa; /* granted I/O queues - 1 */
	bool c_queues_set;
	uint32_t c_coalesce, c_aec, c_kato;
	bool c_vwc;
	/* async events */
	uint16_t c_aer_cid[NVME_AERL + 1];
	unsigned c_naer;
	/* error log: the last 16 entries */
	uint64_t c_err_count;
	uint8_t c_errlog[16][64];
	struct nvme_smart c_smart;
	uint64_t c_start_ns;
	/* requests */
	struct nvme_req *c_reqs, *c_free;
	unsigned c_inflight;
	unsigned c_batch;
	bool c_starved; /* a queue stopped for want of a free request */
	/* Paused for a snapshot (pause.h): the I/O queues take no command; c_on_quiet runs
	 * once (then NULL) when no request is in flight any more. */
	bool c_paused;
	void (*c_on_quiet)(void *opaque);
	void *c_quiet_opaque;
	/* QoS (EBS): commands wait in the SQ while the buckets refuse */
	struct qos *c_qos;
	uint64_t c_qos_wait_ns; /* > 0: throttled, retry after this long (the card arms a timer) */
	uint64_t (*c_now)(void);
	/* the card's hook when the controller failed (CSTS.CFS) */
	void (*c_on_fail)(struct nvme_ctrl *c, const char *why);
	bool c_polling; /* nvme_set_polling: the EventIdx asks the driver not to ring */
	uint64_t c_throttled;
	/* wake-ups by an I/O queue's doorbell eventfd; the guest's I/O doorbell writes they
	 * carried (the eventfd's count: each one a VM exit, handled by KVM's ioeventfd or by
	 * nitro-hv); interrupts signalled */
	uint64_t c_kicks, c_rings, c_irqs;
	uint64_t c_polled; /* polls that found commands (the busy-poll window) */
};

int nvme_init(struct nvme_ctrl *c, const struct nvme_info *info, struct gmem *mem,
	      struct volume *vol, struct bdev *b, char *err, size_t errlen);
void nvme_fini(struct nvme_ctrl *c);
/* CC.EN 0 -> 1 with the admin queue's registers; false: the controller failed (CFS). */
bool nvme_enable(struct nvme_ctrl *c, const struct nvw_enable *e);
/* A restarted card (NVW_RESUME): the enabled controller's queues, features and the
 * commands in flight when the last card ended, from c_shared's nvw_state (checked as
 * hostile). Commands in flight are executed again; completions the last card posted
 * are found in the guest's CQs. false: the controller failed (CFS), the driver resets. */
bool nvme_resume(struct nvme_ctrl *c, const struct nvw_enable *e);
/* The hypervisor left or the card stops: waits for I/O in flight (their completions are
 * posted and the saved state stays consistent), then stops writing to the shared page
 * (c_shared becomes dummy), so that a card started after this one can resume. */
void nvme_detach(struct nvme_ctrl *c, struct nvw_shared *dummy);
/* Guest memory is about to lose a region (NVW_MEM_REM): every command in flight completes
 * now, so nothing still points into it. */
void nvme_mem_changing(struct nvme_ctrl *c);
/* After the table changed: every live queue and the shadow doorbells are translated again
 * from their guest addresses; when one is no longer in guest memory the controller fails
 * (CSTS.CFS: the driver resets it) and false is returned. */
bool nvme_remap(struct nvme_ctrl *c);
/* CC.EN 1 -> 0, or the hypervisor went away: every queue gone, in-flight I/O waited for. */
void nvme_disable(struct nvme_ctrl *c);
/* CC.SHN: waits for I/O in flight and flushes the back end. */
void nvme_shutdown(struct nvme_ctrl *c);
/* The doorbells of qid changed (its kick eventfd fired, or the loop polls): takes new
 * submissions of SQ qid and new room in CQ qid. */
void nvme_kick(struct nvme_ctrl *c, unsigned qid);
/* Polling (the card's busy-poll window, front.h): looks at every I/O SQ's shadow tail
 * and takes what is new; true when it took a command. Only with Doorbell Buffer Config. */
bool nvme_poll(struct nvme_ctrl *c);
/* on: the card will poll, so every I/O SQ's EventIdx is set where the driver does not
 * ring. off: the EventIdx back at each tail seen (the next submission rings), then one
 * more look at the shadow doorbells for submissions that raced in; true when it took
 * any (the caller then polls on). */
bool nvme_set_polling(struct nvme_ctrl *c, bool on);
/* Every queue (after a throttle ended or completions freed requests). */
void nvme_kick_all(struct nvme_ctrl *c);
/* Sends the interrupts of completions posted since the last call. */
void nvme_flush_irqs(struct nvme_ctrl *c);
/* Fails the controller: CSTS.CFS through the shared page and the note eventfd; every
 * queue stops until the driver resets it. */
void nvme_fail(struct nvme_ctrl *c, const char *why);

/* The data walk (exported for tests and fuzzing): the PRP pair (PRP1, PRP2 with its
 * lists) or the SGL in cmd for len bytes, as host pointers into guest memory (at most
 * max iovecs). Returns the number of iovecs, or -status (an NVMe status code). */
int nvme_map_data(const struct gmem *m, const uint8_t cmd[64], uint64_t len, struct iovec *iov,
		  unsigned max);

#endif
