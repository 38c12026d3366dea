/* ARP in the VPC core: the card answers every request itself, byte for byte as an ARP
 * reply from the owner of the address; nothing is broadcast. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "vpctest.h"

static size_t arp_req(uint8_t *f, const uint8_t dst[6], const uint8_t sha[6], const char *spa,
		      const char *tpa, uint16_t op)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, MAC_A, 6);
	f[12] = 0x08;
	f[13] = 0x06;
	uint8_t *a = f + 14;
	const uint8_t hdr[8] = {0, 1, 8, 0, 6, 4, 0, (uint8_t)op};
	memcpy(a, hdr, 8);
	memcpy(a + 8, sha, 6);
	uint32_t s = vt_ip(spa), t = vt_ip(tpa);
	memcpy(a + 14, &s, 4);
	memset(a + 18, 0, 6);
	memcpy(a + 24, &t, 4);
	return 42;
}

static void gateway(void **state)
{
	struct vt *t = *state;
	size_t n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.1", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	static const uint8_t want[42] = {
	    0x02, 0x00, 0x0a, 0x00, 0x00, 0x05, /* to the guest */
	    0x02, 0x00, 0x5e, 0x00, 0x00, 0x01, /* from the gateway */
	    0x08, 0x06, 0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
	    0x02, 0x00, 0x5e, 0x00, 0x00, 0x01, 10,   0,    0,	  1, /* sender */
	    0x02, 0x00, 0x0a, 0x00, 0x00, 0x05, 10,   0,    0,	  5, /* target */
	};
	assert_int_equal(t->out.vo_len, sizeof(want));
	assert_memory_equal(t->out.vo_data, want, sizeof(want));
	assert_ptr_equal(t->out.vo_data, t->buf);
}

static void peer_same_subnet(void **state)
{
	struct vt *t = *state;
	size_t n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.6", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	static const uint8_t want[42] = {
	    0x02, 0x00, 0x0a, 0x00, 0x00, 0x05, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x06, 0x08, 0x06,
	    0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x02, 0x00, 0x0a, 0x00, 0x00, 0x06,
	    10,	  0,	0,    6,    0x02, 0x00, 0x0a, 0x00, 0x00, 0x05, 10,   0,    0,	  5,
	};
	assert_int_equal(t->out.vo_len, sizeof(want));
	assert_memory_equal(t->out.vo_data, want, sizeof(want));
	/* a unicast refresh (to the cached MAC) gets the same answer */
	n = arp_req(t->frame, MAC_B, MAC_A, "10.0.0.5", "10.0.0.6", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
	assert_memory_equal(t->out.vo_data, want, sizeof(want));
}

static void off_subnet_gets_gateway(void **state)
{
	struct vt *t = *state;
	/* 10.0.1.9 is in the VPC but not in the /24: the gateway answers */
	const char *targets[] = {"10.0.1.9", "8.8.8.8", "169.254.169.254"};
	for (unsigned i = 0; i < 3; i++) {
		size_t n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", targets[i], 1);
		assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
		assert_memory_equal(t->out.vo_data + 6, MAC_GW, 6);
		assert_memory_equal(t->out.vo_data + 22, MAC_GW, 6);
		uint32_t ip = vt_ip(targets[i]);
		assert_memory_equal(t->out.vo_data + 28, &ip, 4);
	}
}

static void no_reply(void **state)
{
	struct vt *t = *state;
	/* an unknown neighbour in the subnet: silence, like an absent host */
	size_t n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.77", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_ARP_UNKNOWN);
	/* the other VPC's 10.0.0.6 does not answer for ours: ask for an address only VPC 8
	 * has in the mapping */
	vt_add(&t->map, 8, "10.0.0.50", MAC_X, "192.0.2.66", 1, true);
	n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.50", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	/* our own address (duplicate address detection): no conflict to report */
	n = arp_req(t->frame, MAC_BCAST, MAC_A, "0.0.0.0", "10.0.0.5", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(vt_drops(t, VPC_DROP_ARP_UNKNOWN), 3);
	/* a probe (sender 0.0.0.0) for the gateway is answered */
	n = arp_req(t->frame, MAC_BCAST, MAC_A, "0.0.0.0", "10.0.0.1", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_TO_GUEST);
}

static void spoofed_and_malformed(void **state)
{
	struct vt *t = *state;
	size_t n = arp_req(t->frame, MAC_BCAST, MAC_B, "10.0.0.5", "10.0.0.1", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP); /* sender MAC not ours */
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
	n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.6", "10.0.0.1", 1);
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP); /* sender IP not ours */
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
	n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.1", 1);
	memcpy(t->frame + 6, MAC_B, 6); /* Ethernet source not ours */
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_SPOOF_OUT);
	n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.1", 2); /* a reply */
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_ARP);
	n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.1", 1);
	t->frame[18] = 8; /* hardware length 8 */
	assert_int_equal(vt_guest(t, t->frame, n, 0), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_BAD_ARP);
	n = arp_req(t->frame, MAC_BCAST, MAC_A, "10.0.0.5", "10.0.0.1", 1);
	for (size_t l = 14; l < n; l++) { /* every truncation */
		assert_int_equal(vt_guest(t, t->frame, l, 0), VPC_DROP);
		assert_int_equal(t->out.vo_drop, VPC_DROP_RUNT);
	}
	/* too small an output buffer */
	vt_out_reset(t);
	t->out.vo_cap = 41;
	assert_int_equal(vpc_from_guest(t->p, t->frame, n, 0, &t->out), VPC_DROP);
	assert_int_equal(t->out.vo_drop, VPC_DROP_NO_ROOM);
	struct vpc_stats st;
	vpc_port_stats(t->p, &st);
	assert_int_equal(st.st_arp_replies, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(gateway, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(peer_same_subnet, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(off_subnet_gets_gateway, vt_state_setup,
					    vt_state_teardown),
	    cmocka_unit_test_setup_teardown(no_reply, vt_state_setup, vt_state_teardown),
	    cmocka_unit_test_setup_teardown(spoofed_and_malformed, vt_state_setup,
					    vt_state_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
