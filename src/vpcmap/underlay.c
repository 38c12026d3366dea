/* The VPC card's UDP underlay socket. */
#include "vpcmap/underlay.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/udp.h>
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

/* Buffer sizes and GRO/GSO on u->ul_fd. */
static void tune(struct underlay *u)
{
	int sz = UL_SOCKBUF, one = 1;
	/* Bigger buffers absorb bursts; FORCE needs CAP_NET_ADMIN, else the sysctl caps it. */
	if (setsockopt(u->ul_fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(u->ul_fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (setsockopt(u->ul_fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(u->ul_fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	u->ul_gro = setsockopt(u->ul_fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) == 0;
	u->ul_gso = true; /* per send: a path that refuses it gets the datagrams one by one */
	u->ul_gso_segs = UL_GSO_MAX_SEGS;
}

int ul_open(struct underlay *u, const char *spec, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	u->ul_fd = -1;
	if (ul_parse_addr(spec, &u->ul_addr, err, errlen))
		return -1;
	if (u->ul_addr.sin_addr.s_addr == htonl(INADDR_ANY))
		RETURN_ERR(-1, "underlay %s: give the host's own address (peers send to it)", spec);
	u->ul_ibuf = malloc((size_t)UL_RBUFS * UL_RBUF_SIZE);
	if (!u->ul_ibuf)
		RETURN_ERR(-1, "underlay: out of memory");
	u->ul_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->ul_fd < 0) {
		int e = errno;
		ul_close(u);
		RETURN_ERR(-1, "underlay socket: %s", strerror(e));
	}
	tune(u);
	if (bind(u->ul_fd, (struct sockaddr *)&u->ul_addr, sizeof(u->ul_addr)) < 0) {
		int e = errno;
		ul_close(u);
		RETURN_ERR(-1, "underlay %s: bind: %s%s", spec, strerror(e),
			   e == EADDRNOTAVAIL ? " (not an address of this host)" : "");
	}
	socklen_t sl = sizeof(u->ul_addr);
	getsockname(u->ul_fd, (struct sockaddr *)&u->ul_addr, &sl);
	return 0;
}

int ul_adopt(struct underlay *u, int fd, char *err, size_t errlen)
{
	memset(u, 0, sizeof(*u));
	u->ul_fd = -1;
	int dom = 0, type = 0;
	socklen_t dl = sizeof(dom), tl = sizeof(type), sl = sizeof(u->ul_addr);
	if (fcntl(fd, F_GETFD) < 0)
		RETURN_ERR(-1, "--underlay-fd %d is not an open file descriptor", fd);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &dl) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || dom != AF_INET ||
	    type != SOCK_DGRAM)
		RETURN_ERR(-1, "--underlay-fd %d is not an IPv4 UDP socket", fd);
	if (getsockname(fd, (struct sockaddr *)&u->ul_addr, &sl) < 0 ||
	    u->ul_addr.sin_family != AF_INET || u->ul_addr.sin_port == 0 ||
	    u->ul_addr.sin_addr.s_addr == htonl(INADDR_ANY))
		RETURN_ERR(-1,
			   "--underlay-fd %d: the socket must be bound to the host's own address "
			   "and a port",
			   fd);
	u->ul_ibuf = malloc((size_t)UL_RBUFS * UL_RBUF_SIZE);
	if (!u->ul_ibuf)
		RETURN_ERR(-1, "underlay: out of memory");
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0) {
		int e = errno;
		free(u->ul_ibuf);
		u->ul_ibuf = NULL;
		RETURN_ERR(-1, "--underlay-fd %d: %s", fd, strerror(e));
	}
	u->ul_fd = fd;
	tune(u);
	return 0;
}

void ul_close(struct underlay *u)
{
	if (u->ul_fd >= 0)
		close(u->ul_fd);
	u->ul_fd = -1;
	free(u->ul_ibuf);
	u->ul_ibuf = NULL;
}

uint8_t *ul_out(struct underlay *u)
{
	if (u->ul_nout == UL_BATCH || u->ul_arena_used + UL_MAX_PKT > UL_ARENA)
		ul_flush(u);
	return u->ul_arena + u->ul_arena_used;
}

void ul_commit(struct underlay *u, size_t len, uint32_t ip_be, uint16_t port_be)
{
	unsigned i = u->ul_nout;
	if (i >= UL_BATCH || len > UL_MAX_PKT || len == 0)
		return;
	u->ul_odst[i] = (struct sockaddr_in){
	    .sin_family = AF_INET, .sin_port = port_be, .sin_addr = {.s_addr = ip_be}};
	u->ul_olen[i] = (uint32_t)len;
	u->ul_ooff[i] = (uint32_t)u->ul_arena_used; /* ul_out() handed out this spot */
	u->ul_arena_used += (len + 63) & ~(size_t)63;
	u->ul_nout++;
	if (u->ul_nout == UL_BATCH)
		ul_flush(u);
}

static void send_error(struct underlay *u, unsigned i, int e, unsigned n)
{
	char msg[160], a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &u->ul_odst[i].sin_addr, a, sizeof(a));
	snprintf(msg, sizeof(msg), "underlay: send to %s:%u: %s (dropped; counted)", a,
		 ntohs(u->ul_odst[i].sin_port), strerror(e));
	if (strcmp(msg, u->ul_err)) { /* once per kind, not per packet */
		warnmsg("%s", msg);
		snprintf(u->ul_err, sizeof(u->ul_err), "%s", msg);
	}
	u->ul_stats.st_send_errors += n;
}

static bool same_dst(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* Packets [i, i + n) one datagram each (a GSO send the path refused). */
static void send_each(struct underlay *u, unsigned i, unsigned n)
{
	for (unsigned k = i; k < i + n; k++) {
		ssize_t r;
		do
			r = sendto(u->ul_fd, u->ul_arena + u->ul_ooff[k], u->ul_olen[k],
				   MSG_DONTWAIT, (struct sockaddr *)&u->ul_odst[k],
				   sizeof(u->ul_odst[k]));
		while (r < 0 && errno == EINTR);
		if (r < 0)
			send_error(u, k, errno, 1);
		else
			u->ul_stats.st_sent++;
	}
}

void ul_flush(struct underlay *u)
{
	struct mmsghdr msg[UL_BATCH];
	struct iovec iov[UL_BATCH];
	union {
		char b[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} cm[UL_BATCH];
	unsigned first[UL_BATCH], count[UL_BATCH], nm = 0;
	for (unsigned i = 0; i < u->ul_nout;) {
		unsigned j = i + 1;
		size_t total = u->ul_olen[i];
		while (u->ul_gso && j < u->ul_nout && j - i < u->ul_gso_segs &&
		       u->ul_olen[j] == u->ul_olen[i] && same_dst(&u->ul_odst[j], &u->ul_odst[i]) &&
		       total + u->ul_olen[j] <= UL_GSO_MAX_BYTES) {
			total += u->ul_olen[j];
			j++;
		}
		for (unsigned k = i; k < j; k++)
			iov[k] = (struct iovec){u->ul_arena + u->ul_ooff[k], u->ul_olen[k]};
		msg[nm] = (struct mmsghdr){.msg_hdr = {.msg_name = &u->ul_odst[i],
						       .msg_namelen = sizeof(u->ul_odst[i]),
						       .msg_iov = &iov[i],
						       .msg_iovlen = j - i}};
		if (j - i > 1) {
			struct msghdr *mh = &msg[nm].msg_hdr;
			memset(&cm[nm], 0, sizeof(cm[nm]));
			mh->msg_control = cm[nm].b;
			mh->msg_controllen = sizeof(cm[nm].b);
			struct cmsghdr *c = CMSG_FIRSTHDR(mh);
			c->cmsg_level = SOL_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			uint16_t gso = (uint16_t)u->ul_olen[i];
			memcpy(CMSG_DATA(c), &gso, sizeof(gso));
		}
		first[nm] = i;
		count[nm] = j - i;
		nm++;
		i = j;
	}
	unsigned done = 0;
	while (done < nm) {
		int r = sendmmsg(u->ul_fd, msg + done, nm - done, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			/* The first unsent message failed: a refused GSO send goes out datagram
			 * by datagram; anything else is dropped. Then on with the rest. */
			if (count[done] > 64 && e == EINVAL && u->ul_gso_segs > 64)
				u->ul_gso_segs = 64; /* an older kernel's UDP_MAX_SEGMENTS */
			if (count[done] > 1 && e != EAGAIN && e != ENOBUFS)
				send_each(u, first[done], count[done]);
			else
				send_error(u, first[done], e, count[done]);
			done++;
			continue;
		}
		for (int k = 0; k < r; k++) {
			u->ul_stats.st_sent += count[done + (unsigned)k];
			if (count[done + (unsigned)k] > 1)
				u->ul_stats.st_gso_sends++;
		}
		done += (unsigned)r;
	}
	u->ul_nout = 0;
	u->ul_arena_used = 0;
}

int ul_recv(struct underlay *u)
{
	u->ul_nseg = u->ul_nmsg = 0;
	for (unsigned i = 0; i < UL_RBUFS; i++) {
		u->ul_iiov[i] = (struct iovec){u->ul_ibuf + (size_t)i * UL_RBUF_SIZE, UL_RBUF_SIZE};
		u->ul_imsg[i] =
		    (struct mmsghdr){.msg_hdr = {.msg_name = &u->ul_isrc[i],
						 .msg_namelen = sizeof(u->ul_isrc[i]),
						 .msg_iov = &u->ul_iiov[i],
						 .msg_iovlen = 1,
						 .msg_control = u->ul_icmsg[i],
						 .msg_controllen = sizeof(u->ul_icmsg[i])}};
	}
	int r;
	do
		r = recvmmsg(u->ul_fd, u->ul_imsg, UL_RBUFS, MSG_DONTWAIT, NULL);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
	u->ul_nmsg = (unsigned)r;
	for (int i = 0; i < r; i++) {
		struct msghdr *mh = &u->ul_imsg[i].msg_hdr;
		uint32_t len = u->ul_imsg[i].msg_len, gso = 0;
		if (mh->msg_flags & MSG_TRUNC) {
			u->ul_stats.st_truncated++;
			continue;
		}
		for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c))
			if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO &&
			    c->cmsg_len >= CMSG_LEN(sizeof(int))) {
				int g;
				memcpy(&g, CMSG_DATA(c), sizeof(g));
				gso = g > 0 ? (uint32_t)g : 0;
			}
		const uint8_t *p = u->ul_iiov[i].iov_base;
		if (!gso || gso >= len)
			gso = len;
		else
			u->ul_stats.st_gro_buffers++;
		/* An empty datagram is one too (the core counts it as malformed). */
		for (uint32_t off = 0; off < len || (len == 0 && off == 0); off += gso) {
			if (u->ul_nseg == UL_RBUFS * UL_GSO_MAX_SEGS) {
				/* more datagrams in one buffer than we keep: dropped, counted */
				u->ul_stats.st_gro_overflow += (len - off + gso - 1) / gso;
				break;
			}
			uint32_t n = len - off < gso ? len - off : gso;
			u->ul_seg[u->ul_nseg++] = (struct ul_seg){
			    .sg_data = p + off, .sg_len = n, .sg_src = &u->ul_isrc[i]};
			u->ul_stats.st_received++;
			if (len == 0)
				break;
		}
	}
	return (int)u->ul_nseg;
}
