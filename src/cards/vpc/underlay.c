/* The VPC card's UDP underlay socket. */
#include "cards/vpc/underlay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"

#define UL_SOCKBUF (4 << 20)

int ul_parse_addr(const char *spec, struct sockaddr_in *sa, char *err, size_t errlen)
{
	char host[64];
	const char *colon = strchr(spec, ':');
	size_t hl = colon ? (size_t)(colon - spec) : strlen(spec);
	uint64_t port = 0;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (hl == 0 || hl >= sizeof(host))
		RETURN_ERR(-1, "underlay %s: expected ADDR[:PORT] (IPv4)", spec);
	memcpy(host, spec, hl);
	host[hl] = 0;
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		RETURN_ERR(-1, "underlay %s: %s is not an IPv4 address", spec, host);
	if (colon && !parse_u64(colon + 1, 0, 65535, &port))
		RETURN_ERR(-1, "underlay %s: port must be 0 to 65535", spec);
	sa->sin_port = htons((uint16_t)port);
	return 0;
}

int ul_open(struct underlay *u, const char *spec, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	u->ul_fd = -1;
	if (ul_parse_addr(spec, &u->ul_addr, err, errlen))
		return -1;
	if (u->ul_addr.sin_addr.s_addr == htonl(INADDR_ANY))
		RETURN_ERR(-1, "underlay %s: give the host's own address (peers send to it)", spec);
	u->ul_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->ul_fd < 0)
		RETURN_ERR(-1, "underlay socket: %s", strerror(errno));
	int sz = UL_SOCKBUF;
	/* Bigger buffers absorb bursts; FORCE needs CAP_NET_ADMIN, else the sysctl caps it. */
	if (setsockopt(u->ul_fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(u->ul_fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(u->ul_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(u->ul_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (bind(u->ul_fd, (struct sockaddr *)&u->ul_addr, sizeof(u->ul_addr)) < 0) {
		int e = errno;
		close(u->ul_fd);
		u->ul_fd = -1;
		RETURN_ERR(-1, "underlay %s: bind: %s%s", spec, strerror(e),
			   e == EADDRNOTAVAIL ? " (not an address of this host)" : "");
	}
	socklen_t sl = sizeof(u->ul_addr);
	getsockname(u->ul_fd, (struct sockaddr *)&u->ul_addr, &sl);
	for (unsigned i = 0; i < UL_BATCH; i++) {
		u->ul_iiov[i] = (struct iovec){u->ul_ibuf[i], UL_MAX_PKT};
		u->ul_oiov[i].iov_base = u->ul_obuf[i];
	}
	return 0;
}

void ul_close(struct underlay *u)
{
	if (u->ul_fd >= 0)
		close(u->ul_fd);
	u->ul_fd = -1;
}

uint8_t *ul_out(struct underlay *u)
{
	if (u->ul_nout == UL_BATCH)
		ul_flush(u);
	return u->ul_obuf[u->ul_nout];
}

void ul_commit(struct underlay *u, size_t len, uint32_t ip_be, uint16_t port_be)
{
	unsigned i = u->ul_nout;
	if (i >= UL_BATCH || len > UL_MAX_PKT)
		return;
	u->ul_odst[i] = (struct sockaddr_in){
	    .sin_family = AF_INET, .sin_port = port_be, .sin_addr = {.s_addr = ip_be}};
	u->ul_oiov[i].iov_len = len;
	u->ul_omsg[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &u->ul_odst[i],
						     .msg_namelen = sizeof(u->ul_odst[i]),
						     .msg_iov = &u->ul_oiov[i],
						     .msg_iovlen = 1}};
	u->ul_nout++;
	if (u->ul_nout == UL_BATCH)
		ul_flush(u);
}

static void send_error(struct underlay *u, unsigned i, int e)
{
	char msg[160], a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &u->ul_odst[i].sin_addr, a, sizeof(a));
	snprintf(msg, sizeof(msg), "underlay: send to %s:%u: %s (dropped; counted)", a,
		 ntohs(u->ul_odst[i].sin_port), strerror(e));
	if (strcmp(msg, u->ul_err)) { /* once per kind, not per packet */
		warnmsg("%s", msg);
		snprintf(u->ul_err, sizeof(u->ul_err), "%s", msg);
	}
	u->ul_stats.st_send_errors++;
}

void ul_flush(struct underlay *u)
{
	unsigned done = 0;
	while (done < u->ul_nout) {
		int r = sendmmsg(u->ul_fd, u->ul_omsg + done, u->ul_nout - done, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			/* The first unsent packet failed: drop it, go on with the rest. */
			send_error(u, done, r < 0 ? errno : EIO);
			done++;
			continue;
		}
		u->ul_stats.st_sent += (unsigned)r;
		done += (unsigned)r;
	}
	u->ul_nout = 0;
}

int ul_recv(struct underlay *u)
{
	for (unsigned i = 0; i < UL_BATCH; i++) {
		u->ul_imsg[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &u->ul_isrc[i],
							     .msg_namelen = sizeof(u->ul_isrc[i]),
							     .msg_iov = &u->ul_iiov[i],
							     .msg_iovlen = 1}};
	}
	int r;
	do
		r = recvmmsg(u->ul_fd, u->ul_imsg, UL_BATCH, MSG_DONTWAIT, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	u->ul_stats.st_received += (unsigned)r;
	for (int i = 0; i < r; i++)
		if (ul_in_truncated(u, (unsigned)i))
			u->ul_stats.st_truncated++;
	return r;
}
