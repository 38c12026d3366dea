/* libFuzzer target: the VPC mapping service's record parser (map_parse_line), which reads
 * files any host sharing the mapping directory may write. A record that parses must format
 * back into one line that parses to the same entry; nothing may read outside the input.
 */
// fuzz-extra: src/vpcmap/mapsvc.c src/vpcmap/underlay.c
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vpcmap/mapsvc.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct map_entry e, f;
	char err[256], line[MAP_LINE_MAX + 8];
	if (map_parse_line((const char *)data, size, &e, err, sizeof(err)) != 0) {
		CHECK(memchr(err, 0, sizeof(err)) != NULL && err[0]);
		return 0;
	}
	CHECK(e.me_vpc >= 1 && e.me_vpc <= MAP_VPC_MAX);
	CHECK(!(e.me_mac[0] & 1) && e.me_ul_port != 0);
	int n = map_format(&e, line, sizeof(line));
	CHECK(n > 0 && line[n - 1] == '\n');
	CHECK(map_parse_line(line, (size_t)n - 1, &f, err, sizeof(err)) == 0);
	CHECK(f.me_vpc == e.me_vpc && f.me_ip == e.me_ip && !memcmp(f.me_mac, e.me_mac, 6));
	CHECK(f.me_ul_ip == e.me_ul_ip && f.me_ul_port == e.me_ul_port);
	CHECK(f.me_default_sg == e.me_default_sg && f.me_pid == e.me_pid);
	CHECK(!strcmp(f.me_host, e.me_host) && !strcmp(f.me_ctl, e.me_ctl));
	return 0;
}
