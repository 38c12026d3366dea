/* Guest side of tests/system/test_vsock.py (static: the guest image has no libc), plain
 * AF_VSOCK over the stock virtio-vsock driver:
 *
 *   vsock-test serve PORT BYTES        the parent: listen on PORT, take one connection,
 *                                      heartbeat (read 0xB7, answer 0xB7), read BYTES and
 *                                      send back their checksum, then send BYTES of its own
 *   vsock-test connect CID PORT BYTES  the enclave: connect (retrying a reset or refused
 *                                      connect for up to 120 s while the peer boots),
 *                                      heartbeat, send BYTES, check the peer's checksum of
 *                                      them, read the peer's BYTES and print their checksum
 *   vsock-test refused CID PORT        one connect; prints the errno it fails with
 *
 * Data: a xorshift stream seeded per side, so each side can recompute what the other must
 * have received; checksum FNV-1a 64. Lines start with "vsock-" for the test to find.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

#define HEARTBEAT 0xB7
#define CHUNK 65536

static uint64_t fnv(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

static void fill(uint64_t *state, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t x = *state;
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		*state = x;
		p[i] = (uint8_t)x;
	}
}

static void die(const char *what)
{
	printf("vsock-error: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void read_all(int fd, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EPIPE;
			die("read");
		}
		p += r;
		n -= (size_t)r;
	}
}

static void write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;
	while (n) {
		ssize_t r = write(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			die("write");
		p += r;
		n -= (size_t)r;
	}
}

/* Sends n bytes of the stream seeded with seed; returns their checksum. */
static uint64_t send_stream(int fd, uint64_t seed, uint64_t n)
{
	static uint8_t buf[CHUNK];
	uint64_t h = 0xcbf29ce484222325ull, st = seed;
	while (n) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		fill(&st, buf, k);
		h = fnv(h, buf, k);
		write_all(fd, buf, k);
		n -= k;
	}
	return h;
}

/* Reads n bytes; returns their checksum. */
static uint64_t recv_stream(int fd, uint64_t n)
{
	static uint8_t buf[CHUNK];
	uint64_t h = 0xcbf29ce484222325ull;
	while (n) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		ssize_t r = read(fd, buf, k);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EPIPE;
			die("read stream");
		}
		h = fnv(h, buf, (size_t)r);
		n -= (uint64_t)r;
	}
	return h;
}

static struct sockaddr_vm addr(unsigned cid, unsigned port)
{
	struct sockaddr_vm a;
	memset(&a, 0, sizeof(a));
	a.svm_family = AF_VSOCK;
	a.svm_cid = cid;
	a.svm_port = port;
	return a;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

static int serve(unsigned port, uint64_t bytes)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	struct sockaddr_vm a = addr(VMADDR_CID_ANY, port);
	if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 4) < 0)
		die("bind/listen");
	printf("vsock-serve: listening on port %u\n", port);
	fflush(stdout);
	struct sockaddr_vm peer;
	socklen_t len = sizeof(peer);
	int c = accept(s, (struct sockaddr *)&peer, &len);
	if (c < 0)
		die("accept");
	printf("vsock-serve: connection from cid %u port %u\n", peer.svm_cid, peer.svm_port);
	uint8_t hb;
	read_all(c, &hb, 1);
	if (hb != HEARTBEAT) {
		printf("vsock-error: heartbeat byte 0x%02x\n", hb);
		return 1;
	}
	write_all(c, &hb, 1);
	printf("vsock-serve: heartbeat ok\n");
	double t0 = now();
	uint64_t h = recv_stream(c, bytes);
	double t1 = now();
	printf("vsock-serve: received %llu bytes sum %016llx in %.2fs\n", (unsigned long long)bytes,
	       (unsigned long long)h, t1 - t0);
	write_all(c, &h, sizeof(h));
	uint64_t mine = send_stream(c, 0x5eed0002, bytes);
	printf("vsock-serve: sent %llu bytes sum %016llx\n", (unsigned long long)bytes,
	       (unsigned long long)mine);
	uint8_t end;
	read_all(c, &end, 1); /* the peer says it has everything */
	close(c);
	close(s);
	printf("vsock-serve: done\n");
	return 0;
}

static int connect_to(unsigned cid, unsigned port, uint64_t bytes)
{
	double deadline = now() + 120;
	int s, tries = 0;
	for (;;) {
		s = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (s < 0)
			die("socket");
		struct sockaddr_vm a = addr(cid, port);
		tries++;
		if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		int e = errno;
		close(s);
		if ((e != ECONNRESET && e != ECONNREFUSED && e != ETIMEDOUT) || now() > deadline) {
			errno = e;
			die("connect");
		}
		usleep(200000);
	}
	printf("vsock-connect: connected to cid %u port %u after %d tries\n", cid, port, tries);
	uint8_t hb = HEARTBEAT;
	write_all(s, &hb, 1);
	hb = 0;
	read_all(s, &hb, 1);
	if (hb != HEARTBEAT) {
		printf("vsock-error: heartbeat answer 0x%02x\n", hb);
		return 1;
	}
	printf("vsock-connect: heartbeat ok\n");
	double t0 = now();
	uint64_t mine = send_stream(s, 0x5eed0001, bytes);
	uint64_t theirs;
	read_all(s, &theirs, sizeof(theirs));
	double t1 = now();
	printf("vsock-connect: sent %llu bytes sum %016llx, peer got %016llx: %s (%.2fs)\n",
	       (unsigned long long)bytes, (unsigned long long)mine, (unsigned long long)theirs,
	       mine == theirs ? "match" : "MISMATCH", t1 - t0);
	uint64_t got = recv_stream(s, bytes);
	/* what the peer's stream must have been */
	uint64_t want = 0xcbf29ce484222325ull, st = 0x5eed0002;
	static uint8_t buf[CHUNK];
	for (uint64_t n = bytes; n;) {
		size_t k = n < CHUNK ? (size_t)n : CHUNK;
		fill(&st, buf, k);
		want = fnv(want, buf, k);
		n -= k;
	}
	printf("vsock-connect: received %llu bytes sum %016llx, expected %016llx: %s\n",
	       (unsigned long long)bytes, (unsigned long long)got, (unsigned long long)want,
	       got == want ? "match" : "MISMATCH");
	uint8_t end = 1;
	write_all(s, &end, 1);
	close(s);
	return mine == theirs && got == want ? 0 : 1;
}

static int refused(unsigned cid, unsigned port)
{
	int s = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (s < 0)
		die("socket");
	struct sockaddr_vm a = addr(cid, port);
	int r = connect(s, (struct sockaddr *)&a, sizeof(a));
	int e = errno;
	const char *name = r == 0	       ? "connected"
			   : e == ECONNRESET   ? "ECONNRESET"
			   : e == ETIMEDOUT    ? "ETIMEDOUT"
			   : e == ECONNREFUSED ? "ECONNREFUSED"
			   : e == ENETUNREACH  ? "ENETUNREACH"
			   : e == EHOSTUNREACH ? "EHOSTUNREACH"
					       : strerror(e);
	printf("vsock-refused: cid %u port %u: %s\n", cid, port, name);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "serve"))
		return serve((unsigned)strtoul(argv[2], NULL, 0), strtoull(argv[3], NULL, 0));
	if (argc == 5 && !strcmp(argv[1], "connect"))
		return connect_to((unsigned)strtoul(argv[2], NULL, 0),
				  (unsigned)strtoul(argv[3], NULL, 0), strtoull(argv[4], NULL, 0));
	if (argc == 4 && !strcmp(argv[1], "refused"))
		return refused((unsigned)strtoul(argv[2], NULL, 0),
			       (unsigned)strtoul(argv[3], NULL, 0));
	fprintf(stderr, "usage: vsock-test serve PORT BYTES | connect CID PORT BYTES | "
			"refused CID PORT\n");
	return 2;
}
