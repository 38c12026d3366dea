/* A minimal SNTP client for the test guest (busybox has no NTP applet): asks SERVER:123
 * once (up to 5 tries, 2 s each), checks the reply (server mode, our transmit time as its
 * origin, stratum 1..15), prints stratum, offset and delay, and with -s steps the clock
 * by the offset. Static: the guest image has no libc.
 *   sntp [-s] A.B.C.D
 */
#include <arpa/inet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define UNIX_OFFSET 2208988800ull

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t to_ntp(double t)
{
	double s = t + (double)UNIX_OFFSET;
	uint64_t sec = (uint64_t)s;
	return sec << 32 | (uint64_t)((s - (double)sec) * 4294967296.0);
}

static double from_ntp(const uint8_t *p)
{
	uint32_t s = (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
	uint32_t f = (uint32_t)p[4] << 24 | p[5] << 16 | p[6] << 8 | p[7];
	return (double)s - (double)UNIX_OFFSET + (double)f / 4294967296.0;
}

int main(int argc, char **argv)
{
	int set = argc > 2 && !strcmp(argv[1], "-s");
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(123)};
	if (argc < 2 || inet_pton(AF_INET, argv[argc - 1], &sa.sin_addr) != 1) {
		fprintf(stderr, "usage: sntp [-s] A.B.C.D\n");
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("sntp: socket");
		return 1;
	}
	for (int attempt = 0; attempt < 5; attempt++) {
		uint8_t q[48] = {0x23}, r[64]; /* v4, client */
		double t1 = now();
		uint64_t x = to_ntp(t1);
		for (int i = 0; i < 8; i++)
			q[40 + i] = (uint8_t)(x >> (56 - 8 * i));
		if (send(fd, q, sizeof(q), 0) != sizeof(q)) {
			perror("sntp: send");
			sleep(1);
			continue;
		}
		struct pollfd p = {.fd = fd, .events = POLLIN};
		while (poll(&p, 1, 2000) == 1) {
			ssize_t n = recv(fd, r, sizeof(r), 0);
			double t4 = now();
			if (n < 48 || (r[0] & 7) != 4 || memcmp(r + 24, q + 40, 8) || r[1] < 1 ||
			    r[1] > 15)
				continue;
			double t2 = from_ntp(r + 32), t3 = from_ntp(r + 40);
			double offset = ((t2 - t1) + (t3 - t4)) / 2, delay = (t4 - t1) - (t3 - t2);
			printf("sntp: stratum %u offset %+.6f delay %.6f\n", r[1], offset, delay);
			if (set) {
				double t = now() + offset;
				struct timespec ts = {(time_t)t,
						      (long)((t - (double)(time_t)t) * 1e9)};
				if (clock_settime(CLOCK_REALTIME, &ts) < 0) {
					perror("sntp: clock_settime");
					return 1;
				}
			}
			return 0;
		}
	}
	fprintf(stderr, "sntp: no answer from %s\n", argv[argc - 1]);
	return 1;
}
