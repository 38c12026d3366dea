/* The test EIF's payload (tools/enclave_eif.sh; test_enclave.py): inside an enclave,
 * connect to the parent over vsock (CID 3, port argv[1]; retried for 60 s), read a nonce
 * (one length byte, then at most 64 bytes), ask the NSM for an attestation document with that nonce
 * through the stock driver's /dev/nsm (NSM_IOCTL_RAW), and send the NSM's whole CBOR response back
 * as a 4-byte big-endian length and the bytes. The parent verifies it (cbor2, cryptography).
 * It then waits for the parent to close the connection (the enclave powers off after it).
 * Static: the enclave's ramdisk has no libc. Exit status 0 when the response was sent. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
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

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: enclave-attest PORT\n");
		return 2;
	}
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = 3, .svm_port = (unsigned)atoi(argv[1])};
	int s = -1;
	for (int i = 0; i < 300; i++) { /* the parent may still be setting up its listener */
		s = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			break;
		if (s >= 0)
			close(s);
		s = -1;
		usleep(200000);
	}
	if (s < 0) {
		fprintf(stderr, "enclave-attest: connect to 3:%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint8_t nlen, nonce[64];
	if (io_all(s, &nlen, 1, 0) || nlen > sizeof(nonce) || io_all(s, nonce, nlen, 0)) {
		fprintf(stderr, "enclave-attest: no nonce from the parent\n");
		return 1;
	}
	/* {"Attestation": {"user_data": null, "nonce": bstr, "public_key": null}} */
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
	struct nsm_raw raw = {{(uintptr_t)req, (uint64_t)(p - req)},
			      {(uintptr_t)resp, sizeof(resp)}};
	int fd = open("/dev/nsm", O_RDWR);
	if (fd < 0 || ioctl(fd, NSM_IOCTL_RAW, &raw) < 0) {
		fprintf(stderr, "enclave-attest: /dev/nsm: %s\n", strerror(errno));
		return 1;
	}
	uint8_t be[4];
	be32_put(be, (uint32_t)raw.response.len);
	if (io_all(s, be, 4, 1) || io_all(s, resp, raw.response.len, 1)) {
		fprintf(stderr, "enclave-attest: send: %s\n", strerror(errno));
		return 1;
	}
	printf("enclave-attest: sent %llu bytes\n", (unsigned long long)raw.response.len);
	/* stay up until the parent closes (it looks at the running enclave first) */
	uint8_t b;
	while (read(s, &b, 1) > 0 || errno == EINTR)
		;
	close(s);
	return 0;
}
