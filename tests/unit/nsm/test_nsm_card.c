/* Unit tests for nitro-card-nsm's parts: the request path (src/cards/nsm/queue.c) on a real
 * split ring in guest memory with PROT_NONE guard pages on both sides, served through the
 * card library's queue API exactly as the card does; the hello check (hello.c); and the
 * attestation chain handed over on an fd (src/enclave/chain_fd.c).
 *
 * The ring is driven as Linux's drivers/misc/nsm.c drives it: a request chain (one
 * readable buffer) and a reply chain (one writable buffer of 0x3000), answered in that
 * order. Then hostile chains: a reply with no request, two requests in a row, a reply
 * buffer too small, a request over 0x1000 bytes, garbage, an empty chain, a request split
 * over kicks, a descriptor loop and a buffer outside guest memory (the queue fails, the
 * error fd is signalled, nothing is touched), a request pending when the queue stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cards/lib/vhost_user.h"
#include "cards/nsm/hello.h"
#include "cards/nsm/queue.h"
#include "enclave/chain_fd.h"
#include "enclave/pki.h"
#include "lib/util.h"

#include "../testlib/ringmem.h"

#define BASE 0x100000ull /* guest-physical address of the region */
#define UVA 0x7f3300000000ull
#define MEMSZ (256u * 1024)
#define QSZ 64u
#define DESC (BASE + RINGMEM_DESC)
#define AVAIL (BASE + RINGMEM_AVAIL)
#define USED (BASE + RINGMEM_USED)
#define REQ (BASE + 0x4000)  /* request buffers */
#define RESP (BASE + 0x8000) /* reply buffers: 0x3000 each */
#define RESP2 (BASE + 0xc000)

static const uint8_t get_random[] = {0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd', 'o', 'm'};
/* What the driver's hwrng compares byte for byte, then a bstr(256) header. */
static const uint8_t random_prefix[] = {0xa1, 0x69, 'G', 'e', 't', 'R', 'a', 'n', 'd',	'o',  'm',
					0xa1, 0x66, 'r', 'a', 'n', 'd', 'o', 'm', 0x59, 0x01, 0x00};

static struct pki_cert root, host, leaf;
static char statedir[] = "/tmp/nsm-card-test-XXXXXX";

struct fx {
	struct ringmem rm;
	struct vu_dev dev;
	struct nsm_state st;
	struct nsm_queue q;
	int call, errfd;
	uint16_t next_desc;
};

static uint64_t fixed_now(void *ctx)
{
	(void)ctx;
	return 1700000000000ull;
}

static int fixed_random(void *ctx, uint8_t *buf, size_t len)
{
	(void)ctx;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	char err[256];
	if (!mkdtemp(statedir) || pki_chain_open(statedir, &root, &host, err, sizeof(err)) ||
	    pki_leaf(&host, "i-0123456789abcdef0-enc0000000000000010", 3600, &leaf, err,
		     sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	pki_cert_free(&leaf);
	pki_cert_free(&host);
	pki_cert_free(&root);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", statedir);
	return system(cmd) == 0 ? 0 : -1;
}

static const struct vu_ops ops = {.vo_num_queues = 1};

static int setup(void **state)
{
	char err[256];
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	if (ringmem_map(&f->rm, BASE, MEMSZ, QSZ))
		return -1;
	if (vu_dev_init(&f->dev, &ops, f, NULL, err, sizeof(err)) ||
	    gm_add_borrowed(&f->dev.vd_mem, BASE, UVA, f->rm.mem, MEMSZ, err, sizeof(err)))
		return -1;
	struct vu_queue *vq = &f->dev.vd_queues[0];
	vq->vq_num = QSZ;
	vq->vq_addr_set = true;
	vq->vq_desc_addr = UVA + (DESC - BASE);
	vq->vq_avail_addr = UVA + (AVAIL - BASE);
	vq->vq_used_addr = UVA + (USED - BASE);
	vq->vq_enabled = true;
	vq->vq_call = f->call = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	vq->vq_err = f->errfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (vu_queue_start(&f->dev, 0, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	const uint8_t *boot[NSM_LOCKED_AT_BOOT] = {0};
	struct nsm_ops o = {.sign = pki_es384_sign,
			    .sign_ctx = leaf.key,
			    .random = fixed_random,
			    .now_ms = fixed_now};
	nsm_init(&f->st, "i-0123456789abcdef0-enc0000000000000010", boot, &o);
	f->st.cert = leaf.der;
	f->st.cert_len = leaf.der_len;
	f->st.cabundle[0] = root.der;
	f->st.cabundle_len[0] = root.der_len;
	f->st.cabundle[1] = host.der;
	f->st.cabundle_len[1] = host.der_len;
	f->st.ncabundle = 2;
	nsm_queue_init(&f->q, &f->st);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	vu_dev_fini(&f->dev); /* closes call and error fds */
	ringmem_unmap(&f->rm);
	free(f);
	return 0;
}

/* A chain of one descriptor; returns its head. */
static uint16_t one(struct fx *f, uint64_t gpa, uint32_t len, bool write)
{
	uint16_t i = f->next_desc++ % QSZ;
	f->rm.desc[i] = (struct virtq_desc){
	    .addr = gpa, .len = len, .flags = write ? VRING_DESC_F_WRITE : 0, .next = 0};
	return i;
}

/* The driver's request: the request chain, then the reply chain of 0x3000 bytes. */
static void driver_request(struct fx *f, const void *req, size_t len, uint64_t resp, uint16_t *rh,
			   uint16_t *wh)
{
	memcpy(ringmem_host(&f->rm, REQ), req, len);
	memset(ringmem_host(&f->rm, resp), 0xee, NSM_RESPONSE_MAX);
	*rh = one(f, REQ, (uint32_t)len, false);
	*wh = one(f, resp, NSM_RESPONSE_MAX, true);
	ringmem_make_avail(&f->rm, *rh);
	ringmem_make_avail(&f->rm, *wh);
}

static struct virtq_used_elem used_at(struct fx *f, unsigned i)
{
	return f->rm.used->ring[i % QSZ];
}

static bool signalled(int efd)
{
	eventfd_t v;
	return eventfd_read(efd, &v) == 0 && v > 0;
}

static void kick(struct fx *f)
{
	nsm_queue_kick(&f->q, &f->dev, 0);
}

static void test_driver_get_random(void **state)
{
	struct fx *f = *state;
	uint16_t rh, wh;
	driver_request(f, get_random, sizeof(get_random), RESP, &rh, &wh);
	kick(f);
	assert_int_equal(f->rm.used->idx, 2);
	/* the request chain comes back first, with nothing written; then the reply */
	assert_int_equal(used_at(f, 0).id, rh);
	assert_int_equal(used_at(f, 0).len, 0);
	assert_int_equal(used_at(f, 1).id, wh);
	assert_int_equal(used_at(f, 1).len, sizeof(random_prefix) + 256);
	assert_memory_equal(ringmem_host(&f->rm, RESP), random_prefix, sizeof(random_prefix));
	uint8_t *r = ringmem_host(&f->rm, RESP);
	assert_int_equal(r[sizeof(random_prefix)], 1);		/* fixed_random's bytes */
	assert_int_equal(r[sizeof(random_prefix) + 256], 0xee); /* nothing written past it */
	assert_true(signalled(f->call));
	assert_false(signalled(f->errfd));
	assert_int_equal(f->q.nq_requests, 1);
	assert_int_equal(f->q.nq_unpaired, 0);
	/* and again: the ring goes on */
	driver_request(f, get_random, sizeof(get_random), RESP2, &rh, &wh);
	kick(f);
	assert_int_equal(f->rm.used->idx, 4);
	assert_int_equal(used_at(f, 3).id, wh);
	assert_memory_equal(ringmem_host(&f->rm, RESP2), random_prefix, sizeof(random_prefix));
}

static void test_request_split_over_kicks(void **state)
{
	struct fx *f = *state;
	memcpy(ringmem_host(&f->rm, REQ), get_random, sizeof(get_random));
	uint16_t rh = one(f, REQ, sizeof(get_random), false);
	ringmem_make_avail(&f->rm, rh);
	kick(f); /* the reply chain is not there yet: nothing comes back */
	assert_int_equal(f->rm.used->idx, 0);
	assert_true(f->q.nq_pending);
	uint16_t wh = one(f, RESP, NSM_RESPONSE_MAX, true);
	ringmem_make_avail(&f->rm, wh);
	kick(f);
	assert_int_equal(f->rm.used->idx, 2);
	assert_int_equal(used_at(f, 0).id, rh);
	assert_int_equal(used_at(f, 1).id, wh);
	assert_memory_equal(ringmem_host(&f->rm, RESP), random_prefix, sizeof(random_prefix));
}

static void test_one_chain_request(void **state)
{
	struct fx *f = *state;
	/* {"DescribePCR": {"index": 16}} and its reply buffer in one chain */
	static const uint8_t req[] = {0xa1, 0x6b, 'D',	'e',  's', 'c', 'r', 'i', 'b', 'e', 'P',
				      'C',  'R',  0xa1, 0x65, 'i', 'n', 'd', 'e', 'x', 0x10};
	memcpy(ringmem_host(&f->rm, REQ), req, sizeof(req));
	f->rm.desc[0] = (struct virtq_desc){REQ, sizeof(req), VRING_DESC_F_NEXT, 1};
	f->rm.desc[1] = (struct virtq_desc){RESP, 0x100, VRING_DESC_F_WRITE, 0};
	ringmem_make_avail(&f->rm, 0);
	kick(f);
	assert_int_equal(f->rm.used->idx, 1);
	assert_int_equal(used_at(f, 0).id, 0);
	/* {"DescribePCR": {"lock": false, "data": 48 zero bytes}} */
	static const uint8_t pre[] = {0xa1, 0x6b, 'D', 'e',  's',  'c', 'r', 'i', 'b', 'e',
				      'P',  'C',  'R', 0xa2, 0x64, 'l', 'o', 'c', 'k', 0xf4};
	assert_int_equal(used_at(f, 0).len, sizeof(pre) + 5 + 2 + 48);
	assert_memory_equal(ringmem_host(&f->rm, RESP), pre, sizeof(pre));
}

static void test_reply_without_request(void **state)
{
	struct fx *f = *state;
	memset(ringmem_host(&f->rm, RESP), 0xee, 16);
	uint16_t wh = one(f, RESP, NSM_RESPONSE_MAX, true);
	ringmem_make_avail(&f->rm, wh);
	kick(f);
	assert_int_equal(f->rm.used->idx, 1);
	assert_int_equal(used_at(f, 0).id, wh);
	assert_int_equal(used_at(f, 0).len, 0);
	assert_int_equal(((uint8_t *)ringmem_host(&f->rm, RESP))[0], 0xee);
	assert_int_equal(f->q.nq_unpaired, 1);
	assert_false(signalled(f->errfd));
}

static void test_two_requests_in_a_row(void **state)
{
	struct fx *f = *state;
	memcpy(ringmem_host(&f->rm, REQ), "garbage", 7);
	memcpy(ringmem_host(&f->rm, REQ + 0x100), get_random, sizeof(get_random));
	uint16_t r1 = one(f, REQ, 7, false);
	uint16_t r2 = one(f, REQ + 0x100, sizeof(get_random), false);
	uint16_t wh = one(f, RESP, NSM_RESPONSE_MAX, true);
	ringmem_make_avail(&f->rm, r1);
	ringmem_make_avail(&f->rm, r2);
	ringmem_make_avail(&f->rm, wh);
	kick(f);
	/* the first request is handed back unanswered; the second gets the reply buffer */
	assert_int_equal(f->rm.used->idx, 3);
	assert_int_equal(used_at(f, 0).id, r1);
	assert_int_equal(used_at(f, 0).len, 0);
	assert_int_equal(used_at(f, 1).id, r2);
	assert_int_equal(used_at(f, 2).id, wh);
	assert_memory_equal(ringmem_host(&f->rm, RESP), random_prefix, sizeof(random_prefix));
	assert_int_equal(f->q.nq_unpaired, 1);
}

/* {"Error": code} as nsm.c writes it */
static void expect_error(struct fx *f, unsigned i, uint64_t at, const char *code)
{
	uint8_t want[64] = {0xa1, 0x65, 'E', 'r', 'r', 'o', 'r'};
	size_t n = strlen(code);
	want[7] = (uint8_t)(0x60 + n);
	memcpy(want + 8, code, n);
	assert_int_equal(used_at(f, i).len, 8 + n);
	assert_memory_equal(ringmem_host(&f->rm, at), want, 8 + n);
}

static void test_garbage_and_oversized(void **state)
{
	struct fx *f = *state;
	uint16_t rh, wh;
	driver_request(f, "\xff\xff\x00", 3, RESP, &rh, &wh);
	kick(f);
	expect_error(f, 1, RESP, "InvalidOperation");
	/* 0x1001 bytes over two descriptors: InputTooLarge, nothing read past the copy */
	memset(ringmem_host(&f->rm, REQ), 0x41, 0x1001);
	f->rm.desc[5] = (struct virtq_desc){REQ, 0x1000, VRING_DESC_F_NEXT, 6};
	f->rm.desc[6] = (struct virtq_desc){REQ + 0x1000, 1, 0, 0};
	f->rm.desc[7] = (struct virtq_desc){RESP2, NSM_RESPONSE_MAX, VRING_DESC_F_WRITE, 0};
	ringmem_make_avail(&f->rm, 5);
	ringmem_make_avail(&f->rm, 7);
	kick(f);
	assert_int_equal(f->rm.used->idx, 4);
	expect_error(f, 3, RESP2, "InputTooLarge");
	assert_false(signalled(f->errfd));
}

static void test_reply_buffer_too_small(void **state)
{
	struct fx *f = *state;
	memcpy(ringmem_host(&f->rm, REQ), get_random, sizeof(get_random));
	uint16_t rh = one(f, REQ, sizeof(get_random), false);
	uint16_t wh = one(f, RESP, 64, true); /* 256 random bytes do not fit */
	ringmem_make_avail(&f->rm, rh);
	ringmem_make_avail(&f->rm, wh);
	kick(f);
	expect_error(f, 1, RESP, "BufferTooSmall");
	/* not even an error fits: nothing written, still handed back */
	memset(ringmem_host(&f->rm, RESP2), 0xee, 8);
	rh = one(f, REQ, sizeof(get_random), false);
	wh = one(f, RESP2, 4, true);
	ringmem_make_avail(&f->rm, rh);
	ringmem_make_avail(&f->rm, wh);
	kick(f);
	assert_int_equal(f->rm.used->idx, 4);
	assert_int_equal(used_at(f, 3).len, 0);
	assert_int_equal(((uint8_t *)ringmem_host(&f->rm, RESP2))[0], 0xee);
}

static void test_empty_chain(void **state)
{
	struct fx *f = *state;
	uint16_t h = one(f, REQ, 0, false);
	ringmem_make_avail(&f->rm, h);
	kick(f);
	assert_int_equal(f->rm.used->idx, 1);
	assert_int_equal(used_at(f, 0).len, 0);
	assert_false(signalled(f->errfd));
}

static void test_loop_fails_queue(void **state)
{
	struct fx *f = *state;
	f->rm.desc[0] = (struct virtq_desc){REQ, 8, VRING_DESC_F_NEXT, 1};
	f->rm.desc[1] = (struct virtq_desc){REQ, 8, VRING_DESC_F_NEXT, 0};
	ringmem_make_avail(&f->rm, 0);
	kick(f);
	assert_int_equal(f->rm.used->idx, 0);
	assert_true(signalled(f->errfd));
	assert_true(f->dev.vd_queues[0].vq_failed);
	/* a failed queue serves nothing more (until the frontend restarts it) */
	uint16_t rh, wh;
	driver_request(f, get_random, sizeof(get_random), RESP, &rh, &wh);
	kick(f);
	assert_int_equal(f->rm.used->idx, 0);
}

static void test_outside_memory_fails_queue(void **state)
{
	struct fx *f = *state;
	memcpy(ringmem_host(&f->rm, REQ), get_random, sizeof(get_random));
	ringmem_make_avail(&f->rm, one(f, REQ, sizeof(get_random), false));
	ringmem_make_avail(&f->rm,
			   one(f, BASE + MEMSZ - 0x100, NSM_RESPONSE_MAX, true)); /* runs past */
	kick(f);
	assert_int_equal(f->rm.used->idx, 0);
	assert_true(signalled(f->errfd));
	assert_false(f->q.nq_pending); /* the failed ring took the pending request along */
}

static void test_stopping_hands_back_pending(void **state)
{
	struct fx *f = *state;
	memcpy(ringmem_host(&f->rm, REQ), get_random, sizeof(get_random));
	uint16_t rh = one(f, REQ, sizeof(get_random), false);
	ringmem_make_avail(&f->rm, rh);
	kick(f);
	assert_true(f->q.nq_pending);
	vu_queue_stop(&f->dev, 0); /* no vo_queue_stopping in these ops: call it as the card */
	nsm_queue_stopping(&f->q, &f->dev, 0);
	assert_false(f->q.nq_pending);
	/* (the ring is stopped: the push went nowhere) */
	char err[256];
	assert_int_equal(vu_queue_start(&f->dev, 0, err, sizeof(err)), 0);
	nsm_queue_init(&f->q, &f->st);
	nsm_queue_kick(&f->q, &f->dev, 0);
	assert_false(f->q.nq_pending); /* nothing replayed */
}

static void test_stopping_live_pushes(void **state)
{
	struct fx *f = *state;
	memcpy(ringmem_host(&f->rm, REQ), get_random, sizeof(get_random));
	uint16_t rh = one(f, REQ, sizeof(get_random), false);
	ringmem_make_avail(&f->rm, rh);
	kick(f);
	nsm_queue_stopping(&f->q, &f->dev, 0); /* still live: the chain goes back */
	assert_int_equal(f->rm.used->idx, 1);
	assert_int_equal(used_at(f, 0).id, rh);
	assert_int_equal(used_at(f, 0).len, 0);
}

/* A hostile enclave keeps its ring full so as to hold the card, which serves every other
 * enclave of the parent on the same thread: a kick takes at most NSM_QUEUE_BUDGET chains,
 * then ends and re-arms itself through the queue's kick fd (the event loop serves the other
 * connections' kicks first), and the next kick goes on where it stopped. */
static void test_flood_yields_to_other_enclaves(void **state)
{
	struct fx *f = *state;
	int kfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(kfd >= 0);
	f->dev.vd_queues[0].vq_kick = kfd;
	const unsigned nreq = 24; /* 48 chains in a ring of 64 */
	memcpy(ringmem_host(&f->rm, REQ), get_random, sizeof(get_random));
	for (unsigned i = 0; i < nreq; i++) {
		ringmem_make_avail(&f->rm, one(f, REQ, sizeof(get_random), false));
		ringmem_make_avail(&f->rm, one(f, RESP, NSM_RESPONSE_MAX, true));
	}
	kick(f);
	assert_int_equal(f->rm.used->idx, NSM_QUEUE_BUDGET);
	assert_int_equal(f->q.nq_requests, NSM_QUEUE_BUDGET / 2);
	assert_int_equal(f->q.nq_yields, 1);
	assert_true(signalled(kfd)); /* the card comes back to it */
	assert_true(signalled(f->call));
	kick(f);
	assert_int_equal(f->rm.used->idx, 2 * nreq);
	assert_int_equal(f->q.nq_requests, nreq);
	assert_int_equal(f->q.nq_yields, 1);
	assert_false(signalled(kfd));
	assert_false(signalled(f->errfd));
	/* every reply in order: request chain (0 bytes), then its reply */
	for (unsigned i = 0; i < 2 * nreq; i += 2) {
		assert_int_equal(used_at(f, i).len, 0);
		assert_int_equal(used_at(f, i + 1).len, sizeof(random_prefix) + 256);
	}
}

static void test_attestation_through_ring(void **state)
{
	struct fx *f = *state;
	/* {"Attestation": {"user_data": null, "nonce": h'0102', "public_key": null}} */
	static const uint8_t req[] = {
	    0xa1, 0x6b, 'A',  't', 't', 'e', 's', 't', 'a',  't',  'i', 'o', 'n', 0xa3, 0x69, 'u',
	    's',  'e',	'r',  '_', 'd', 'a', 't', 'a', 0xf6, 0x65, 'n', 'o', 'n', 'c',	'e',  0x42,
	    0x01, 0x02, 0x6a, 'p', 'u', 'b', 'l', 'i', 'c',  '_',  'k', 'e', 'y', 0xf6};
	uint16_t rh, wh;
	driver_request(f, req, sizeof(req), RESP, &rh, &wh);
	kick(f);
	assert_int_equal(f->rm.used->idx, 2);
	static const uint8_t pre[] = {0xa1, 0x6b, 'A', 't', 't', 'e',  's',  't',
				      'a',  't',  'i', 'o', 'n', 0xa1, 0x68, 'd',
				      'o',  'c',  'u', 'm', 'e', 'n',  't',  0x59};
	assert_true(used_at(f, 1).len > 1000);
	assert_memory_equal(ringmem_host(&f->rm, RESP), pre, sizeof(pre));
}

/* --- the hello --- */

static void good_hello(struct vu_wire_hdr *h, struct enw_hello *p)
{
	*h = (struct vu_wire_hdr){ENW_HELLO, VU_FLAG_VERSION, sizeof(*p)};
	memset(p, 0, sizeof(*p));
	p->version = ENW_VERSION;
	p->cid = 16;
	snprintf(p->module_id, sizeof(p->module_id), "i-0123456789abcdef0-enc0000000000000010");
}

static void test_hello_check(void **state)
{
	(void)state;
	struct vu_wire_hdr h;
	struct enw_hello p;
	good_hello(&h, &p);
	assert_int_equal(nsm_hello_check(&p), 0);
	p.flags = ENW_FLAG_DEBUG;
	assert_int_equal(nsm_hello_check(&p), 0);
	p.flags = 2;
	assert_int_equal(nsm_hello_check(&p), EINVAL);
	uint64_t bad_cids[] = {0, 1, 2, 3, UINT32_MAX, 1ull << 32};
	for (size_t i = 0; i < ARRAY_SIZE(bad_cids); i++) {
		good_hello(&h, &p);
		p.cid = bad_cids[i];
		assert_int_equal(nsm_hello_check(&p), EINVAL);
	}
	good_hello(&h, &p);
	memset(p.module_id, 'a', sizeof(p.module_id)); /* no NUL */
	assert_int_equal(nsm_hello_check(&p), EINVAL);
	good_hello(&h, &p);
	p.module_id[0] = 0; /* empty: no common name for the leaf */
	assert_int_equal(nsm_hello_check(&p), EINVAL);
	good_hello(&h, &p);
	p.module_id[3] = '\n';
	assert_int_equal(nsm_hello_check(&p), EINVAL);
	good_hello(&h, &p);
	p.version = 1; /* the PCRs in the hello, from the enclave's nitro-hv: gone */
	assert_int_equal(nsm_hello_check(&p), EPROTONOSUPPORT);
	p.version = 3;
	assert_int_equal(nsm_hello_check(&p), EPROTONOSUPPORT);
}

static void test_hello_over_socket(void **state)
{
	(void)state;
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	struct vu_wire_hdr h;
	struct enw_hello p, got;
	good_hello(&h, &p);
	assert_int_equal(vu_wire_send(sv[0], ENW_HELLO, VU_FLAG_VERSION, &p, sizeof(p), NULL, 0),
			 0);
	assert_int_equal(nsm_hello_read(sv[1], &got), 0);
	assert_int_equal(got.cid, 16);
	assert_int_equal(nsm_hello_reply(sv[1], 0), 0);
	uint64_t st = 1;
	unsigned nfds;
	assert_int_equal(vu_wire_recv(sv[0], &h, &st, sizeof(st), NULL, 0, &nfds, 1000), 1);
	assert_int_equal(h.request, ENW_HELLO);
	assert_true(h.flags & VU_FLAG_REPLY);
	assert_int_equal(st, 0);
	/* another size, another message: answered EPROTO (then closed by the card) */
	uint8_t big[sizeof(p) + 8] = {0};
	assert_int_equal(vu_wire_send(sv[0], ENW_HELLO, VU_FLAG_VERSION, big, sizeof(big), NULL, 0),
			 0);
	assert_int_equal(nsm_hello_read(sv[1], &got), EPROTO);
	close(sv[0]);
	close(sv[1]);
	/* the peer left before a hello; a peer that sends fds with it */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[0]);
	assert_int_equal(nsm_hello_read(sv[1], &got), -1);
	close(sv[1]);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	good_hello(&h, &p);
	int efd = eventfd(0, EFD_CLOEXEC);
	assert_int_equal(vu_wire_send(sv[0], ENW_HELLO, VU_FLAG_VERSION, &p, sizeof(p), &efd, 1),
			 0);
	assert_int_equal(nsm_hello_read(sv[1], &got), -1);
	close(efd);
	close(sv[0]);
	close(sv[1]);
}

/* --- the chain on an fd --- */

static int pipe_of(const char *text, size_t len)
{
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(write(p[1], text, len), (ssize_t)len);
	close(p[1]);
	return p[0];
}

static char *pem_of(EVP_PKEY *key, X509 *a, X509 *b, size_t *len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	if (key)
		PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
	if (a)
		PEM_write_bio_X509(bio, a);
	if (b)
		PEM_write_bio_X509(bio, b);
	char *t;
	long n = BIO_get_mem_data(bio, &t);
	char *out = malloc((size_t)n + 1);
	memcpy(out, t, (size_t)n);
	out[n] = 0;
	*len = (size_t)n;
	BIO_free(bio);
	return out;
}

static void expect_refused(const char *text, size_t len, const char *why)
{
	struct pki_cert r, h;
	char err[256] = "";
	int fd = pipe_of(text, len);
	assert_int_equal(chain_fd_read(fd, &r, &h, err, sizeof(err)), -1);
	close(fd);
	if (!strstr(err, why))
		fail_msg("expected '%s', got '%s'", why, err);
	assert_null(r.cert);
	assert_null(h.key);
}

static void test_chain_fd(void **state)
{
	(void)state;
	int p[2];
	char err[256];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(chain_fd_write(p[1], &root, &host, err, sizeof(err)), 0);
	close(p[1]);
	struct pki_cert r, h;
	assert_int_equal(chain_fd_read(p[0], &r, &h, err, sizeof(err)), 0);
	close(p[0]);
	assert_int_equal(r.der_len, root.der_len);
	assert_memory_equal(r.der, root.der, root.der_len);
	assert_int_equal(h.der_len, host.der_len);
	assert_memory_equal(h.der, host.der, host.der_len);
	assert_null(r.key);
	assert_non_null(h.key);
	/* a leaf made from what was read verifies under the host certificate */
	struct pki_cert l;
	assert_int_equal(pki_leaf(&h, "x", 60, &l, err, sizeof(err)), 0);
	assert_int_equal(X509_verify(l.cert, X509_get0_pubkey(host.cert)), 1);
	pki_cert_free(&l);
	pki_cert_free(&r);
	pki_cert_free(&h);

	size_t n;
	char *t = pem_of(host.key, root.cert, host.cert, &n); /* certificates swapped */
	expect_refused(t, n, "not the host certificate's");
	free(t);
	t = pem_of(leaf.key, host.cert, root.cert, &n); /* another key */
	expect_refused(t, n, "not the host certificate's");
	free(t);
	t = pem_of(host.key, host.cert, host.cert, &n); /* no root */
	expect_refused(t, n, "not self-signed");
	free(t);
	t = pem_of(host.key, leaf.cert, root.cert, &n); /* leaf's cert: key does not match */
	expect_refused(t, n, "not the host certificate's");
	free(t);
	t = pem_of(leaf.key, leaf.cert, root.cert, &n); /* a pair, but not signed by root */
	expect_refused(t, n, "not signed by the root");
	free(t);
	t = pem_of(host.key, host.cert, NULL, &n);
	expect_refused(t, n, "two certificates");
	free(t);
	t = pem_of(NULL, host.cert, root.cert, &n);
	expect_refused(t, n, "one private key");
	free(t);
	t = pem_of(host.key, host.cert, root.cert, &n);
	expect_refused(t, n / 2, "two certificates"); /* cut short */
	t[n / 3] = 0;
	expect_refused(t, n, "NUL");
	free(t);
	expect_refused("", 0, "one private key");
	char *big = malloc(CHAIN_FD_MAX + 10);
	memset(big, 'A', CHAIN_FD_MAX + 10);
	int bp[2];
	assert_int_equal(pipe2(bp, O_CLOEXEC), 0);
	fcntl(bp[1], F_SETPIPE_SZ, 1 << 20);
	assert_int_equal(write(bp[1], big, CHAIN_FD_MAX + 10), CHAIN_FD_MAX + 10);
	close(bp[1]);
	struct pki_cert r2, h2;
	assert_int_equal(chain_fd_read(bp[0], &r2, &h2, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "longer than"));
	close(bp[0]);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_driver_get_random, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_request_split_over_kicks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_one_chain_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reply_without_request, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_two_requests_in_a_row, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_and_oversized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reply_buffer_too_small, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_empty_chain, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_loop_fails_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_outside_memory_fails_queue, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stopping_hands_back_pending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stopping_live_pushes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_flood_yields_to_other_enclaves, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_attestation_through_ring, setup, teardown),
	    cmocka_unit_test(test_hello_check),
	    cmocka_unit_test(test_hello_over_socket),
	    cmocka_unit_test(test_chain_fd),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
