/* The attack driver's VMs: vhost-user connection, hello, rings, packets (tvm.h). */
#include "tvm.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "lib/enclave_wire.h"

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t mem_for(unsigned num)
{
	/* rx and tx slots, rings, a spare MiB for the tests' own chains */
	return (2 * (uint64_t)num * SLOT + (3u << 20) + 4095) & ~4095ull;
}

int tvm_hello(struct tvm *v, const char *path, uint64_t cid, uint64_t mem)
{
	return tvm_hello_flags(v, path, cid, mem, 0);
}

void tvm_hello_fill(struct enw_hello *h, uint64_t cid, uint32_t flags)
{
	*h = (struct enw_hello){.version = ENW_VERSION, .flags = flags, .cid = cid, .slot_uid = 1};
	snprintf(h->module_id, sizeof(h->module_id), "i-attack-enc%016llx",
		 (unsigned long long)cid);
}

int tvm_hello_flags(struct tvm *v, const char *path, uint64_t cid, uint64_t mem, uint32_t flags)
{
	char err[256];
	memset(v, 0, sizeof(*v));
	v->cid = cid;
	if (vu_open(&v->f, path, mem, err, sizeof(err)) < 0)
		FAIL("%s", err);
	struct enw_hello h;
	tvm_hello_fill(&h, cid, flags);
	return enw_hello_send(v->f.vf_sock, &h, 5000);
}

static void ring_setup(struct tvm *v, unsigned q, unsigned num)
{
	char err[256];
	struct tring *r = &v->q[q];
	r->num = num;
	r->desc = vu_alloc(&v->f, vr_desc_bytes(num), 16);
	r->avail = vu_alloc(&v->f, vr_avail_bytes(num), 2);
	r->used = vu_alloc(&v->f, vr_used_bytes(num), 4);
	r->bufs = q == Q_EVENT ? vu_alloc(&v->f, 8 * (uint64_t)num, 8)
			       : vu_alloc(&v->f, (uint64_t)num * SLOT, 4096);
	if (r->desc == UINT64_MAX || r->avail == UINT64_MAX || r->used == UINT64_MAX ||
	    r->bufs == UINT64_MAX)
		FAIL("cid %llu: out of guest memory", (unsigned long long)v->cid);
	if (vu_vring_start(&v->f, q, num, r->desc, r->avail, r->used, &r->vr, err, sizeof(err)))
		FAIL("cid %llu queue %u: %s", (unsigned long long)v->cid, q, err);
}

void tvm_setup(struct tvm *v, unsigned num)
{
	char err[256];
	v->num = num;
	if (vu_init(&v->f, 0, 8, err, sizeof(err)) < 0)
		FAIL("cid %llu: %s", (unsigned long long)v->cid, err);
	uint64_t cfg = 0;
	memcpy(&cfg, v->f.vf_config, 8);
	EXPECT(cfg == v->cid, "guest_cid %llu, want %llu", (unsigned long long)cfg,
	       (unsigned long long)v->cid);
	for (unsigned q = 0; q < 3; q++)
		ring_setup(v, q, num);
}

void tvm_open(struct tvm *v, const char *path, uint64_t cid, unsigned num)
{
	tvm_open_flags(v, path, cid, num, 0);
}

void tvm_open_flags(struct tvm *v, const char *path, uint64_t cid, unsigned num, uint32_t flags)
{
	char err[256];
	if (cid == VSOCK_PARENT_CID) {
		memset(v, 0, sizeof(*v));
		v->cid = cid;
		if (vu_open(&v->f, path, mem_for(num), err, sizeof(err)) < 0)
			FAIL("%s", err);
	} else {
		int st = tvm_hello_flags(v, path, cid, mem_for(num), flags);
		EXPECT(st == 0, "hello for cid %llu: %d", (unsigned long long)cid, st);
	}
	tvm_setup(v, num);
}

void tvm_close(struct tvm *v)
{
	for (unsigned q = 0; q < 3; q++) {
		if (v->q[q].vr.vr_kick > 0)
			close(v->q[q].vr.vr_kick);
		if (v->q[q].vr.vr_call > 0)
			close(v->q[q].vr.vr_call);
	}
	vu_close(&v->f);
	memset(v, 0, sizeof(*v));
}

static struct virtq_desc *desc_of(struct tvm *v, unsigned q)
{
	return vu_ptr(&v->f, v->q[q].desc);
}
static struct virtq_avail *avail_of(struct tvm *v, unsigned q)
{
	return vu_ptr(&v->f, v->q[q].avail);
}
static struct virtq_used *used_of(struct tvm *v, unsigned q)
{
	return vu_ptr(&v->f, v->q[q].used);
}

void kick(struct tvm *v, unsigned q)
{
	eventfd_write(v->q[q].vr.vr_kick, 1);
}

static void publish(struct tvm *v, unsigned q, uint16_t head)
{
	struct tring *r = &v->q[q];
	struct virtq_avail *a = avail_of(v, q);
	a->ring[r->avail_idx % r->num] = head;
	r->avail_idx++;
	__atomic_store_n(&a->idx, r->avail_idx, __ATOMIC_RELEASE);
}

void rx_post(struct tvm *v, unsigned n, uint32_t len)
{
	struct tring *r = &v->q[Q_RX];
	for (unsigned i = 0; i < n; i++) {
		if ((uint16_t)(r->avail_idx - r->used_seen) >= r->num)
			break;
		uint16_t d = r->avail_idx % r->num;
		desc_of(v, Q_RX)[d] = (struct virtq_desc){
		    .addr = r->bufs + (uint64_t)d * SLOT, .len = len, .flags = VRING_DESC_F_WRITE};
		publish(v, Q_RX, d);
	}
	kick(v, Q_RX);
}

int rx_get(struct tvm *v, struct vsock_hdr *h, uint8_t *p, int timeout_ms)
{
	struct tring *r = &v->q[Q_RX];
	struct virtq_used *u = used_of(v, Q_RX);
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) == r->used_seen) {
		if (now_ms() >= end)
			return 0;
		usleep(200);
	}
	struct virtq_used_elem e = u->ring[r->used_seen % r->num];
	r->used_seen++;
	if (e.len == 0) { /* a buffer the card handed back unused (too small) */
		rx_post(v, 1, desc_of(v, Q_RX)[e.id % r->num].len);
		return rx_get(v, h, p, timeout_ms);
	}
	EXPECT(e.id < r->num && e.len >= VSOCK_HDR_LEN && e.len <= SLOT, "rx used id %u len %u",
	       e.id, e.len);
	const uint8_t *b = vu_ptr(&v->f, r->bufs + (uint64_t)e.id * SLOT);
	vsock_hdr_get(b, h);
	EXPECT(h->len == e.len - VSOCK_HDR_LEN, "rx header len %u, used len %u", h->len, e.len);
	if (p)
		memcpy(p, b + VSOCK_HDR_LEN, h->len);
	/* give the slot back at once, same size as before */
	uint32_t len = desc_of(v, Q_RX)[e.id].len;
	rx_post(v, 1, len);
	return 1;
}

int rx_wait(struct tvm *v, uint16_t op, uint32_t dport, struct vsock_hdr *h, uint8_t *p,
	    int timeout_ms, unsigned *skipped)
{
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		uint64_t t = now_ms();
		if (t >= end || !rx_get(v, h, p, (int)(end - t)))
			return 0;
		if (h->op == op && h->dst_port == dport)
			return 1;
		if (skipped)
			++*skipped;
	}
}

bool tx_send(struct tvm *v, const struct vsock_hdr *h, const void *p, uint32_t len, int timeout_ms)
{
	struct tring *r = &v->q[Q_TX];
	struct virtq_used *u = used_of(v, Q_TX);
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while ((uint16_t)(r->avail_idx - __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE)) >= r->num) {
		if (now_ms() >= end)
			return false;
		usleep(200);
	}
	uint16_t d = r->avail_idx % r->num;
	uint8_t *b = vu_ptr(&v->f, r->bufs + (uint64_t)d * SLOT);
	vsock_hdr_put(b, h);
	if (len)
		memcpy(b + VSOCK_HDR_LEN, p, len);
	desc_of(v, Q_TX)[d] =
	    (struct virtq_desc){.addr = r->bufs + (uint64_t)d * SLOT, .len = VSOCK_HDR_LEN + len};
	publish(v, Q_TX, d);
	kick(v, Q_TX);
	return true;
}

void tx_raw(struct tvm *v, const struct virtq_desc *d, unsigned n)
{
	EXPECT(tx_drained(v, 2000), "tx ring busy before a raw chain");
	memcpy(desc_of(v, Q_TX), d, n * sizeof(*d));
	publish(v, Q_TX, 0);
	kick(v, Q_TX);
}

bool tx_drained(struct tvm *v, int timeout_ms)
{
	struct virtq_used *u = used_of(v, Q_TX);
	uint64_t end = now_ms() + (uint64_t)timeout_ms;
	while (__atomic_load_n(&u->idx, __ATOMIC_ACQUIRE) != v->q[Q_TX].avail_idx) {
		if (now_ms() >= end)
			return false;
		usleep(200);
	}
	return true;
}

struct vsock_hdr hdr(uint64_t src, uint32_t sport, uint64_t dst, uint32_t dport, uint16_t op,
		     uint32_t len)
{
	return (struct vsock_hdr){.src_cid = src,
				  .dst_cid = dst,
				  .src_port = sport,
				  .dst_port = dport,
				  .len = len,
				  .type = VSOCK_TYPE_STREAM,
				  .op = op,
				  .buf_alloc = 262144};
}
