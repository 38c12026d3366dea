/* The mapping service's lookup caches (src/vpcmap/mapsvc.c) on a real folder with a
 * made-up clock: a guest flooding unknown addresses costs at most one folder lookup per
 * address per MAP_NEG_TTL_MS (issue 10 item 13: before, misses shared a 1024-slot
 * direct-mapped cache with the found entries, so colliding addresses went to the folder
 * on every packet and evicted the peers' entries), found entries survive the flood, and
 * a record created later is found at once (inotify names it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vpcmap/mapsvc.h"

#define MS 1000000ull
#define FLOOD 1000

static char dir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/nitro-mapsvc-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd);
}

static uint32_t addr(unsigned i) /* 10.1.x.y, unknown to the folder */
{
	return htonl(0x0a010000u + i);
}

static struct map_entry peer(uint32_t ip, pid_t pid)
{
	struct map_entry e = {.me_vpc = 7,
			      .me_ip = ip,
			      .me_ul_ip = htonl(0xc0000206),
			      .me_ul_port = htons(40006),
			      .me_pid = pid};
	map_default_mac(7, ip, e.me_mac);
	return e;
}

static void flood_costs_one_lookup_per_address(void **state)
{
	(void)state;
	static struct mapsvc m, other;
	char err[256];
	assert_int_equal(mapsvc_open(&m, dir, err, sizeof(err)), 0);
	assert_true(mapsvc_fd(&m) >= 0);
	/* a known peer, registered by another card (the record names a live process: us) */
	assert_int_equal(mapsvc_open(&other, dir, err, sizeof(err)), 0);
	struct map_entry b = peer(htonl(0x0a000006), getpid());
	assert_int_equal(mapsvc_register(&other, &b, err, sizeof(err)), 0);
	mapsvc_on_event(&m);
	uint64_t now = 1000 * MS;
	assert_non_null(mapsvc_find(&m, 7, b.me_ip, now));
	assert_int_equal(m.m_misses, 1);
	/* the flood: FLOOD unknown addresses, 20 packets each, within one TTL */
	for (unsigned round = 0; round < 20; round++)
		for (unsigned i = 0; i < FLOOD; i++)
			assert_null(mapsvc_find(&m, 7, addr(i), now + round * MS));
	assert_int_equal(m.m_misses, 1 + FLOOD);
	/* the peer's entry survived it: no lookup */
	assert_non_null(mapsvc_find(&m, 7, b.me_ip, now + 30 * MS));
	assert_int_equal(m.m_misses, 1 + FLOOD);
	/* a TTL later: one more lookup per address, no more */
	now += (MAP_NEG_TTL_MS + 1) * MS;
	for (unsigned round = 0; round < 5; round++)
		for (unsigned i = 0; i < FLOOD; i++)
			assert_null(mapsvc_find(&m, 7, addr(i), now + round * MS));
	assert_int_equal(m.m_misses, 1 + 2 * FLOOD);
	/* a record created later for a cached miss is found at once: inotify names it */
	struct map_entry late = peer(addr(17), getpid());
	mapsvc_unregister(&other);
	assert_int_equal(mapsvc_register(&other, &late, err, sizeof(err)), 0);
	mapsvc_on_event(&m);
	const struct map_entry *f = mapsvc_find(&m, 7, addr(17), now + 6 * MS);
	assert_non_null(f);
	assert_int_equal(f->me_ip, addr(17));
	/* only that address was forgotten: the other misses stay cached */
	uint64_t misses = m.m_misses;
	for (unsigned i = 0; i < FLOOD; i++)
		if (i != 17)
			assert_null(mapsvc_find(&m, 7, addr(i), now + 7 * MS));
	assert_int_equal(m.m_misses, misses);
	/* and a record that goes away is forgotten at once too */
	mapsvc_unregister(&other);
	mapsvc_on_event(&m);
	assert_null(mapsvc_find(&m, 7, addr(17), now + 8 * MS));
	mapsvc_close(&other);
	mapsvc_close(&m);
}

/* The launcher's records (nitrod): written whole, found by a card's lookup, replaced by
 * the next write (a card restart's new underlay port), removed only by the instance
 * whose run folder the record's ctl= names. */
static void launcher_records_put_get_remove(void **state)
{
	(void)state;
	static struct mapsvc m;
	char err[256];
	struct map_entry e = peer(htonl(0x0a000063), 0), got;
	snprintf(e.me_ctl, sizeof(e.me_ctl), "/state/run/i-0a/c1.sock.ctl");
	e.me_default_sg = true;
	assert_int_equal(map_record_put(dir, &e, err, sizeof(err)), 0);
	assert_int_equal(mapsvc_open(&m, dir, err, sizeof(err)), 0);
	assert_int_equal(mapsvc_lookup(&m, 7, e.me_ip, &got), 1);
	assert_int_equal(got.me_ul_port, htons(40006));
	assert_true(got.me_default_sg);
	assert_string_equal(got.me_ctl, e.me_ctl);
	e.me_ul_port = htons(40007);
	assert_int_equal(map_record_put(dir, &e, err, sizeof(err)), 0);
	assert_int_equal(map_record_get(dir, 7, e.me_ip, &got), 1);
	assert_int_equal(got.me_ul_port, htons(40007));
	assert_int_equal(map_record_get(dir, 8, e.me_ip, &got), 0);
	map_record_remove(dir, 7, e.me_ip, "/state/run/i-0b/"); /* not its instance's */
	assert_int_equal(map_record_get(dir, 7, e.me_ip, &got), 1);
	map_record_remove(dir, 7, e.me_ip, "/state/run/i-0a/");
	assert_int_equal(map_record_get(dir, 7, e.me_ip, &got), 0);
	mapsvc_on_event(&m);
	assert_int_equal(mapsvc_lookup(&m, 7, e.me_ip, &got), 0);
	mapsvc_close(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(flood_costs_one_lookup_per_address),
	    cmocka_unit_test(launcher_records_put_get_remove),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
