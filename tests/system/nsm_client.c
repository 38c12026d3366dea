/* Guest side of test_nsm.py: sends raw NSM requests through the stock driver's /dev/nsm
 * (NSM_IOCTL_RAW, as the kernel's uapi/linux/nsm.h defines it) and prints each reply in
 * hex, so that the host decodes and verifies them with independent code.
 *
 *   nsm-client HEX...     each HEX a CBOR request (made by the test with cbor2)
 *
 * Output, per request i: lines "NSMR i c HEX" (chunks of at most 64 bytes, c counting
 * from 0), then "NSMR i end LEN", or "NSMR i errno E" when the ioctl failed. Chunked so
 * that a kernel message on the console cannot split a reply's line. Static (the guest
 * image has no libc). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

struct nsm_iovec {
	uint64_t addr;
	uint64_t len;
};

struct nsm_raw {
	struct nsm_iovec request;
	struct nsm_iovec response;
};

#define NSM_IOCTL_RAW _IOWR(0x0A, 0x0, struct nsm_raw)
#define REQ_MAX 0x1000
#define RESP_MAX 0x3000

static int unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = strlen(s);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	return (int)(n / 2);
}

int main(int argc, char **argv)
{
	static uint8_t req[REQ_MAX + 1], resp[RESP_MAX];
	int fd = open("/dev/nsm", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		printf("NSMR open errno %d\n", errno);
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		int n = unhex(argv[i], req, sizeof(req));
		if (n < 0) {
			printf("NSMR %d badhex\n", i - 1);
			continue;
		}
		struct nsm_raw raw = {{(uintptr_t)req, (uint64_t)n}, {(uintptr_t)resp, sizeof(resp)}};
		if (ioctl(fd, NSM_IOCTL_RAW, &raw) < 0) {
			printf("NSMR %d errno %d\n", i - 1, errno);
			fflush(stdout);
			continue;
		}
		for (uint64_t off = 0, c = 0; off < raw.response.len; off += 64, c++) {
			printf("NSMR %d %llu ", i - 1, (unsigned long long)c);
			for (uint64_t k = off; k < off + 64 && k < raw.response.len; k++)
				printf("%02x", resp[k]);
			printf("\n");
		}
		printf("NSMR %d end %llu\n", i - 1, (unsigned long long)raw.response.len);
		fflush(stdout);
	}
	close(fd);
	return 0;
}
