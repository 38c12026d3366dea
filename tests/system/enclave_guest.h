/* What the enclave test guests share (enclave_attest.c, enclave_nsmbench.c,
 * enclave_parent.c): whole reads and writes on a socket, the enclave side's connection to
 * its parent (CID 3) and the parent's nonce, and the NSM Attestation request through the
 * stock driver's /dev/nsm. Static programs in guests without libc beyond their own; single
 * threaded; what arrives on the socket is the peer's and is length-checked here. */
#ifndef NITRO_TESTS_SYSTEM_ENCLAVE_GUEST_H
#define NITRO_TESTS_SYSTEM_ENCLAVE_GUEST_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

/* The driver's uapi (include/uapi/linux/nsm.h, Linux 6.8+). */
struct nsm_iovec {
	uint64_t addr, len;
};
struct nsm_raw {
	struct nsm_iovec request, response;
};
#define NSM_IOCTL_RAW _IOWR(0x0A, 0, struct nsm_raw)
#define NSM_RESPONSE_MAX 0x3000

/* The longest nonce the parent sends, and the room an Attestation request needs. */
#define NONCE_MAX 64
#define ATTEST_REQ_MAX 128

/* Reads (wr 0) or writes (wr 1) all len bytes of buf on fd, across EINTR and short
 * transfers: 0, or -1 on an error (errno) or an early end of the stream. */
int io_all(int fd, void *buf, size_t len, int wr);

/* A stream socket connected to the parent (CID 3) on port, tried every 200 ms for 60 s (the
 * parent may still be setting up its listener): the socket, or -1 (errno of the last try). */
int parent_connect(unsigned port);

/* Reads the parent's nonce (one length byte, then at most NONCE_MAX bytes) into nonce: its
 * length, or -1 when the stream ended early or the length is over NONCE_MAX. */
int nonce_read(int s, uint8_t nonce[NONCE_MAX]);

/* Writes the CBOR NSM request {"Attestation": {"user_data": null, "nonce": bstr,
 * "public_key": null}} with the nonce into req; returns its length. */
size_t attest_req(uint8_t req[ATTEST_REQ_MAX], const uint8_t *nonce, uint8_t nlen);

/* Sends len as 4 bytes big-endian, then the len bytes of buf: 0, or -1 (errno). */
int send_framed(int s, const void *buf, uint32_t len);

#endif
