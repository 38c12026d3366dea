/* The test EIF's payload (tools/enclave_eif.sh; test_enclave.py): inside an enclave,
 * connect to the parent over vsock (CID 3, port argv[1]; retried for 60 s), read a nonce
 * (one length byte, then at most 64 bytes), ask the NSM for an attestation document with that nonce
 * through the stock driver's /dev/nsm (NSM_IOCTL_RAW), and send the NSM's whole CBOR response back
 * as a 4-byte big-endian length and the bytes. The parent verifies it (cbor2, cryptography).
 * It then waits for the parent to close the connection (the enclave powers off after it).
 * Static: the enclave's ramdisk has no libc. Exit status 0 when the response was sent. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "enclave_guest.h"

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: enclave-attest PORT\n");
		return 2;
	}
	int s = parent_connect((unsigned)atoi(argv[1]));
	if (s < 0) {
		fprintf(stderr, "enclave-attest: connect to 3:%s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	uint8_t nonce[NONCE_MAX];
	int nlen = nonce_read(s, nonce);
	if (nlen < 0) {
		fprintf(stderr, "enclave-attest: no nonce from the parent\n");
		return 1;
	}
	uint8_t req[ATTEST_REQ_MAX];
	size_t req_len = attest_req(req, nonce, (uint8_t)nlen);
	static uint8_t resp[NSM_RESPONSE_MAX];
	struct nsm_raw raw = {{(uintptr_t)req, req_len}, {(uintptr_t)resp, sizeof(resp)}};
	int fd = open("/dev/nsm", O_RDWR);
	if (fd < 0 || ioctl(fd, NSM_IOCTL_RAW, &raw) < 0) {
		fprintf(stderr, "enclave-attest: /dev/nsm: %s\n", strerror(errno));
		return 1;
	}
	if (send_framed(s, resp, (uint32_t)raw.response.len)) {
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
