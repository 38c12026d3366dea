/* Fixtures of the VPC core unit tests (see vpctest.h). */
#include "vpctest.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const uint8_t MAC_A[6] = {0x02, 0x00, 0x0a, 0x00, 0x00, 0x05};
const uint8_t MAC_B[6] = {0x02, 0x00, 0x0a, 0x00, 0x00, 0x06};
const uint8_t MAC_R[6] = {0x02, 0x00, 0x0a, 0x00, 0x01, 0x09};
const uint8_t MAC_X[6] = {0x02, 0x00, 0x0b, 0x00, 0x00, 0x06};
const uint8_t MAC_GW[6] = {0x02, 0x00, 0x5e, 0x00, 0x00, 0x01};
const uint8_t MAC_BCAST[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

uint32_t vt_ip(const char *s)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

uint16_t vt_port(unsigned p)
{
	return htons((uint16_t)p);
}

int vt_lookup(void *ctx, uint32_t vni, uint32_t ip, struct vpc_map_entry *out)
{
	struct vt_map *m = ctx;
	m->calls++;
	for (unsigned i = 0; i < m->n; i++)
		if (m->e[i].vm_vni == vni && m->e[i].vm_ip == ip) {
			*out = m->e[i];
			return 0;
		}
	return -1;
}

void vt_add(struct vt_map *m, uint32_t vni, const char *ip, const uint8_t mac[6], const char *ul,
	    unsigned port, bool def)
{
	if (m->n >= VT_MAX)
		abort();
	struct vpc_map_entry *e = &m->e[m->n++];
	e->vm_vni = vni;
	e->vm_ip = vt_ip(ip);
	memcpy(e->vm_mac, mac, 6);
	e->vm_ul_ip = vt_ip(ul);
	e->vm_ul_port = vt_port(port);
	e->vm_default_sg = def;
}

struct vpc_cfg vt_cfg(void)
{
	struct vpc_cfg c = {0};
	c.vc_vni = 7;
	memcpy(c.vc_mac, MAC_A, 6);
	c.vc_ip = vt_ip("10.0.0.5");
	return c;
}

void vt_out_reset(struct vt *t)
{
	memset(&t->out, 0, sizeof(t->out));
	t->out.vo_buf = t->buf;
	t->out.vo_cap = sizeof(t->buf);
}

void vt_setup(struct vt *t, const struct vpc_cfg *cfg)
{
	memset(t, 0, sizeof(*t));
	vt_add(&t->map, 7, "10.0.0.5", MAC_A, "192.0.2.5", 40005, true);
	vt_add(&t->map, 7, "10.0.0.6", MAC_B, "192.0.2.6", 40006, true);
	vt_add(&t->map, 7, "10.0.1.9", MAC_R, "192.0.2.9", 40109, false);
	vt_add(&t->map, 8, "10.0.0.6", MAC_X, "192.0.2.66", 40066, true);
	struct vpc_cfg c = cfg ? *cfg : vt_cfg();
	char err[256];
	t->p = vpc_port_new(&c, vt_lookup, &t->map, err, sizeof(err));
	if (!t->p)
		abort();
	vt_out_reset(t);
}

void vt_teardown(struct vt *t)
{
	vpc_port_free(t->p);
}

int vt_state_setup(void **state)
{
	static struct vt t;
	vt_setup(&t, NULL);
	*state = &t;
	return 0;
}

int vt_state_teardown(void **state)
{
	vt_teardown(*state);
	return 0;
}

uint16_t vt_csum(const uint8_t *p, size_t len, uint32_t start)
{
	uint32_t s = start;
	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t pseudo(uint32_t sip, uint32_t dip, uint8_t proto, size_t len)
{
	uint8_t ph[12];
	memcpy(ph, &sip, 4);
	memcpy(ph + 4, &dip, 4);
	ph[8] = 0;
	ph[9] = proto;
	ph[10] = (uint8_t)(len >> 8);
	ph[11] = (uint8_t)len;
	return (uint16_t)~vt_csum(ph, 12, 0);
}

size_t vt_ipv4(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6], uint32_t sip,
	       uint32_t dip, uint8_t proto, size_t l4len)
{
	memcpy(buf, dst_mac, 6);
	memcpy(buf + 6, src_mac, 6);
	buf[12] = 0x08;
	buf[13] = 0x00;
	uint8_t *ip = buf + 14;
	size_t tot = 20 + l4len;
	ip[0] = 0x45;
	ip[1] = 0;
	ip[2] = (uint8_t)(tot >> 8);
	ip[3] = (uint8_t)tot;
	ip[4] = 0x12;
	ip[5] = 0x34;
	ip[6] = 0x40;
	ip[7] = 0;
	ip[8] = 64;
	ip[9] = proto;
	ip[10] = ip[11] = 0;
	memcpy(ip + 12, &sip, 4);
	memcpy(ip + 16, &dip, 4);
	uint16_t c = vt_csum(ip, 20, 0);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	return 14 + tot;
}

size_t vt_udp(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6], const char *sip,
	      const char *dip, unsigned sport, unsigned dport, size_t plen)
{
	return vt_udp_data(buf, dst_mac, src_mac, sip, dip, sport, dport, NULL, plen);
}

size_t vt_udp_data(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6],
		   const char *sip, const char *dip, unsigned sport, unsigned dport,
		   const uint8_t *payload, size_t plen)
{
	uint8_t *u = buf + 34;
	size_t l = 8 + plen;
	u[0] = (uint8_t)(sport >> 8);
	u[1] = (uint8_t)sport;
	u[2] = (uint8_t)(dport >> 8);
	u[3] = (uint8_t)dport;
	u[4] = (uint8_t)(l >> 8);
	u[5] = (uint8_t)l;
	u[6] = u[7] = 0;
	for (size_t i = 0; i < plen; i++)
		u[8 + i] = payload ? payload[i] : (uint8_t)i;
	uint16_t c = vt_csum(u, l, pseudo(vt_ip(sip), vt_ip(dip), 17, l));
	u[6] = (uint8_t)(c >> 8);
	u[7] = (uint8_t)c;
	return vt_ipv4(buf, dst_mac, src_mac, vt_ip(sip), vt_ip(dip), 17, l);
}

size_t vt_tcp(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6], const char *sip,
	      const char *dip, unsigned sport, unsigned dport, uint8_t flags)
{
	uint8_t *t = buf + 34;
	memset(t, 0, 20);
	t[0] = (uint8_t)(sport >> 8);
	t[1] = (uint8_t)sport;
	t[2] = (uint8_t)(dport >> 8);
	t[3] = (uint8_t)dport;
	t[12] = 5 << 4;
	t[13] = flags;
	t[14] = 0xff;
	uint16_t c = vt_csum(t, 20, pseudo(vt_ip(sip), vt_ip(dip), 6, 20));
	t[16] = (uint8_t)(c >> 8);
	t[17] = (uint8_t)c;
	return vt_ipv4(buf, dst_mac, src_mac, vt_ip(sip), vt_ip(dip), 6, 20);
}

size_t vt_icmp(uint8_t *buf, const uint8_t dst_mac[6], const uint8_t src_mac[6], const char *sip,
	       const char *dip, uint8_t type, uint8_t code, uint16_t id)
{
	uint8_t *m = buf + 34;
	memset(m, 0, 16);
	m[0] = type;
	m[1] = code;
	m[4] = (uint8_t)(id >> 8);
	m[5] = (uint8_t)id;
	m[7] = 1;
	uint16_t c = vt_csum(m, 16, 0);
	m[2] = (uint8_t)(c >> 8);
	m[3] = (uint8_t)c;
	return vt_ipv4(buf, dst_mac, src_mac, vt_ip(sip), vt_ip(dip), 1, 16);
}

size_t vt_geneve(uint8_t *buf, uint32_t vni, const uint8_t *frame, size_t len)
{
	buf[0] = 0;
	buf[1] = 0;
	buf[2] = 0x65;
	buf[3] = 0x58;
	buf[4] = (uint8_t)(vni >> 16);
	buf[5] = (uint8_t)(vni >> 8);
	buf[6] = (uint8_t)vni;
	buf[7] = 0;
	memmove(buf + 8, frame, len);
	return 8 + len;
}

enum vpc_action vt_guest(struct vt *t, const uint8_t *frame, size_t len, uint64_t now)
{
	vt_out_reset(t);
	return vpc_from_guest(t->p, frame, len, now, &t->out);
}

enum vpc_action vt_under(struct vt *t, const uint8_t *pl, size_t len, const char *ul, unsigned port,
			 uint64_t now)
{
	vt_out_reset(t);
	return vpc_from_underlay(t->p, pl, len, vt_ip(ul), vt_port(port), now, &t->out);
}

uint64_t vt_drops(struct vt *t, enum vpc_drop r)
{
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	return st.st_drops[r];
}

struct vpc_sg *vt_sg(const char *text)
{
	char err[256] = "";
	struct vpc_sg *g = vpc_sg_parse(text, strlen(text), "sg", err, sizeof(err));
	if (!g) {
		fprintf(stderr, "vt_sg: %s\n", err);
		abort();
	}
	return g;
}

void vt_setup_sg(struct vt *t, struct vpc_sg *g, uint32_t ct)
{
	struct vpc_cfg c = vt_cfg();
	c.vc_sg = g;
	c.vc_conntrack_max = ct;
	vt_setup(t, &c);
}

enum vpc_action vt_tcp_in(struct vt *t, bool r, unsigned sport, unsigned dport, uint8_t fl,
			  uint64_t now)
{
	size_t n = vt_tcp(t->frame, MAC_A, r ? MAC_R : MAC_B, r ? "10.0.1.9" : "10.0.0.6",
			  "10.0.0.5", sport, dport, fl);
	size_t m = vt_geneve(t->ul, 7, t->frame, n);
	return vt_under(t, t->ul, m, r ? "192.0.2.9" : "192.0.2.6", r ? 40109 : 40006, now);
}

enum vpc_action vt_tcp_out(struct vt *t, bool r, unsigned sport, unsigned dport, uint8_t fl,
			   uint64_t now)
{
	size_t n = vt_tcp(t->frame, MAC_GW, MAC_A, "10.0.0.5", r ? "10.0.1.9" : "10.0.0.6", sport,
			  dport, fl);
	return vt_guest(t, t->frame, n, now);
}
