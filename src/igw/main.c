/* nitro-vpc-igw: the NAT of a VPC's internet gateway for one interface (issue 15 item 5;
 * docs/vpc.md, the threats in docs/security.md).
 *
 *   nitro-vpc-igw --fd N --ip A.B.C.D/P [--vpc-cidr A.B.C.D/P] [--mtu N] [--deny CIDR]...
 *
 * Started by the launcher (`nitro run`) in the host's network namespace, beside the VPC
 * card, which stays in its own empty namespace with no socket: fd N is the NAT's end of
 * a SOCK_SEQPACKET socketpair whose other end the card holds (--igw-fd), one Ethernet
 * frame per message. libslirp (Debian's libslirp0) turns the guest's TCP and UDP into
 * host sockets: its virtual network is the interface's subnet, its host alias the VPC
 * router (base + 1: the host's loopback, as slirp's 10.0.2.2), its nameserver alias base +
 * 3 (the host's resolver, for the card's DNS); no DHCP, TFTP, IPv6, port forwarding,
 * exec or emulation. Outbound only: nothing listens.
 *
 * Hostile input: every frame from the card (which forwards the guest's). Each is checked
 * again before slirp sees it (igw_policy.h: TCP/UDP from the interface's address to the
 * router alias or an outside address; never 0/8, 127/8, 169.254/16, multicast, the VPC's
 * CIDR, this host's own addresses (read at start), the --deny list). The process then
 * confines itself: RLIMIT_NOFILE 1024 (a flood of flows ends in slirp's own refusals),
 * and the seccomp list "igw" (src/sandbox: AF_INET stream and datagram sockets, connect,
 * send/receive, poll; no bind, listen, accept, exec, no other socket family), always,
 * not only when jailed. It never maps guest memory: it has none.
 * Ends when the card closes its end (exit 0) or on SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <slirp/libslirp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cards/vpc/igw_policy.h"
#include "lib/util.h"
#include "sandbox/sandbox.h"

#define MAX_POLL 1100
#define MAX_TIMERS 8
#define FRAME_MAX 9216 + 14

static const char usage_text[] =
    "usage: nitro-vpc-igw --fd N --ip A.B.C.D/P [--vpc-cidr A.B.C.D/P] [--mtu N]\n"
    "                     [--deny A.B.C.D/P]...\n";

struct timer {
	bool t_used, t_armed;
	int64_t t_expire_ms;
	SlirpTimerId t_id;
	void *t_cb_opaque;
};

struct nat {
	int n_fd;
	Slirp *n_slirp;
	struct igw_policy n_pol;
	uint8_t n_guest_mac[6];
	bool n_have_mac, n_arp_pending;
	struct pollfd n_pfd[MAX_POLL];
	unsigned n_npfd;
	struct timer n_timers[MAX_TIMERS];
	uint64_t n_in, n_out, n_refused;
};

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- slirp's callbacks ---- */

/* slirp asks who has the guest's address before its first frame to it. The answer is
 * made here (the card rewrites the MACs anyway), so no ARP crosses the link: a reply
 * from the guest's address and MAC, fed to slirp outside its own callbacks. */
static void arp_reply(struct nat *n)
{
	uint8_t r[42] = {0};
	memset(r, 0xff, 6);
	memcpy(r + 6, n->n_guest_mac, 6);
	r[12] = 0x08, r[13] = 0x06;
	r[15] = 1, r[16] = 0x08, r[18] = 6, r[19] = 4, r[21] = 2; /* Ethernet/IPv4, reply */
	memcpy(r + 22, n->n_guest_mac, 6);
	memcpy(r + 28, &n->n_pol.ip_self, 4);
	memcpy(r + 38, &n->n_pol.ip_router, 4);
	n->n_arp_pending = false;
	slirp_input(n->n_slirp, r, sizeof(r));
}

static ssize_t send_packet(const void *buf, size_t len, void *opaque)
{
	struct nat *n = opaque;
	const uint8_t *f = buf;
	if (len >= 14 && f[12] == 0x08 && f[13] == 0x06) {
		n->n_arp_pending = n->n_have_mac;
		return (ssize_t)len;
	}
	n->n_out++;
	if (send(n->n_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0 && errno != EAGAIN)
		return -1;
	return (ssize_t)len; /* a full link drops the frame: TCP resends */
}

static void guest_error(const char *msg, void *opaque)
{
	(void)opaque;
	warnmsg("slirp: %s", msg);
}

static int64_t clock_get_ns(void *opaque)
{
	(void)opaque;
	return now_ns();
}

static void *timer_new_opaque(SlirpTimerId id, void *cb_opaque, void *opaque)
{
	struct nat *n = opaque;
	for (int i = 0; i < MAX_TIMERS; i++)
		if (!n->n_timers[i].t_used) {
			n->n_timers[i] =
			    (struct timer){.t_used = true, .t_id = id, .t_cb_opaque = cb_opaque};
			return &n->n_timers[i];
		}
	die("slirp: out of timers");
}

static void timer_free(void *timer, void *opaque)
{
	(void)opaque;
	memset(timer, 0, sizeof(struct timer));
}

static void timer_mod(void *timer, int64_t expire_ms, void *opaque)
{
	(void)opaque;
	struct timer *t = timer;
	t->t_armed = true;
	t->t_expire_ms = expire_ms;
}

static void no_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

static void notify(void *opaque)
{
	(void)opaque;
}

static int add_poll(int fd, int events, void *opaque)
{
	struct nat *n = opaque;
	if (n->n_npfd >= MAX_POLL)
		return -1;
	short ev = 0;
	if (events & SLIRP_POLL_IN)
		ev |= POLLIN;
	if (events & SLIRP_POLL_OUT)
		ev |= POLLOUT;
	if (events & SLIRP_POLL_PRI)
		ev |= POLLPRI;
	n->n_pfd[n->n_npfd] = (struct pollfd){.fd = fd, .events = ev};
	return (int)n->n_npfd++;
}

static int get_revents(int idx, void *opaque)
{
	struct nat *n = opaque;
	if (idx < 0 || (unsigned)idx >= n->n_npfd)
		return 0;
	short r = n->n_pfd[idx].revents;
	int ev = 0;
	if (r & POLLIN)
		ev |= SLIRP_POLL_IN;
	if (r & POLLOUT)
		ev |= SLIRP_POLL_OUT;
	if (r & POLLPRI)
		ev |= SLIRP_POLL_PRI;
	if (r & POLLERR)
		ev |= SLIRP_POLL_ERR;
	if (r & POLLHUP)
		ev |= SLIRP_POLL_HUP;
	return ev;
}

/* ---- frames from the card ---- */

/* Whether a frame from the card may go to slirp (igw_policy.h, checked again here). */
static bool frame_ok(struct nat *n, const uint8_t *f, size_t len)
{
	if (!igw_frame_may_leave(&n->n_pol, f, len))
		return false;
	if (!n->n_have_mac) {
		memcpy(n->n_guest_mac, f + 6, 6);
		n->n_have_mac = n->n_arp_pending = true;
	}
	return true;
}

static void from_card(struct nat *n)
{
	static uint8_t buf[FRAME_MAX + 1];
	for (int i = 0; i < 64; i++) {
		ssize_t r = recv(n->n_fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (r == 0) {
			stop = 1;
			return;
		}
		if (r < 0) {
			if (errno != EAGAIN && errno != EINTR)
				stop = 1;
			return;
		}
		if ((size_t)r > FRAME_MAX || !frame_ok(n, buf, (size_t)r)) {
			n->n_refused++;
			continue;
		}
		n->n_in++;
		if (n->n_arp_pending)
			arp_reply(n);
		slirp_input(n->n_slirp, buf, (int)r);
	}
}

/* ---- set-up ---- */

static void deny_host_addresses(struct igw_policy *pol)
{
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) < 0)
		die("getifaddrs: %s", strerror(errno));
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    igw_policy_deny(pol, ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr, 32) <
			0)
			die("too many host addresses to deny (at most %d)", IGW_DENY_MAX);
	freeifaddrs(ifa);
}

int main(int argc, char **argv)
{
	static struct nat nat = {.n_fd = -1};
	struct nat *n = &nat;
	const char *ip = NULL, *cidr = NULL, *deny[IGW_DENY_MAX];
	unsigned ndeny = 0;
	uint64_t x, mtu = 9001;
	char err[256];

	util_set_prog("nitro-vpc-igw");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return 0;
		}
		if (!v)
			die_usage("%s: missing value\n%s", a, usage_text);
		i++;
		if (!strcmp(a, "--fd")) {
			if (!parse_u64(v, 3, 1 << 20, &x))
				die_usage("--fd %s: expected an fd number >= 3", v);
			n->n_fd = (int)x;
		} else if (!strcmp(a, "--ip")) {
			ip = v;
		} else if (!strcmp(a, "--vpc-cidr")) {
			cidr = v;
		} else if (!strcmp(a, "--mtu")) {
			if (!parse_u64(v, 576, 9216, &mtu))
				die_usage("--mtu %s: expected 576..9216", v);
		} else if (!strcmp(a, "--deny")) {
			if (ndeny >= IGW_DENY_MAX / 2)
				die_usage("--deny: at most %d", IGW_DENY_MAX / 2);
			deny[ndeny++] = v;
		} else {
			die_usage("unknown argument %s\n%s", a, usage_text);
		}
	}
	uint32_t self, vnet = 0, net;
	unsigned prefix, vprefix = 0, p;
	if (n->n_fd < 0 || !ip)
		die_usage("--fd and --ip are required\n%s", usage_text);
	char host[20];
	const char *slash = strchr(ip, '/');
	snprintf(host, sizeof(host), "%.*s", slash ? (int)(slash - ip) : (int)strlen(ip), ip);
	prefix = slash ? (unsigned)atoi(slash + 1) : 24;
	if (inet_pton(AF_INET, host, &self) != 1)
		die_usage("--ip %s: expected A.B.C.D/P", ip);
	if (cidr && igw_parse_cidr(cidr, &vnet, &vprefix) < 0)
		die_usage("--vpc-cidr %s: expected A.B.C.D/P", cidr);
	if (igw_policy_init(&n->n_pol, self, prefix, vnet, vprefix) < 0)
		die_usage("--ip %s: prefix out of range or outside --vpc-cidr", ip);
	for (unsigned i = 0; i < ndeny; i++)
		if (igw_parse_cidr(deny[i], &net, &p) < 0 || igw_policy_deny(&n->n_pol, net, p) < 0)
			die_usage("--deny %s: expected A.B.C.D/P", deny[i]);
	deny_host_addresses(&n->n_pol);
	int type = 0;
	socklen_t tl = sizeof(type);
	if (getsockopt(n->n_fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_SEQPACKET)
		die("--fd %d: not a SOCK_SEQPACKET socket", n->n_fd);

	uint32_t mask = htonl(~0u << (32 - prefix));
	SlirpConfig cfg = {
	    .version = 4,
	    .restricted = 0,
	    .in_enabled = true,
	    .vnetwork = {self & mask},
	    .vnetmask = {mask},
	    .vhost = {n->n_pol.ip_router},
	    .in6_enabled = false,
	    .vdhcp_start = {(self & mask) | htonl(4)},
	    .vnameserver = {(self & mask) | htonl(3)},
	    .if_mtu = mtu,
	    .if_mru = mtu,
	    .disable_host_loopback = false, /* the router alias is the point */
	    .enable_emu = false,
	    .disable_dns = false,
	    .disable_dhcp = true,
	};
	static const SlirpCb cb = {
	    .send_packet = send_packet,
	    .guest_error = guest_error,
	    .clock_get_ns = clock_get_ns,
	    .timer_free = timer_free,
	    .timer_mod = timer_mod,
	    .register_poll_fd = no_fd,
	    .unregister_poll_fd = no_fd,
	    .notify = notify,
	    .timer_new_opaque = timer_new_opaque,
	};
	n->n_slirp = slirp_new(&cfg, &cb, n);
	if (!n->n_slirp)
		die("slirp_new failed");
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl = {1024, 1024};
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit: %s", strerror(errno));
	if (sandbox_enter("igw", err, sizeof(err)) < 0)
		die("%s", err);

	while (!stop) {
		uint32_t timeout = 1000;
		n->n_npfd = 0;
		add_poll(n->n_fd, SLIRP_POLL_IN, n);
		slirp_pollfds_fill(n->n_slirp, &timeout, add_poll, n);
		int64_t now_ms = now_ns() / 1000000;
		for (int i = 0; i < MAX_TIMERS; i++) {
			struct timer *t = &n->n_timers[i];
			if (t->t_used && t->t_armed) {
				int64_t d = t->t_expire_ms - now_ms;
				if (d < 0)
					d = 0;
				if ((uint64_t)d < timeout)
					timeout = (uint32_t)d;
			}
		}
		int r = poll(n->n_pfd, n->n_npfd, (int)timeout);
		if (r < 0 && errno != EINTR)
			die("poll: %s", strerror(errno));
		slirp_pollfds_poll(n->n_slirp, r < 0, get_revents, n);
		if (r > 0 && n->n_pfd[0].revents & (POLLIN | POLLHUP | POLLERR))
			from_card(n);
		if (n->n_arp_pending)
			arp_reply(n);
		now_ms = now_ns() / 1000000;
		for (int i = 0; i < MAX_TIMERS; i++) {
			struct timer *t = &n->n_timers[i];
			if (t->t_used && t->t_armed && t->t_expire_ms <= now_ms) {
				t->t_armed = false;
				slirp_handle_timer(n->n_slirp, t->t_id, t->t_cb_opaque);
			}
		}
	}
	fprintf(stderr, "nitro-vpc-igw: frames in %llu out %llu refused %llu\n",
		(unsigned long long)n->n_in, (unsigned long long)n->n_out,
		(unsigned long long)n->n_refused);
	slirp_cleanup(n->n_slirp);
	return 0;
}
