/* The hypervisor as a vhost-user frontend (QEMU docs/interop/vhost-user.rst): it hands
 * a card the guest's memory (the memfd, one region per RAM region, minus the ranges donated
 * to enclaves: vhost_front_sync_mem), the rings' addresses,
 * a kick fd (a KVM ioeventfd), a call fd (a KVM irqfd) and an error fd (the card signals
 * a failed queue) per queue, and is then out of the I/O path. Every reply is checked; with
 * REPLY_ACK negotiated every request is acknowledged. Calls are serialised by vf_lock (vCPU threads
 * drive them).
 */
#ifndef NITRO_HV_VHOST_FRONT_H
#define NITRO_HV_VHOST_FRONT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/memory.h"
#include "hv/mem_table.h"
#include "lib/enclave_wire.h"
#include "lib/vhost_user_wire.h"

#define VHOST_CONFIG_MAX VU_CONFIG_MAX
#define VHOST_PROTO_MQ (1ull << VU_PROTOCOL_F_MQ)
#define VHOST_PROTO_REPLY_ACK (1ull << VU_PROTOCOL_F_REPLY_ACK)
#define VHOST_PROTO_CONFIG (1ull << VU_PROTOCOL_F_CONFIG)
#define VHOST_PROTO_MEM_SLOTS (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)
#define VHOST_F_PROTOCOL_FEATURES (1ull << VHOST_USER_F_PROTOCOL_FEATURES)

struct vhost_front {
	int vf_sock;
	pthread_mutex_t vf_lock;
	uint64_t vf_features; /* the card's, without VHOST_F_PROTOCOL_FEATURES */
	uint64_t vf_protocol; /* negotiated */
	bool vf_proto_offered;
	unsigned vf_queues;
	uint8_t vf_config[VHOST_CONFIG_MAX];
	unsigned vf_config_len;
	char vf_path[108];
	const struct guest_mem *vf_mem; /* for SET_MEM_TABLE again on reconnect */
	unsigned vf_config_want;
	const struct enw_hello *vf_hello; /* sent first on each connection; NULL: none */
	const struct enw_pcrs *vf_pcrs;	  /* sent next (NSM); NULL: none */
	bool vf_handed;			  /* a connection handed over (fd): never made again */
	unsigned vf_max_slots;		  /* GET_MAX_MEM_SLOTS (VU_MAX_REGIONS without) */
	struct mem_table vf_table;	  /* what the card maps, as last told */
};

/* How a card connection opens. */
struct vhost_open {
	const char *path; /* the card's socket (made again after a card restart); or NULL: */
	int fd;		  /* >= 0: a connected socket handed over, already past its ENW_HELLO
			   * (an enclave's, from its spawner): taken, closed on failure too;
			   * never made again (no socket() or connect() in an enclave) */
	/* With path: the ENW_HELLO (src/lib/enclave_wire.h) each connection opens with, the
	 * card going on only when it accepts it; NULL: none. */
	const struct enw_hello *hello;
	/* The ENW_PCRS sent next (after the hello, or first on fd): an enclave's NSM card;
	 * NULL: none. hello and pcrs must outlive the front. */
	const struct enw_pcrs *pcrs;
};

/* Connects (or takes o->fd), negotiates, reads config_len bytes of device config and sends
 * the memory table. 0, or -1 with err. */
int vhost_front_connect(struct vhost_front *f, const struct vhost_open *o,
			const struct guest_mem *m, unsigned config_len, char *err, size_t errlen);
/* The card went away (its process died): drop the connection. Requests fail until a
 * reconnect succeeds. */
void vhost_front_disconnect(struct vhost_front *f);
/* Connects to the same socket again (a supervisor restarted the card) and repeats the
 * handshake and the memory table; the card must come back with the same features, queue
 * count and device configuration, or it is refused. 0, or -1 with err (always for a
 * handed-over connection, vf_handed: it makes no socket). */
int vhost_front_reconnect(struct vhost_front *f, char *err, size_t errlen);
int vhost_front_set_features(struct vhost_front *f, uint64_t features);
/* Addresses are this process's pointers into guest memory; base is the ring index the card
 * starts from (0 for a fresh queue, the used index when a queue is restored). */
int vhost_front_start_queue(struct vhost_front *f, unsigned q, unsigned num, uint16_t base,
			    const void *desc, const void *avail, const void *used, int kick_fd,
			    int call_fd, int err_fd);
int vhost_front_stop_queue(struct vhost_front *f, unsigned q);
int vhost_front_set_config(struct vhost_front *f, unsigned off, const uint8_t *data, unsigned size);
/* Guest memory changed (holes made or filled, boot/memory.h): brings the card's table to
 * the memory without its holes, by ADD_MEM_REG and REM_MEM_REG (CONFIGURE_MEM_SLOTS), each
 * acknowledged, or else one acknowledged SET_MEM_TABLE. Returns when the card has
 * answered: 0 (it no longer maps a hole, and maps the rest), or -1 with err (refused, no
 * answer, too many ranges). No connection (a card being restarted): 0, the reconnect
 * sends the table as it is then. */
int vhost_front_sync_mem(struct vhost_front *f, char *err, size_t errlen);

#endif
