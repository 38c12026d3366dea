/* The parent side of test_enclave.py's attestation check, run in the parent instance:
 * listen on vsock port argv[1] (any local CID; the parent is CID 3), accept one enclave,
 * send it the nonce argv[2] (hex, at most 64 bytes) as one length byte and the bytes, read
 * the NSM response the payload sends back (tests/system/enclave_attest.c: a 4-byte
 * big-endian length, then the bytes) and print it on stdout as lines
 * "ENCLAVE-NSM <offset> <hex of up to 48 bytes>" and a last "ENCLAVE-NSM-END <length>"
 * (short lines survive the serial console), each line written whole. With a third argument
 * RELEASE it keeps the connection (and so the enclave's payload, which waits for its end)
 * until the file RELEASE exists (120 s at most). Static: the guest image has no libc. */
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "enclave_guest.h"
#include "lib/be.h"

int main(int argc, char **argv)
{
	uint8_t nonce[65];
	size_t nlen = argc >= 3 ? strlen(argv[2]) / 2 : 0;
	if (argc < 3 || argc > 4 || strlen(argv[2]) % 2 || nlen > 64) {
		fprintf(stderr,
			"usage: enclave-parent PORT NONCE-HEX [RELEASE] (a nonce of at most "
			"64 bytes)\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	nonce[0] = (uint8_t)nlen;
	for (size_t i = 0; i < nlen; i++) {
		unsigned v;
		if (sscanf(argv[2] + 2 * i, "%2x", &v) != 1)
			return 2;
		nonce[1 + i] = (uint8_t)v;
	}
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = (unsigned)atoi(argv[1])};
	int ls = socket(AF_VSOCK, SOCK_STREAM, 0);
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0) {
		fprintf(stderr, "enclave-parent: listen on port %s: %s\n", argv[1],
			strerror(errno));
		return 1;
	}
	struct sockaddr_vm peer;
	socklen_t pl = sizeof(peer);
	int c = accept(ls, (struct sockaddr *)&peer, &pl);
	if (c < 0) {
		fprintf(stderr, "enclave-parent: accept: %s\n", strerror(errno));
		return 1;
	}
	uint8_t be[4];
	static uint8_t resp[NSM_RESPONSE_MAX];
	if (io_all(c, nonce, nlen + 1, 1) || io_all(c, be, 4, 0)) {
		fprintf(stderr, "enclave-parent: exchange with CID %u failed\n", peer.svm_cid);
		return 1;
	}
	uint32_t len = be32_get(be);
	if (len > sizeof(resp) || io_all(c, resp, len, 0)) {
		fprintf(stderr, "enclave-parent: bad response (%u bytes) from CID %u\n", len,
			peer.svm_cid);
		return 1;
	}
	for (uint32_t o = 0; o < len; o += 48) {
		printf("ENCLAVE-NSM %u ", o);
		for (uint32_t i = o; i < len && i < o + 48; i++)
			printf("%02x", resp[i]);
		printf("\n");
	}
	printf("ENCLAVE-NSM-END %u from CID %u\n", len, peer.svm_cid);
	for (int i = 0; argc == 4 && i < 1200 && access(argv[3], F_OK) != 0; i++)
		usleep(100000);
	close(c);
	return 0;
}
