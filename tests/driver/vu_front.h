/* vhost-user frontend for native tests: this process plays the VMM that owns guest memory.
 *
 * Guest memory is one memfd of vf_mem_size bytes, mapped once here at vf_mem and shared
 * with the back end as a single region: guest physical address 0 is memfd offset 0, and
 * the region's user address is vf_mem, so ring addresses sent in SET_VRING_ADDR are this
 * process's pointers into the mapping. vu_alloc() hands out guest memory with a bump
 * allocator (never freed). Every request that the protocol answers, or that asks for a
 * REPLY_ACK, has its reply checked; on failure the functions return -1 and write into
 * err a message naming the vhost-user request and the reason. Socket I/O has a timeout,
 * so a silent back end is an error, not a hang.
 */
#ifndef NITRO_TESTS_DRIVER_VU_FRONT_H
#define NITRO_TESTS_DRIVER_VU_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_config.h> /* VIRTIO_F_VERSION_1 (a bit number) */

#include "lib/vhost_user_wire.h"

#define VU_IO_TIMEOUT_MS 5000

struct vu_front {
	int vf_sock;
	int vf_memfd;
	uint8_t *vf_mem;
	uint64_t vf_mem_size;
	uint64_t vf_mem_next;	/* bump allocator: next free guest address */
	uint64_t vf_features;	/* device features offered by the back end */
	uint64_t vf_acked;	/* features sent in SET_FEATURES */
	uint64_t vf_proto;	/* protocol features negotiated (0 without PROTOCOL_FEATURES) */
	unsigned vf_max_queues; /* GET_QUEUE_NUM, or 1 without MQ */
	uint32_t vf_config_len; /* bytes of vf_config filled by GET_CONFIG (0: none) */
	uint8_t vf_config[VU_CONFIG_MAX];
};

struct vu_vring {
	int vr_kick; /* eventfd: write to notify the back end */
	int vr_call; /* eventfd: the back end signals used buffers */
};

/* Guest memory is sealed against shrinking and growing unless this is set (tests of a
 * back end that must refuse unsealed memory). */
extern bool vu_front_no_seal;

/* Creates and maps the memfd and connects to the unix socket at path. */
int vu_open(struct vu_front *f, const char *path, uint64_t mem_size, char *err, size_t errlen);

/* SET_OWNER .. SET_MEM_TABLE. Acks the offered features that are in want (VERSION_1 is
 * required and always acked; PROTOCOL_FEATURES when offered). config_len is the number of
 * config-space bytes to ask for with GET_CONFIG (when the CONFIG protocol feature is
 * negotiated). */
int vu_init(struct vu_front *f, uint64_t want, uint32_t config_len, char *err, size_t errlen);

/* SET_VRING_NUM, ADDR, BASE 0, CALL, KICK, then ENABLE 1 (when PROTOCOL_FEATURES was acked:
 * only then do rings start disabled) for queue idx; the ring parts are at the given guest
 * addresses (from vu_alloc). Creates the two eventfds in *vr. */
int vu_vring_start(struct vu_front *f, unsigned idx, unsigned num, uint64_t desc, uint64_t avail,
		   uint64_t used, struct vu_vring *vr, char *err, size_t errlen);

/* With CONFIGURE_MEM_SLOTS negotiated (vu_init asks for it when offered): the back end's
 * GET_MAX_MEM_SLOTS, and ADD_MEM_REG / REM_MEM_REG of the region [gpa, gpa + size) of
 * guest memory (memfd offset gpa, user address vf_mem + gpa), each acknowledged. */
int vu_max_mem_slots(struct vu_front *f, uint64_t *n, char *err, size_t errlen);
int vu_mem_add(struct vu_front *f, uint64_t gpa, uint64_t size, char *err, size_t errlen);
int vu_mem_rem(struct vu_front *f, uint64_t gpa, uint64_t size, char *err, size_t errlen);

/* Guest memory: a gpa for size bytes aligned to align (a power of two), or UINT64_MAX
 * when memory is exhausted; vu_ptr() turns a gpa into this process's pointer. */
uint64_t vu_alloc(struct vu_front *f, uint64_t size, uint64_t align);
void *vu_ptr(const struct vu_front *f, uint64_t gpa);

/* Closes the socket (the back end then drops the device), the memfd and the mapping. */
void vu_close(struct vu_front *f);

#endif
