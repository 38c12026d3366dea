/* Security groups: the file parser and rule matching (format: docs/vpc-sg.md). */
#include "cards/vpc/sg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vpc/pkt.h"
#include "lib/util.h"

#define SG_LINE_MAX 1024
#define SG_WORDS 5

static const struct sg_rule default_in = {
    .r_proto = SG_ANY_PROTO, .r_lo = 0, .r_hi = 65535, .r_default_group = true};
const struct vpc_sg sg_default_group = {
    .sg_in = (struct sg_rule *)&default_in,
    .sg_nin = 1,
    .sg_egress_all = true,
    .sg_static = true,
};

static bool rule_matches(const struct sg_rule *r, uint8_t proto, uint16_t port, uint32_t rip,
			 bool peer_default)
{
	if (r->r_proto != SG_ANY_PROTO && r->r_proto != proto)
		return false;
	if (port < r->r_lo || port > r->r_hi)
		return false;
	if (r->r_default_group)
		return peer_default;
	return (rip & r->r_mask) == r->r_net;
}

bool sg_allows(const struct vpc_sg *g, bool ingress, uint8_t proto, uint16_t port, uint32_t rip,
	       bool peer_default)
{
	const struct sg_rule *r = ingress ? g->sg_in : g->sg_out;
	unsigned n = ingress ? g->sg_nin : g->sg_nout;
	if (!ingress && g->sg_egress_all)
		return true;
	for (unsigned i = 0; i < n; i++)
		if (rule_matches(&r[i], proto, port, rip, peer_default))
			return true;
	return false;
}

unsigned vpc_sg_rules(const struct vpc_sg *sg, bool ingress)
{
	return ingress ? sg->sg_nin : sg->sg_nout;
}

void vpc_sg_free(struct vpc_sg *sg)
{
	if (!sg || sg->sg_static)
		return;
	free(sg->sg_in);
	free(sg->sg_out);
	free(sg);
}

static bool parse_num(const char *s, unsigned max, unsigned *out)
{
	uint64_t v;
	if (!parse_u64(s, 0, max, &v))
		return false;
	*out = (unsigned)v;
	return true;
}

static int parse_proto(const char *w, uint16_t *proto)
{
	unsigned n;
	if (!strcmp(w, "all") || !strcmp(w, "-1"))
		*proto = SG_ANY_PROTO;
	else if (!strcmp(w, "tcp"))
		*proto = IPPROTO_TCP_;
	else if (!strcmp(w, "udp"))
		*proto = IPPROTO_UDP_;
	else if (!strcmp(w, "icmp"))
		*proto = IPPROTO_ICMP_;
	else if (parse_num(w, 255, &n))
		*proto = (uint16_t)n;
	else
		return -1;
	return 0;
}

static int parse_ports(const char *w, unsigned min, unsigned max, uint16_t *lo, uint16_t *hi)
{
	if (!strcmp(w, "all")) {
		*lo = 0;
		*hi = 65535;
		return 0;
	}
	char a[16];
	const char *dash = strchr(w, '-');
	size_t alen = dash ? (size_t)(dash - w) : strlen(w);
	if (alen == 0 || alen >= sizeof(a))
		return -1;
	memcpy(a, w, alen);
	a[alen] = 0;
	unsigned x, y;
	if (!parse_num(a, max, &x) || x < min)
		return -1;
	y = x;
	if (dash && (!parse_num(dash + 1, max, &y) || y < x))
		return -1;
	*lo = (uint16_t)x;
	*hi = (uint16_t)y;
	return 0;
}

static int parse_peer(const char *w, struct sg_rule *r, char *why, size_t whylen)
{
	if (!strcmp(w, "default")) {
		r->r_default_group = true;
		return 0;
	}
	char a[INET_ADDRSTRLEN];
	const char *slash = strchr(w, '/');
	size_t alen = slash ? (size_t)(slash - w) : strlen(w);
	unsigned prefix = 32;
	struct in_addr in;
	if (alen == 0 || alen >= sizeof(a))
		goto bad;
	memcpy(a, w, alen);
	a[alen] = 0;
	if (inet_pton(AF_INET, a, &in) != 1)
		goto bad;
	if (slash && !parse_num(slash + 1, 32, &prefix))
		goto bad;
	r->r_mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	r->r_net = in.s_addr;
	if (r->r_net & ~r->r_mask) {
		struct in_addr net = {.s_addr = r->r_net & r->r_mask};
		char n[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &net, n, sizeof(n));
		snprintf(why, whylen, "peer '%s' has host bits set (the network is %s/%u)", w, n,
			 prefix);
		return -1;
	}
	return 0;
bad:
	snprintf(why, whylen, "bad peer '%s' (A.B.C.D/N, A.B.C.D or default)", w);
	return -1;
}

static const char *proto_name(uint16_t p)
{
	switch (p) {
	case SG_ANY_PROTO:
		return "all";
	case IPPROTO_TCP_:
		return "tcp";
	case IPPROTO_UDP_:
		return "udp";
	case IPPROTO_ICMP_:
		return "icmp";
	default:
		return "that protocol";
	}
}

/* One line's words into r; -1 with why. */
static int parse_rule(char **w, unsigned nw, bool *ingress, struct sg_rule *r, char *why,
		      size_t whylen)
{
	if (nw != 4) {
		snprintf(why, whylen, "expected 'DIRECTION PROTOCOL PORTS PEER', got %u word%s", nw,
			 nw == 1 ? "" : "s");
		return -1;
	}
	if (!strcmp(w[0], "ingress") || !strcmp(w[0], "in"))
		*ingress = true;
	else if (!strcmp(w[0], "egress") || !strcmp(w[0], "out"))
		*ingress = false;
	else {
		snprintf(why, whylen, "unknown direction '%.32s' (ingress or egress)", w[0]);
		return -1;
	}
	if (parse_proto(w[1], &r->r_proto)) {
		snprintf(why, whylen, "unknown protocol '%.32s' (tcp, udp, icmp, all or 0..255)",
			 w[1]);
		return -1;
	}
	if (r->r_proto == IPPROTO_TCP_ || r->r_proto == IPPROTO_UDP_) {
		if (parse_ports(w[2], 1, 65535, &r->r_lo, &r->r_hi)) {
			snprintf(why, whylen,
				 "bad port range '%.32s' (N or N-M within 1..65535, or all)", w[2]);
			return -1;
		}
	} else if (r->r_proto == IPPROTO_ICMP_) {
		if (parse_ports(w[2], 0, 255, &r->r_lo, &r->r_hi)) {
			snprintf(why, whylen,
				 "bad ICMP type range '%.32s' (N or N-M within 0..255, or all)",
				 w[2]);
			return -1;
		}
	} else if (strcmp(w[2], "all")) {
		snprintf(why, whylen, "ports must be 'all' for protocol %s, got '%.32s'",
			 proto_name(r->r_proto), w[2]);
		return -1;
	} else {
		r->r_lo = 0;
		r->r_hi = 65535;
	}
	return parse_peer(w[3], r, why, whylen);
}

static int add_rule(struct sg_rule **v, unsigned *n, const struct sg_rule *r)
{
	if (*n % 16 == 0) {
		struct sg_rule *nv = realloc(*v, (*n + 16) * sizeof(**v));
		if (!nv)
			return -1;
		*v = nv;
	}
	(*v)[(*n)++] = *r;
	return 0;
}

static bool opens_all_ports(const struct sg_rule *v, unsigned n, uint16_t proto)
{
	for (unsigned i = 0; i < n; i++)
		if ((v[i].r_proto == SG_ANY_PROTO || v[i].r_proto == proto) && v[i].r_lo <= 1 &&
		    v[i].r_hi == 65535 && !v[i].r_default_group && v[i].r_mask == 0)
			return true;
	return false;
}

struct vpc_sg *vpc_sg_parse(const char *text, size_t len, const char *name, char *err,
			    size_t errlen)
{
	struct vpc_sg *g = calloc(1, sizeof(*g));
	if (!g)
		RETURN_ERR(NULL, "%s: out of memory", name);
	char line[SG_LINE_MAX + 1];
	unsigned lineno = 0;
	size_t pos = 0;
	char why[192];
	while (pos < len) {
		lineno++;
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t ll = nl ? (size_t)(nl - (text + pos)) : len - pos;
		if (memchr(text + pos, 0, ll)) {
			snprintf(err, errlen, "%s:%u: NUL byte in the line", name, lineno);
			goto fail;
		}
		if (ll > SG_LINE_MAX) {
			snprintf(err, errlen, "%s:%u: line longer than %u bytes", name, lineno,
				 SG_LINE_MAX);
			goto fail;
		}
		memcpy(line, text + pos, ll);
		line[ll] = 0;
		pos += ll + (nl ? 1 : 0);
		char *hash = strchr(line, '#');
		if (hash)
			*hash = 0;
		char *w[SG_WORDS + 1], *save = NULL;
		unsigned nw = 0;
		for (char *t = strtok_r(line, " \t\r\v\f", &save); t;
		     t = strtok_r(NULL, " \t\r\v\f", &save))
			if (nw < SG_WORDS + 1)
				w[nw++] = t;
			else
				nw = SG_WORDS + 1;
		if (nw == 0)
			continue;
		struct sg_rule r = {.r_line = lineno};
		bool ingress;
		if (parse_rule(w, nw > SG_WORDS ? SG_WORDS : nw, &ingress, &r, why, sizeof(why))) {
			snprintf(err, errlen, "%s:%u: %s", name, lineno, why);
			goto fail;
		}
		unsigned *n = ingress ? &g->sg_nin : &g->sg_nout;
		if (*n >= SG_MAX_RULES) {
			snprintf(err, errlen, "%s:%u: more than %u %s rules", name, lineno,
				 SG_MAX_RULES, ingress ? "ingress" : "egress");
			goto fail;
		}
		if (add_rule(ingress ? &g->sg_in : &g->sg_out, n, &r)) {
			snprintf(err, errlen, "%s:%u: out of memory", name, lineno);
			goto fail;
		}
	}
	g->sg_egress_all = g->sg_nout == 0;
	for (int i = 0; i < 2; i++) {
		uint16_t proto = i ? IPPROTO_UDP_ : IPPROTO_TCP_;
		bool both = opens_all_ports(g->sg_in, g->sg_nin, proto) &&
			    (g->sg_egress_all || opens_all_ports(g->sg_out, g->sg_nout, proto));
		if (i)
			g->sg_untracked_udp = both;
		else
			g->sg_untracked_tcp = both;
	}
	return g;
fail:
	vpc_sg_free(g);
	return NULL;
}

struct vpc_sg *vpc_sg_load(const char *path, char *err, size_t errlen)
{
	uint8_t *buf;
	size_t len;
	int e = read_file(path, SG_FILE_MAX, &buf, &len);
	if (e == EFBIG)
		RETURN_ERR(NULL, "%s: security group file larger than %u bytes", path, SG_FILE_MAX);
	if (e == ENODEV)
		RETURN_ERR(NULL, "%s: not a regular file", path);
	if (e)
		RETURN_ERR(NULL, "%s: %s", path, strerror(e));
	struct vpc_sg *g = vpc_sg_parse((const char *)buf, len, path, err, errlen);
	free(buf);
	return g;
}
