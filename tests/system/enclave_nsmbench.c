/* The NSM benchmark's enclave payload (bench/enclave.py; tools/enclave_eif.sh builds it into
 * build/enclave/nsmbench.eif): inside an enclave, connect to the parent over vsock (CID 3,
 * port argv[1]; retried for 60 s), read a nonce as tests/system/enclave_parent.c sends it
 * (one length byte, then at most 64 bytes), then time argv[2] NSM Attestation requests
 * ({"Attestation": {user_data: null, nonce, public_key: null}}, NSM_IOCTL_RAW on the stock
 * driver's /dev/nsm), each on CLOCK_MONOTONIC around its ioctl, and send one text line back
 * as a 4-byte big-endian length and the bytes (enclave_parent.c prints it as hex):
 *   "NSMBENCH n=N p50_us=.. p99_us=.. max_us=.. mean_us=.. bytes=.. rtt_p50_us=..
 *    rtt_p99_us=.. rtt_max_us=.."
 * where rtt_* are N DescribeNSM requests timed the same way after the Attestations: the
 * round trip through the driver, the virtqueue and the card without a signature.
 * Static: the enclave's ramdisk has no libc. Exit status 0 when every request succeeded and
 * the line was sent. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lib/be.h"

/* The driver's uapi (include/uapi/linux/nsm.h, Linux 6.8+). */
struct nsm_iovec {
	uint64_t addr, len;
};
struct nsm_raw {
	struct nsm_iovec request, response;
};
#define NSM_IOCTL_RAW _IOWR(0x0A, 0, struct nsm_raw)
#define NSM_RESPONSE_MAX 0x3000
#define MAX_N 10000

static int io_all(int fd, void *buf, size_t len, int wr)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = wr ? write(fd, p, len) : read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int send_line(int s, const char *line)
{
	uint8_t be[4];
	be32_put(be, (uint32_t)strlen(line));
	return io_all(s, be, 4, 1) || io_all(s, (void *)line, strlen(line), 1);
}

int main(int argc, char **argv)
{
	int n = argc == 3 ? atoi(argv[2]) : 0;
	if (n < 1 || n > MAX_N) {
		fprintf(stderr, "usage: enclave-nsmbench PORT COUNT (1..%d)\n", MAX_N);
		return 2;
	}
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = 3, .svm_port = (unsigned)atoi(argv[1])};
	int s = -1;
	for (int i = 0; i < 300; i++) {
		s = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (s >= 0)
			close(s);
		s = -1;
		usleep(200000);
	}
	if (s < 0) {
		fprintf(stderr, "enclave-nsmbench: connect to 3:%s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	uint8_t nlen, nonce[64];
	if (io_all(s, &nlen, 1, 0) || nlen > sizeof(nonce) || io_all(s, nonce, nlen, 0)) {
		fprintf(stderr, "enclave-nsmbench: no nonce from the parent\n");
		return 1;
	}
	uint8_t req[128], *p = req;
	*p++ = 0xA1;
	*p++ = 0x6B;
	memcpy(p, "Attestation", 11), p += 11;
	*p++ = 0xA3;
	*p++ = 0x69;
	memcpy(p, "user_data", 9), p += 9;
	*p++ = 0xF6;
	*p++ = 0x65;
	memcpy(p, "nonce", 5), p += 5;
	*p++ = 0x58;
	*p++ = nlen;
	memcpy(p, nonce, nlen), p += nlen;
	*p++ = 0x6A;
	memcpy(p, "public_key", 10), p += 10;
	*p++ = 0xF6;
	static uint8_t resp[NSM_RESPONSE_MAX];
	static double us[MAX_N];
	char line[256];
	int fd = open("/dev/nsm", O_RDWR);
	if (fd < 0) {
		snprintf(line, sizeof(line), "NSMBENCH error open /dev/nsm: %s", strerror(errno));
		send_line(s, line);
		return 1;
	}
	double sum = 0;
	uint64_t bytes = 0;
	for (int i = 0; i < n; i++) {
		struct nsm_raw raw = {{(uintptr_t)req, (uint64_t)(p - req)},
				      {(uintptr_t)resp, sizeof(resp)}};
		double t0 = now_us();
		int rc = ioctl(fd, NSM_IOCTL_RAW, &raw);
		us[i] = now_us() - t0;
		/* an Attestation answer is {"Attestation": {"document": ...}}: 0xA1 0x6B */
		if (rc < 0 || raw.response.len < 13 ||
		    memcmp(resp,
			   "\xA1\x6B"
			   "Attestation",
			   13)) {
			snprintf(line, sizeof(line), "NSMBENCH error request %d: %s (%llu bytes)",
				 i, rc < 0 ? strerror(errno) : "not an Attestation response",
				 (unsigned long long)raw.response.len);
			send_line(s, line);
			return 1;
		}
		sum += us[i];
		bytes = raw.response.len;
	}
	qsort(us, (size_t)n, sizeof(us[0]), cmp_double);
	/* nearest-rank percentiles */
	int i50 = (n * 50 + 99) / 100 - 1, i99 = (n * 99 + 99) / 100 - 1;
	i50 = i50 < 0 ? 0 : i50;
	i99 = i99 < 0 ? 0 : i99;
	double a50 = us[i50], a99 = us[i99], amax = us[n - 1];
	/* The transport alone: DescribeNSM ("DescribeNSM" as a CBOR text, no signature). */
	static const uint8_t describe[] = "\x6b"
					  "DescribeNSM";
	for (int i = 0; i < n; i++) {
		struct nsm_raw raw = {{(uintptr_t)describe, sizeof(describe) - 1},
				      {(uintptr_t)resp, sizeof(resp)}};
		double t0 = now_us();
		int rc = ioctl(fd, NSM_IOCTL_RAW, &raw);
		us[i] = now_us() - t0;
		if (rc < 0 || raw.response.len < 13 ||
		    memcmp(resp,
			   "\xA1\x6B"
			   "DescribeNSM",
			   13)) {
			snprintf(line, sizeof(line), "NSMBENCH error DescribeNSM %d: %s", i,
				 rc < 0 ? strerror(errno) : "not a DescribeNSM response");
			send_line(s, line);
			return 1;
		}
	}
	qsort(us, (size_t)n, sizeof(us[0]), cmp_double);
	snprintf(line, sizeof(line),
		 "NSMBENCH n=%d p50_us=%.0f p99_us=%.0f max_us=%.0f mean_us=%.0f bytes=%llu "
		 "rtt_p50_us=%.0f rtt_p99_us=%.0f rtt_max_us=%.0f",
		 n, a50, a99, amax, sum / n, (unsigned long long)bytes, us[i50], us[i99],
		 us[n - 1]);
	if (send_line(s, line)) {
		fprintf(stderr, "enclave-nsmbench: send: %s\n", strerror(errno));
		return 1;
	}
	printf("enclave-nsmbench: %s\n", line);
	close(s);
	return 0;
}
