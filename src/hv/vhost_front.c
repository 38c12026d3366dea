/* vhost-user frontend: negotiation, queue start and stop (framing: src/lib/vu_wire.c). */
#include "hv/vhost_front.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hv/mem_table.h"
#include "lib/enclave_wire.h"
#include "lib/util.h"
#include "lib/vu_wire.h"

#define VU_REPLY_TIMEOUT_MS 5000
/* What this frontend asks for of the protocol features it knows. */
#define VU_PROTO_WANTED                                                                            \
	(VHOST_PROTO_MQ | VHOST_PROTO_REPLY_ACK | VHOST_PROTO_CONFIG | VHOST_PROTO_MEM_SLOTS)

union vu_payload {
	uint64_t u64;
	struct vu_vring_state state;
	struct vu_vring_addr addr;
	struct vu_mem_table mem;
	struct vu_mem_region_single single;
	struct vu_config config;
};

static int send_msg(struct vhost_front *f, uint32_t req, uint32_t flags, const void *p,
		    uint32_t size, const int *fds, unsigned nfds)
{
	return vu_wire_send(f->vf_sock, req, VU_FLAG_VERSION | flags, p, size, fds, nfds);
}

/* Reads the reply to req into p (exactly size bytes). A card that does not answer in
 * VU_REPLY_TIMEOUT_MS is a failed card; a reply with fds is refused. */
static int recv_reply(struct vhost_front *f, uint32_t req, void *p, uint32_t size)
{
	struct vu_wire_hdr h;
	unsigned nfds;
	if (vu_wire_recv(f->vf_sock, &h, p, size, NULL, 0, &nfds, VU_REPLY_TIMEOUT_MS) != 1)
		return -1;
	return h.request == req && (h.flags & VU_FLAG_REPLY) && h.size == size ? 0 : -1;
}

/* A request without a reply of its own; acknowledged when REPLY_ACK is on. */
static int request(struct vhost_front *f, uint32_t req, const void *p, uint32_t size,
		   const int *fds, unsigned nfds)
{
	bool ack = f->vf_protocol & VHOST_PROTO_REPLY_ACK;
	if (send_msg(f, req, ack ? VU_FLAG_NEED_REPLY : 0, p, size, fds, nfds) < 0)
		return -1;
	if (!ack)
		return 0;
	uint64_t status;
	return recv_reply(f, req, &status, sizeof(status)) == 0 && status == 0 ? 0 : -1;
}

static int get_u64(struct vhost_front *f, uint32_t req, uint64_t *v)
{
	if (send_msg(f, req, 0, NULL, 0, NULL, 0) < 0)
		return -1;
	return recv_reply(f, req, v, sizeof(*v));
}

/* Connects to path and runs the set-up handshake; f->vf_sock is the new connection (or
 * -1). Used for the first connection and for reconnecting to a restarted card. */
static int connect_and_negotiate(struct vhost_front *f, const char *path, int fd,
				 const struct guest_mem *m, unsigned config_len, char *err,
				 size_t errlen)
{
	if (fd >= 0) { /* handed over: connected and identified already */
		snprintf(f->vf_path, sizeof(f->vf_path), "fd %d", fd);
		path = f->vf_path;
		f->vf_sock = fd;
	} else {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		if (strlen(path) >= sizeof(a.sun_path))
			RETURN_ERR(-1, "card socket %s: path too long", path);
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		snprintf(f->vf_path, sizeof(f->vf_path), "%s", path);
		f->vf_sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (f->vf_sock < 0 || connect(f->vf_sock, (struct sockaddr *)&a, sizeof(a)) < 0)
			RETURN_ERR(-1, "card socket %s: %s", path, strerror(errno));
	}
	f->vf_mem = m;
	f->vf_config_want = config_len;
	if (f->vf_hello && fd < 0) {
		int st = enw_hello_send(f->vf_sock, f->vf_hello, VU_REPLY_TIMEOUT_MS);
		if (st < 0)
			RETURN_ERR(-1, "card %s: no answer to the enclave hello (%s)", path,
				   strerror(-st));
		if (st > 0)
			RETURN_ERR(-1, "card %s: refused enclave cid %llu: %s", path,
				   (unsigned long long)f->vf_hello->cid, strerror(st));
	}
	if (f->vf_pcrs) {
		int st = enw_pcrs_send(f->vf_sock, f->vf_pcrs, VU_REPLY_TIMEOUT_MS);
		if (st < 0)
			RETURN_ERR(-1, "card %s: no answer to the enclave's PCRs (%s)", path,
				   strerror(-st));
		if (st > 0)
			RETURN_ERR(-1, "card %s: refused the enclave's PCRs: %s", path,
				   strerror(st));
	}
	uint64_t feat;
	if (send_msg(f, VU_SET_OWNER, 0, NULL, 0, NULL, 0) < 0 ||
	    get_u64(f, VU_GET_FEATURES, &feat) < 0)
		RETURN_ERR(-1, "card %s: no answer to GET_FEATURES", path);
	f->vf_features = feat & ~VHOST_F_PROTOCOL_FEATURES;
	f->vf_proto_offered = feat & VHOST_F_PROTOCOL_FEATURES;
	f->vf_queues = 1;
	if (feat & VHOST_F_PROTOCOL_FEATURES) {
		uint64_t proto;
		if (get_u64(f, VU_GET_PROTOCOL_FEATURES, &proto) < 0)
			RETURN_ERR(-1, "card %s: no answer to GET_PROTOCOL_FEATURES", path);
		proto &= VU_PROTO_WANTED;
		if (send_msg(f, VU_SET_PROTOCOL_FEATURES, 0, &proto, sizeof(proto), NULL, 0) < 0)
			RETURN_ERR(-1, "card %s: SET_PROTOCOL_FEATURES failed", path);
		f->vf_protocol = proto;
		uint64_t nq;
		if ((proto & VHOST_PROTO_MQ) && get_u64(f, VU_GET_QUEUE_NUM, &nq) == 0 && nq >= 1)
			f->vf_queues = nq > 64 ? 64 : (unsigned)nq;
		uint64_t slots = VU_MAX_REGIONS;
		if ((proto & VHOST_PROTO_MEM_SLOTS) && get_u64(f, VU_GET_MAX_MEM_SLOTS, &slots) < 0)
			RETURN_ERR(-1, "card %s: no answer to GET_MAX_MEM_SLOTS", path);
		f->vf_max_slots = slots > 4096 ? 4096 : (unsigned)slots;
	}
	if (config_len) {
		if (!(f->vf_protocol & VHOST_PROTO_CONFIG) || config_len > VHOST_CONFIG_MAX)
			RETURN_ERR(-1, "card %s: offers no device configuration (CONFIG)", path);
		union vu_payload p = {.config = {.offset = 0, .size = config_len}};
		uint32_t sz = 12 + config_len;
		if (send_msg(f, VU_GET_CONFIG, 0, &p, sz, NULL, 0) < 0 ||
		    recv_reply(f, VU_GET_CONFIG, &p, sz) < 0 || p.config.size != config_len)
			RETURN_ERR(-1, "card %s: GET_CONFIG failed", path);
		memcpy(f->vf_config, p.config.payload, config_len);
		f->vf_config_len = config_len;
	}
	return 0;
}

/* ADD_MEM_REG (one fd: the memfd) or REM_MEM_REG (no fd) of one region, acknowledged. */
static int region_op(void *ctx, bool add, const struct vu_mem_region *r)
{
	struct vhost_front *f = ctx;
	union vu_payload p = {.single = {.region = *r}};
	int fd = f->vf_mem->gm_fd;
	if (!(f->vf_protocol & VHOST_PROTO_REPLY_ACK))
		return -1; /* the card's answer is what makes the change safe */
	return request(f, add ? VU_ADD_MEM_REG : VU_REM_MEM_REG, &p, sizeof(p.single),
		       add ? &fd : NULL, add ? 1 : 0);
}

/* The whole table (guest memory without its holes): SET_MEM_TABLE with the first
 * VU_MAX_REGIONS regions, ADD_MEM_REG for the others. */
static int send_mem_table(struct vhost_front *f, const struct guest_mem *m, char *err,
			  size_t errlen)
{
	struct vu_mem_region *want;
	int n = mem_table_want(m, &want);
	if (n < 0)
		RETURN_ERR(-1, "card %s: out of memory for its memory table", f->vf_path);
	int r = -1;
	unsigned first = n < VU_MAX_REGIONS ? (unsigned)n : VU_MAX_REGIONS;
	if ((unsigned)n > first &&
	    (!(f->vf_protocol & VHOST_PROTO_MEM_SLOTS) || (unsigned)n > f->vf_max_slots)) {
		snprintf(err, errlen,
			 "card %s: guest memory is %d separate ranges of its memfd, "
			 "the card takes %u",
			 f->vf_path, n,
			 f->vf_protocol & VHOST_PROTO_MEM_SLOTS ? f->vf_max_slots : VU_MAX_REGIONS);
		goto out;
	}
	union vu_payload p = {.mem = {.nregions = first}};
	int fds[VU_MAX_REGIONS];
	for (unsigned i = 0; i < first; i++) {
		p.mem.regions[i] = want[i];
		fds[i] = m->gm_fd;
	}
	uint32_t sz = 8 + first * (uint32_t)sizeof(struct vu_mem_region);
	if (request(f, VU_SET_MEM_TABLE, &p, sz, fds, first) < 0) {
		snprintf(err, errlen, "card %s: SET_MEM_TABLE refused", f->vf_path);
		goto out;
	}
	if (mem_table_set(&f->vf_table, want, first) < 0 ||
	    mem_table_sync(&f->vf_table, want, (unsigned)n, region_op, f) != 0) {
		snprintf(err, errlen, "card %s: ADD_MEM_REG refused", f->vf_path);
		goto out;
	}
	r = 0;
out:
	free(want);
	return r;
}

int vhost_front_sync_mem(struct vhost_front *f, char *err, size_t errlen)
{
	pthread_mutex_lock(&f->vf_lock);
	int r = 0;
	struct vu_mem_region *want = NULL;
	if (f->vf_sock < 0 || !f->vf_mem)
		goto out; /* no card now: a reconnect sends the table as it is then */
	int n = mem_table_want(f->vf_mem, &want);
	if (n < 0) {
		r = -1;
		snprintf(err, errlen, "card %s: out of memory for its memory table", f->vf_path);
	} else if (f->vf_protocol & VHOST_PROTO_MEM_SLOTS) {
		if ((unsigned)n > f->vf_max_slots) {
			r = -1;
			snprintf(err, errlen,
				 "card %s: guest memory would be %d ranges, the card "
				 "takes %u",
				 f->vf_path, n, f->vf_max_slots);
		} else if (mem_table_sync(&f->vf_table, want, (unsigned)n, region_op, f) != 0) {
			r = -1;
			snprintf(err, errlen, "card %s: refused a change of its memory table",
				 f->vf_path);
		}
	} else if ((r = send_mem_table(f, f->vf_mem, err, errlen)) == 0 &&
		   !(f->vf_protocol & VHOST_PROTO_REPLY_ACK)) {
		/* without REPLY_ACK nothing says the card took the new table */
		r = -1;
		snprintf(err, errlen, "card %s: cannot confirm a change of its memory table",
			 f->vf_path);
	}
out:
	free(want);
	pthread_mutex_unlock(&f->vf_lock);
	return r;
}

int vhost_front_set_features(struct vhost_front *f, uint64_t features)
{
	pthread_mutex_lock(&f->vf_lock);
	if (f->vf_proto_offered) /* keeps the protocol features negotiated */
		features |= VHOST_F_PROTOCOL_FEATURES;
	int r = request(f, VU_SET_FEATURES, &features, sizeof(features), NULL, 0);
	pthread_mutex_unlock(&f->vf_lock);
	return r;
}

int vhost_front_start_queue(struct vhost_front *f, unsigned q, unsigned num, uint16_t base,
			    const void *desc, const void *avail, const void *used, int kick_fd,
			    int call_fd, int err_fd)
{
	union vu_payload p;
	int r = -1;
	pthread_mutex_lock(&f->vf_lock);
	p.state.index = q;
	p.state.num = num;
	if (request(f, VU_SET_VRING_NUM, &p, sizeof(p.state), NULL, 0) < 0)
		goto out;
	memset(&p, 0, sizeof(p));
	p.addr.index = q;
	p.addr.desc = (uint64_t)(uintptr_t)desc;
	p.addr.used = (uint64_t)(uintptr_t)used;
	p.addr.avail = (uint64_t)(uintptr_t)avail;
	if (request(f, VU_SET_VRING_ADDR, &p, sizeof(p.addr), NULL, 0) < 0)
		goto out;
	p.state.index = q;
	p.state.num = base;
	if (request(f, VU_SET_VRING_BASE, &p, sizeof(p.state), NULL, 0) < 0)
		goto out;
	uint64_t idx = q;
	if (request(f, VU_SET_VRING_ERR, &idx, sizeof(idx), &err_fd, 1) < 0 ||
	    request(f, VU_SET_VRING_CALL, &idx, sizeof(idx), &call_fd, 1) < 0 ||
	    request(f, VU_SET_VRING_KICK, &idx, sizeof(idx), &kick_fd, 1) < 0)
		goto out;
	if (f->vf_protocol) {
		p.state.index = q;
		p.state.num = 1;
		if (request(f, VU_SET_VRING_ENABLE, &p, sizeof(p.state), NULL, 0) < 0)
			goto out;
	}
	r = 0;
out:
	pthread_mutex_unlock(&f->vf_lock);
	return r;
}

int vhost_front_stop_queue(struct vhost_front *f, unsigned q)
{
	union vu_payload p = {.state = {.index = q}};
	pthread_mutex_lock(&f->vf_lock);
	int r = send_msg(f, VU_GET_VRING_BASE, 0, &p, sizeof(p.state), NULL, 0);
	if (r == 0)
		r = recv_reply(f, VU_GET_VRING_BASE, &p, sizeof(p.state));
	pthread_mutex_unlock(&f->vf_lock);
	return r;
}

int vhost_front_set_config(struct vhost_front *f, unsigned off, const uint8_t *data, unsigned size)
{
	if (off > f->vf_config_len || size > f->vf_config_len - off)
		return -1;
	union vu_payload p = {.config = {.offset = off, .size = size}};
	memcpy(p.config.payload, data, size);
	pthread_mutex_lock(&f->vf_lock);
	int r = request(f, VU_SET_CONFIG, &p, 12 + size, NULL, 0);
	if (r == 0)
		memcpy(f->vf_config + off, data, size);
	pthread_mutex_unlock(&f->vf_lock);
	return r;
}

int vhost_front_connect(struct vhost_front *f, const struct vhost_open *o,
			const struct guest_mem *m, unsigned config_len, char *err, size_t errlen)
{
	memset(f, 0, sizeof(*f));
	f->vf_sock = -1;
	f->vf_hello = o->hello;
	f->vf_pcrs = o->pcrs;
	f->vf_handed = o->fd >= 0;
	pthread_mutex_init(&f->vf_lock, NULL);
	int r = connect_and_negotiate(f, o->path, o->fd, m, config_len, err, errlen);
	if (r == 0)
		r = send_mem_table(f, m, err, errlen);
	if (r < 0 && f->vf_sock >= 0) {
		close(f->vf_sock);
		f->vf_sock = -1;
	}
	return r;
}

void vhost_front_disconnect(struct vhost_front *f)
{
	pthread_mutex_lock(&f->vf_lock);
	if (f->vf_sock >= 0)
		close(f->vf_sock);
	f->vf_sock = -1;
	mem_table_free(&f->vf_table); /* the card maps nothing now; a reconnect sends it all */
	pthread_mutex_unlock(&f->vf_lock);
}

int vhost_front_reconnect(struct vhost_front *f, char *err, size_t errlen)
{
	pthread_mutex_lock(&f->vf_lock);
	/* What the device was built with; the card must come back the same. */
	uint64_t features = f->vf_features, protocol = f->vf_protocol;
	unsigned queues = f->vf_queues;
	uint8_t config[VHOST_CONFIG_MAX];
	memcpy(config, f->vf_config, sizeof(config));
	char path[sizeof(f->vf_path)];
	snprintf(path, sizeof(path), "%s", f->vf_path);
	if (f->vf_handed) {
		pthread_mutex_unlock(&f->vf_lock);
		RETURN_ERR(-1, "card %s: a connection handed over cannot be made again", path);
	}
	int r = connect_and_negotiate(f, path, -1, f->vf_mem, f->vf_config_want, err, errlen);
	if (r == 0 &&
	    (f->vf_features != features || f->vf_queues != queues || f->vf_protocol != protocol)) {
		snprintf(err, errlen, "card %s: came back with other features or queues", path);
		r = -1;
	}
	if (r == 0 && memcmp(f->vf_config, config, f->vf_config_len) != 0) {
		snprintf(err, errlen, "card %s: came back with another device configuration", path);
		r = -1;
	}
	if (r == 0)
		r = send_mem_table(f, f->vf_mem, err, errlen);
	if (r < 0) {
		if (f->vf_sock >= 0)
			close(f->vf_sock);
		f->vf_sock = -1;
		f->vf_features = features;
		f->vf_queues = queues;
		f->vf_protocol = protocol;
		memcpy(f->vf_config, config, sizeof(config));
	}
	pthread_mutex_unlock(&f->vf_lock);
	return r;
}
