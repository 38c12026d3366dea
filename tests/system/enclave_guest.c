/* The enclave test guests' shared helpers (enclave_guest.h). */
#include "enclave_guest.h"

#include <errno.h>
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/be.h"

int io_all(int fd, void *buf, size_t len, int wr)
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

int parent_connect(unsigned port)
{
	struct sockaddr_vm sa = {.svm_family = AF_VSOCK, .svm_cid = 3, .svm_port = port};
	for (int i = 0; i < 300; i++) {
		int s = socket(AF_VSOCK, SOCK_STREAM, 0);
		if (s >= 0 && connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return s;
		if (s >= 0)
			close(s);
		usleep(200000);
	}
	return -1;
}

int nonce_read(int s, uint8_t nonce[NONCE_MAX])
{
	uint8_t nlen;
	if (io_all(s, &nlen, 1, 0) || nlen > NONCE_MAX || io_all(s, nonce, nlen, 0))
		return -1;
	return nlen;
}

size_t attest_req(uint8_t req[ATTEST_REQ_MAX], const uint8_t *nonce, uint8_t nlen)
{
	uint8_t *p = req;
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
	return (size_t)(p - req);
}

int send_framed(int s, const void *buf, uint32_t len)
{
	uint8_t be[4];
	be32_put(be, len);
	return io_all(s, be, 4, 1) || io_all(s, (void *)buf, len, 1) ? -1 : 0;
}
