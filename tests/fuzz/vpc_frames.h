/* What the VPC core fuzz targets share (fuzz_vpc_guest.c, fuzz_vpc_underlay.c): a port
 * with a small conntrack table and a security group, a mapping of a few peers, and frame
 * templates the input mutates, so that an empty corpus reaches deep into the pipeline.
 *
 * Input: byte 0 picks the setup (bit 0: the security group instead of the default group;
 * bits 1-2: conntrack size 4 << n). Then records until the input ends:
 *   u8 h: kind = h & 7 (0: raw frame, u16 length + bytes; 1..6: a template), bits 3-6:
 *         time step (n * 7 s), bit 7: fix the IPv4 header checksum after mutating;
 *   templates then take u8 n and n mutations (u16 offset, u8 xor value).
 */
#ifndef NITRO_TESTS_FUZZ_VPC_FRAMES_H
#define NITRO_TESTS_FUZZ_VPC_FRAMES_H

#include <stdint.h>
#include <string.h>

#include "cards/vpc/vpc.h"
#include "fuzz.h"

#define VF_BUF 9400

struct vf_in {
	const uint8_t *p;
	size_t n;
};

static const uint8_t vf_mac_a[6] = {0x02, 0x00, 0x0a, 0x00, 0x00, 0x05};
static const uint8_t vf_mac_b[6] = {0x02, 0x00, 0x0a, 0x00, 0x00, 0x06};
static const uint8_t vf_mac_r[6] = {0x02, 0x00, 0x0a, 0x00, 0x01, 0x09};

static const struct vpc_map_entry vf_map[] = {
    {7, 0x0600000a, {0x02, 0x00, 0x0a, 0x00, 0x00, 0x06}, 0x060200c0, 0x469c, true},
    {7, 0x0901000a, {0x02, 0x00, 0x0a, 0x00, 0x01, 0x09}, 0x090200c0, 0x6d9c, false},
    {8, 0x0600000a, {0x02, 0x00, 0x0b, 0x00, 0x00, 0x06}, 0x420200c0, 0x429c, true},
};

static int vf_lookup(void *ctx, uint32_t vni, uint32_t ip, struct vpc_map_entry *out)
{
	(void)ctx;
	for (size_t i = 0; i < sizeof(vf_map) / sizeof(vf_map[0]); i++)
		if (vf_map[i].vm_vni == vni && vf_map[i].vm_ip == ip) {
			*out = vf_map[i];
			return 0;
		}
	return -1;
}

static bool vf_take(struct vf_in *in, void *out, size_t n)
{
	if (in->n < n)
		return false;
	memcpy(out, in->p, n);
	in->p += n;
	in->n -= n;
	return true;
}

static struct vpc_port *vf_port(struct vf_in *in, struct vpc_sg **sg)
{
	uint8_t b = 0;
	vf_take(in, &b, 1);
	char err[256];
	static const char text[] = "ingress tcp 22 10.0.0.0/16\ningress udp 53-60 default\n"
				   "ingress icmp 8 0.0.0.0/0\negress tcp 1-1000 10.0.0.0/8\n"
				   "egress udp all 0.0.0.0/0\negress icmp all default\n";
	*sg = NULL;
	if (b & 1) {
		*sg = vpc_sg_parse(text, sizeof(text) - 1, "fuzz", err, sizeof(err));
		CHECK(*sg);
	}
	struct vpc_cfg c = {.vc_vni = 7, .vc_ip = 0x0500000a, .vc_sg = *sg};
	memcpy(c.vc_mac, vf_mac_a, 6);
	c.vc_conntrack_max = 4u << ((b >> 1) & 3);
	struct vpc_port *p = vpc_port_new(&c, vf_lookup, NULL, err, sizeof(err));
	CHECK(p);
	return p;
}

static uint16_t vf_csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* A template frame of kind k (1..6) into f; to_guest: as a peer would send it to A. */
static size_t vf_template(uint8_t *f, unsigned k, bool to_guest)
{
	static const uint8_t bcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	memset(f, 0, 400);
	const uint8_t *src = to_guest ? (k == 6 ? vf_mac_r : vf_mac_b) : vf_mac_a;
	const uint8_t *dst = to_guest ? vf_mac_a : vf_mac_b;
	uint32_t a = 0x0500000a, b = k == 6 ? 0x0901000a : 0x0600000a;
	uint32_t sip = to_guest ? b : a, dip = to_guest ? a : b;
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	f[12] = 0x08;
	uint8_t *ip = f + 14, *l4 = ip + 20;
	size_t l4len = 0;
	uint8_t proto = 17;
	switch (k) {
	case 1: /* UDP */
	case 6:
		l4[0] = 0x13, l4[1] = 0x88, l4[2] = 0x00, l4[3] = 0x35;
		l4len = 26;
		l4[5] = (uint8_t)l4len;
		break;
	case 2: /* TCP SYN */
		proto = 6;
		l4[0] = 0x9c, l4[1] = 0x40, l4[3] = 22, l4[12] = 0x50, l4[13] = 0x02;
		l4len = 20;
		break;
	case 3: /* ICMP echo, or a port unreachable quoting UDP */
		proto = 1;
		l4[0] = to_guest ? 3 : 8;
		l4[1] = to_guest ? 3 : 0;
		l4[5] = 1;
		l4len = 8;
		if (to_guest) {
			uint8_t *q = l4 + 8;
			q[0] = 0x45, q[3] = 36, q[9] = 17;
			memcpy(q + 12, &dip, 4);
			memcpy(q + 16, &sip, 4);
			q[20] = 0x13, q[21] = 0x88, q[23] = 0x35, q[25] = 16;
			l4len = 8 + 28;
		}
		break;
	case 4: /* ARP request for B (to the guest: an ARP frame, which gets dropped) */
		memcpy(f, bcast, 6);
		f[13] = 0x06;
		{
			uint8_t *r = f + 14;
			r[1] = 1, r[2] = 8, r[4] = 6, r[5] = 4, r[7] = 1;
			memcpy(r + 8, src, 6);
			memcpy(r + 14, &sip, 4);
			memcpy(r + 24, &b, 4);
		}
		return 42;
	case 5: /* DHCP DISCOVER */
		memcpy(f, bcast, 6);
		sip = 0;
		dip = 0xffffffffu;
		l4[1] = 68, l4[3] = 67;
		l4len = 8 + 300;
		l4[4] = (uint8_t)(l4len >> 8), l4[5] = (uint8_t)l4len;
		{
			uint8_t *d = l4 + 8;
			d[0] = 1, d[1] = 1, d[2] = 6, d[4] = 0x42;
			memcpy(d + 28, src, 6);
			d[236] = 99, d[237] = 130, d[238] = 83, d[239] = 99;
			d[240] = 53, d[241] = 1, d[242] = 1, d[243] = 255;
		}
		break;
	}
	ip[0] = 0x45;
	ip[2] = (uint8_t)((20 + l4len) >> 8);
	ip[3] = (uint8_t)(20 + l4len);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, &sip, 4);
	memcpy(ip + 16, &dip, 4);
	uint16_t c = vf_csum(ip, 20);
	ip[10] = (uint8_t)(c >> 8);
	ip[11] = (uint8_t)c;
	return 34 + l4len;
}

/* The next record's frame into f (VF_BUF bytes): its length, or -1 at the end. */
static long vf_next(struct vf_in *in, uint8_t *f, bool to_guest, uint64_t *now, unsigned *kind)
{
	uint8_t h;
	if (!vf_take(in, &h, 1))
		return -1;
	*now += (uint64_t)((h >> 3) & 15) * 7000000000ull;
	*kind = h & 7;
	size_t len;
	if ((h & 7) == 0 || (h & 7) == 7) {
		uint8_t l[2];
		if (!vf_take(in, l, 2))
			return -1;
		len = (size_t)(l[0] | l[1] << 8);
		if (len > in->n)
			len = in->n;
		if (len > VF_BUF)
			len = VF_BUF;
		vf_take(in, f, len);
		return (long)len;
	}
	len = vf_template(f, h & 7, to_guest);
	uint8_t n = 0;
	vf_take(in, &n, 1);
	for (unsigned i = 0; i < n; i++) {
		uint8_t m[3];
		if (!vf_take(in, m, 3))
			break;
		size_t off = (size_t)(m[0] | m[1] << 8) % 420;
		if (off >= len) /* grow or shrink the frame */
			len = off;
		else
			f[off] ^= m[2];
	}
	if ((h & 0x80) && len >= 34 && (f[14] >> 4) == 4) {
		size_t ihl = (f[14] & 15u) * 4;
		if (ihl >= 20 && 14 + ihl <= len) {
			f[24] = f[25] = 0;
			uint16_t c = vf_csum(f + 14, ihl);
			f[24] = (uint8_t)(c >> 8);
			f[25] = (uint8_t)c;
		}
	}
	return (long)len;
}

#endif
