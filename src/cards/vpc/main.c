/* nitro-card-vpc: one network interface (ENI) of a VPC as a vhost-user virtio-net device.
 *
 *   nitro-card-vpc --socket-path PATH | --fd N --vpc ID --ip A.B.C.D[/P]
 *                  [--mac MAC] [--sg FILE] [--underlay ADDR[:PORT] | --underlay-fd N]
 *                  [--map PATH] [--pps N] [--bandwidth MBIT] [--mtu N] [--queue-pairs N]
 *                  [--conntrack-max N] [--ctl PATH] [--imds MODE] [--instance-id ID]
 *                  [--instance-type T] [--ami-id ID] [--region R] [--az AZ]
 *                  [--user-data FILE] [--ssh-key FILE] [--identity DIR]
 *                  [--dns-upstream ADDR[:PORT] | --dns-fd N]
 *                  [--vpc-cidr A.B.C.D/P] [--igw-fd N]
 *   nitro-card-vpc --print-capabilities
 *
 * Frames the guest sends go through the VPC core (vpc.h): ARP and DHCP are answered on
 * the guest's rx queue, the rest leaves Geneve-encapsulated on this card's UDP underlay
 * socket to the card the mapping service names; datagrams arriving there go back through
 * the core and, when they pass, into the guest's rx queue. The card registers its own
 * (VPC, IP) -> (underlay, MAC) record in the mapping directory at start and removes it at
 * exit. Runs until SIGTERM/SIGINT (exit 0); SIGUSR1 prints the counters to stderr, as
 * does the exit; the control socket (--ctl) answers them to `nitro net stats`.
 *
 * The instance metadata service (imds.h) answers at 169.254.169.254:80 on the guest's
 * side only: TCP ends in this process (lwIP, imds_net.h), no host socket. Its metadata
 * comes from the launcher's arguments and files (opened before the sandbox), never from
 * the guest; --identity DIR holds the identity document and the signatures the launcher
 * made with the chip's key (document, pkcs7, signature, rsa2048; the card gets no key).
 * The VPC resolver and the time server (svc_net.h) answer at the VPC base + 2,
 * 169.254.169.253:53 and 169.254.169.123:123; the resolver forwards what is not an
 * instance name to the host's resolver through a connected UDP socket (--dns-fd from the
 * launcher, or --dns-upstream, made before the sandbox).
 *
 * --igw-fd N: the VPC has an internet gateway; N is this card's end of the SOCK_SEQPACKET
 * link to its NAT process (nitro-vpc-igw, made by the launcher: igw.h). --vpc-cidr names
 * the VPC's CIDR (never sent to the gateway; default: the subnet).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "cards/lib/backend.h"
#include "cards/lib/cardmain.h"
#include "cards/vpc/igw.h"
#include "cards/vpc/imds_net.h"
#include "cards/vpc/net.h"
#include "cards/vpc/netctl.h"
#include "cards/vpc/svc_net.h"
#include "cards/vpc/vpc.h"
#include "imds/imds.h"
#include "lib/util.h"
#include "sandbox/sandbox.h"
#include "vpcmap/mapsvc.h"
#include "vpcmap/underlay.h"

static const char usage_text[] =
    "usage: nitro-card-vpc --socket-path PATH | --fd N --vpc ID --ip A.B.C.D[/PREFIX]\n"
    "                      [--mac MAC] [--sg FILE] [--underlay ADDR[:PORT] | --underlay-fd N]\n"
    "                      [--map PATH] [--pps N] [--bandwidth MBIT] [--mtu N] [--queue-pairs N]\n"
    "                      [--conntrack-max N] [--ctl PATH]\n"
    "       nitro-card-vpc --print-capabilities\n"
    "  --vpc ID            the VPC (Geneve VNI), 1..16777215\n"
    "  --ip A.B.C.D/P      the interface's private address and subnet (default /24)\n"
    "  --mac MAC           default: derived from the VPC and the address\n"
    "  --sg FILE           security group (default: the VPC's default group)\n"
    "  --underlay A[:P]    this card's UDP underlay address (default 127.0.0.1, any port)\n"
    "  --underlay-fd N     the underlay: a bound IPv4 UDP socket its launcher made\n"
    "  --map PATH          mapping folder or file (default $NITRO_STATE/vpc-map)\n"
    "  --map-ro            the launcher wrote this card's record (nitrod): only check it\n"
    "  --pps N             packets/s allowance (0: unlimited, the default)\n"
    "  --bandwidth MBIT    Mbit/s allowance per direction (0: unlimited, the default)\n"
    "  --mtu N             576..9216 (default 9001)\n"
    "  --queue-pairs N     virtio-net queue pairs (1..8, default 1)\n"
    "  --ctl PATH          control socket for `nitro net stats`\n"
    "  --imds MODE         required (IMDSv2 only, the default), optional, disabled\n"
    "  --instance-id ID    i- and 17 hex digits (metadata; default i-0123456789abcdef0)\n"
    "  --instance-type T   metadata instance-type (default m5.large)\n"
    "  --ami-id ID, --region R, --az AZ   metadata (defaults ami-0123456789abcdef0,\n"
    "                      us-east-1, REGION + a)\n"
    "  --user-data FILE    /latest/user-data (16 KiB at most)\n"
    "  --ssh-key FILE      meta-data/public-keys/0/openssh-key\n"
    "  --identity DIR      the signed identity document (document, pkcs7, signature,\n"
    "                      rsa2048) made by the launcher\n"
    "  --dns-upstream A[:P] the host's resolver the VPC resolver forwards to (port 53)\n"
    "  --dns-fd N          the same as a connected UDP socket its launcher made\n"
    "                      (neither: names that are no instance's are REFUSED)\n"
    "  --vpc-cidr A.B.C.D/P the VPC's CIDR (default: the subnet)\n"
    "  --igw-fd N          the link to the internet gateway's NAT (nitro-vpc-igw)\n";

struct card {
	struct loop c_loop;
	struct backend c_backend;
	struct vnet c_net;
	struct underlay c_ul;
	struct mapsvc c_map;
	struct ctl c_ctl;
	struct vpc_port *c_port;
	struct vpc_sg *c_sg;
	struct map_entry c_self;
	int c_usr1, c_tick, c_imds_tick;
	int c_igw; /* the link to the internet gateway's NAT, or -1 */
	uint64_t c_igw_send_fail;
	uint8_t c_igw_in[VPC_OUT_MIN]; /* a frame from the NAT */
	struct imds *c_imds;
	struct svc_net c_svc; /* the resolver and the time server */
	bool c_ul_paused;     /* the guest has no rx buffer: the socket buffer holds datagrams */
	uint8_t c_out[VPC_OUT_MIN + 64];
	uint64_t c_now;	     /* the clock, read once per batch of packets */
	unsigned c_now_uses; /* packets since it was read */
};

static struct card *the_card;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The clock for the packet path: read again every 32 packets and at every batch start
 * (clock_gettime per packet was a sixth of the card's time). */
static uint64_t batch_now(struct card *c)
{
	if (c->c_now_uses++ % 32 == 0)
		c->c_now = now_ns();
	return c->c_now;
}

/* ---- the mapping service, as the core asks for it ---- */

static int lookup(void *ctx, uint32_t vni, uint32_t ip, struct vpc_map_entry *out)
{
	struct card *c = ctx;
	const struct map_entry *e = mapsvc_find(&c->c_map, vni, ip, batch_now(c));
	if (!e)
		return -1;
	*out = (struct vpc_map_entry){.vm_vni = e->me_vpc,
				      .vm_ip = e->me_ip,
				      .vm_ul_ip = e->me_ul_ip,
				      .vm_ul_port = e->me_ul_port,
				      .vm_default_sg = e->me_default_sg};
	memcpy(out->vm_mac, e->me_mac, 6);
	return 0;
}

/* ---- guest -> core -> underlay or back to the guest ---- */

static void on_guest_frame(struct vnet *n, unsigned pair, const uint8_t *frame, size_t len)
{
	struct card *c = n->vn_opaque;
	struct vpc_out out = {.vo_buf = ul_out(&c->c_ul), .vo_cap = UL_MAX_PKT};
	switch (vpc_from_guest(c->c_port, frame, len, batch_now(c), &out)) {
	case VPC_TO_UNDERLAY:
		if (out.vo_data != out.vo_buf) /* the core may build it elsewhere */
			memmove(out.vo_buf, out.vo_data, out.vo_len);
		ul_commit(&c->c_ul, out.vo_len, out.vo_ul_ip, out.vo_ul_port);
		break;
	case VPC_TO_GUEST:
		vnet_rx(n, pair, out.vo_data, out.vo_len);
		break;
	case VPC_TO_IMDS:
		imds_net_input(out.vo_data, out.vo_len);
		break;
	case VPC_TO_SERVICE:
		svc_net_input(&c->c_svc, out.vo_data, out.vo_len, batch_now(c));
		break;
	case VPC_TO_IGW: /* one frame per message; a full link drops it (TCP resends) */
		if (send(c->c_igw, out.vo_data, out.vo_len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			c->c_igw_send_fail++;
		break;
	default:
		break;
	}
}

static void on_guest_batch_done(struct vnet *n)
{
	struct card *c = n->vn_opaque;
	ul_flush(&c->c_ul);
	vnet_rx_flush(n);
	c->c_now_uses = 0;
}

/* ---- the IMDS ---- */

static void imds_to_guest(void *ctx, const uint8_t *frame, size_t len)
{
	struct card *c = ctx;
	vnet_rx(&c->c_net, 0, frame, len);
}

static void on_imds_tick(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct card *c = opaque;
	uint64_t n;
	(void)l;
	(void)events;
	if (read(fd, &n, sizeof(n)) > 0) {
		imds_net_poll();
		vnet_rx_flush(&c->c_net);
	}
}

/* ---- the resolver and the time server ---- */

static void svc_to_guest(void *ctx, const uint8_t *frame, size_t len)
{
	struct card *c = ctx;
	vnet_rx(&c->c_net, 0, frame, len);
}

static void on_dns_upstream(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct card *c = opaque;
	(void)l;
	(void)fd;
	(void)events;
	svc_net_upstream(&c->c_svc, now_ns());
	vnet_rx_flush(&c->c_net);
}

static void svc_start(struct card *c, const struct vpc_cfg *cfg, const char *upstream, int fd)
{
	char err[256];
	uint64_t seed;
	if (upstream && (fd = svc_upstream_open(upstream, err, sizeof(err))) < 0)
		die("%s", err);
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		die("getrandom: %s", strerror(errno));
	svc_net_init(&c->c_svc, cfg, lookup, c, fd, svc_to_guest, c, seed);
	if (fd >= 0 && loop_add(&c->c_loop, fd, on_dns_upstream, c, err, sizeof(err)) < 0)
		die("dns upstream: %s", err);
}

/* A whole small file (at most max bytes), opened once. NULL when path is NULL (or, when
 * optional, absent). */
static uint8_t *slurp(const char *path, size_t max, size_t *len, bool optional)
{
	if (!path)
		return NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (optional && errno == ENOENT)
			return NULL;
		die("%s: %s", path, strerror(errno));
	}
	uint8_t *b = malloc(max + 1);
	size_t n = 0;
	if (!b)
		die("out of memory");
	for (;;) {
		ssize_t r = read(fd, b + n, max + 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			die("%s: %s", path, strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > max)
			die("%s: more than %zu bytes", path, max);
	}
	close(fd);
	*len = n;
	return b;
}

struct imds_opts {
	struct imds_cfg ic;
	const char *user_data, *ssh_key, *identity;
};

static void imds_start(struct card *c, struct imds_opts *o, const struct vpc_cfg *cfg)
{
	struct imds_cfg *ic = &o->ic;
	char err[512], p[PATH_MAX];
	unsigned prefix = cfg->vc_prefix ? cfg->vc_prefix : VPC_PREFIX_DEFAULT;
	struct in_addr a = {cfg->vc_ip}, net = {cfg->vc_ip & htonl(~0u << (32 - prefix))};
	inet_ntop(AF_INET, &a, ic->ic_local_ipv4, sizeof(ic->ic_local_ipv4));
	char nb[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &net, nb, sizeof(nb));
	snprintf(ic->ic_subnet_cidr, sizeof(ic->ic_subnet_cidr), "%s/%u", nb, prefix);
	snprintf(ic->ic_vpc_cidr, sizeof(ic->ic_vpc_cidr), "%s/%u", nb, prefix);
	const uint8_t *m = cfg->vc_mac;
	snprintf(ic->ic_mac, sizeof(ic->ic_mac), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2],
		 m[3], m[4], m[5]);
	static char vpc_id[32], subnet_id[32], eni[32];
	snprintf(vpc_id, sizeof(vpc_id), "vpc-%017x", cfg->vc_vni);
	snprintf(subnet_id, sizeof(subnet_id), "subnet-%017x", ntohl(net.s_addr));
	snprintf(eni, sizeof(eni), "eni-%017x", ntohl(cfg->vc_ip));
	ic->ic_vpc_id = vpc_id;
	ic->ic_subnet_id = subnet_id;
	ic->ic_interface_id = eni;
	ic->ic_domain = cfg->vc_domain ? cfg->vc_domain : VPC_DOMAIN_DEFAULT;
	ic->ic_pending_time = (uint64_t)time(NULL);
	ic->ic_user_data = slurp(o->user_data, IMDS_USERDATA_MAX, &ic->ic_user_data_len, false);
	ic->ic_ssh_key = slurp(o->ssh_key, 8192, &ic->ic_ssh_key_len, false);
	if (o->identity) {
#define ID(field, name)                                                                            \
	do {                                                                                       \
		snprintf(p, sizeof(p), "%s/" name, o->identity);                                   \
		ic->ic_##field = slurp(p, 8192, &ic->ic_##field##_len, true);                      \
	} while (0)
		ID(doc, "document");
		ID(pkcs7, "pkcs7");
		ID(signature, "signature");
		ID(rsa2048, "rsa2048");
#undef ID
	}
	c->c_imds = imds_new(ic, err, sizeof(err));
	if (!c->c_imds)
		die("imds: %s", err);
	/* imds_new copied them */
	const uint8_t *files[] = {ic->ic_user_data, ic->ic_ssh_key,   ic->ic_doc,
				  ic->ic_pkcs7,	    ic->ic_signature, ic->ic_rsa2048};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		free((void *)files[i]);
	if (imds_net_init(c->c_imds, cfg->vc_mac, imds_to_guest, c, err, sizeof(err)) < 0)
		die("imds: %s", err);
	c->c_imds_tick = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec t = {.it_interval = {0, IMDS_NET_TICK_MS * 1000000L},
			       .it_value = {0, IMDS_NET_TICK_MS * 1000000L}};
	if (c->c_imds_tick < 0 || timerfd_settime(c->c_imds_tick, 0, &t, NULL) < 0 ||
	    loop_add(&c->c_loop, c->c_imds_tick, on_imds_tick, c, err, sizeof(err)) < 0)
		die("imds timer: %s", c->c_imds_tick < 0 ? strerror(errno) : err);
}

/* ---- underlay -> core -> guest ---- */

static void on_underlay(struct loop *l, int fd, uint32_t events, void *opaque);

static void ul_pause(struct card *c, bool pause)
{
	if (pause == c->c_ul_paused)
		return;
	char err[256];
	if (pause) {
		loop_del(&c->c_loop, c->c_ul.ul_fd);
	} else if (loop_add(&c->c_loop, c->c_ul.ul_fd, on_underlay, c, err, sizeof(err)) < 0) {
		warnmsg("underlay: %s", err);
		return;
	}
	c->c_ul_paused = pause;
}

/* A guest that has buffers of an rx queue running but all used leaves datagrams in the
 * socket buffer (until it posts more); one that has no running rx queue drops them. */
static bool rx_blocked(struct card *c)
{
	struct vnet *n = &c->c_net;
	struct vu_queue *vq = &n->vn_dev.vd_queues[0];
	return vq->vq_started && vq->vq_enabled && !vq->vq_failed && !vnet_rx_room(n);
}

static void on_underlay(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct card *c = opaque;
	(void)l;
	(void)fd;
	(void)events;
	for (unsigned rounds = 0; rounds < 8; rounds++) {
		if (rx_blocked(c)) {
			ul_pause(c, true);
			break;
		}
		int n = ul_recv(&c->c_ul);
		if (n < 0)
			warnmsg("underlay: receive: %s", strerror(errno));
		if (n <= 0 && c->c_ul.ul_nmsg == 0)
			break;
		c->c_now_uses = 0;
		uint64_t now = batch_now(c);
		for (int i = 0; i < n; i++) {
			const struct ul_seg *sg = &c->c_ul.ul_seg[i];
			struct vpc_out out = {.vo_buf = c->c_out, .vo_cap = sizeof(c->c_out)};
			if (vpc_from_underlay(c->c_port, sg->sg_data, sg->sg_len,
					      sg->sg_src->sin_addr.s_addr, sg->sg_src->sin_port,
					      now, &out) == VPC_TO_GUEST)
				/* one queue per sending card keeps each flow in order */
				vnet_rx(&c->c_net,
					ntohs(sg->sg_src->sin_port) ^ sg->sg_src->sin_addr.s_addr,
					out.vo_data, out.vo_len);
		}
		vnet_rx_flush(&c->c_net);
		if (c->c_ul.ul_nmsg < UL_RBUFS)
			break;
	}
}

/* Frames from the internet gateway's NAT (hostile: a compromised NAT is an attacker too;
 * vpc_from_igw checks each). The NAT ending ends the gateway, not the card. */
static void on_igw(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct card *c = opaque;
	(void)events;
	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(fd, c->c_igw_in, sizeof(c->c_igw_in), MSG_DONTWAIT | MSG_TRUNC);
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
				warnmsg("internet gateway: the NAT process ended");
				loop_del(l, fd);
				close(fd);
				c->c_igw = -1;
			}
			break;
		}
		struct vpc_out out = {.vo_buf = c->c_out, .vo_cap = sizeof(c->c_out)};
		if ((size_t)n > sizeof(c->c_igw_in)) /* truncated: oversize */
			n = (ssize_t)sizeof(c->c_igw_in);
		if (vpc_from_igw(c->c_port, c->c_igw_in, (size_t)n, batch_now(c), &out) ==
		    VPC_TO_GUEST)
			vnet_rx(&c->c_net, 0, out.vo_data, out.vo_len);
	}
	vnet_rx_flush(&c->c_net);
}

static void on_rx_ready(struct vnet *n)
{
	struct card *c = n->vn_opaque;
	if (c->c_ul_paused) {
		ul_pause(c, false);
		on_underlay(&c->c_loop, c->c_ul.ul_fd, 0, c);
	}
}

/* ---- counters ---- */

/* All counters as one line of name=value words. */
static size_t stats_line(void *opaque, char *buf, size_t len)
{
	struct card *c = opaque;
	struct vpc_stats st;
	char tmp[8192];
	vpc_port_stats(c->c_port, &st);
	int n = vpc_stats_format(&st, tmp, sizeof(tmp));
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(tmp))
		n = sizeof(tmp) - 1;
	tmp[n] = 0;
	size_t o = 0;
	const struct vnet_stats *v = &c->c_net.vn_stats;
	const struct ul_stats *u = &c->c_ul.ul_stats;
	struct imds_net_stats is;
	imds_net_stats(&is);
	o += (size_t)snprintf(
	    buf + o, len - o,
	    "virtio_ctrl_ok=%llu virtio_ctrl_err=%llu virtio_rx_no_buffer=%llu "
	    "virtio_rx_too_big=%llu virtio_tx_bad_header=%llu "
	    "virtio_tx_runt=%llu virtio_tx_oversize=%llu underlay_sent=%llu "
	    "underlay_send_errors=%llu underlay_received=%llu "
	    "underlay_truncated=%llu underlay_gso_sends=%llu underlay_gro_buffers=%llu "
	    "underlay_gro_overflow=%llu "
	    "map_lookups=%llu map_misses=%llu imds_requests=%llu imds_conns_evicted=%llu "
	    "imds_conns_idle_closed=%llu igw_send_errors=%llu",
	    (unsigned long long)v->st_ctrl_ok, (unsigned long long)v->st_ctrl_err,
	    (unsigned long long)v->st_rx_no_buffer, (unsigned long long)v->st_rx_too_big,
	    (unsigned long long)v->st_tx_bad_header, (unsigned long long)v->st_tx_runt,
	    (unsigned long long)v->st_tx_oversize, (unsigned long long)u->st_sent,
	    (unsigned long long)u->st_send_errors, (unsigned long long)u->st_received,
	    (unsigned long long)u->st_truncated, (unsigned long long)u->st_gso_sends,
	    (unsigned long long)u->st_gro_buffers, (unsigned long long)u->st_gro_overflow,
	    (unsigned long long)c->c_map.m_lookups, (unsigned long long)c->c_map.m_misses,
	    (unsigned long long)is.requests, (unsigned long long)is.conns_evicted,
	    (unsigned long long)is.conns_idle_closed, (unsigned long long)c->c_igw_send_fail);
	char *save = NULL;
	if (o < len)
		o += svc_net_stats_format(&c->c_svc, buf + o, len - o);
	if (o >= len)
		o = len - 1;
	for (char *ln = strtok_r(tmp, "\n", &save); ln && o + 2 < len;
	     ln = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(ln, ' ');
		if (sp)
			*sp = '=';
		o += (size_t)snprintf(buf + o, len - o, " %s", ln);
	}
	if (o + 2 > len)
		o = len - 2;
	buf[o++] = '\n';
	buf[o] = 0;
	return o;
}

static void print_stats(struct card *c)
{
	char line[8192], ip[INET_ADDRSTRLEN];
	stats_line(c, line, sizeof(line));
	inet_ntop(AF_INET, &c->c_self.me_ip, ip, sizeof(ip));
	fprintf(stderr, "%s: vpc %u %s: %s", util_prog(), c->c_self.me_vpc, ip, line);
	fflush(stderr);
}

static void on_usr1(void *opaque)
{
	print_stats(opaque);
}

static void on_tick(struct loop *l, int fd, uint32_t events, void *opaque)
{
	struct card *c = opaque;
	uint64_t n;
	(void)l;
	(void)events;
	if (read(fd, &n, sizeof(n)) > 0)
		vpc_port_tick(c->c_port, now_ns());
}

static void on_map_event(struct loop *l, int fd, uint32_t events, void *opaque)
{
	(void)l;
	(void)fd;
	(void)events;
	mapsvc_on_event(&((struct card *)opaque)->c_map);
}

static void on_disconnected(struct vu_dev *d)
{
	(void)d;
	ul_pause(the_card, false); /* no guest: datagrams are read (and dropped, counted) */
	if (backend_next(&the_card->c_backend) < 0)
		loop_stop(&the_card->c_loop);
}

static const char *opt_arg(const char *name, int argc, char **argv, int *i)
{
	return card_opt(name, argc, argv, i, usage_text);
}

static void parse_ip(const char *v, struct vpc_cfg *cfg)
{
	char a[32];
	uint64_t prefix = VPC_PREFIX_DEFAULT;
	const char *slash = strchr(v, '/');
	size_t l = slash ? (size_t)(slash - v) : strlen(v);
	struct in_addr in;
	if (l == 0 || l >= sizeof(a))
		die_usage("--ip %s: expected A.B.C.D[/PREFIX]", v);
	memcpy(a, v, l);
	a[l] = 0;
	if (inet_pton(AF_INET, a, &in) != 1)
		die_usage("--ip %s: %s is not an IPv4 address", v, a);
	if (slash && !parse_u64(slash + 1, 8, 30, &prefix))
		die_usage("--ip %s: the prefix must be 8 to 30", v);
	cfg->vc_ip = in.s_addr;
	cfg->vc_prefix = (unsigned)prefix;
}

/* A card killed by a fault (a SIGBUS from guest memory, ...) still removes its mapping
 * record, then dies of the same signal. (SIGKILL cannot be caught: the next card for the
 * address replaces a record whose process is gone.) */
static const struct mapsvc *crash_map;

static void on_crash(int sig)
{
	mapsvc_unregister_crash(crash_map);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void unregister_on_crash(const struct mapsvc *m)
{
	static const int sigs[] = {SIGBUS, SIGSEGV, SIGILL, SIGFPE, SIGABRT};
	crash_map = m;
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_crash);
}

int main(int argc, char **argv)
{
	static struct card card = {.c_usr1 = -1, .c_tick = -1, .c_imds_tick = -1, .c_igw = -1};
	struct imds_opts io = {0};
	struct card *c = &card;
	struct backend_opts bo;
	struct vpc_cfg cfg = {0};
	const char *v, *sg = NULL, *ul = UL_DEFAULT_ADDR, *ctl = NULL, *dns_up = NULL;
	char domain[128];
	char map_path[PATH_MAX] = "", err[PATH_MAX + 256];
	uint64_t x, pairs = 1;
	bool have_mac = false, ul_given = false, map_ro = false;
	int ul_fd = -1, dns_fd = -1;

	util_set_prog("nitro-card-vpc");
	the_card = c;
	backend_opts_init(&bo);
	for (int i = 1; i < argc; i++) {
		if (card_backend_opt(&bo, argc, argv, &i))
			continue;
		if ((v = opt_arg("--vpc", argc, argv, &i))) {
			if (!parse_u64(v, 1, MAP_VPC_MAX, &x))
				die_usage("--vpc %s: expected 1..%u", v, MAP_VPC_MAX);
			cfg.vc_vni = (uint32_t)x;
		} else if ((v = opt_arg("--ip", argc, argv, &i))) {
			parse_ip(v, &cfg);
		} else if ((v = opt_arg("--mac", argc, argv, &i))) {
			if (!map_parse_mac(v, cfg.vc_mac))
				die_usage("--mac %s: expected a unicast xx:xx:xx:xx:xx:xx", v);
			have_mac = true;
		} else if ((v = opt_arg("--sg", argc, argv, &i))) {
			sg = v;
		} else if ((v = opt_arg("--underlay", argc, argv, &i))) {
			ul = v;
			ul_given = true;
		} else if ((v = opt_arg("--underlay-fd", argc, argv, &i))) {
			if (!parse_u64(v, 3, 1 << 20, &x))
				die_usage("--underlay-fd %s: expected an fd number >= 3", v);
			ul_fd = (int)x;
		} else if ((v = opt_arg("--igw-fd", argc, argv, &i))) {
			if (!parse_u64(v, 3, 1 << 20, &x))
				die_usage("--igw-fd %s: expected an fd number >= 3", v);
			c->c_igw = (int)x;
			cfg.vc_igw = true;
		} else if ((v = opt_arg("--vpc-cidr", argc, argv, &i))) {
			if (igw_parse_cidr(v, &cfg.vc_vpc_net, &cfg.vc_vpc_prefix) < 0 ||
			    cfg.vc_vpc_prefix < 8)
				die_usage("--vpc-cidr %s: expected A.B.C.D/8..28", v);
		} else if ((v = opt_arg("--map", argc, argv, &i))) {
			snprintf(map_path, sizeof(map_path), "%s", v);
		} else if (!strcmp(argv[i], "--map-ro")) {
			map_ro = true;
		} else if ((v = opt_arg("--ctl", argc, argv, &i))) {
			ctl = v;
		} else if ((v = opt_arg("--pps", argc, argv, &i))) {
			if (!parse_u64(v, 0, 100000000, &cfg.vc_pps))
				die_usage("--pps %s: expected 0..100000000", v);
		} else if ((v = opt_arg("--bandwidth", argc, argv, &i))) {
			if (!parse_u64(v, 0, 400000, &x))
				die_usage("--bandwidth %s: expected Mbit/s 0..400000", v);
			cfg.vc_bps = x * 1000000;
		} else if ((v = opt_arg("--mtu", argc, argv, &i))) {
			if (!parse_u64(v, VPC_MTU_MIN, VPC_MTU_MAX, &x))
				die_usage("--mtu %s: expected %u..%u", v, VPC_MTU_MIN, VPC_MTU_MAX);
			cfg.vc_mtu = (unsigned)x;
		} else if ((v = opt_arg("--queue-pairs", argc, argv, &i))) {
			if (!parse_u64(v, 1, VNET_MAX_PAIRS, &pairs))
				die_usage("--queue-pairs %s: expected 1..%d", v, VNET_MAX_PAIRS);
		} else if ((v = opt_arg("--conntrack-max", argc, argv, &i))) {
			if (!parse_u64(v, 1, VPC_CT_MAX, &x))
				die_usage("--conntrack-max %s: expected 1..%u", v, VPC_CT_MAX);
			cfg.vc_conntrack_max = (uint32_t)x;
		} else if ((v = opt_arg("--imds", argc, argv, &i))) {
			int mode = imds_parse_mode(v);
			if (mode < 0)
				die_usage("--imds %s: expected required, optional or disabled", v);
			io.ic.ic_mode = (enum imds_mode)mode;
		} else if ((v = opt_arg("--instance-id", argc, argv, &i))) {
			io.ic.ic_instance_id = v;
		} else if ((v = opt_arg("--instance-type", argc, argv, &i))) {
			io.ic.ic_instance_type = v;
		} else if ((v = opt_arg("--ami-id", argc, argv, &i))) {
			io.ic.ic_ami_id = v;
		} else if ((v = opt_arg("--region", argc, argv, &i))) {
			io.ic.ic_region = v;
		} else if ((v = opt_arg("--az", argc, argv, &i))) {
			io.ic.ic_az = v;
		} else if ((v = opt_arg("--user-data", argc, argv, &i))) {
			io.user_data = v;
		} else if ((v = opt_arg("--ssh-key", argc, argv, &i))) {
			io.ssh_key = v;
		} else if ((v = opt_arg("--identity", argc, argv, &i))) {
			io.identity = v;
		} else if ((v = opt_arg("--dns-upstream", argc, argv, &i))) {
			dns_up = v;
		} else if ((v = opt_arg("--dns-fd", argc, argv, &i))) {
			if (!parse_u64(v, 3, 1 << 20, &x))
				die_usage("--dns-fd %s: expected an fd number >= 3", v);
			dns_fd = (int)x;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(usage_text, stdout);
			return 0;
		} else {
			die_usage("unknown argument %s\n%s", argv[i], usage_text);
		}
	}
	card_backend_opts_done(&bo, "net", usage_text);
	if (!cfg.vc_vni || !cfg.vc_ip)
		die_usage("--vpc and --ip are required\n%s", usage_text);
	if (ul_given && ul_fd >= 0)
		die_usage("--underlay and --underlay-fd exclude each other");
	if (dns_up && dns_fd >= 0)
		die_usage("--dns-upstream and --dns-fd exclude each other");
	/* EC2's DHCP domain and instance names: ip-A-B-C-D.<region>.compute.internal */
	snprintf(domain, sizeof(domain), "%s.compute.internal",
		 io.ic.ic_region ? io.ic.ic_region : "us-east-1");
	cfg.vc_domain = domain;
	if (!have_mac)
		map_default_mac(cfg.vc_vni, cfg.vc_ip, cfg.vc_mac);
	if (!cfg.vc_mtu)
		cfg.vc_mtu = VPC_MTU_DEFAULT;
	if (!map_path[0])
		map_default_path(map_path, sizeof(map_path));
	signal(SIGPIPE, SIG_IGN);

	if (sg && !(c->c_sg = vpc_sg_load(sg, err, sizeof(err))))
		die("security group %s", err);
	cfg.vc_sg = c->c_sg;
	c->c_port = vpc_port_new(&cfg, lookup, c, err, sizeof(err));
	if (!c->c_port)
		die("interface: %s", err);
	if (ul_fd >= 0 ? ul_adopt(&c->c_ul, ul_fd, err, sizeof(err))
		       : ul_open(&c->c_ul, ul, err, sizeof(err)))
		die("%s", err);
	if (mapsvc_open(&c->c_map, map_path, err, sizeof(err)))
		die("%s", err);

	if (card_loop_init(&c->c_loop, &c->c_usr1, on_usr1, c, err, sizeof(err)) < 0)
		die("%s", err);
	/* In the emulated host only (NITRO_EMULATED_HOST, set by `nitro emuhost`: the test and
	 * bench platform, one vCPU shared by the guest's driver and this card): SCHED_FIFO 1,
	 * so a frame's wake-up runs the card at once instead of after a scheduler tick of
	 * whatever holds that CPU (IMDS GET p99 ~5-8 ms -> ~0.9 ms there, docs/vpc.md). Not on
	 * a real host: a real-time card escapes the jail's cpu.max and a guest's flood would
	 * take the CPU from nitrod and the other instances. Before the seccomp list (which
	 * does not allow it); not fatal when refused. */
	if (getenv("NITRO_EMULATED_HOST") &&
	    sched_setscheduler(0, SCHED_FIFO, &(struct sched_param){.sched_priority = 1}) < 0)
		warnmsg("SCHED_FIFO: %s", strerror(errno));
	c->c_tick = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec sec = {.it_interval = {1, 0}, .it_value = {1, 0}};
	if (c->c_tick < 0 || timerfd_settime(c->c_tick, 0, &sec, NULL) < 0 ||
	    loop_add(&c->c_loop, c->c_tick, on_tick, c, err, sizeof(err)) < 0)
		die("conntrack timer: %s", c->c_tick < 0 ? strerror(errno) : err);
	if (mapsvc_fd(&c->c_map) >= 0 &&
	    loop_add(&c->c_loop, mapsvc_fd(&c->c_map), on_map_event, c, err, sizeof(err)) < 0)
		die("mapping: %s", err);
	if (loop_add(&c->c_loop, c->c_ul.ul_fd, on_underlay, c, err, sizeof(err)) < 0)
		die("underlay: %s", err);
	if (c->c_igw >= 0) {
		int type = 0;
		socklen_t tl = sizeof(type);
		if (getsockopt(c->c_igw, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 ||
		    type != SOCK_SEQPACKET)
			die("--igw-fd %d: not a SOCK_SEQPACKET socket", c->c_igw);
		fcntl(c->c_igw, F_SETFD, FD_CLOEXEC);
		if (loop_add(&c->c_loop, c->c_igw, on_igw, c, err, sizeof(err)) < 0)
			die("internet gateway: %s", err);
	}
	if (vnet_init(&c->c_net, &c->c_loop, cfg.vc_mac, cfg.vc_mtu, (unsigned)pairs, err,
		      sizeof(err)) < 0)
		die("virtio-net: %s", err);
	c->c_net.vn_opaque = c;
	imds_start(c, &io, &cfg);
	svc_start(c, &cfg, dns_up, dns_fd);
	c->c_net.vn_tx = on_guest_frame;
	c->c_net.vn_tx_done = on_guest_batch_done;
	c->c_net.vn_rx_ready = on_rx_ready;
	c->c_net.vn_ops.vo_disconnected = on_disconnected;
	if (ctl && ctl_open(&c->c_ctl, &c->c_loop, ctl, stats_line, c, err, sizeof(err)) < 0)
		die("%s", err);
	if (!ctl)
		c->c_ctl.ct_fd = -1;

	/* Findable once everything is ready to serve. */
	c->c_self = (struct map_entry){.me_vpc = cfg.vc_vni,
				       .me_ip = cfg.vc_ip,
				       .me_ul_ip = c->c_ul.ul_addr.sin_addr.s_addr,
				       .me_ul_port = c->c_ul.ul_addr.sin_port,
				       .me_pid = getpid(),
				       .me_default_sg = c->c_sg == NULL};
	memcpy(c->c_self.me_mac, cfg.vc_mac, 6);
	gethostname(c->c_self.me_host, sizeof(c->c_self.me_host) - 1);
	if (ctl)
		snprintf(c->c_self.me_ctl, sizeof(c->c_self.me_ctl), "%s", ctl);
	if (map_ro) { /* the launcher's record (read-only here) must name this very card */
		struct map_entry rec;
		if (!mapsvc_lookup(&c->c_map, cfg.vc_vni, cfg.vc_ip, &rec) ||
		    rec.me_ul_ip != c->c_self.me_ul_ip || rec.me_ul_port != c->c_self.me_ul_port ||
		    memcmp(rec.me_mac, c->c_self.me_mac, 6) ||
		    rec.me_default_sg != c->c_self.me_default_sg)
			die("mapping %s: the launcher's record of this interface is missing or "
			    "names another underlay, MAC or group",
			    map_path);
	} else if (c->c_map.m_dir && mapsvc_register(&c->c_map, &c->c_self, err, sizeof(err)) < 0) {
		die("%s", err);
	}
	unregister_on_crash(&c->c_map);

	bo.bo_serial = true;
	int r = backend_start(&c->c_backend, &c->c_net.vn_dev, &c->c_loop, &bo, err, sizeof(err));
	if (r < 0) {
		mapsvc_unregister(&c->c_map);
		die("%s", err);
	}
	/* Jailed by nitrod (NITRO_SECCOMP=card-vpc): the seccomp allow-list from here on. */
	if (sandbox_enter_from_env(err, sizeof(err)) < 0) {
		mapsvc_unregister(&c->c_map);
		die("%s", err);
	}
	r = loop_run(&c->c_loop);
	if (r < 0)
		warnmsg("event loop: %s", strerror(-r));

	mapsvc_unregister(&c->c_map);
	print_stats(c);
	vnet_fini(&c->c_net);
	backend_stop(&c->c_backend);
	ctl_close(&c->c_ctl, &c->c_loop);
	mapsvc_close(&c->c_map);
	ul_close(&c->c_ul);
	vpc_port_free(c->c_port);
	vpc_sg_free(c->c_sg);
	imds_free(c->c_imds);
	if (c->c_imds_tick >= 0)
		close(c->c_imds_tick);
	if (c->c_igw >= 0)
		close(c->c_igw);
	close(c->c_usr1);
	close(c->c_tick);
	loop_fini(&c->c_loop);
	return r < 0 ? 1 : 0;
}
