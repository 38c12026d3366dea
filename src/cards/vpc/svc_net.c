/* The link-local UDP services, DNS and NTP (contract: svc_net.h). */
#include "cards/vpc/svc_net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cards/vpc/ntp.h"
#include "cards/vpc/pkt.h"
#include "lib/util.h"

void svc_net_init(struct svc_net *s, const struct vpc_cfg *cfg, vpc_lookup_fn *lookup, void *lctx,
		  int up_fd, svc_out_fn *out, void *octx, uint64_t seed)
{
	unsigned prefix = cfg->vc_prefix ? cfg->vc_prefix : VPC_PREFIX_DEFAULT;
	uint32_t mask = htonl(~0u << (32 - prefix));
	memset(&s->st, 0, sizeof(s->st));
	dns_init(&s->dns, cfg->vc_vni, cfg->vc_ip & mask, mask,
		 cfg->vc_domain ? cfg->vc_domain : VPC_DOMAIN_DEFAULT, lookup, lctx, up_fd >= 0,
		 seed);
	s->up_fd = up_fd;
	memcpy(s->mac, cfg->vc_mac, 6);
	s->ip = cfg->vc_ip;
	s->mtu = cfg->vc_mtu ? cfg->vc_mtu : VPC_MTU_DEFAULT;
	s->out = out;
	s->ctx = octx;
	s->ip_id = (uint16_t)seed;
}

/* Sends len bytes at s->frame + 42 to the guest's dport from src:sport. */
static void reply(struct svc_net *s, uint32_t src, uint16_t sport, uint16_t dport, size_t len)
{
	uint8_t *f = s->frame, *ip = f + 14, *u = ip + 20;
	memcpy(f, s->mac, 6);
	memcpy(f + 6, vpc_gateway_mac, 6);
	wr16(f + 12, ETHERTYPE_IPV4_);
	memset(ip, 0, 20);
	ip[0] = 0x45;
	wr16(ip + 2, (uint16_t)(28 + len));
	wr16(ip + 4, s->ip_id++);
	wr16(ip + 6, 0x4000); /* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP_;
	wrip(ip + 12, src);
	wrip(ip + 16, s->ip);
	ip_set_csum(ip, 20);
	wr16(u, sport);
	wr16(u + 2, dport);
	wr16(u + 4, (uint16_t)(8 + len));
	wr16(u + 6, 0);
	wr16(u + 6, udp_csum(src, s->ip, u, (unsigned)(8 + len)));
	s->out(s->ctx, f, 42 + len);
}

static void dns_in(struct svc_net *s, const struct pkt *k, const uint8_t *data, size_t n,
		   uint64_t now)
{
	size_t len, max = s->mtu - 28;
	if (max > DNS_MSG_MAX)
		max = DNS_MSG_MAX;
	switch (
	    dns_query(&s->dns, data, n, k->pk_dst, htons(k->pk_sport), max, now, s->msg, &len)) {
	case DNS_V_REPLY:
		memcpy(s->frame + 42, s->msg, len);
		reply(s, k->pk_dst, 53, k->pk_sport, len);
		break;
	case DNS_V_FORWARD:
		if (send(s->up_fd, s->msg, len, MSG_DONTWAIT) < 0)
			s->st.upstream_send_errors++;
		break;
	default:
		break;
	}
}

void svc_net_input(struct svc_net *s, const uint8_t *ip, size_t len, uint64_t now_ns)
{
	struct pkt k;
	struct timespec rx;
	clock_gettime(CLOCK_REALTIME, &rx);
	if (pkt_parse_ipv4(&k, ip, len) || k.pk_proto != IPPROTO_UDP_ || k.pk_src != s->ip) {
		s->st.bad_udp++;
		return;
	}
	/* a checksum of 0 is "none" in IPv4; else the sum over everything folds to 0 */
	if (rd16(k.pk_l4 + 6) && udp_csum(k.pk_src, k.pk_dst, k.pk_l4, k.pk_l4len) != 0xffff) {
		s->st.bad_udp++;
		return;
	}
	const uint8_t *data = k.pk_l4 + 8;
	size_t n = k.pk_l4len - 8;
	if (k.pk_dst == htonl(VPC_NTP_IP) && k.pk_dport == 123) {
		s->st.ntp_requests++;
		struct timespec tx;
		clock_gettime(CLOCK_REALTIME, &tx);
		if (ntp_answer(data, n, &rx, &tx, s->frame + 42)) {
			s->st.ntp_answered++;
			reply(s, k.pk_dst, 123, k.pk_sport, NTP_LEN);
		}
	} else if (k.pk_dport == 53) {
		dns_in(s, &k, data, n, now_ns);
	} else {
		s->st.bad_udp++;
	}
}

void svc_net_upstream(struct svc_net *s, uint64_t now_ns)
{
	if (s->up_fd < 0)
		return;
	for (unsigned i = 0; i < 64; i++) {
		ssize_t n = recv(s->up_fd, s->msg, sizeof(s->msg), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return; /* EAGAIN, or an ICMP error (ECONNREFUSED): the guest retries */
		if ((size_t)n > sizeof(s->msg)) {
			s->dns.st.upstream_bad++; /* larger than any answer we pass on */
			continue;
		}
		size_t len;
		uint32_t server;
		uint16_t port;
		if (dns_upstream(&s->dns, s->msg, (size_t)n, now_ns, &len, &server, &port)) {
			memcpy(s->frame + 42, s->msg, len);
			reply(s, server, 53, ntohs(port), len);
		}
	}
}

size_t svc_net_stats_format(const struct svc_net *s, char *buf, size_t len)
{
	static const char *const names[] = {
	    "dns_queries",	    "dns_answered_local", "dns_nxdomain",
	    "dns_formerr",	    "dns_refused",	  "dns_forwarded",
	    "dns_upstream_answers", "dns_upstream_bad",	  "dns_upstream_late",
	    "dns_pending_evicted",  "dns_truncated",	  "dns_upstream_send_errors",
	    "ntp_requests",	    "ntp_answered",	  "service_bad_udp"};
	const struct dns_stats *d = &s->dns.st;
	const uint64_t v[] = {d->queries,	   d->answered_local,  d->nxdomain,
			      d->formerr,	   d->refused,	       d->forwarded,
			      d->upstream_answers, d->upstream_bad,    d->upstream_late,
			      d->pending_evicted,  d->truncated,       s->st.upstream_send_errors,
			      s->st.ntp_requests,  s->st.ntp_answered, s->st.bad_udp};
	_Static_assert(sizeof(names) / sizeof(names[0]) == sizeof(v) / sizeof(v[0]), "counters");
	size_t o = 0;
	buf[0] = 0;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]) && o + 1 < len; i++) {
		int w = snprintf(buf + o, len - o, " %s=%llu", names[i], (unsigned long long)v[i]);
		if (w < 0)
			break;
		o += (size_t)w < len - o ? (size_t)w : len - o - 1;
	}
	return o;
}

int svc_upstream_open(const char *addr, char *err, size_t errlen)
{
	char a[64];
	uint64_t port = 53;
	const char *colon = strchr(addr, ':');
	size_t l = colon ? (size_t)(colon - addr) : strlen(addr);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	if (l == 0 || l >= sizeof(a))
		RETURN_ERR(-1, "dns upstream %s: expected A.B.C.D[:PORT]", addr);
	memcpy(a, addr, l);
	a[l] = 0;
	if (inet_pton(AF_INET, a, &sin.sin_addr) != 1 ||
	    (colon && !parse_u64(colon + 1, 1, 65535, &port)))
		RETURN_ERR(-1, "dns upstream %s: expected A.B.C.D[:PORT]", addr);
	sin.sin_port = htons((uint16_t)port);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		RETURN_ERR(-1, "dns upstream: socket: %s", strerror(errno));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		int e = errno;
		close(fd);
		RETURN_ERR(-1, "dns upstream %s: connect: %s", addr, strerror(e));
	}
	return fd;
}
