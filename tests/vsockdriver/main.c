/* vsock-attack: host-side attacks on nitro-card-vsock (docs/vsock.md), run by
 * tests/vsock/test_attack.py against a real card process. This process plays the parent's
 * nitro-hv and guest (CID 3) and several enclaves' (ENW_HELLO on the enclave socket), all
 * hostile where the scenario says so, and checks what the card does:
 *
 *   vsock-attack SCENARIO PARENT_SOCKET ENCLAVE_SOCKET
 *
 * Exit 0 after "PASS SCENARIO", 1 with a FAIL line naming the broken expectation. The
 * scenarios are listed in the table at the end; each says in its comment what it does.
 * CARD_PID in the environment (the card's pid) lets the busy-loop check read its CPU time.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "console_scen.h"
#include "lib/enclave_wire.h"
#include "lib/le.h"
#include "lib/vu_wire.h"
#include "tvm.h"

/* The card's stall limit (main.c VSOCK_STALL_MS) and the slack this machine needs. */
#define STALL_MS 1000
#define SLACK_MS 1500

static const char *psock, *esock;
static uint8_t pbuf[VSOCK_MAX_PAYLOAD], qbuf[VSOCK_MAX_PAYLOAD];

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed);
}

/* Nothing arrives on v for ms milliseconds. */
static void quiet(struct tvm *v, int ms, const char *who)
{
	struct vsock_hdr h;
	if (rx_get(v, &h, NULL, ms))
		FAIL("%s got a packet it must not: %llu:%u -> %llu:%u op %u len %u", who,
		     (unsigned long long)h.src_cid, h.src_port, (unsigned long long)h.dst_cid,
		     h.dst_port, h.op, h.len);
}

/* One RW of n bytes parent -> enclave e (port 77 -> 78), received whole by e within
 * timeout_ms; returns its latency in ms. */
static uint64_t ping(struct tvm *p, struct tvm *e, uint32_t n, int timeout_ms)
{
	static unsigned seq;
	struct vsock_hdr h = hdr(VSOCK_PARENT_CID, 77, e->cid, 78, VSOCK_OP_RW, n), g;
	fill(pbuf, n, ++seq);
	uint64_t t0 = now_ms();
	EXPECT(tx_send(p, &h, pbuf, n, timeout_ms), "parent tx ring stuck");
	uint32_t got = 0;
	while (got < n || n == 0) {
		uint64_t el = now_ms() - t0;
		EXPECT(el < (uint64_t)timeout_ms && rx_wait(e, VSOCK_OP_RW, 78, &g, qbuf + got,
							    (int)((uint64_t)timeout_ms - el), NULL),
		       "ping of %u bytes to cid %llu lost (after %llu ms)", n,
		       (unsigned long long)e->cid, (unsigned long long)(now_ms() - t0));
		EXPECT(g.src_cid == VSOCK_PARENT_CID && g.src_port == 77, "ping source");
		got += g.len;
		if (n == 0)
			break;
	}
	EXPECT(got == n && !memcmp(pbuf, qbuf, n), "ping payload differs");
	return now_ms() - t0;
}

uint64_t ping_pub(struct tvm *p, struct tvm *e, uint32_t n, int timeout_ms)
{
	return ping(p, e, n, timeout_ms);
}

void quiet_for(struct tvm *v, int ms, const char *who)
{
	quiet(v, ms, who);
}

/* A raw Unix connection to path (no hello). */
static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect %s: %s",
	       path, strerror(errno));
	return s;
}

/* Whether the card closed s within ms (reads and discards whatever comes first). */
static bool closed_by_card(int s, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;
	char b[4096];
	while (now_ms() < end) {
		struct pollfd pf = {s, POLLIN, 0};
		if (poll(&pf, 1, 50) == 1) {
			ssize_t n = recv(s, b, sizeof(b), MSG_DONTWAIT);
			if (n == 0 || (n < 0 && errno == ECONNRESET))
				return true;
		}
	}
	return false;
}

/* A vhost-user request of our own on v's connection: the REPLY_ACK value (0 accepted), or
 * -1 when the card closed the connection instead. */
static int vu_req(struct tvm *v, uint32_t req, const void *p, uint32_t size, const int *fds,
		  unsigned nfds)
{
	if (vu_wire_send(v->f.vf_sock, req, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY, p, size, fds,
			 nfds) < 0)
		return -1;
	struct vu_wire_hdr h;
	uint8_t r[VU_HDR_SIZE + 4096];
	unsigned n;
	if (vu_wire_recv(v->f.vf_sock, &h, r, sizeof(r), NULL, 0, &n, 5000) != 1)
		return -1;
	EXPECT(h.request == req && h.size >= 8, "reply to %u: request %u size %u", req, h.request,
	       h.size);
	return (int)le64_get(r);
}

static void three(struct tvm *p, struct tvm *a, struct tvm *b, unsigned num)
{
	tvm_open(p, psock, VSOCK_PARENT_CID, num);
	tvm_open(a, esock, 16, num);
	tvm_open(b, esock, 17, num);
	rx_post(p, num, SLOT);
	rx_post(a, num, SLOT);
	rx_post(b, num, SLOT);
}

/* relay: the honest path, exactly: REQUEST/RESPONSE, a 64 KiB RW, an RW split over small rx
 * buffers, enclave -> parent; nothing reaches the enclave it was not for. */
static void s_relay(void)
{
	struct tvm p, a, b;
	struct vsock_hdr h, g;
	three(&p, &a, &b, 64);
	h = hdr(3, 1000, 16, 2000, VSOCK_OP_REQUEST, 0);
	h.fwd_cnt = 12345;
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(&a, VSOCK_OP_REQUEST, 2000, &g, NULL, 2000, NULL), "REQUEST lost");
	uint8_t want[VSOCK_HDR_LEN], got[VSOCK_HDR_LEN];
	vsock_hdr_put(want, &h);
	vsock_hdr_put(got, &g);
	EXPECT(!memcmp(got, want, sizeof(want)), "REQUEST altered on the way");
	h = hdr(16, 2000, 3, 1000, VSOCK_OP_RESPONSE, 0);
	EXPECT(tx_send(&a, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(&p, VSOCK_OP_RESPONSE, 1000, &g, NULL, 2000, NULL), "RESPONSE lost");
	EXPECT(g.src_cid == 16 && g.src_port == 2000, "RESPONSE source");
	ping(&p, &a, VSOCK_MAX_PAYLOAD, 2000);
	/* split: enclave 17 offers rx buffers of 1000 payload bytes */
	tvm_close(&b);
	tvm_open(&b, esock, 17, 64);
	rx_post(&b, 64, VSOCK_HDR_LEN + 1000);
	h = hdr(3, 5, 17, 6, VSOCK_OP_RW, 5000);
	fill(pbuf, 5000, 9);
	EXPECT(tx_send(&p, &h, pbuf, 5000, 1000), "tx");
	for (unsigned i = 0; i < 5; i++) {
		EXPECT(rx_wait(&b, VSOCK_OP_RW, 6, &g, qbuf + 1000 * i, 2000, NULL), "part %u", i);
		EXPECT(g.len == 1000 && g.src_port == 5 && g.buf_alloc == 262144, "part %u: len %u",
		       i, g.len);
	}
	EXPECT(!memcmp(pbuf, qbuf, 5000), "split payload differs");
	h = hdr(17, 6, 3, 5, VSOCK_OP_RW, 100);
	EXPECT(tx_send(&b, &h, pbuf, 100, 1000), "tx");
	EXPECT(rx_wait(&p, VSOCK_OP_RW, 5, &g, qbuf, 2000, NULL) && g.src_cid == 17, "17 -> 3");
	quiet(&a, 200, "enclave 16");
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* isolation: a hostile enclave spoofs its source, aims at the host (2), the other enclave,
 * CIDs with high bits, sends malformed headers (type, op, flags, payload on a control op,
 * len beyond the chain, len above 64 KiB); a hostile parent aims at 2, at itself, at
 * enclaves not attached and at 16 + 2^32. Only RSTs come back, to the sender; nothing
 * reaches anyone else. */
static void s_isolation(void)
{
	struct tvm p, a, b;
	struct vsock_hdr h, g;
	three(&p, &a, &b, 64);
	static const uint64_t bad_dst[] = {2, 17, 0x100000003ull, 1, 0, 16, UINT64_MAX};
	for (unsigned i = 0; i < sizeof(bad_dst) / sizeof(bad_dst[0]); i++) {
		h = hdr(16, 40 + i, bad_dst[i], 50, VSOCK_OP_REQUEST, 0);
		EXPECT(tx_send(&a, &h, NULL, 0, 1000), "tx");
		EXPECT(rx_wait(&a, VSOCK_OP_RST, 40 + i, &g, NULL, 2000, NULL),
		       "no RST for dst %llx", (unsigned long long)bad_dst[i]);
		EXPECT(g.src_cid == bad_dst[i] && g.dst_cid == 16 && g.len == 0, "RST addresses");
	}
	struct vsock_hdr bad[] = {
	    hdr(17, 1, 3, 2, VSOCK_OP_REQUEST, 0), /* spoofed: the other enclave */
	    hdr(3, 1, 3, 2, VSOCK_OP_REQUEST, 0),  /* spoofed: the parent */
	    hdr(2, 1, 3, 2, VSOCK_OP_REQUEST, 0),  /* spoofed: the host */
	    hdr(16 + (1ull << 32), 1, 3, 2, VSOCK_OP_REQUEST, 0),
	    hdr(16, 1, 3, 2, VSOCK_OP_INVALID, 0),
	    hdr(16, 1, 3, 2, 8, 0),
	    hdr(16, 1, 3, 2, VSOCK_OP_REQUEST, 10), /* payload on a REQUEST */
	    hdr(16, 1, 3, 2, VSOCK_OP_RW, 0),	    /* flags below */
	};
	bad[7].flags = 1;
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		EXPECT(tx_send(&a, &bad[i], pbuf, bad[i].len, 1000), "tx");
	h = hdr(16, 1, 3, 2, VSOCK_OP_REQUEST, 0);
	h.type = VSOCK_TYPE_SEQPACKET;
	EXPECT(tx_send(&a, &h, NULL, 0, 1000), "tx");
	/* len beyond the chain, and above the maximum with a chain that long */
	struct virtq_desc d = {.addr = a.q[Q_TX].bufs, .len = VSOCK_HDR_LEN + 10};
	h = hdr(16, 1, 3, 2, VSOCK_OP_RW, 100);
	vsock_hdr_put(vu_ptr(&a.f, a.q[Q_TX].bufs), &h);
	tx_raw(&a, &d, 1);
	d.len = VSOCK_HDR_LEN + VSOCK_MAX_PAYLOAD + 1;
	h.len = VSOCK_MAX_PAYLOAD + 1;
	vsock_hdr_put(vu_ptr(&a.f, a.q[Q_TX].bufs), &h);
	tx_raw(&a, &d, 1);
	EXPECT(tx_drained(&a, 2000), "card did not take the malformed packets");
	quiet(&p, 300, "parent");
	quiet(&b, 10, "enclave 17");
	quiet(&a, 10, "enclave 16 (RSTs for dropped packets)");
	static const uint64_t pbad[] = {2, 3, 18, 16 + (1ull << 32), UINT32_MAX, 0};
	for (unsigned i = 0; i < sizeof(pbad) / sizeof(pbad[0]); i++) {
		h = hdr(3, 60 + i, pbad[i], 61, VSOCK_OP_REQUEST, 0);
		EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
		EXPECT(rx_wait(&p, VSOCK_OP_RST, 60 + i, &g, NULL, 2000, NULL),
		       "no RST for parent -> %llx", (unsigned long long)pbad[i]);
	}
	quiet(&a, 200, "enclave 16");
	quiet(&b, 10, "enclave 17");
	ping(&p, &a, 10, 2000);
	ping(&p, &b, 10, 2000);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* stall: enclave 16 never gives rx buffers; the parent sends to it, then to 17. Before the
 * fix the parent's traffic to every enclave waited forever behind 16. Now 17 gets its
 * packet once 16 has been stalled for the card's limit, the parent gets an RST for the
 * connection to 16, later packets to the stalled 16 are refused at once, and when 16 adds
 * buffers it hears the RST and works again. */
static void s_stall(void)
{
	struct tvm p, a, b;
	struct vsock_hdr h, g;
	tvm_open(&p, psock, VSOCK_PARENT_CID, 64);
	tvm_open(&a, esock, 16, 64);
	tvm_open(&b, esock, 17, 64);
	rx_post(&p, 64, SLOT);
	rx_post(&b, 64, SLOT);
	h = hdr(3, 1, 16, 2, VSOCK_OP_REQUEST, 0);
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	uint64_t lat = ping(&p, &b, 100, STALL_MS + SLACK_MS);
	printf("parent -> 17 behind a stalled 16: %llu ms\n", (unsigned long long)lat);
	EXPECT(rx_wait(&p, VSOCK_OP_RST, 1, &g, NULL, 1000, NULL) && g.src_cid == 16,
	       "no RST for the connection to the stalled enclave");
	h = hdr(3, 3, 16, 4, VSOCK_OP_REQUEST, 0);
	uint64_t t0 = now_ms();
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(&p, VSOCK_OP_RST, 3, &g, NULL, 1000, NULL), "stalled 16: no quick RST");
	lat = ping(&p, &b, 100, 500);
	printf("to the still stalled 16: RST in %llu ms, then 17 in %llu ms\n",
	       (unsigned long long)(now_ms() - t0 - lat), (unsigned long long)lat);
	rx_post(&a, 64, SLOT);
	EXPECT(rx_wait(&a, VSOCK_OP_RST, 2, &g, NULL, 1000, NULL) && g.src_cid == 3,
	       "16 did not hear of its reset connection");
	ping(&p, &a, 1000, 1000);

	/* the same with a destination that stops its rx queue (GET_VRING_BASE) */
	tvm_close(&a);
	tvm_open(&a, esock, 16, 64);
	h = hdr(3, 9, 16, 10, VSOCK_OP_REQUEST, 0);
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	struct vu_vring_state st = {.index = Q_RX};
	uint8_t m[8];
	memcpy(m, &st, 8);
	EXPECT(vu_wire_send(a.f.vf_sock, VU_GET_VRING_BASE, VU_FLAG_VERSION, m, 8, NULL, 0) == 0,
	       "send");
	ping(&p, &b, 100, STALL_MS + SLACK_MS);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* table: enclave 16 opens connections to the parent (REQUEST from 5000 ports; the parent
 * takes them and never closes). Before the fix it filled the card's whole table and enclave
 * 17 could no longer connect to the parent (nor the parent to 17). Now 16 is held to its
 * share and 17 connects. */
static void s_table(void)
{
	struct tvm p, a, b;
	struct vsock_hdr h, g;
	three(&p, &a, &b, 256);
	unsigned sent = 0, refused = 0, fwd = 0;
	while (sent < 5000) {
		for (unsigned i = 0; i < 128 && sent < 5000; i++, sent++) {
			h = hdr(16, 10000 + sent, 3, 5000, VSOCK_OP_REQUEST, 0);
			EXPECT(tx_send(&a, &h, NULL, 0, 2000), "16's tx stuck at %u", sent);
		}
		while (rx_get(&p, &g, NULL, 20))
			fwd++;
		while (rx_get(&a, &g, NULL, 5))
			refused += g.op == VSOCK_OP_RST;
	}
	while (rx_get(&p, &g, NULL, 100))
		fwd++;
	while (rx_get(&a, &g, NULL, 100))
		refused += g.op == VSOCK_OP_RST;
	printf("enclave 16: %u REQUESTs forwarded, %u refused\n", fwd, refused);
	EXPECT(fwd + refused == 5000 && refused > 0, "forwarded %u refused %u", fwd, refused);
	h = hdr(17, 7, 3, 5000, VSOCK_OP_REQUEST, 0);
	EXPECT(tx_send(&b, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(&p, VSOCK_OP_REQUEST, 5000, &g, NULL, 2000, NULL) && g.src_cid == 17,
	       "enclave 17 could not connect to the parent");
	h = hdr(3, 8, 17, 9, VSOCK_OP_REQUEST, 0);
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(&b, VSOCK_OP_REQUEST, 9, &g, NULL, 2000, NULL),
	       "the parent could not connect to enclave 17");
	/* 16 gone: the parent hears an RST for each of its connections */
	tvm_close(&a);
	unsigned rsts = 0;
	while (rx_get(&p, &g, NULL, 300))
		rsts += g.op == VSOCK_OP_RST && g.src_cid == 16;
	printf("enclave 16 gone: %u RSTs to the parent\n", rsts);
	EXPECT(rsts == fwd, "%u RSTs for %u connections", rsts, fwd);
	tvm_close(&b), tvm_close(&p);
}

/* flood: enclave 16's driver keeps its tx ring full of invalid packets from another thread
 * (the same descriptor over and over, avail idx always a ring ahead), forever. The card
 * must go on serving the parent and enclave 17. */
static volatile bool flood_stop;
static void *flooder(void *arg)
{
	struct tvm *a = arg;
	struct virtq_avail *av = vu_ptr(&a->f, a->q[Q_TX].avail);
	struct virtq_used *u = vu_ptr(&a->f, a->q[Q_TX].used);
	unsigned num = a->q[Q_TX].num;
	for (unsigned i = 0; i < num; i++)
		av->ring[i] = 0;
	for (unsigned long n = 0; !flood_stop; n++) {
		uint16_t used = __atomic_load_n(&u->idx, __ATOMIC_ACQUIRE);
		__atomic_store_n(&av->idx, (uint16_t)(used + num), __ATOMIC_RELEASE);
		if (n % 4096 == 0)
			kick(a, Q_TX);
	}
	return NULL;
}

static void s_flood(void)
{
	struct tvm p, a, b;
	three(&p, &a, &b, 256);
	struct virtq_desc *d = vu_ptr(&a.f, a.q[Q_TX].desc);
	struct vsock_hdr h = hdr(16, 1, 3, 2, VSOCK_OP_REQUEST, 0);
	h.type = 77; /* dropped by the card: needs no rx buffer anywhere */
	vsock_hdr_put(vu_ptr(&a.f, a.q[Q_TX].bufs), &h);
	d[0] = (struct virtq_desc){.addr = a.q[Q_TX].bufs, .len = VSOCK_HDR_LEN};
	pthread_t t;
	EXPECT(pthread_create(&t, NULL, flooder, &a) == 0, "thread");
	usleep(200000);
	uint64_t worst = 0, t0 = now_ms();
	for (unsigned i = 0; i < 40; i++) {
		uint64_t l = ping(&p, &b, 1000, 3000);
		worst = l > worst ? l : worst;
	}
	flood_stop = true;
	pthread_join(t, NULL);
	printf("40 pings to 17 during 16's flood: %llu ms, worst %llu ms\n",
	       (unsigned long long)(now_ms() - t0), (unsigned long long)worst);
	EXPECT(worst < 1000, "worst ping %llu ms", (unsigned long long)worst);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* Pings parent -> e for ms milliseconds while calling poke every 200 ms; the worst latency. */
static uint64_t ping_during(struct tvm *p, struct tvm *e, int ms, void (*poke)(void *), void *arg)
{
	uint64_t end = now_ms() + (uint64_t)ms, worst = 0, next = 0;
	while (now_ms() < end) {
		if (now_ms() >= next) {
			poke(arg);
			next = now_ms() + 200;
		}
		uint64_t l = ping(p, e, 100, 10000);
		worst = l > worst ? l : worst;
		usleep(20000);
	}
	return worst;
}

/* The next byte of a valid hello for CID 30 (errors ignored: the card may have closed it). */
static void trickle(void *arg)
{
	static uint8_t msg[ENW_HELLO_MSG_LEN];
	static unsigned off;
	if (!off) {
		struct enw_hello h = {.version = ENW_VERSION, .cid = 30};
		vu_wire_hdr_put(msg, &(struct vu_wire_hdr){ENW_HELLO, VU_FLAG_VERSION, sizeof(h)});
		memcpy(msg + VU_HDR_SIZE, &h, sizeof(h));
	}
	if (off < sizeof(msg))
		send(*(int *)arg, msg + off++, 1, MSG_NOSIGNAL);
}

/* hello-slow: a connection on the enclave socket sends its hello one byte every 200 ms.
 * Before the fix the card waited for each byte (2 s each) with everything else stopped;
 * now it reads what comes and closes the connection at the hello's deadline (2 s). */
static void s_hello_slow(void)
{
	struct tvm p, b;
	tvm_open(&p, psock, VSOCK_PARENT_CID, 64);
	tvm_open(&b, esock, 17, 64);
	rx_post(&p, 64, SLOT);
	rx_post(&b, 64, SLOT);
	int s = raw_connect(esock);
	uint64_t worst = ping_during(&p, &b, 3000, trickle, &s);
	printf("pings during a trickled hello: worst %llu ms\n", (unsigned long long)worst);
	EXPECT(worst < 500, "worst ping %llu ms", (unsigned long long)worst);
	EXPECT(closed_by_card(s, 1000), "the card kept a hello past its deadline");
	close(s);
	tvm_close(&b), tvm_close(&p);
}

/* vu-stall: an attached enclave sends half a vhost-user message, then a byte every 200 ms.
 * Before the fix the card read it with everything else stopped (5 s for each byte). */
static void s_vu_stall(void)
{
	struct tvm p, a, b;
	three(&p, &a, &b, 64);
	uint8_t m[VU_HDR_SIZE + 3];
	vu_wire_hdr_put(m, &(struct vu_wire_hdr){VU_GET_CONFIG, VU_FLAG_VERSION, 12 + 256});
	EXPECT(send(a.f.vf_sock, m, VU_HDR_SIZE + 3, MSG_NOSIGNAL) > 0, "send");
	uint64_t worst = ping_during(&p, &b, 3000, trickle, &a.f.vf_sock);
	printf("pings during a trickled vhost-user message: worst %llu ms\n",
	       (unsigned long long)worst);
	EXPECT(worst < 500, "worst ping %llu ms", (unsigned long long)worst);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* reply-block: an enclave's nitro-hv asks GET_FEATURES over and over and never reads the
 * replies. Before the fix the card blocked in sendmsg once the socket was full, for good.
 * Now it drops that connection and goes on. */
static void s_reply_block(void)
{
	struct tvm p, a, b;
	three(&p, &a, &b, 64);
	uint8_t m[VU_HDR_SIZE];
	vu_wire_hdr_put(m, &(struct vu_wire_hdr){VU_GET_FEATURES, VU_FLAG_VERSION, 0});
	unsigned n = 0;
	uint64_t end = now_ms() + 3000;
	while (now_ms() < end) {
		if (send(a.f.vf_sock, m, sizeof(m), MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(m))
			n++;
		else if (errno == EAGAIN)
			usleep(1000);
		else
			break;
	}
	printf("%u GET_FEATURES sent without reading a reply\n", n);
	ping(&p, &b, 100, 2000);
	EXPECT(closed_by_card(a.f.vf_sock, 3000), "the card kept the deaf frontend");
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* hello-flood: 64 connections that never say hello hold every slot; a real enclave must
 * still get in once they are stale (before the fix: refused for as long as they stayed). 64
 * accepted enclaves: the 65th is refused, and one leaving makes room. */
static void s_hello_flood(void)
{
	int s[64];
	for (unsigned i = 0; i < 64; i++)
		s[i] = raw_connect(esock);
	usleep(2500 * 1000); /* beyond the card's hello timeout (2 s) */
	struct tvm v[65];
	int st = tvm_hello(&v[0], esock, 16, 1 << 20);
	EXPECT(st == 0, "hello after 64 silent connections: %d", st);
	for (unsigned i = 0; i < 64; i++) {
		EXPECT(closed_by_card(s[i], 1000), "silent connection %u still open", i);
		close(s[i]);
	}
	for (unsigned i = 1; i < 64; i++) {
		st = tvm_hello(&v[i], esock, 16 + i, 1 << 20);
		EXPECT(st == 0, "hello %u: %d", i, st);
	}
	st = tvm_hello(&v[64], esock, 200, 1 << 20);
	EXPECT(st != 0, "a 65th enclave was accepted");
	vu_close(&v[64].f);
	vu_close(&v[5].f);
	usleep(100000);
	st = tvm_hello(&v[5], esock, 21, 1 << 20);
	EXPECT(st == 0, "no room after one left: %d", st);
	for (unsigned i = 0; i < 64; i++)
		vu_close(&v[i].f);
	usleep(100000);
	/* the card still works */
	struct tvm p, b;
	tvm_open(&p, psock, VSOCK_PARENT_CID, 64);
	tvm_open(&b, esock, 17, 64);
	rx_post(&p, 64, SLOT);
	rx_post(&b, 64, SLOT);
	ping(&p, &b, 100, 2000);
	tvm_close(&b), tvm_close(&p);
}

/* cid: hellos for taken, reserved and out-of-range CIDs, bad versions and flags, garbage;
 * an enclave that leaves (the parent hears RSTs) and a new one with the same CID that hears
 * nothing of the old one; a storm of 300 connections that die at every step of the hello
 * and set-up. The card's slots must all come back. */
static void s_cid(void)
{
	struct tvm p, a, b, x;
	struct vsock_hdr h, g;
	three(&p, &a, &b, 64);
	static const uint64_t bad[] = {16, 17, 3, 2, 1, 0, UINT32_MAX, 1ull << 32, UINT64_MAX};
	static const int want[] = {EADDRINUSE, EADDRINUSE, EINVAL, EINVAL, EINVAL,
				   EINVAL,     EINVAL,	   EINVAL, EINVAL};
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int st = tvm_hello(&x, esock, bad[i], 1 << 20);
		EXPECT(st == want[i], "hello cid %llx: %d, want %d", (unsigned long long)bad[i], st,
		       want[i]);
		vu_close(&x.f);
	}
	/* a hello with the wrong request, size, version, flags, fds */
	struct enw_hello eh = {.version = 2, .cid = 40};
	int s = raw_connect(esock);
	vu_wire_send(s, ENW_HELLO, VU_FLAG_VERSION, &eh, sizeof(eh), NULL, 0);
	EXPECT(closed_by_card(s, 3000), "version 2 kept");
	close(s);
	eh.version = 1;
	eh.flags = 2;
	s = raw_connect(esock);
	vu_wire_send(s, ENW_HELLO, VU_FLAG_VERSION, &eh, sizeof(eh), NULL, 0);
	EXPECT(closed_by_card(s, 3000), "flags 2 kept");
	close(s);
	eh.flags = 0;
	memset(eh.module_id, 'x', sizeof(eh.module_id));
	s = raw_connect(esock);
	vu_wire_send(s, ENW_HELLO, VU_FLAG_VERSION, &eh, sizeof(eh), NULL, 0);
	EXPECT(closed_by_card(s, 3000), "module_id without NUL kept");
	close(s);
	memset(eh.module_id, 0, sizeof(eh.module_id));
	int fds[2];
	EXPECT(pipe(fds) == 0, "pipe");
	s = raw_connect(esock);
	vu_wire_send(s, ENW_HELLO, VU_FLAG_VERSION, &eh, sizeof(eh), fds, 2);
	EXPECT(closed_by_card(s, 3000), "hello with fds kept");
	close(s);
	s = raw_connect(esock);
	vu_wire_send(s, VU_SET_OWNER, VU_FLAG_VERSION, NULL, 0, NULL, 0);
	EXPECT(closed_by_card(s, 3000), "vhost-user before the hello kept");
	close(s);
	s = raw_connect(esock);
	vu_wire_send(s, ENW_HELLO, VU_FLAG_VERSION, &eh, sizeof(eh) - 1, NULL, 0);
	EXPECT(closed_by_card(s, 4000), "short hello kept");
	close(s);
	s = raw_connect(esock);
	uint8_t big[VU_HDR_SIZE];
	vu_wire_hdr_put(big, &(struct vu_wire_hdr){ENW_HELLO, VU_FLAG_VERSION, 0xffffffffu});
	send(s, big, sizeof(big), MSG_NOSIGNAL);
	EXPECT(closed_by_card(s, 3000), "hello of 4 GiB kept");
	close(s);
	close(fds[0]), close(fds[1]);

	/* 16 leaves with a connection; a new 16 comes at once */
	h = hdr(3, 1, 16, 2, VSOCK_OP_REQUEST, 0);
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(&a, VSOCK_OP_REQUEST, 2, &g, NULL, 2000, NULL), "REQUEST");
	tvm_close(&a);
	tvm_open(&a, esock, 16, 64);
	rx_post(&a, 64, SLOT);
	EXPECT(rx_wait(&p, VSOCK_OP_RST, 1, &g, NULL, 2000, NULL) && g.src_cid == 16,
	       "parent got no RST for the old 16");
	quiet(&a, 300, "the new enclave 16");
	ping(&p, &a, 100, 2000);

	/* storm */
	for (unsigned i = 0; i < 300; i++) {
		unsigned step = i % 5;
		if (step == 0) {
			close(raw_connect(esock));
			continue;
		}
		if (step == 1) {
			s = raw_connect(esock);
			eh.cid = 50;
			send(s, &eh, 100, MSG_NOSIGNAL); /* half a hello */
			close(s);
			continue;
		}
		int st = tvm_hello(&x, esock, 50 + i % 3, 1 << 20);
		EXPECT(st == 0 || st == EADDRINUSE, "storm hello %u: %d", i, st);
		if (step >= 3 && st == 0) {
			char err[256];
			if (step == 4)
				tvm_setup(&x, 4);
			else
				vu_init(&x.f, 0, 8, err, sizeof(err));
		}
		vu_close(&x.f);
	}
	usleep(200000);
	for (unsigned i = 0; i < 62; i++) { /* every slot is free again (16, 17 hold two) */
		int st = tvm_hello(&x, esock, 100 + i, 1 << 20);
		EXPECT(st == 0, "after the storm, hello %u: %d", i, st);
		fds[0] = x.f.vf_sock; /* keep it open */
		x.f.vf_sock = -1;
		vu_close(&x.f);
		(void)fds;
	}
	ping(&p, &b, 100, 2000);
	ping(&p, &a, 100, 2000);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* parent-gone: the parent leaves with connections to both enclaves; each hears an RST for
 * its own connection only; a new parent is served. */
static void s_parent_gone(void)
{
	struct tvm p, a, b;
	struct vsock_hdr h, g;
	three(&p, &a, &b, 64);
	h = hdr(3, 1, 16, 2, VSOCK_OP_REQUEST, 0);
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	h = hdr(17, 3, 3, 4, VSOCK_OP_REQUEST, 0);
	EXPECT(tx_send(&b, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(&a, VSOCK_OP_REQUEST, 2, &g, NULL, 2000, NULL), "REQUEST to 16");
	EXPECT(rx_wait(&p, VSOCK_OP_REQUEST, 4, &g, NULL, 2000, NULL), "REQUEST from 17");
	tvm_close(&p);
	EXPECT(rx_wait(&a, VSOCK_OP_RST, 2, &g, NULL, 2000, NULL) && g.src_cid == 3 &&
		   g.src_port == 1,
	       "16: RST");
	EXPECT(rx_wait(&b, VSOCK_OP_RST, 3, &g, NULL, 2000, NULL) && g.src_port == 4, "17: RST");
	quiet(&a, 100, "16"), quiet(&b, 10, "17");
	tvm_open(&p, psock, VSOCK_PARENT_CID, 64);
	rx_post(&p, 64, SLOT);
	ping(&p, &a, 100, 2000);
	ping(&p, &b, 100, 2000);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* chains: hostile descriptor chains. A header spread over 44 one-byte buffers (forwarded
 * intact), chains of 65 buffers, a loop, a buffer outside memory, a writable buffer first
 * (each fails only the sender's queue); rx buffers too small for a header, rx chains with
 * readable parts first, rx buffers aliasing the enclave's own tx ring. The others go on. */
static void s_chains(void)
{
	struct tvm p, a, b;
	struct vsock_hdr h, g;
	three(&p, &a, &b, 128);
	uint64_t base = a.q[Q_TX].bufs;
	struct virtq_desc d[80];
	h = hdr(16, 1, 3, 2, VSOCK_OP_RW, 20);
	uint8_t *m = vu_ptr(&a.f, base);
	vsock_hdr_put(m, &h);
	fill(m + VSOCK_HDR_LEN, 20, 4);
	for (unsigned i = 0; i < 45; i++)
		d[i] = (struct virtq_desc){.addr = base + i,
					   .len = i < 44 ? 1 : 20,
					   .flags = i < 44 ? VRING_DESC_F_NEXT : 0,
					   .next = (uint16_t)(i + 1)};
	tx_raw(&a, d, 45);
	EXPECT(rx_wait(&p, VSOCK_OP_RW, 2, &g, qbuf, 2000, NULL) && g.len == 20 &&
		   !memcmp(qbuf, m + VSOCK_HDR_LEN, 20),
	       "a header in 44 pieces");
	/* each of these fails 16's tx queue: reconnect 16 between them */
	for (unsigned k = 0; k < 5; k++) {
		tvm_close(&a);
		tvm_open(&a, esock, 16, 128);
		base = a.q[Q_TX].bufs;
		vsock_hdr_put(vu_ptr(&a.f, base), &h);
		unsigned n = 1;
		d[0] = (struct virtq_desc){.addr = base, .len = VSOCK_HDR_LEN + 20};
		if (k == 0) { /* 65 buffers */
			for (unsigned i = 0; i < 65; i++)
				d[i] = (struct virtq_desc){.addr = base,
							   .len = 1,
							   .flags = i < 64 ? VRING_DESC_F_NEXT : 0,
							   .next = (uint16_t)(i + 1)};
			n = 65;
		} else if (k == 1) { /* a loop */
			d[0].flags = VRING_DESC_F_NEXT;
			d[0].next = 0;
		} else if (k == 2) { /* outside guest memory */
			d[0].addr = a.f.vf_mem_size - 10;
		} else if (k == 3) { /* writable, then readable */
			d[0] = (struct virtq_desc){base, 10, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
						   1};
			d[1] = (struct virtq_desc){base, 60, 0, 0};
			n = 2;
		} else { /* next out of range */
			d[0].flags = VRING_DESC_F_NEXT;
			d[0].next = 1000;
		}
		tx_raw(&a, d, n);
		usleep(50000);
		ping(&p, &b, 100, 2000);
	}
	quiet(&p, 100, "parent");
	/* rx abuse by 17: tiny buffers, readable-first chains, buffers on its own tx ring */
	tvm_close(&b);
	tvm_open(&b, esock, 17, 128);
	struct virtq_desc *rd = vu_ptr(&b.f, b.q[Q_RX].desc);
	struct virtq_avail *ra = vu_ptr(&b.f, b.q[Q_RX].avail);
	for (unsigned i = 0; i < 8; i++)
		rd[i] = (struct virtq_desc){b.q[Q_RX].bufs + i * SLOT, 10, VRING_DESC_F_WRITE, 0};
	rd[8] = (struct virtq_desc){b.q[Q_RX].bufs + 8 * SLOT, 30, VRING_DESC_F_NEXT, 9};
	rd[9] = (struct virtq_desc){b.q[Q_RX].bufs + 9 * SLOT, 100, VRING_DESC_F_WRITE, 0};
	rd[10] = (struct virtq_desc){b.q[Q_TX].desc, 16 * 128, VRING_DESC_F_WRITE, 0};
	for (unsigned i = 0; i < 11; i++)
		ra->ring[i] = i == 9 ? 10 : (uint16_t)i;
	__atomic_store_n(&ra->idx, 10, __ATOMIC_RELEASE);
	b.q[Q_RX].avail_idx = 10;
	kick(&b, Q_RX);
	h = hdr(3, 5, 17, 6, VSOCK_OP_RW, 500);
	fill(pbuf, 500, 3);
	EXPECT(tx_send(&p, &h, pbuf, 500, 1000), "tx");
	EXPECT(tx_drained(&p, 2000), "parent's packet never taken");
	usleep(100000);
	struct virtq_used *ru = vu_ptr(&b.f, b.q[Q_RX].used);
	unsigned used = __atomic_load_n(&ru->idx, __ATOMIC_ACQUIRE);
	EXPECT(used == 10, "17's rx used idx %u", used);
	for (unsigned i = 0; i < 8; i++)
		EXPECT(ru->ring[i].len == 0, "tiny buffer %u written %u", i, ru->ring[i].len);
	EXPECT(ru->ring[8].len == VSOCK_HDR_LEN + 56, "mixed chain: %u", ru->ring[8].len);
	EXPECT(ru->ring[9].len == VSOCK_HDR_LEN + 500 - 56, "aliasing chain: %u", ru->ring[9].len);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* vu: a compromised enclave nitro-hv's vhost-user abuse after a good hello: memory tables
 * with fds of the wrong kind (socket, pipe, unsealed memfd, too short, read-only), too
 * many regions, overlapping regions, ring sizes not powers of two or too big, ring
 * addresses outside memory, queue indexes out of range, kick fds that are not eventfds
 * (a pipe at EOF: before the fix a busy loop), call fds that block (a pipe nobody reads:
 * before the fix the card hung once it was full). Each is refused or harmless; the card
 * keeps serving the others and does not spin. */
static void s_vu(void)
{
	struct tvm p, a, b;
	three(&p, &a, &b, 64);
	char err[256];
	struct tvm x;
	EXPECT(tvm_hello(&x, esock, 40, 1 << 20) == 0, "hello");
	EXPECT(vu_init(&x.f, 0, 8, err, sizeof(err)) == 0, "%s", err);
	int sv[2], pp[2];
	EXPECT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0 && pipe(pp) == 0, "fds");
	int unsealed = memfd_create("unsealed", 0);
	EXPECT(unsealed >= 0 && ftruncate(unsealed, 1 << 20) == 0, "memfd");
	struct {
		uint32_t n, pad;
		struct vu_mem_region r[9];
	} mt = {.n = 1};
	mt.r[0] = (struct vu_mem_region){0, 1 << 20, 0x10000000, 0};
	int fdsets[][2] = {{sv[0], -1}, {pp[0], -1}, {unsealed, -1}};
	for (unsigned i = 0; i < 3; i++)
		EXPECT(vu_req(&x, VU_SET_MEM_TABLE, &mt, 8 + 32, fdsets[i], 1) == 1,
		       "memory fd %u accepted", i);
	mt.r[0].size = 2 << 20; /* beyond the file */
	EXPECT(vu_req(&x, VU_SET_MEM_TABLE, &mt, 8 + 32, &x.f.vf_memfd, 1) == 1, "past the end");
	mt.r[0] = (struct vu_mem_region){0, 1 << 20, 0x10000000, UINT64_MAX - 100};
	EXPECT(vu_req(&x, VU_SET_MEM_TABLE, &mt, 8 + 32, &x.f.vf_memfd, 1) == 1, "offset wrap");
	mt.n = 2;
	mt.r[0] = (struct vu_mem_region){0, 1 << 19, 0x10000000, 0};
	mt.r[1] = (struct vu_mem_region){4096, 4096, 0x20000000, 0};
	int two[2] = {x.f.vf_memfd, x.f.vf_memfd};
	EXPECT(vu_req(&x, VU_SET_MEM_TABLE, &mt, 8 + 64, two, 2) == 1, "overlap");
	EXPECT(vu_req(&x, VU_SET_MEM_TABLE, &mt, 8 + 64, two, 1) == 1, "fd count");
	struct vu_vring_state st[] = {{0, 3}, {0, 0}, {0, 65536}, {3, 64}, {255, 64}};
	for (unsigned i = 0; i < 5; i++)
		EXPECT(vu_req(&x, VU_SET_VRING_NUM, &st[i], 8, NULL, 0) == 1, "vring num %u", i);
	/* a good table, then rings outside it */
	mt.n = 1;
	mt.r[0] = (struct vu_mem_region){0, 1 << 20, (uint64_t)(uintptr_t)x.f.vf_mem, 0};
	EXPECT(vu_req(&x, VU_SET_MEM_TABLE, &mt, 8 + 32, &x.f.vf_memfd, 1) == 0, "good table");
	struct vu_vring_state s64 = {0, 64};
	EXPECT(vu_req(&x, VU_SET_VRING_NUM, &s64, 8, NULL, 0) == 0, "num");
	uint64_t uva = (uint64_t)(uintptr_t)x.f.vf_mem;
	struct vu_vring_addr ad[] = {
	    {0, 0, uva + (1 << 20) - 512, uva + 8192, uva + 4096, 0},
	    {0, 0, uva, uva + (1 << 20) - 4, uva + 4096, 0},
	    {0, 0, uva, uva + 8192, UINT64_MAX - 1, 0},
	    {0, 0, uva + 1, uva + 8192, uva + 4096, 0},
	    {0, 7, uva, uva + 8192, uva + 4096, 0},
	};
	for (unsigned i = 0; i < 5; i++)
		EXPECT(vu_req(&x, VU_SET_VRING_ADDR, &ad[i], sizeof(ad[i]), NULL, 0) == 1,
		       "ring address %u accepted", i);
	vu_close(&x.f);

	/* kick fd: a pipe at end of file; call fd: a pipe nobody reads (blocking) */
	close(pp[1]);
	uint64_t v = Q_TX;
	EXPECT(vu_req(&a, VU_SET_VRING_KICK, &v, 8, &pp[0], 1) == 0, "kick fd");
	int cp[2];
	EXPECT(pipe(cp) == 0, "pipe");
	v = Q_RX;
	EXPECT(vu_req(&a, VU_SET_VRING_CALL, &v, 8, &cp[1], 1) == 0, "call fd");
	unsigned long t0 = 0;
	const char *pid = getenv("CARD_PID");
	char path[64];
	FILE *f;
	unsigned long ut, stt;
	if (pid) {
		snprintf(path, sizeof(path), "/proc/%s/stat", pid);
		f = fopen(path, "r");
		EXPECT(f && fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				   &ut, &stt) == 2,
		       "stat");
		fclose(f);
		t0 = ut + stt;
	}
	/* 10000 packets to 16, each one an interrupt: 80000 bytes into a 64 KiB pipe */
	struct vsock_hdr h, g;
	for (unsigned i = 0; i < 10000; i++) {
		h = hdr(3, 1, 16, 2, VSOCK_OP_CREDIT_UPDATE, 0);
		EXPECT(tx_send(&p, &h, NULL, 0, 2000), "parent tx stuck at %u", i);
		EXPECT(rx_get(&a, &g, NULL, 2000), "16 rx stuck at %u", i);
	}
	ping(&p, &b, 100, 2000);
	if (pid) {
		usleep(1000 * 1000);
		f = fopen(path, "r");
		EXPECT(f && fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
				   &ut, &stt) == 2,
		       "stat");
		fclose(f);
		long hz = sysconf(_SC_CLK_TCK);
		printf("card CPU over the kick/call abuse: %lu ticks (%ld per second)\n",
		       ut + stt - t0, hz);
		/* 10000 packets cost little; a busy loop would burn every tick */
		EXPECT(ut + stt - t0 < (unsigned long)hz * 3 / 2 + 0, "card is spinning");
	}
	close(pp[0]), close(cp[0]), close(cp[1]), close(sv[0]), close(sv[1]), close(unsealed);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

static const struct {
	const char *name;
	void (*fn)(void);
} scenarios[] = {
    {"relay", s_relay},
    {"isolation", s_isolation},
    {"stall", s_stall},
    {"table", s_table},
    {"flood", s_flood},
    {"hello-slow", s_hello_slow},
    {"vu-stall", s_vu_stall},
    {"reply-block", s_reply_block},
    {"hello-flood", s_hello_flood},
    {"cid", s_cid},
    {"parent-gone", s_parent_gone},
    {"chains", s_chains},
    {"vu", s_vu},
};

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc != 4) {
		fprintf(stderr, "usage: vsock-attack SCENARIO PARENT_SOCKET ENCLAVE_SOCKET\n");
		return 2;
	}
	psock = argv[2];
	esock = argv[3];
	console_scen_init(psock, esock);
	for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		if (!strcmp(argv[1], scenarios[i].name)) {
			scenarios[i].fn();
			printf("PASS %s\n", argv[1]);
			return 0;
		}
	for (const struct scen *s = console_scenarios; s->name; s++)
		if (!strcmp(argv[1], s->name)) {
			s->fn();
			printf("PASS %s\n", argv[1]);
			return 0;
		}
	fprintf(stderr, "unknown scenario %s\n", argv[1]);
	return 2;
}
