/* The VPC core's DHCP server: replies checked byte for byte against dhcp_want.h (encoded
 * independently by gen_dhcp_want.py), where replies go, NAKs, and hostile requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "dhcp_want.h"
#include "vpctest.h"

/* A request as busybox udhcpc sends it: from 0.0.0.0:68 to 255.255.255.255:67. */
static size_t dhcp_req(uint8_t *f, uint8_t type, const char *sip, const char *dip,
		       const char *ciaddr, const char *req_ip, const char *server, uint16_t flags)
{
	uint8_t b[548] = {0};
	b[0] = 1;
	b[1] = 1;
	b[2] = 6;
	b[4] = 0x11;
	b[5] = 0x22;
	b[6] = 0x33;
	b[7] = 0x44;
	b[10] = (uint8_t)(flags >> 8);
	b[11] = (uint8_t)flags;
	uint32_t ci = vt_ip(ciaddr);
	memcpy(b + 12, &ci, 4);
	memcpy(b + 28, MAC_A, 6);
	const uint8_t cookie[4] = {99, 130, 83, 99};
	memcpy(b + 236, cookie, 4);
	uint8_t *o = b + 240;
	*o++ = 53;
	*o++ = 1;
	*o++ = type;
	*o++ = 61;
	*o++ = 7;
	*o++ = 1;
	memcpy(o, MAC_A, 6);
	o += 6;
	if (req_ip) {
		uint32_t r = vt_ip(req_ip);
		*o++ = 50;
		*o++ = 4;
		memcpy(o, &r, 4);
		o += 4;
	}
	if (server) {
		uint32_t s = vt_ip(server);
		*o++ = 54;
		*o++ = 4;
		memcpy(o, &s, 4);
		o += 4;
	}
	const uint8_t prl[] = {55, 7, 1, 3, 6, 12, 15, 28, 42};
	memcpy(o, prl, sizeof(prl));
	o += sizeof(prl);
	*o++ = 255;
	size_t blen = (size_t)(o - b) < 300 ? 300 : (size_t)(o - b);
	const uint8_t *dmac = strcmp(dip, "255.255.255.255") ? MAC_GW : MAC_BCAST;
	return vt_udp_data(f, dmac, MAC_A, sip, dip, 68, 67, b, blen);
}

static void offer_then_ack(void **state)
{
	struct vt *t = *state;
	size_t n = dhcp_req(t->frame, 1, "0.0.0.0", "255.255.255.255", "0.0.0.0", NULL, NULL, 0);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	assert_int_equal(t->out.vo_len, sizeof(want_offer));
	assert_memory_equal(t->out.vo_data, want_offer, sizeof(want_offer));
	n = dhcp_req(t->frame, 3, "0.0.0.0", "255.255.255.255", "0.0.0.0", "10.0.0.5", "10.0.0.1",
		     0);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	assert_int_equal(t->out.vo_len, sizeof(want_ack));
	assert_memory_equal(t->out.vo_data, want_ack, sizeof(want_ack));
	/* a request for another address: NAK, broadcast */
	n = dhcp_req(t->frame, 3, "0.0.0.0", "255.255.255.255", "0.0.0.0", "10.0.0.9", NULL, 0);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	assert_int_equal(t->out.vo_len, sizeof(want_nak));
	assert_memory_equal(t->out.vo_data, want_nak, sizeof(want_nak));
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	assert_int_equal(st.st_dhcp_replies, 3);
	assert_int_equal(st.st_rx_packets, 3);
	assert_int_equal(st.st_tx_forwarded, 0);
}

static void renew_and_broadcast(void **state)
{
	struct vt *t = *state;
	/* renewing: unicast from our address to the server, ciaddr set: ACK to ciaddr */
	size_t n = dhcp_req(t->frame, 3, "10.0.0.5", "10.0.0.1", "10.0.0.5", NULL, NULL, 0);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	const uint8_t *r = t->out.vo_data;
	assert_memory_equal(r, MAC_A, 6);
	uint32_t ip = vt_ip("10.0.0.5");
	assert_memory_equal(r + 30, &ip, 4);	  /* IP destination */
	assert_memory_equal(r + 42 + 12, &ip, 4); /* ciaddr echoed */
	assert_int_equal(r[42 + 240 + 2], 5);	  /* ACK */
	/* the broadcast bit: the reply is broadcast */
	n = dhcp_req(t->frame, 1, "0.0.0.0", "255.255.255.255", "0.0.0.0", NULL, NULL, 0x8000);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	r = t->out.vo_data;
	assert_memory_equal(r, MAC_BCAST, 6);
	uint32_t b = 0xffffffffu;
	assert_memory_equal(r + 30, &b, 4);
	assert_int_equal(r[42 + 10], 0x80); /* flags echoed */
	/* INFORM: an ACK with no address and no lease */
	n = dhcp_req(t->frame, 8, "10.0.0.5", "10.0.0.1", "10.0.0.5", NULL, NULL, 0);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	r = t->out.vo_data;
	uint32_t zero = 0;
	assert_memory_equal(r + 42 + 16, &zero, 4);
	assert_null(memchr(r + 42 + 240, 51, 3)); /* options start with 53, not 51 */
}

static void ignored_and_hostile(void **state)
{
	struct vt *t = *state;
	/* a request to another server, RELEASE, DECLINE: no reply */
	size_t n = dhcp_req(t->frame, 3, "0.0.0.0", "255.255.255.255", "0.0.0.0", "10.0.0.5",
			    "10.0.0.99", 0);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_DHCP);
	for (uint8_t type = 4; type <= 7; type += 3) {
		n = dhcp_req(t->frame, type, "10.0.0.5", "10.0.0.1", "10.0.0.5", NULL, NULL, 0);
		assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	}
	/* someone else's hardware address */
	n = dhcp_req(t->frame, 1, "0.0.0.0", "255.255.255.255", "0.0.0.0", NULL, NULL, 0);
	t->frame[42 + 28 + 5] ^= 1;
	/* (the UDP checksum is not checked by the core; the change is in the payload) */
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
	/* a client pretending to hold another address */
	n = dhcp_req(t->frame, 3, "10.0.0.6", "10.0.0.1", "10.0.0.6", NULL, NULL, 0);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
	/* an option running past the end of the packet */
	n = dhcp_req(t->frame, 1, "0.0.0.0", "255.255.255.255", "0.0.0.0", NULL, NULL, 0);
	uint8_t *o = t->frame + 42 + 240;
	o[3] = 61;
	o[4] = 250;
	memset(o + 5, 0, n - 42 - 240 - 5);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_DHCP);
	/* a bad magic cookie, a BOOTP reply, a runt BOOTP */
	n = dhcp_req(t->frame, 1, "0.0.0.0", "255.255.255.255", "0.0.0.0", NULL, NULL, 0);
	t->frame[42 + 236] = 0;
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	n = dhcp_req(t->frame, 1, "0.0.0.0", "255.255.255.255", "0.0.0.0", NULL, NULL, 0);
	t->frame[42] = 2;
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	n = vt_udp(t->frame, MAC_BCAST, MAC_A, "0.0.0.0", "255.255.255.255", 68, 67, 100);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_DHCP);
	/* a missing message type */
	n = dhcp_req(t->frame, 1, "0.0.0.0", "255.255.255.255", "0.0.0.0", NULL, NULL, 0);
	t->frame[42 + 240] = 0; /* pad instead of option 53 */
	t->frame[42 + 241] = 0;
	t->frame[42 + 242] = 0;
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_DHCP);
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	assert_int_equal(st.st_dhcp_replies, 0);
	/* other broadcast traffic is never answered or sent anywhere */
	n = vt_udp(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.255", 5000, 137, 20);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BROADCAST);
}

static void options_follow_cfg(void **state)
{
	(void)state;
	struct vt t2;
	struct vpc_cfg c = vt_cfg();
	c.vc_ip = vt_ip("172.16.5.20");
	c.vc_prefix = 20;
	c.vc_mtu = 1500;
	c.vc_lease_s = 600;
	c.vc_domain = "eu-west-1.compute.internal";
	vt_setup(&t2, &c);
	size_t n = dhcp_req(t2.frame, 1, "0.0.0.0", "255.255.255.255", "0.0.0.0", NULL, NULL, 0);
	assert_int_equal(vt_guest(&t2, t2.frame, n, 0), VPC_TO_GUEST);
	const uint8_t *o = t2.out.vo_data + 42 + 240;
	size_t len = t2.out.vo_len - 42 - 240;
	uint8_t seen[256] = {0};
	const uint8_t *v[256] = {0};
	for (size_t i = 0; i < len && o[i] != 255;) {
		if (o[i] == 0) {
			i++;
			continue;
		}
		seen[o[i]] = o[i + 1];
		v[o[i]] = o + i + 2;
		i += 2 + o[i + 1];
	}
	const uint8_t mask[4] = {255, 255, 240, 0}, gw[4] = {172, 16, 0, 1},
		      dns[4] = {172, 16, 0, 2}, bc[4] = {172, 16, 15, 255};
	const uint8_t lease[4] = {0, 0, 2, 88}, mtu[2] = {0x05, 0xdc};
	assert_int_equal(seen[1], 4);
	assert_memory_equal(v[1], mask, 4);
	assert_memory_equal(v[3], gw, 4);
	assert_memory_equal(v[54], gw, 4);
	assert_memory_equal(v[6], dns, 4);
	assert_memory_equal(v[28], bc, 4);
	assert_memory_equal(v[51], lease, 4);
	assert_memory_equal(v[26], mtu, 2);
	assert_int_equal(seen[15], strlen(c.vc_domain));
	assert_memory_equal(v[15], c.vc_domain, strlen(c.vc_domain));
	const uint8_t yi[4] = {172, 16, 5, 20};
	assert_memory_equal(t2.out.vo_data + 42 + 16, yi, 4);
	vt_teardown(&t2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(offer_then_ack, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(renew_and_broadcast, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(ignored_and_hostile, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test(options_follow_cfg),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
