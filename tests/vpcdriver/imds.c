/* vpc-driver imds: the IMDS latency benchmark's guest side in C (bench/imds.py), so the
 * figure is the card's and not a script's. One TCP connection from A.B.C.D to
 * 169.254.169.254:80 written frame by frame: ARP for the address (the gateway MAC), the
 * handshake, a token PUT, then N GETs of meta-data/instance-id with the token on the same
 * connection, each timed from the kick of its frame until the whole reply (by its
 * Content-Length) is on the rx queue; the ACK for a reply is sent after its sample.
 * Waiting for it busy-polls the rx queue, or with --irq polls once and then sleeps on the
 * rx call eventfd (the card's interrupt), as a guest's vCPU halts until its interrupt
 * (on a one-CPU host, such as the emulated host, a spinning harness shares the CPU with
 * the card it waits for). Requests are paced (--gap-us,
 * default 3000) under the link-local allowance. Prints "samples=N p50_us=X p90_us=Y p99_us=Z
 * max_us=W". With --arp the samples are ARP requests for 169.254.169.254 instead (answered by the
 * card without TCP): the harness's own floor on the same machine at the same moment.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/be.h"
#include "lib/util.h"
#include "vnd.h"

static struct vnd d;
static uint8_t gw[6];
static bool have_gw, synack, fin, irq;
static uint32_t my_ip, imds_ip, seq, ack;
static uint16_t sport;
static char resp[65536];
static size_t rlen;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint16_t csum(const uint8_t *p, size_t n, uint32_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)(p[n - 1] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static void xmit(const uint8_t *f, size_t n)
{
	char err[256];
	if (vnd_tx_add(&d, f, n, 0, 1) != 1)
		die("imds: tx ring full");
	vnd_tx_kick(&d);
	for (int got = 0; got < 1;) {
		int k = vnd_tx_reap(&d, err, sizeof(err));
		if (k < 0)
			die("imds: %s", err);
		got += k;
	}
}

static void send_tcp(uint8_t flags, const void *data, size_t len)
{
	static uint8_t f[2048];
	memcpy(f, gw, 6);
	memcpy(f + 6, d.d_mac, 6);
	be16_put(f + 12, 0x0800);
	uint8_t *ip = f + 14, *t = ip + 20;
	memset(ip, 0, 40);
	ip[0] = 0x45;
	be16_put(ip + 2, (uint16_t)(40 + len));
	ip[6] = 0x40;
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, &my_ip, 4);
	memcpy(ip + 16, &imds_ip, 4);
	be16_put(ip + 10, csum(ip, 20, 0));
	be16_put(t, sport);
	be16_put(t + 2, 80);
	be32_put(t + 4, seq);
	be32_put(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = flags;
	be16_put(t + 14, 65535);
	memcpy(t + 20, data, len);
	uint32_t ps = 0;
	ps += (uint32_t)(ip[12] << 8 | ip[13]) + (uint32_t)(ip[14] << 8 | ip[15]);
	ps += (uint32_t)(ip[16] << 8 | ip[17]) + (uint32_t)(ip[18] << 8 | ip[19]);
	ps += 6 + 20 + (uint32_t)len;
	be16_put(t + 16, csum(t, 20 + len, ps));
	xmit(f, 14 + 40 + len);
	seq += (uint32_t)len + ((flags & 0x03) ? 1 : 0);
}

static void on_rx(unsigned pair, const uint8_t *f, size_t n, void *arg)
{
	(void)pair;
	(void)arg;
	if (n >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[21] == 2 &&
	    !memcmp(f + 28, &imds_ip, 4)) {
		memcpy(gw, f + 22, 6);
		have_gw = true;
		return;
	}
	if (n < 54 || f[12] != 0x08 || f[13] != 0x00 || f[23] != 6)
		return;
	const uint8_t *ip = f + 14, *t = ip + (ip[0] & 15) * 4;
	size_t tot = (size_t)(ip[2] << 8 | ip[3]);
	if ((size_t)(t - f) + 20 > n || (t[2] << 8 | t[3]) != sport)
		return;
	size_t off = (size_t)(t[12] >> 4) * 4;
	const uint8_t *data = t + off;
	size_t dl = tot - (size_t)(data - ip);
	uint8_t fl = t[13];
	uint32_t s = be32_get(t + 4);
	if ((fl & 0x12) == 0x12) {
		ack = s + 1;
		synack = true;
		return;
	}
	if (dl && s == ack && rlen + dl < sizeof(resp)) {
		memcpy(resp + rlen, data, dl);
		rlen += dl;
		ack += (uint32_t)dl;
	}
	if (fl & 0x05)
		fin = true;
}

static void poll_rx(void)
{
	char err[256];
	int n = vnd_rx_poll(&d, on_rx, NULL, NULL, err, sizeof(err));
	if (n < 0)
		die("imds: %s", err);
	if (n == 0 && irq) /* the call eventfd latches: a signal since the poll is not lost */
		vnd_wait(&d, true, 1);
}

/* Waits for one whole reply in resp; returns its body (NUL-terminated). */
static char *reply(uint64_t deadline)
{
	for (;;) {
		poll_rx();
		resp[rlen] = 0;
		char *e = strstr(resp, "\r\n\r\n"), *cl = strcasestr(resp, "Content-Length:");
		if (e && cl && rlen - (size_t)(e + 4 - resp) >= strtoul(cl + 15, NULL, 10))
			return e + 4;
		if (fin || now_ns() > deadline)
			die("imds: no whole reply (%zu bytes: %.200s)", rlen, resp);
	}
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int cmd_imds(int argc, char **argv)
{
	const char *path = NULL, *ipa = "10.0.0.5";
	unsigned n = 500, gap_us = 3000;
	bool arp = false;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--count") && i + 1 < argc)
			n = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--ip") && i + 1 < argc)
			ipa = argv[++i];
		else if (!strcmp(argv[i], "--arp"))
			arp = true;
		else if (!strcmp(argv[i], "--irq"))
			irq = true;
		else if (!strcmp(argv[i], "--gap-us") && i + 1 < argc)
			gap_us = (unsigned)atoi(argv[++i]);
		else if (!path)
			path = argv[i];
		else
			die_usage("imds: unknown argument %s", argv[i]);
	}
	if (!path || n < 1 || n > 1000000 || inet_pton(AF_INET, ipa, &my_ip) != 1)
		die_usage(
		    "usage: vpc-driver imds SOCKET [--count N] [--ip A.B.C.D] [--gap-us N] [--arp] "
		    "[--irq]");
	inet_pton(AF_INET, "169.254.169.254", &imds_ip);
	sport = (uint16_t)(40000 + getpid() % 20000); /* a new connection each run */
	char err[512];
	if (vnd_open(&d, path, true, 1, err, sizeof(err)))
		die("imds: %s: %s", path, err);
	/* ARP for the IMDS address: the gateway's MAC */
	uint8_t a[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	memcpy(a + 6, d.d_mac, 6);
	const uint8_t hdr[10] = {0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1};
	memcpy(a + 12, hdr, 10);
	memcpy(a + 22, d.d_mac, 6);
	memcpy(a + 28, &my_ip, 4);
	memcpy(a + 38, &imds_ip, 4);
	xmit(a, sizeof(a));
	uint64_t dl = now_ns() + 5000000000ull;
	while (!have_gw && now_ns() < dl)
		poll_rx();
	if (!have_gw)
		die("imds: no ARP reply for 169.254.169.254");
	seq = 1000;
	send_tcp(0x02, NULL, 0);
	while (!synack && now_ns() < dl)
		poll_rx();
	if (!synack)
		die("imds: no SYN+ACK");
	send_tcp(0x10, NULL, 0);
	static const char put[] = "PUT /latest/api/token HTTP/1.1\r\n"
				  "X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n";
	send_tcp(0x18, put, sizeof(put) - 1);
	char tok[128];
	snprintf(tok, sizeof(tok), "%.56s", reply(now_ns() + 5000000000ull));
	send_tcp(0x10, NULL, 0);
	char req[512];
	int rl = snprintf(req, sizeof(req),
			  "GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: 169.254.169.254\r\n"
			  "X-aws-ec2-metadata-token: %s\r\n\r\n",
			  tok);
	uint64_t *lat = calloc(n, sizeof(*lat));
	if (!lat)
		die("imds: out of memory");
	for (unsigned i = 0; arp && i < n + 20; i++) {
		usleep(gap_us);
		have_gw = false;
		uint64_t t0 = now_ns();
		xmit(a, sizeof(a));
		while (!have_gw)
			if (now_ns() > t0 + 5000000000ull)
				die("imds: no ARP reply");
			else
				poll_rx();
		if (i >= 20)
			lat[i - 20] = now_ns() - t0;
	}
	for (unsigned i = 0; !arp && i < n + 20; i++) {
		usleep(gap_us);
		rlen = 0;
		uint64_t t0 = now_ns();
		send_tcp(0x18, req, (size_t)rl);
		char *body = reply(t0 + 5000000000ull);
		uint64_t t1 = now_ns();
		if (strncmp(resp, "HTTP/1.1 200 ", 13) || strncmp(body, "i-", 2))
			die("imds: unexpected reply %.200s", resp);
		send_tcp(0x10, NULL, 0);
		if (i >= 20) /* warm-up */
			lat[i - 20] = t1 - t0;
	}
	qsort(lat, n, sizeof(*lat), cmp);
#define PCT(q) (lat[(size_t)((n - 1) * (q))] / 1000)
	printf("samples=%u p50_us=%llu p90_us=%llu p99_us=%llu max_us=%llu\n", n,
	       (unsigned long long)PCT(0.5), (unsigned long long)PCT(0.9),
	       (unsigned long long)PCT(0.99), (unsigned long long)(lat[n - 1] / 1000));
	send_tcp(0x11, NULL, 0);
	free(lat);
	vnd_close(&d);
	return 0;
}
