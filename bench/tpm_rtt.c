/* Guest side of bench/tpm.py: N TPM2_GetRandom(16) round trips through /dev/tpm0 (the
 * kernel's tpm_crb driver, the same for every peer); prints the median and mean in
 * microseconds. Static: the guest image has no libc. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	if (n < 1 || n > 100000)
		return 2;
	static const unsigned char cmd[] = {0x80, 0x01, 0, 0, 0, 12, 0, 0, 0x01, 0x7b, 0, 16};
	unsigned char rsp[64];
	int fd = open("/dev/tpm0", O_RDWR);
	if (fd < 0) {
		perror("/dev/tpm0");
		return 1;
	}
	double *us = calloc((size_t)n, sizeof(double)), sum = 0;
	for (int i = -10; i < n; i++) { /* 10 warm-up rounds */
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		if (write(fd, cmd, sizeof(cmd)) != sizeof(cmd) ||
		    read(fd, rsp, sizeof(rsp)) != 28 || rsp[9] != 0) {
			fprintf(stderr, "tpm-rtt: GetRandom failed\n");
			return 1;
		}
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (i >= 0) {
			us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 +
				(double)(b.tv_nsec - a.tv_nsec) / 1e3;
			sum += us[i];
		}
	}
	qsort(us, (size_t)n, sizeof(double), cmp);
	printf("TPM-RTT median_us=%.1f mean_us=%.1f n=%d\n", us[n / 2], sum / n, n);
	return 0;
}
