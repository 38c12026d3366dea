/* vsock-attack's console scenarios: the debug consoles nitro-card-vsock serves the parent
 * at CID 0, port CID + 10000 (src/cards/vsock/console.h), fed by debug enclaves' console
 * feeds (ENW_FLAG_CONSOLE). This process plays the parent's driver (a nitro-cli console
 * client at the packet level), the enclaves' devices and their feeds. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "console_scen.h"
#include "tvm.h"

#define PORT(cid) (10000u + (uint32_t)(cid))

static const char *psock, *esock;

/* A feed: connect, hello of cid with flags (ENW_FLAG_CONSOLE added), the card's status;
 * *fd the connection when accepted. module_id NULL: the driver's usual one. */
static int feed_open(uint64_t cid, uint32_t flags, const char *module_id, int *fd)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", esock);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	EXPECT(s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
	       strerror(errno));
	struct enw_hello h;
	tvm_hello_fill(&h, cid, flags | ENW_FLAG_CONSOLE);
	if (module_id)
		snprintf(h.module_id, sizeof(h.module_id), "%s", module_id);
	int st = enw_hello_send(s, &h, 5000);
	if (st == 0) {
		*fd = s;
	} else {
		close(s);
		*fd = -1;
	}
	return st;
}

static void feed_write(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n) {
		ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
		EXPECT(w > 0, "feed write: %s", strerror(errno));
		b += w;
		n -= (size_t)w;
	}
}

/* A console connection of the parent, seen from the parent's driver. */
struct rdr {
	uint32_t port;
	uint64_t cid;
	uint32_t buf_alloc;
	bool credit; /* sends CREDIT_UPDATEs as it takes bytes */
	bool resp, shut, rst;
	uint32_t got, told;
	uint8_t *buf; /* up to cap bytes kept */
	size_t cap;
};

static void rdr_connect(struct tvm *p, struct rdr *r)
{
	struct vsock_hdr h = hdr(3, r->port, 0, PORT(r->cid), VSOCK_OP_REQUEST, 0);
	h.buf_alloc = r->buf_alloc;
	EXPECT(tx_send(p, &h, NULL, 0, 1000), "tx");
}

/* Takes the parent's rx packets for ms milliseconds (or until every reader is done when
 * until_done), sorting them to the readers; packets for nobody are counted in *other. */
static void collect(struct tvm *p, struct rdr *rs, unsigned n, int ms, bool until_done,
		    unsigned *other)
{
	static uint8_t pl[VSOCK_MAX_PAYLOAD];
	uint64_t end = now_ms() + (uint64_t)ms;
	while (now_ms() < end) {
		if (until_done) {
			bool all = true;
			for (unsigned i = 0; i < n; i++)
				all &= rs[i].shut || rs[i].rst;
			if (all)
				return;
		}
		struct vsock_hdr h;
		if (!rx_get(p, &h, pl, 20))
			continue;
		struct rdr *r = NULL;
		for (unsigned i = 0; i < n; i++)
			if (h.src_cid == 0 && h.dst_port == rs[i].port &&
			    h.src_port == PORT(rs[i].cid))
				r = &rs[i];
		if (!r) {
			if (other)
				++*other;
			continue;
		}
		EXPECT(h.dst_cid == 3 && h.type == VSOCK_TYPE_STREAM, "console packet header");
		EXPECT(!r->shut && !r->rst, "port %u: op %u after the end", r->port, h.op);
		if (h.op == VSOCK_OP_RESPONSE) {
			EXPECT(!r->resp && h.buf_alloc > 0, "RESPONSE");
			r->resp = true;
		} else if (h.op == VSOCK_OP_RW) {
			EXPECT(r->resp, "data before RESPONSE");
			EXPECT(r->got + h.len - r->told <= r->buf_alloc, "port %u: credit exceeded",
			       r->port);
			size_t k = r->got < r->cap ? r->cap - r->got : 0;
			memcpy(r->buf + r->got, pl, h.len < k ? h.len : k);
			r->got += h.len;
		} else if (h.op == VSOCK_OP_SHUTDOWN) {
			EXPECT(h.flags == 3, "SHUTDOWN flags %u", h.flags);
			r->shut = true;
		} else if (h.op == VSOCK_OP_RST) {
			r->rst = true;
		}
		if (r->credit && r->got - r->told >= r->buf_alloc / 4 && !r->shut && !r->rst) {
			struct vsock_hdr u =
			    hdr(3, r->port, 0, PORT(r->cid), VSOCK_OP_CREDIT_UPDATE, 0);
			u.buf_alloc = r->buf_alloc;
			u.fwd_cnt = r->got;
			EXPECT(tx_send(p, &u, NULL, 0, 1000), "tx");
			r->told = r->got;
		}
	}
}

/* A REQUEST from the parent to (0, port) that must come back as an RST. */
static void refused(struct tvm *p, uint32_t sport, uint32_t dport)
{
	struct vsock_hdr h = hdr(3, sport, 0, dport, VSOCK_OP_REQUEST, 0), g;
	EXPECT(tx_send(p, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(p, VSOCK_OP_RST, sport, &g, NULL, 2000, NULL), "no RST for port %u", dport);
	EXPECT(g.src_cid == 0 && g.src_port == dport, "RST source");
}

static void fill_text(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)('a' + (i * 7 + seed) % 26);
}

/* console: history replay, live bytes, end of stream when the enclave goes and replay of
 * what was kept after it; the parent cannot write into a console; non-debug, unknown and
 * other CID 0 ports are reset; feeds that would claim another enclave's console, a second
 * feed, a production enclave's feed are refused; a CID attaching again drops the old
 * console. */
static void s_console(void)
{
	struct tvm p, a, b, x;
	tvm_open(&p, psock, VSOCK_PARENT_CID, 64);
	tvm_open_flags(&a, esock, 16, 64, ENW_FLAG_DEBUG);
	tvm_open(&b, esock, 17, 64);
	rx_post(&p, 64, SLOT);
	rx_post(&a, 64, SLOT);
	rx_post(&b, 64, SLOT);
	int fd, fd2;
	/* feeds that must be refused */
	EXPECT(feed_open(17, ENW_FLAG_DEBUG, NULL, &fd) == EPERM, "a feed for production 17");
	EXPECT(feed_open(17, 0, NULL, &fd) == EINVAL, "a feed without the debug flag");
	EXPECT(feed_open(18, ENW_FLAG_DEBUG, NULL, &fd) == ENOENT, "a feed for absent 18");
	EXPECT(feed_open(16, ENW_FLAG_DEBUG, "i-other-enc1", &fd) == EPERM,
	       "a feed with another module id");
	EXPECT(feed_open(3, ENW_FLAG_DEBUG, NULL, &fd) == EINVAL, "a feed for the parent");
	EXPECT(feed_open(16, ENW_FLAG_DEBUG, NULL, &fd) == 0, "16's feed");
	EXPECT(feed_open(16, ENW_FLAG_DEBUG, NULL, &fd2) == EADDRINUSE, "a second feed for 16");
	/* history */
	static uint8_t hist[3000], live[5000], all[8000];
	fill_text(hist, sizeof(hist), 1);
	fill_text(live, sizeof(live), 2);
	feed_write(fd, hist, sizeof(hist));
	usleep(100000);
	uint8_t b1[16384];
	struct rdr r = {.port = 1000,
			.cid = 16,
			.buf_alloc = 262144,
			.credit = true,
			.buf = b1,
			.cap = sizeof(b1)};
	rdr_connect(&p, &r);
	collect(&p, &r, 1, 500, false, NULL);
	EXPECT(r.resp && r.got == sizeof(hist) && !memcmp(b1, hist, sizeof(hist)),
	       "history: response %d, %u bytes", r.resp, r.got);
	/* live */
	feed_write(fd, live, sizeof(live));
	collect(&p, &r, 1, 500, false, NULL);
	EXPECT(r.got == sizeof(hist) + sizeof(live) &&
		   !memcmp(b1 + sizeof(hist), live, sizeof(live)),
	       "live: %u bytes", r.got);
	printf("console 16: %zu bytes of history, then %zu live\n", sizeof(hist), sizeof(live));
	/* the parent writes into the console: dropped; nothing reaches 16 or its feed */
	struct vsock_hdr h = hdr(3, 1000, 0, PORT(16), VSOCK_OP_RW, 4000);
	static uint8_t junk[4000];
	memset(junk, 'J', sizeof(junk));
	for (unsigned i = 0; i < 40; i++) /* 160 KB: beyond the card's buf_alloc */
		EXPECT(tx_send(&p, &h, junk, sizeof(junk), 1000), "tx");
	h = hdr(3, 1000, 0, PORT(16), VSOCK_OP_CREDIT_REQUEST, 0);
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	struct vsock_hdr g = {0};
	unsigned updates = 0;
	while (g.fwd_cnt != 160000 &&
	       rx_wait(&p, VSOCK_OP_CREDIT_UPDATE, 1000, &g, NULL, 1000, NULL))
		updates++;
	EXPECT(g.fwd_cnt == 160000, "the card took %u of 160000 bytes", g.fwd_cnt);
	EXPECT(updates <= 6, "%u CREDIT_UPDATEs for 40 packets", updates);
	quiet_for(&a, 200, "enclave 16");
	char c;
	EXPECT(recv(fd, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "the card wrote to the feed");
	/* refusals: production 17, absent 18, CID 0 ports that are no console, an enclave */
	refused(&p, 2000, PORT(17));
	refused(&p, 2001, PORT(18));
	refused(&p, 2002, 61);
	refused(&p, 2003, 9999);
	refused(&p, 2004, PORT(16) + 0x10000);
	h = hdr(17, 5, 0, PORT(16), VSOCK_OP_REQUEST, 0);
	EXPECT(tx_send(&b, &h, NULL, 0, 1000), "tx");
	EXPECT(rx_wait(&b, VSOCK_OP_RST, 5, &g, NULL, 2000, NULL), "enclave 17 reached CID 0");
	/* a packet on a console connection that does not exist: RST */
	h = hdr(3, 2005, 0, PORT(16), VSOCK_OP_RW, 10);
	EXPECT(tx_send(&p, &h, junk, 10, 1000), "tx");
	EXPECT(rx_wait(&p, VSOCK_OP_RST, 2005, &g, NULL, 2000, NULL), "RW without a connection");
	/* 16 ends: the last bytes, then end of stream */
	feed_write(fd, "bye\n", 4);
	close(fd);
	tvm_close(&a);
	collect(&p, &r, 1, 2000, true, NULL);
	EXPECT(r.shut && r.got == sizeof(hist) + sizeof(live) + 4 &&
		   !memcmp(b1 + r.got - 4, "bye\n", 4),
	       "end: shutdown %d, %u bytes", r.shut, r.got);
	h = hdr(3, 1000, 0, PORT(16), VSOCK_OP_RST, 0); /* as Linux answers a full SHUTDOWN */
	EXPECT(tx_send(&p, &h, NULL, 0, 1000), "tx");
	/* kept after the end: a new reader gets it all, then end of stream */
	memcpy(all, hist, sizeof(hist));
	memcpy(all + sizeof(hist), live, sizeof(live));
	uint8_t b2[16384];
	struct rdr r2 = {
	    .port = 1001, .cid = 16, .buf_alloc = 262144, .buf = b2, .cap = sizeof(b2)};
	rdr_connect(&p, &r2);
	collect(&p, &r2, 1, 2000, true, NULL);
	EXPECT(r2.resp && r2.shut && r2.got == sizeof(all) + 4 && !memcmp(b2, all, sizeof(all)),
	       "kept console: %u bytes, shutdown %d", r2.got, r2.shut);
	/* a production enclave takes CID 16: its console is gone */
	tvm_open(&x, esock, 16, 64);
	rx_post(&x, 64, SLOT);
	refused(&p, 2010, PORT(16));
	EXPECT(feed_open(16, ENW_FLAG_DEBUG, NULL, &fd) == EPERM, "a feed for production 16");
	/* and a debug one again: a new, empty console */
	tvm_close(&x);
	tvm_open_flags(&a, esock, 16, 64, ENW_FLAG_DEBUG);
	rx_post(&a, 64, SLOT);
	EXPECT(feed_open(16, ENW_FLAG_DEBUG, NULL, &fd) == 0, "a feed for the new debug 16");
	struct rdr r3 = {
	    .port = 1002, .cid = 16, .buf_alloc = 262144, .buf = b2, .cap = sizeof(b2)};
	rdr_connect(&p, &r3);
	collect(&p, &r3, 1, 300, false, NULL);
	EXPECT(r3.resp && r3.got == 0, "new console: %u old bytes", r3.got);
	close(fd);
	tvm_close(&a);
	collect(&p, &r3, 1, 2000, true, NULL);
	EXPECT(r3.shut && r3.got == 0, "new console's end");
	ping_pub(&p, &b, 100, 2000);
	tvm_close(&b), tvm_close(&p);
}

static uint64_t rss_kib(void)
{
	const char *pid = getenv("CARD_PID");
	if (!pid)
		return 0;
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%s/status", pid);
	FILE *f = fopen(path, "r");
	uint64_t kib = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %lu", &kib) == 1) /* guest memory is shared */
			break;
	if (f)
		fclose(f);
	return kib;
}

/* console-ring: 16 writes 256 KiB before anyone reads and then 32 MiB more; a reader that
 * connects after the first part gets exactly the newest 64 KiB of it; the card's memory
 * does not grow with what an enclave writes. */
static void s_console_ring(void)
{
	struct tvm p, a;
	tvm_open(&p, psock, VSOCK_PARENT_CID, 64);
	tvm_open_flags(&a, esock, 16, 64, ENW_FLAG_DEBUG);
	rx_post(&p, 64, SLOT);
	int fd;
	EXPECT(feed_open(16, ENW_FLAG_DEBUG, NULL, &fd) == 0, "feed");
	static uint8_t big[256 << 10], got[128 << 10];
	fill_text(big, sizeof(big), 5);
	for (size_t i = 0; i < sizeof(big); i += 997) /* not periodic in 64 KiB */
		big[i] = (uint8_t)('A' + i / 997 % 26);
	feed_write(fd, big, sizeof(big));
	usleep(200000);
	struct rdr r = {.port = 7,
			.cid = 16,
			.buf_alloc = 1 << 20,
			.credit = true,
			.buf = got,
			.cap = sizeof(got)};
	rdr_connect(&p, &r);
	collect(&p, &r, 1, 700, false, NULL);
	EXPECT(r.got == 64 << 10 && !memcmp(got, big + sizeof(big) - (64 << 10), 64 << 10),
	       "kept %u bytes, want the newest 65536", r.got);
	uint64_t before = rss_kib();
	static uint8_t chunk[1 << 20];
	fill_text(chunk, sizeof(chunk), 9);
	for (unsigned i = 0; i < 32; i++)
		feed_write(fd, chunk, sizeof(chunk));
	usleep(300000);
	uint64_t after = rss_kib();
	printf("card RssAnon %llu KiB before 32 MiB of console output, %llu KiB after\n",
	       (unsigned long long)before, (unsigned long long)after);
	EXPECT(after <= before + 2048, "the card grew by %llu KiB",
	       (unsigned long long)(after - before));
	close(fd);
	tvm_close(&a), tvm_close(&p);
}

static volatile bool flood_stop;
static void *console_flooder(void *arg)
{
	int fd = *(int *)arg;
	static uint8_t chunk[65536];
	fill_text(chunk, sizeof(chunk), 3);
	while (!flood_stop)
		if (send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
			break;
	return NULL;
}

/* console-slow: 16 floods its console from another thread while the parent has two
 * readers of it: one that never gives credit (4 KiB, never updated), one that reads and
 * says so. The parent's traffic with 17 goes on both ways, the reading reader gets a live
 * stream, the deaf one its 4 KiB and not a byte more, and the deaf one holds up nobody. */
static void s_console_slow(void)
{
	struct tvm p, a, b;
	tvm_open(&p, psock, VSOCK_PARENT_CID, 128);
	tvm_open_flags(&a, esock, 16, 64, ENW_FLAG_DEBUG);
	tvm_open(&b, esock, 17, 64);
	rx_post(&p, 128, SLOT);
	rx_post(&a, 64, SLOT);
	rx_post(&b, 64, SLOT);
	int fd;
	EXPECT(feed_open(16, ENW_FLAG_DEBUG, NULL, &fd) == 0, "feed");
	static uint8_t sink[1];
	struct rdr rs[2] = {
	    {.port = 1, .cid = 16, .buf_alloc = 4096, .buf = sink, .cap = 0},
	    {.port = 2, .cid = 16, .buf_alloc = 262144, .credit = true, .buf = sink, .cap = 0},
	};
	rdr_connect(&p, &rs[0]);
	rdr_connect(&p, &rs[1]);
	pthread_t t;
	EXPECT(pthread_create(&t, NULL, console_flooder, &fd) == 0, "thread");
	uint64_t end = now_ms() + 3000, worst = 0;
	unsigned pings = 0, back = 0;
	while (now_ms() < end) {
		uint64_t l = ping_pub(&p, &b, 1000, 3000);
		worst = l > worst ? l : worst;
		pings++;
		/* 17 -> parent: found among the console's packets */
		struct vsock_hdr h = hdr(17, 50, 3, 51, VSOCK_OP_RW, 10);
		EXPECT(tx_send(&b, &h, "0123456789", 10, 1000), "tx");
		unsigned other = 0;
		uint64_t t0 = now_ms();
		while (!other && now_ms() - t0 < 2000)
			collect(&p, rs, 2, 20, false, &other);
		EXPECT(other, "17's packet to the parent lost behind the console");
		back++;
		collect(&p, rs, 2, 30, false, NULL);
	}
	flood_stop = true;
	shutdown(fd, SHUT_RDWR); /* ends the flooder's send too */
	pthread_join(t, NULL);
	close(fd);
	printf("during the flood: %u pings to 17 (worst %llu ms), %u packets back; reader "
	       "with credit %u bytes, reader without %u\n",
	       pings, (unsigned long long)worst, back, rs[1].got, rs[0].got);
	EXPECT(worst < 1000, "worst ping %llu ms", (unsigned long long)worst);
	EXPECT(rs[0].got == 4096, "the deaf reader got %u bytes, its credit is 4096", rs[0].got);
	EXPECT(rs[1].got > (256u << 10), "the reading reader got only %u bytes", rs[1].got);
	tvm_close(&a), tvm_close(&b), tvm_close(&p);
}

/* console-many: readers beyond the card's bounds are reset; the others keep working. */
static void s_console_many(void)
{
	struct tvm p, a;
	tvm_open(&p, psock, VSOCK_PARENT_CID, 256);
	tvm_open_flags(&a, esock, 16, 64, ENW_FLAG_DEBUG);
	rx_post(&p, 256, SLOT);
	int fd;
	EXPECT(feed_open(16, ENW_FLAG_DEBUG, NULL, &fd) == 0, "feed");
	feed_write(fd, "hello\n", 6);
	static uint8_t bufs[20][64];
	struct rdr rs[20];
	for (unsigned i = 0; i < 20; i++) {
		rs[i] = (struct rdr){
		    .port = 100 + i, .cid = 16, .buf_alloc = 65536, .buf = bufs[i], .cap = 64};
		rdr_connect(&p, &rs[i]);
	}
	collect(&p, rs, 20, 500, false, NULL);
	unsigned ok = 0, reset = 0;
	for (unsigned i = 0; i < 20; i++) {
		ok += rs[i].resp && rs[i].got == 6 && !memcmp(rs[i].buf, "hello\n", 6);
		reset += rs[i].rst && !rs[i].resp;
	}
	printf("20 readers of one console: %u served, %u reset\n", ok, reset);
	EXPECT(ok == 8 && reset == 12, "served %u reset %u", ok, reset);
	close(fd);
	tvm_close(&a), tvm_close(&p);
}

const struct scen console_scenarios[] = {
    {"console", s_console},
    {"console-ring", s_console_ring},
    {"console-slow", s_console_slow},
    {"console-many", s_console_many},
    {NULL, NULL},
};

void console_scen_init(const char *parent, const char *enclaves)
{
	psock = parent;
	esock = enclaves;
}
