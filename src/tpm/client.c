/* The requesting side of the hv <-> card protocol (contract in client.h). */
#include "tpm/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tpm/tpm2.h"

int tpm_client_send(int sock, uint16_t type, uint32_t len, const void *payload, int fd)
{
	uint8_t hdr[TPM_PROTO_MSG];
	tpm_msg_encode(hdr, &(struct tpm_msg){.type = type, .len = len});
	struct iovec iov[2] = {{hdr, sizeof(hdr)}, {(void *)payload, payload ? len : 0}};
	struct msghdr mh = {.msg_iov = iov, .msg_iovlen = payload ? 2 : 1};
	union {
		char b[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	if (fd >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = sizeof(ctl.b);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	ssize_t want = TPM_PROTO_MSG + (payload ? (ssize_t)len : 0), r;
	do
		r = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r == want ? 0 : -1;
}

int tpm_client_recv(int sock, struct tpm_msg *m, uint8_t *payload, int timeout_ms)
{
	struct pollfd p = {sock, POLLIN, 0};
	int pr;
	do
		pr = poll(&p, 1, timeout_ms);
	while (pr < 0 && errno == EINTR);
	if (pr <= 0)
		return -1;
	uint8_t buf[TPM_PROTO_MSG + TPM_PROTO_BUF];
	ssize_t r;
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	do /* recvmsg, not recv: sendmsg/recvmsg are what the hv's allow-list is for */
		r = recvmsg(sock, &mh, MSG_TRUNC | MSG_DONTWAIT);
	while (r < 0 && errno == EINTR);
	if (r <= 0 || (size_t)r > sizeof(buf) || tpm_msg_decode(buf, (size_t)r, m) < 0 ||
	    !(m->type & TPM_PROTO_REPLY))
		return -1;
	if ((m->type & ~TPM_PROTO_REPLY) == TPM_MSG_XCMD && payload)
		memcpy(payload, buf + TPM_PROTO_MSG, m->len);
	return 0;
}

int tpm_client_call(int sock, uint16_t type, uint32_t len, const void *payload, int fd,
		    struct tpm_msg *rep, uint8_t *rpayload)
{
	if (tpm_client_send(sock, type, len, payload, fd) < 0 ||
	    tpm_client_recv(sock, rep, rpayload, TPM_CLIENT_TIMEOUT_MS) < 0 ||
	    rep->type != (type | TPM_PROTO_REPLY))
		return -1;
	return 0;
}

uint32_t tpm_client_xcmd(int sock, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t *rlen)
{
	struct tpm_msg rep;
	if (tpm_client_call(sock, TPM_MSG_XCMD, (uint32_t)len, cmd, -1, &rep, rsp) < 0 ||
	    rep.status)
		return TPM2_RC_FAILURE;
	*rlen = rep.len;
	return tpm2_rsp_code(rsp, rep.len);
}

int tpm_client_connect(const char *path)
{
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(s);
		return -1;
	}
	return s;
}

int tpm_client_hello_init(int sock, int memfd, uint32_t init)
{
	struct tpm_msg rep;
	if (tpm_client_call(sock, TPM_MSG_HELLO, TPM_PROTO_BUF, NULL, memfd, &rep, NULL) < 0 ||
	    rep.status || rep.len != TPM_PROTO_BUF)
		return -1;
	if (tpm_client_call(sock, TPM_MSG_INIT, init, NULL, -1, &rep, NULL) < 0 || rep.status)
		return -1;
	return 0;
}
