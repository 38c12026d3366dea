/* The vhost-user back-end protocol (QEMU docs/interop/vhost-user.rst) for one device on
 * one connection, with the guest's queues served in this process.
 *
 * Messages are framed by vu_read_msg() with src/lib/vu_wire.h (header, payload of at
 * most VU_PAYLOAD_MAX bytes, at most VU_MAX_FDS fds by SCM_RIGHTS), checked by the pure
 * parser vu_parse() (version, size bound, exact payload size per request type) and
 * handled by vu_dispatch(): one handler per request in a single table. A handler that
 * fails answers the frontend with a non-zero REPLY_ACK when it asked for one
 * (NEED_REPLY); otherwise the connection is closed with a log line, since the frontend
 * could not learn of the failure. Fds a message did not use are closed. A
 * descriptor-chain violation fails only that queue (vu_queue_fail: log, signal the ring's
 * error eventfd, stop serving it) until the frontend restarts it; the process never
 * aborts on guest or frontend input.
 * Single-threaded: everything runs on the event loop's thread.
 */
#ifndef NITRO_CARDS_VHOST_USER_H
#define NITRO_CARDS_VHOST_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* VIRTIO_F_VERSION_1, every card's feature (a bit number, not a mask) */
#include <linux/virtio_config.h>

#include "cards/lib/guestmem.h"
#include "cards/lib/loop.h"
#include "cards/lib/vring.h"
#include "lib/vhost_user_wire.h"
#include "lib/vu_wire.h"

#define VU_PAYLOAD_MAX 4096
#define VU_MAX_FDS VU_WIRE_MAX_FDS
#define VU_MAX_QUEUES 256 /* a ring index travels in 8 bits */

_Static_assert(VU_MAX_REGIONS == GM_MAX_REGIONS, "one memory table size");

struct vu_msg {
	uint32_t vm_request;
	uint32_t vm_flags;
	uint32_t vm_size; /* payload bytes */
	union {
		uint64_t u64;
		struct vu_vring_state state;
		struct vu_vring_addr addr;
		struct vu_mem_table mem;
		struct vu_mem_region_single single;
		struct vu_config config;
		uint8_t raw[VU_PAYLOAD_MAX];
	} vm_u;
	int vm_fds[VU_MAX_FDS]; /* a handler that keeps one sets its slot to -1 */
	unsigned vm_nfds;
};

struct vu_dev;

/* What a device provides (designated initializers; unset callbacks mean "not supported"). */
struct vu_ops {
	uint64_t vo_features;	       /* device feature bits; the library adds the ring ones */
	uint64_t vo_protocol_features; /* beyond MQ, REPLY_ACK (and CONFIG with config_read) */
	unsigned vo_num_queues;	       /* 1..VU_MAX_QUEUES */
	unsigned vo_max_queue_size;    /* 0: VR_MAX_SIZE */
	uint32_t vo_config_size;       /* bytes of device config space, <= VU_CONFIG_MAX */
	int (*vo_config_read)(struct vu_dev *d, uint32_t off, void *buf, uint32_t len);
	/* flags: VU_CONFIG_F_MIGRATION allows writing read-only fields (the device checks). */
	int (*vo_config_write)(struct vu_dev *d, uint32_t off, const void *buf, uint32_t len,
			       uint32_t flags);
	/* The driver kicked queue q (it is started, enabled and not failed). */
	void (*vo_queue_kick)(struct vu_dev *d, unsigned q);
	/* Queue q is about to stop (GET_VRING_BASE, reset, disconnect) and is still live: a
	 * device with requests in flight completes them now (pushes still reach the ring), so
	 * the base the frontend gets back covers no request that was taken but never used. */
	void (*vo_queue_stopping)(struct vu_dev *d, unsigned q);
	/* Queue q stopped (GET_VRING_BASE, reset, disconnect): drop in-flight requests. */
	void (*vo_queue_stop)(struct vu_dev *d, unsigned q);
	/* The frontend went away; default: stop the loop. */
	void (*vo_disconnected)(struct vu_dev *d);
	/* The memory table is about to be replaced: finish (or abandon) every access to guest
	 * memory still in flight, since the old mappings go away on return. */
	void (*vo_mem_changing)(struct vu_dev *d);
	/* Every card refuses guest memory whose fd is not a memfd sealed against shrinking
	 * (F_SEAL_SHRINK): a frontend could otherwise truncate it under the card (SIGBUS on
	 * access). Only tests that drive the library with plain memory set this. */
	bool vo_allow_unsealed_memory;
	/* The device shares its event loop with other frontends' devices (nitro-card-vsock:
	 * the parent and every enclave). Its connection is then non-blocking: a message is
	 * collected as its bytes arrive, never waited for (a frontend that stalls
	 * mid-message holds up only itself), and a reply that does not fit into the socket
	 * at once ends the connection (a frontend that never reads its replies cannot stop
	 * the loop). Without it, a frontend has VU_MSG_TIMEOUT_S per piece of a message. */
	bool vo_shared_loop;
	/* vu_queue_pop returns chains with ch_denied (a buffer in revoked memory, its sg_ptr
	 * NULL) to the device, which fails that request itself. Unset: the library hands
	 * them back with 0 bytes written and the device never sees them. */
	bool vo_denied_chains;
};

struct vu_queue {
	struct vu_dev *vq_dev;
	unsigned vq_index;
	unsigned vq_num; /* 0 until SET_VRING_NUM */
	bool vq_addr_set;
	uint64_t vq_desc_addr, vq_avail_addr, vq_used_addr; /* frontend virtual addresses */
	uint16_t vq_base; /* SET_VRING_BASE: first avail index to serve */
	int vq_kick, vq_call, vq_err;
	bool vq_started; /* kick received and rings mapped */
	bool vq_enabled;
	bool vq_failed; /* chain violation: needs a restart by the frontend */
	struct vr_ring vq_ring;
};

struct vu_dev {
	const struct vu_ops *vd_ops;
	void *vd_opaque;
	struct loop *vd_loop; /* NULL: no watches (fuzzing, parser tests) */
	int vd_fd;	      /* the connection, -1 when none */
	bool vd_owner;
	uint64_t vd_features;
	uint64_t vd_protocol_features;
	struct gmem vd_mem;
	unsigned vd_nqueues;
	struct vu_queue *vd_queues;
	struct vu_partial *vd_partial; /* vo_shared_loop: the message arriving (vu_conn.c) */
};

int vu_dev_init(struct vu_dev *d, const struct vu_ops *ops, void *opaque, struct loop *l, char *err,
		size_t errlen);
/* Serves connection fd (watched on the loop). The device owns fd from now on. */
int vu_dev_attach(struct vu_dev *d, int fd, char *err, size_t errlen);
/* Stops every queue, closes the connection and unmaps guest memory. */
void vu_dev_detach(struct vu_dev *d);
void vu_dev_fini(struct vu_dev *d);

/* Features offered to the frontend (device's plus the library's). */
uint64_t vu_features(const struct vu_dev *d);
uint64_t vu_protocol_features(const struct vu_dev *d);
const char *vu_request_name(uint32_t req);

/* Bytes [hdr | payload] -> message (vm_nfds = 0). 0, or a negative errno value: -ENOSYS
 * for a well-framed message of an unknown type, -EINVAL/-EMSGSIZE for malformed ones. */
int vu_parse(const uint8_t *buf, size_t len, struct vu_msg *m, char *err, size_t errlen);
/* Handles m; fills *reply when one must be sent (*has_reply). Returns 0, or a negative
 * errno value when the connection must be closed (message in err). Closes m's unused fds. */
int vu_dispatch(struct vu_dev *d, struct vu_msg *m, struct vu_msg *reply, bool *has_reply,
		char *err, size_t errlen);
/* Reads one message from fd: 1 when read, 0 on end of file before a message, negative
 * errno value on error (a frontend that dies mid-message, bad framing). */
int vu_read_msg(int fd, struct vu_msg *m, char *err, size_t errlen);
int vu_send(int fd, const struct vu_msg *m, char *err, size_t errlen);
/* Reads, dispatches and answers one message: 0, 1 at end of file, or a negative errno.
 * With vo_shared_loop it reads only what is there (never waits): a message not yet
 * complete is kept for the next call, which returns 0 meanwhile. */
int vu_handle_one(struct vu_dev *d, char *err, size_t errlen);

/* For the device's queue_kick: take a chain (1), none pending (0), or a violation
 * (negative; the queue is failed). Denied chains: see vo_denied_chains. */
int vu_queue_pop(struct vu_dev *d, unsigned q, struct vr_chain *ch);
int vu_queue_push(struct vu_dev *d, unsigned q, uint16_t head, uint32_t written);
/* Signals the call eventfd if the driver wants an interrupt. */
void vu_queue_notify(struct vu_dev *d, unsigned q);
void vu_queue_fail(struct vu_dev *d, unsigned q, const char *why);
/* Maps the rings of queue q and starts serving it (watching its kick fd). */
int vu_queue_start(struct vu_dev *d, unsigned q, char *err, size_t errlen);
/* Stops serving queue q (closes its kick fd); nothing if it was not started. */
void vu_queue_stop(struct vu_dev *d, unsigned q);
/* Stops queue q and forgets its set-up (size, addresses, base, call and error fds). */
void vu_queue_reset(struct vu_dev *d, unsigned q);

#endif
