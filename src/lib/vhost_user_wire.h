/* The vhost-user wire format (QEMU docs/interop/vhost-user.rst), shared by the cards'
 * back end (src/cards/lib), the hypervisor's frontend (src/hv/vhost_front.c) and the
 * test driver: header flags, request numbers, feature bit numbers (not masks) and the
 * payload layouts. Little-endian on the wire; nitro runs on x86-64 only.
 */
#ifndef NITRO_LIB_VHOST_USER_WIRE_H
#define NITRO_LIB_VHOST_USER_WIRE_H

#include <stdint.h>

#define VU_HDR_SIZE 12
#define VU_MAX_REGIONS 8
#define VU_CONFIG_MAX 256

#define VU_FLAG_VERSION_MASK 0x3u
#define VU_FLAG_VERSION 0x1u
#define VU_FLAG_REPLY 0x4u
#define VU_FLAG_NEED_REPLY 0x8u

#define VU_VRING_IDX_MASK 0xffull
#define VU_VRING_NOFD (1ull << 8)
#define VU_VRING_F_LOG 1u
#define VU_CONFIG_F_MIGRATION 1u

/* Feature bits (numbers, not masks). */
#define VHOST_USER_F_PROTOCOL_FEATURES 30
#define VU_PROTOCOL_F_MQ 0
#define VU_PROTOCOL_F_REPLY_ACK 3
#define VU_PROTOCOL_F_CONFIG 9
#define VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS 15

enum vu_request {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	/* With VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS: the table one region at a time. */
	VU_GET_MAX_MEM_SLOTS = 36,
	VU_ADD_MEM_REG = 37, /* struct vu_mem_region_single, one fd */
	VU_REM_MEM_REG = 38, /* struct vu_mem_region_single (mmap_offset ignored), no fd */
	VU_REQUEST_MAX = 39,
};

/* Payload layouts (little-endian on the wire; this code runs on x86-64 only). */
struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vu_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uva;
	uint64_t mmap_offset;
};

/* ADD_MEM_REG / REM_MEM_REG payload: 8 bytes of padding, then one region. */
struct vu_mem_region_single {
	uint64_t padding;
	struct vu_mem_region region;
};

struct vu_mem_table {
	uint32_t nregions;
	uint32_t padding;
	struct vu_mem_region regions[VU_MAX_REGIONS];
};

struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t payload[VU_CONFIG_MAX];
};

#endif
