/* test_enclave.py's look at a running enclave's memory from inside the parent instance:
 * `enclave-peek PID` reads, through /proc/PID/mem (what root in the parent can do), the
 * 2 MiB huge-page mapping that `nitro-enclave run`'s enclave process PID gave the enclave
 * (the one hugetlb mapping in /proc/PID/maps), and prints
 *   PEEK-SELF nonzero=N      the same read path on 2 MiB of its own filled with 0x5a
 *                            (N = 2097152: the method reads what is there)
 *   PEEK map=BYTES magic=HEX nonzero=N
 * magic is the 4 bytes at the mapping's offset 8 MiB, where the tool wrote the EIF (".eif"
 * = 2e656966 before the enclave started); nonzero counts the non-zero bytes of the whole
 * mapping. While the enclave runs the parent's view of those pages is nitro-hv's zero slot
 * (docs/enclaves.md): magic 00000000, nonzero 0. Static: the guest image has no libc. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MiB (1ull << 20)

/* Non-zero bytes of [addr, addr + len) of the process behind mem_fd; -1 on a read error. */
static long long nonzero(int mem_fd, uint64_t addr, uint64_t len, uint8_t first4[4])
{
	static uint8_t buf[1 << 20];
	long long n = 0;
	for (uint64_t off = 0; off < len; off += sizeof(buf)) {
		size_t want = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);
		ssize_t r = pread(mem_fd, buf, want, (off_t)(addr + off));
		if (r != (ssize_t)want) {
			fprintf(stderr, "enclave-peek: read at %#llx: %s\n",
				(unsigned long long)(addr + off),
				r < 0 ? strerror(errno) : "short");
			return -1;
		}
		if (first4 && off == 8 * MiB)
			memcpy(first4, buf, 4);
		for (size_t i = 0; i < want; i++)
			n += buf[i] != 0;
	}
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: enclave-peek PID\n");
		return 2;
	}
	/* the control: 2 MiB of this process's own, through the same path */
	uint8_t *own =
	    mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int self = open("/proc/self/mem", O_RDONLY);
	if (own == MAP_FAILED || self < 0)
		return 1;
	memset(own, 0x5a, 2 * MiB);
	printf("PEEK-SELF nonzero=%lld\n", nonzero(self, (uintptr_t)own, 2 * MiB, NULL));

	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
	FILE *maps = fopen(path, "r");
	if (!maps) {
		fprintf(stderr, "enclave-peek: %s: %s\n", path, strerror(errno));
		return 1;
	}
	unsigned long long lo = 0, hi = 0;
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "anon_hugepage") && sscanf(line, "%llx-%llx", &lo, &hi) == 2)
			break;
	fclose(maps);
	if (hi <= lo || hi - lo <= 8 * MiB) {
		fprintf(stderr, "enclave-peek: no huge-page mapping above 8 MiB in process %s\n",
			argv[1]);
		return 1;
	}
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
	int mem = open(path, O_RDONLY);
	if (mem < 0) {
		fprintf(stderr, "enclave-peek: %s: %s\n", path, strerror(errno));
		return 1;
	}
	uint8_t m[4] = {0};
	long long n = nonzero(mem, lo, hi - lo, m);
	printf("PEEK map=%llu magic=%02x%02x%02x%02x nonzero=%lld\n", hi - lo, m[0], m[1], m[2],
	       m[3], n);
	return n < 0;
}
