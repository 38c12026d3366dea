#include "vu_front.h"

#include "lib/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/le.h"
#include "lib/vhost_user_wire.h"
#include "lib/vu_wire.h"

#define VU_CONFIG_HDR 12 /* offset, size, flags */

static const char *req_name(uint32_t req)
{
	switch (req) {
	case VU_GET_FEATURES:
		return "GET_FEATURES";
	case VU_SET_FEATURES:
		return "SET_FEATURES";
	case VU_SET_OWNER:
		return "SET_OWNER";
	case VU_SET_MEM_TABLE:
		return "SET_MEM_TABLE";
	case VU_SET_VRING_NUM:
		return "SET_VRING_NUM";
	case VU_SET_VRING_ADDR:
		return "SET_VRING_ADDR";
	case VU_SET_VRING_BASE:
		return "SET_VRING_BASE";
	case VU_SET_VRING_KICK:
		return "SET_VRING_KICK";
	case VU_SET_VRING_CALL:
		return "SET_VRING_CALL";
	case VU_GET_PROTOCOL_FEATURES:
		return "GET_PROTOCOL_FEATURES";
	case VU_SET_PROTOCOL_FEATURES:
		return "SET_PROTOCOL_FEATURES";
	case VU_GET_QUEUE_NUM:
		return "GET_QUEUE_NUM";
	case VU_SET_VRING_ENABLE:
		return "SET_VRING_ENABLE";
	case VU_GET_CONFIG:
		return "GET_CONFIG";
	case VU_GET_MAX_MEM_SLOTS:
		return "GET_MAX_MEM_SLOTS";
	case VU_ADD_MEM_REG:
		return "ADD_MEM_REG";
	case VU_REM_MEM_REG:
		return "REM_MEM_REG";
	}
	return "?";
}

/* Sends one message; fd >= 0 travels with it by SCM_RIGHTS. */
static int send_msg(struct vu_front *f, uint32_t req, uint32_t flags, const void *payload,
		    uint32_t size, int fd, char *err, size_t errlen)
{
	int r = vu_wire_send(f->vf_sock, req, VU_FLAG_VERSION | flags, payload, size, &fd,
			     fd >= 0 ? 1 : 0);
	if (r < 0)
		RETURN_ERR(-1, "%s: send: %s", req_name(req),
			   r == -ETIMEDOUT ? "timed out" : strerror(-r));
	return 0;
}

/* Reads the reply to req; its payload must be between min and max bytes. */
static int recv_reply(struct vu_front *f, uint32_t req, void *payload, uint32_t min, uint32_t max,
		      uint32_t *size, char *err, size_t errlen)
{
	struct vu_wire_hdr h;
	unsigned nfds;
	int r = vu_wire_recv(f->vf_sock, &h, payload, max, NULL, 0, &nfds, -1);
	if (r == 0 || r == -EPIPE)
		RETURN_ERR(-1, "%s: back end closed the connection", req_name(req));
	if (r == -ETOOMANYREFS)
		RETURN_ERR(-1, "%s: reply carries fds", req_name(req));
	if (r < 0 && r != -EMSGSIZE)
		RETURN_ERR(-1, "%s: reply: %s", req_name(req),
			   r == -ETIMEDOUT ? "timed out" : strerror(-r));
	if (h.request != req)
		RETURN_ERR(-1, "%s: reply is for request %u", req_name(req), h.request);
	if ((h.flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION || !(h.flags & VU_FLAG_REPLY))
		RETURN_ERR(-1, "%s: reply has bad flags 0x%x", req_name(req), h.flags);
	if (h.size < min || h.size > max)
		RETURN_ERR(-1, "%s: reply payload is %u bytes, expected %u..%u", req_name(req),
			   h.size, min, max);
	if (size)
		*size = h.size;
	return 0;
}

static int get_u64(struct vu_front *f, uint32_t req, uint64_t *v, char *err, size_t errlen)
{
	uint8_t p[8];
	if (send_msg(f, req, 0, NULL, 0, -1, err, errlen) ||
	    recv_reply(f, req, p, 8, 8, NULL, err, errlen))
		return -1;
	*v = le64_get(p);
	return 0;
}

/* A request with no reply of its own: asks for an ack when REPLY_ACK is negotiated. */
static int set_msg(struct vu_front *f, uint32_t req, const void *payload, uint32_t size, int fd,
		   char *err, size_t errlen)
{
	bool ack = f->vf_proto & (1ull << VU_PROTOCOL_F_REPLY_ACK);
	if (send_msg(f, req, ack ? VU_FLAG_NEED_REPLY : 0, payload, size, fd, err, errlen))
		return -1;
	if (!ack)
		return 0;
	uint8_t p[8];
	if (recv_reply(f, req, p, 8, 8, NULL, err, errlen))
		return -1;
	if (le64_get(p) != 0)
		RETURN_ERR(-1, "%s: back end refused (ack 0x%llx)", req_name(req),
			   (unsigned long long)le64_get(p));
	return 0;
}

static int set_u64(struct vu_front *f, uint32_t req, uint64_t v, int fd, char *err, size_t errlen)
{
	uint8_t p[8];
	le64_put(p, v);
	return set_msg(f, req, p, 8, fd, err, errlen);
}

static int set_state(struct vu_front *f, uint32_t req, uint32_t idx, uint32_t num, char *err,
		     size_t errlen)
{
	uint8_t p[8];
	le32_put(p, idx);
	le32_put(p + 4, num);
	return set_msg(f, req, p, 8, -1, err, errlen);
}

bool vu_front_no_seal;

int vu_open(struct vu_front *f, const char *path, uint64_t mem_size, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	f->vf_sock = -1;
	f->vf_memfd = -1;
	f->vf_max_queues = 1;
	if (mem_size == 0 || mem_size % 4096)
		RETURN_ERR(-1, "memory size %llu is not a positive multiple of 4 KiB",
			   (unsigned long long)mem_size);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(sa.sun_path))
		RETURN_ERR(-1, "socket path too long: %s", path);
	strcpy(sa.sun_path, path);

	f->vf_memfd = memfd_create("vu-guest-mem", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f->vf_memfd < 0)
		RETURN_ERR(-1, "memfd_create: %s", strerror(errno));
	if (ftruncate(f->vf_memfd, (off_t)mem_size) < 0) {
		snprintf(err, errlen, "memfd size %llu: %s", (unsigned long long)mem_size,
			 strerror(errno));
		goto fail;
	}
	/* Like nitro-hv: the back end may refuse memory that could shrink under it. */
	if (!vu_front_no_seal &&
	    fcntl(f->vf_memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		snprintf(err, errlen, "sealing guest memory: %s", strerror(errno));
		goto fail;
	}
	void *m = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, f->vf_memfd, 0);
	if (m == MAP_FAILED) {
		snprintf(err, errlen, "mmap guest memory: %s", strerror(errno));
		goto fail;
	}
	f->vf_mem = m;
	f->vf_mem_size = mem_size;

	f->vf_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->vf_sock < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		goto fail;
	}
	struct timeval tv = {.tv_sec = VU_IO_TIMEOUT_MS / 1000,
			     .tv_usec = (VU_IO_TIMEOUT_MS % 1000) * 1000};
	if (setsockopt(f->vf_sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(f->vf_sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		snprintf(err, errlen, "socket timeouts: %s", strerror(errno));
		goto fail;
	}
	if (connect(f->vf_sock, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(err, errlen, "connect %s: %s", path, strerror(errno));
		goto fail;
	}
	return 0;
fail:
	vu_close(f);
	return -1;
}

static int set_mem_table(struct vu_front *f, char *err, size_t errlen)
{
	uint8_t p[8 + 32];
	memset(p, 0, sizeof(p));
	le32_put(p, 1);					  /* nregions; 4 bytes padding follow */
	le64_put(p + 8, 0);				  /* guest_phys_addr */
	le64_put(p + 16, f->vf_mem_size);		  /* memory_size */
	le64_put(p + 24, (uint64_t)(uintptr_t)f->vf_mem); /* userspace_addr */
	le64_put(p + 32, 0);				  /* mmap_offset */
	return set_msg(f, VU_SET_MEM_TABLE, p, sizeof(p), f->vf_memfd, err, errlen);
}

static int get_config(struct vu_front *f, uint32_t len, char *err, size_t errlen)
{
	uint8_t p[VU_CONFIG_HDR + VU_CONFIG_MAX];
	if (len > VU_CONFIG_MAX)
		RETURN_ERR(-1, "GET_CONFIG: %u bytes asked, at most %u", len, VU_CONFIG_MAX);
	memset(p, 0, sizeof(p));
	le32_put(p, 0);	      /* offset */
	le32_put(p + 4, len); /* size */
	le32_put(p + 8, 0);   /* flags */
	uint32_t got;
	if (send_msg(f, VU_GET_CONFIG, 0, p, VU_CONFIG_HDR + len, -1, err, errlen) ||
	    recv_reply(f, VU_GET_CONFIG, p, 0, sizeof(p), &got, err, errlen))
		return -1;
	/* A back end that fails GET_CONFIG answers with an empty payload. */
	if (got != VU_CONFIG_HDR + len)
		RETURN_ERR(-1, "GET_CONFIG: back end failed (reply of %u bytes for %u asked)", got,
			   len);
	if (le32_get(p) != 0 || le32_get(p + 4) != len)
		RETURN_ERR(-1, "GET_CONFIG: reply is for offset %u size %u", le32_get(p),
			   le32_get(p + 4));
	memcpy(f->vf_config, p + VU_CONFIG_HDR, len);
	f->vf_config_len = len;
	return 0;
}

int vu_init(struct vu_front *f, uint64_t want, uint32_t config_len, char *err, size_t errlen)
{
	if (set_msg(f, VU_SET_OWNER, NULL, 0, -1, err, errlen) ||
	    get_u64(f, VU_GET_FEATURES, &f->vf_features, err, errlen))
		return -1;
	if (!(f->vf_features & (1ull << VIRTIO_F_VERSION_1)))
		RETURN_ERR(-1,
			   "GET_FEATURES: back end does not offer VIRTIO_F_VERSION_1 "
			   "(features 0x%llx)",
			   (unsigned long long)f->vf_features);
	uint64_t proto_bit = 1ull << VHOST_USER_F_PROTOCOL_FEATURES;
	if (f->vf_features & proto_bit) {
		uint64_t offered;
		if (get_u64(f, VU_GET_PROTOCOL_FEATURES, &offered, err, errlen))
			return -1;
		uint64_t proto =
		    offered &
		    (1ull << VU_PROTOCOL_F_MQ | 1ull << VU_PROTOCOL_F_REPLY_ACK |
		     1ull << VU_PROTOCOL_F_CONFIG | 1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
		/* REPLY_ACK is only in force once this message has been processed. */
		if (set_u64(f, VU_SET_PROTOCOL_FEATURES, proto, -1, err, errlen))
			return -1;
		f->vf_proto = proto;
	}
	if (f->vf_proto & (1ull << VU_PROTOCOL_F_MQ)) {
		uint64_t n;
		if (get_u64(f, VU_GET_QUEUE_NUM, &n, err, errlen))
			return -1;
		if (n == 0 || n > 1024)
			RETURN_ERR(-1, "GET_QUEUE_NUM: implausible queue count %llu",
				   (unsigned long long)n);
		f->vf_max_queues = (unsigned)n;
	}
	if (config_len && (f->vf_proto & (1ull << VU_PROTOCOL_F_CONFIG)) &&
	    get_config(f, config_len, err, errlen))
		return -1;
	f->vf_acked = f->vf_features & (want | 1ull << VIRTIO_F_VERSION_1 | proto_bit);
	if (set_u64(f, VU_SET_FEATURES, f->vf_acked, -1, err, errlen))
		return -1;
	return set_mem_table(f, err, errlen);
}

int vu_vring_start(struct vu_front *f, unsigned idx, unsigned num, uint64_t desc, uint64_t avail,
		   uint64_t used, struct vu_vring *vr, char *err, size_t errlen)
{
	vr->vr_kick = vr->vr_call = -1;
	if (idx >= f->vf_max_queues)
		RETURN_ERR(-1, "queue %u: back end has only %u queue(s)", idx, f->vf_max_queues);
	if (set_state(f, VU_SET_VRING_NUM, idx, num, err, errlen))
		return -1;
	uint8_t p[40];
	le32_put(p, idx);
	le32_put(p + 4, 0); /* flags: no dirty logging */
	le64_put(p + 8, (uint64_t)(uintptr_t)vu_ptr(f, desc));
	le64_put(p + 16, (uint64_t)(uintptr_t)vu_ptr(f, used));
	le64_put(p + 24, (uint64_t)(uintptr_t)vu_ptr(f, avail));
	le64_put(p + 32, 0); /* log_guest_addr */
	if (set_msg(f, VU_SET_VRING_ADDR, p, sizeof(p), -1, err, errlen) ||
	    set_state(f, VU_SET_VRING_BASE, idx, 0, err, errlen))
		return -1;
	vr->vr_call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	vr->vr_kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vr->vr_call < 0 || vr->vr_kick < 0) {
		snprintf(err, errlen, "queue %u: eventfd: %s", idx, strerror(errno));
		goto fail;
	}
	/* The fd messages carry the queue index in bits 0-7; bit 8 clear means an fd is sent. */
	if (set_u64(f, VU_SET_VRING_CALL, idx, vr->vr_call, err, errlen) ||
	    set_u64(f, VU_SET_VRING_KICK, idx, vr->vr_kick, err, errlen))
		goto fail;
	/* Rings start disabled only when PROTOCOL_FEATURES is negotiated. */
	if ((f->vf_acked & (1ull << VHOST_USER_F_PROTOCOL_FEATURES)) &&
	    set_state(f, VU_SET_VRING_ENABLE, idx, 1, err, errlen))
		goto fail;
	return 0;
fail:
	if (vr->vr_call >= 0)
		close(vr->vr_call);
	if (vr->vr_kick >= 0)
		close(vr->vr_kick);
	vr->vr_kick = vr->vr_call = -1;
	return -1;
}

int vu_max_mem_slots(struct vu_front *f, uint64_t *n, char *err, size_t errlen)
{
	if (!(f->vf_proto & (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		RETURN_ERR(-1, "CONFIGURE_MEM_SLOTS is not negotiated");
	return get_u64(f, VU_GET_MAX_MEM_SLOTS, n, err, errlen);
}

static int mem_reg(struct vu_front *f, uint32_t req, uint64_t gpa, uint64_t size, char *err,
		   size_t errlen)
{
	if (!(f->vf_proto & (1ull << VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)))
		RETURN_ERR(-1, "%s: CONFIGURE_MEM_SLOTS is not negotiated", req_name(req));
	if (gpa > f->vf_mem_size || size > f->vf_mem_size - gpa)
		RETURN_ERR(-1, "%s: 0x%llx+0x%llx outside guest memory", req_name(req),
			   (unsigned long long)gpa, (unsigned long long)size);
	uint8_t p[40];
	le64_put(p, 0); /* padding */
	le64_put(p + 8, gpa);
	le64_put(p + 16, size);
	le64_put(p + 24, (uint64_t)(uintptr_t)(f->vf_mem + gpa));
	le64_put(p + 32, gpa); /* mmap_offset: the memfd is guest memory from gpa 0 */
	return set_msg(f, req, p, sizeof(p), req == VU_ADD_MEM_REG ? f->vf_memfd : -1, err, errlen);
}

int vu_mem_add(struct vu_front *f, uint64_t gpa, uint64_t size, char *err, size_t errlen)
{
	return mem_reg(f, VU_ADD_MEM_REG, gpa, size, err, errlen);
}

int vu_mem_rem(struct vu_front *f, uint64_t gpa, uint64_t size, char *err, size_t errlen)
{
	return mem_reg(f, VU_REM_MEM_REG, gpa, size, err, errlen);
}

uint64_t vu_alloc(struct vu_front *f, uint64_t size, uint64_t align)
{
	uint64_t at = (f->vf_mem_next + align - 1) & ~(align - 1);
	if (at < f->vf_mem_next || at > f->vf_mem_size || size > f->vf_mem_size - at)
		return UINT64_MAX;
	f->vf_mem_next = at + size;
	return at;
}

void *vu_ptr(const struct vu_front *f, uint64_t gpa)
{
	return f->vf_mem + gpa;
}

void vu_close(struct vu_front *f)
{
	if (f->vf_sock >= 0)
		close(f->vf_sock);
	if (f->vf_mem)
		munmap(f->vf_mem, f->vf_mem_size);
	if (f->vf_memfd >= 0)
		close(f->vf_memfd);
	f->vf_sock = f->vf_memfd = -1;
	f->vf_mem = NULL;
}
