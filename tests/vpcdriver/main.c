/* vpc-driver: plays a guest's virtio-net driver against a VPC card (or any vhost-user net
 * back end, such as dpdk-testpmd's vhost PMD).
 *
 *   vpc-driver run SOCKET [--no-config] [--pairs N]
 *       commands on stdin, one per line, answers on stdout:
 *         config           -> "config mac=M status=S pairs=P mtu=U" (or "config none")
 *         send HEX         -> "sent" once the device took the frame back (or "error ...")
 *         sendq P HEX      -> the same on queue pair P
 *         burst P N HEX    -> N copies queued at once, one kick: "sent N" (N <= free slots)
 *         recv MS          -> "frame HEX P" (P: the pair it came on) or "none" after MS ms
 *         ctrl CLASS CMD [HEX] -> "ack N": a control-queue command (with --pairs > 1)
 *         quit
 *   vpc-driver bench --tx SOCKET --rx SOCKET --frame HEX [--seconds N] [--batch N]
 *                    [--sleep] [--no-config]
 *       sends the frame on the first device's tx queue as fast as it is taken and counts
 *       what arrives on the second one's rx queue: one line
 *       "sent=N received=N seconds=S pps=X gbps=Y bytes=B". The tx queue is refilled
 *       once --batch (default 64) buffers are free.
 *   vpc-driver imds SOCKET [--count N] [--ip A.B.C.D] [--gap-us N]
 *       the IMDS latency benchmark's guest (tests/vpcdriver/imds.c)
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"
#include "vnd.h"

#define MAX_FRAME 9300

int cmd_imds(int argc, char **argv); /* imds.c */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int unhex(const char *s, uint8_t *out, size_t max)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		n--;
	if (n % 2 || n / 2 > max)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (int)(n / 2);
}

static void print_frame(unsigned pair, const uint8_t *f, size_t len, void *arg)
{
	(void)arg;
	fputs("frame ", stdout);
	for (size_t i = 0; i < len; i++)
		printf("%02x", f[i]);
	printf(" %u\n", pair);
}

/* Frames that arrived but were not asked for yet. */
struct backlog {
	uint8_t b_frames[64][MAX_FRAME];
	size_t b_len[64];
	unsigned b_pair[64];
	unsigned b_head, b_n;
};

static void keep_frame(unsigned pair, const uint8_t *f, size_t len, void *arg)
{
	struct backlog *b = arg;
	if (b->b_n == 64 || len > MAX_FRAME)
		return;
	unsigned i = (b->b_head + b->b_n++) % 64;
	memcpy(b->b_frames[i], f, len);
	b->b_len[i] = len;
	b->b_pair[i] = pair;
}

static int cmd_run(const char *path, bool config, unsigned pairs)
{
	static struct vnd d;
	static struct backlog bl;
	static uint8_t frame[MAX_FRAME];
	char err[512], line[2 * MAX_FRAME + 64];
	if (vnd_open(&d, path, config, pairs, err, sizeof(err))) {
		fprintf(stderr, "vpc-driver: %s: %s\n", path, err);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin)) {
		if (!strncmp(line, "config", 6)) {
			if (d.d_config)
				printf(
				    "config mac=%02x:%02x:%02x:%02x:%02x:%02x status=%u pairs=%u "
				    "mtu=%u\n",
				    d.d_mac[0], d.d_mac[1], d.d_mac[2], d.d_mac[3], d.d_mac[4],
				    d.d_mac[5], d.d_status, d.d_pairs, d.d_mtu);
			else
				printf("config none\n");
		} else if (!strncmp(line, "ctrl ", 5)) {
			unsigned cls, cmd;
			char hex[256] = "";
			uint8_t data[64], ack;
			int n = sscanf(line + 5, "%u %u %255s", &cls, &cmd, hex) < 2
				    ? -1
				    : unhex(hex, data, sizeof(data));
			if (n < 0)
				printf("error usage: ctrl CLASS CMD [HEX]\n");
			else if (vnd_ctrl(&d, (uint8_t)cls, (uint8_t)cmd, data, (size_t)n, &ack,
					  err, sizeof(err)))
				printf("error %s\n", err);
			else
				printf("ack %u\n", ack);
		} else if (!strncmp(line, "send ", 5) || !strncmp(line, "sendq ", 6) ||
			   !strncmp(line, "burst ", 6)) {
			/* send HEX | sendq PAIR HEX | burst PAIR COUNT HEX (one kick for all) */
			unsigned q = 0, count = 1;
			char *h = line + 5;
			if (line[0] == 'b' || line[4] == 'q') {
				q = (unsigned)strtoul(line + 6, &h, 10);
				if (line[0] == 'b')
					count = (unsigned)strtoul(h, &h, 10);
				while (*h == ' ')
					h++;
			}
			int n = unhex(h, frame, sizeof(frame));
			unsigned added = 0;
			if (n < 0 || count < 1) {
				printf("error bad hex or count\n");
			} else if ((added = vnd_tx_addq(&d, q, frame, (size_t)n, 0, count)) < 1) {
				printf("error tx ring full or no pair %u\n", q);
			} else {
				vnd_tx_kickq(&d, q);
				int got = 0, k = 0;
				double end = now_s() + 5;
				while ((unsigned)got < added && now_s() < end) {
					k = vnd_tx_reap(&d, err, sizeof(err));
					if (k < 0)
						break;
					got += k;
					if ((unsigned)got < added)
						vnd_wait(&d, false, 10);
				}
				if (k < 0)
					printf("error %s\n", err);
				else if ((unsigned)got < added)
					printf("error tx timeout\n");
				else if (line[0] == 'b')
					printf("sent %u\n", added);
				else
					printf("sent\n");
			}
		} else if (!strncmp(line, "recv", 4)) {
			int ms = atoi(line + 4);
			double end = now_s() + ms / 1000.0;
			int r = 0;
			for (;;) {
				r = vnd_rx_poll(&d, keep_frame, &bl, NULL, err, sizeof(err));
				if (r < 0 || bl.b_n || now_s() >= end)
					break;
				vnd_wait(&d, true, 5);
			}
			if (r < 0) {
				printf("error %s\n", err);
			} else if (bl.b_n) {
				print_frame(bl.b_pair[bl.b_head], bl.b_frames[bl.b_head],
					    bl.b_len[bl.b_head], NULL);
				bl.b_head = (bl.b_head + 1) % 64;
				bl.b_n--;
			} else {
				printf("none\n");
			}
		} else if (!strncmp(line, "quit", 4)) {
			break;
		} else {
			printf("error unknown command\n");
		}
		fflush(stdout);
	}
	vnd_close(&d);
	return 0;
}

static int cmd_bench(int argc, char **argv)
{
	const char *txp = NULL, *rxp = NULL, *hex = NULL;
	double seconds = 5;
	bool config = true;
	unsigned batch = 64;
	bool sleep_idle = false;
	for (int i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--tx") && i + 1 < argc)
			txp = argv[++i];
		else if (!strcmp(argv[i], "--rx") && i + 1 < argc)
			rxp = argv[++i];
		else if (!strcmp(argv[i], "--frame") && i + 1 < argc)
			hex = argv[++i];
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--no-config"))
			config = false;
		else if (!strcmp(argv[i], "--sleep"))
			sleep_idle = true;
		else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
			batch = (unsigned)atoi(argv[++i]);
		else
			die_usage("bench: unknown option %s", argv[i]);
	}
	if (batch < 1 || batch > VND_QSIZE)
		die_usage("bench: --batch: 1..%d", VND_QSIZE);
	if (!txp || !rxp || !hex)
		die_usage("bench: --tx SOCKET --rx SOCKET --frame HEX are required");
	static uint8_t frame[MAX_FRAME];
	int flen = unhex(hex, frame, sizeof(frame));
	if (flen < 14)
		die_usage("bench: --frame: expected at least 14 bytes of hex");
	static struct vnd tx, rx;
	char err[512];
	if (vnd_open(&tx, txp, config, 1, err, sizeof(err)))
		die("%s: %s", txp, err);
	if (vnd_open(&rx, rxp, config, 1, err, sizeof(err)))
		die("%s: %s", rxp, err);
	uint64_t sent = 0, received = 0, bytes = 0;
	double start = now_s(), end = start + seconds, t = start;
	unsigned iter = 0;
	while (t < end) {
		int k = vnd_tx_reap(&tx, err, sizeof(err));
		if (k < 0)
			die("tx: %s", err);
		/* Refill in big batches (fewer kicks). The driver busy-polls (a back end that
		 * polls, as testpmd, sends no interrupts); --sleep waits on the call eventfds
		 * when nothing moved instead. */
		unsigned a = 0;
		if (tx.d_tx->r_nfree >= batch) {
			a = vnd_tx_add(&tx, frame, (size_t)flen, 0, tx.d_tx->r_nfree);
			sent += a;
			vnd_tx_kick(&tx);
		}
		int r = vnd_rx_poll(&rx, NULL, NULL, &bytes, err, sizeof(err));
		if (r < 0)
			die("rx: %s", err);
		received += (unsigned)r;
		/* The tx side's rx queue may get replies (the card's ARP, ...): keep it empty. */
		if (vnd_rx_poll(&tx, NULL, NULL, NULL, err, sizeof(err)) < 0)
			die("rx on the tx device: %s", err);
		if (!a && !r && sleep_idle) {
			struct pollfd p[2] = {{.fd = tx.d_tx->r_vr.vr_call, .events = POLLIN},
					      {.fd = rx.d_rx->r_vr.vr_call, .events = POLLIN}};
			uint64_t v;
			if (poll(p, 2, 1) > 0)
				for (int i = 0; i < 2; i++)
					if (p[i].revents && read(p[i].fd, &v, sizeof(v)) < 0)
						continue;
			t = now_s();
		} else if (++iter % 64 == 0 || (!a && !r)) {
			t = now_s();
		}
	}
	double el = now_s() - start;
	printf("sent=%llu received=%llu seconds=%.3f pps=%.0f gbps=%.3f bytes=%llu\n",
	       (unsigned long long)sent, (unsigned long long)received, el, received / el,
	       bytes * 8 / el / 1e9, (unsigned long long)bytes);
	vnd_close(&tx);
	vnd_close(&rx);
	return 0;
}

int main(int argc, char **argv)
{
	util_set_prog("vpc-driver");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && !strcmp(argv[1], "run")) {
		bool config = true;
		unsigned pairs = 1;
		for (int i = 3; i < argc; i++) {
			if (!strcmp(argv[i], "--no-config"))
				config = false;
			else if (!strcmp(argv[i], "--no-seal"))
				vu_front_no_seal = true; /* offer memory that could shrink */
			else if (!strcmp(argv[i], "--pairs") && i + 1 < argc)
				pairs = (unsigned)atoi(argv[++i]);
			else
				die_usage("run: unknown option %s", argv[i]);
		}
		return cmd_run(argv[2], config, pairs);
	}
	if (argc >= 2 && !strcmp(argv[1], "bench"))
		return cmd_bench(argc - 2, argv + 2);
	if (argc >= 2 && !strcmp(argv[1], "imds"))
		return cmd_imds(argc - 2, argv + 2);
	fprintf(
	    stderr,
	    "usage: vpc-driver run SOCKET [--no-config] [--no-seal] [--pairs N] | vpc-driver bench "
	    "--tx S0 "
	    "--rx S1 --frame HEX [--seconds N] [--no-config]\n");
	return 2;
}
