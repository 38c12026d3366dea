/* libFuzzer target: the SMBIOS tables nitro-hv writes for a guest (src/hv/smbios.c) from
 * what a user or nitrod's API gives it (--instance-type, the instance id, vCPUs, memory)
 * and into a table area of any size. Whatever the input: nothing is written outside the
 * entry point and the table (ASan, the table allocated to its exact length); a built
 * table is well formed the way a guest's dmidecode walks it (every structure's formatted
 * part inside the table, its string set ended by two NULs, string numbers naming existing
 * strings, types 0, 1, 3, 4, 17 present, type 127 last), the entry point's checksum is
 * zero and names the table's length, the product name is the instance type asked for, and
 * the system UUID's text (the serial) starts with "ec2".
 */
// fuzz-extra: src/hv/smbios.c src/hv/cpuid.c src/hv/cpuid_cache.c src/boot/config.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hv/smbios.h"

#include "fuzz.h"

/* The n-th (1-based) string of the set at p (end e); NULL if there is none. */
static const char *nth_string(const uint8_t *p, const uint8_t *e, unsigned n)
{
	for (unsigned i = 1; p < e && *p; i++) {
		if (i == n)
			return (const char *)p;
		p += strnlen((const char *)p, (size_t)(e - p)) + 1;
	}
	return NULL;
}

static void check_table(const uint8_t *ep, const uint8_t *t, size_t n, const char *type)
{
	uint8_t sum = 0;
	for (int i = 0; i < SMBIOS_EP_LEN; i++)
		sum += ep[i];
	CHECK(!memcmp(ep, "_SM3_", 5) && sum == 0);
	CHECK((uint32_t)(ep[12] | ep[13] << 8 | ep[14] << 16 | (uint32_t)ep[15] << 24) == n);

	unsigned seen = 0, last = 0;
	size_t o = 0;
	while (o < n) {
		CHECK(o + 4 <= n);
		const uint8_t *s = t + o;
		CHECK(s[1] >= 4 && o + s[1] + 2 <= n);
		const uint8_t *str = s + s[1], *end = str;
		/* the string set: strings, then one more NUL (two NULs when there is none) */
		if (!str[0]) {
			CHECK(str[1] == 0);
			end = str + 2;
		} else {
			while (end < t + n && !(end[0] == 0 && end[1] == 0))
				end++;
			CHECK(end + 2 <= t + n);
			end += 2;
		}
		if (s[0] < 32)
			seen |= 1u << s[0];
		last = s[0];
		if (s[0] == 1) {
			const char *product = nth_string(str, end, s[5]);
			const char *serial = nth_string(str, end, s[7]);
			CHECK(product && serial);
			if (type)
				CHECK(!strcmp(product, type));
			CHECK(!strncmp(serial, "ec2", 3) && strlen(serial) == 36);
		}
		o = (size_t)(end - t);
	}
	CHECK(o == n && last == 127);
	const unsigned want = 1u << 0 | 1u << 1 | 1u << 3 | 1u << 4 | 1u << 17;
	CHECK((seen & want) == want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 6)
		return 0;
	struct smbios_config c = {
	    .ncpus = data[0],
	    .mem_mib = (uint64_t)(data[1] | data[2] << 8) << (data[3] & 15),
	};
	size_t len = (size_t)(data[4] | (data[5] & 7) << 8); /* 0..2047 */
	/* the rest: instance type NUL instance id (either missing = the default) */
	size_t rest = size - 6;
	char *s = malloc(rest + 2);
	CHECK(s);
	memcpy(s, data + 6, rest);
	s[rest] = s[rest + 1] = 0;
	char *id = s + strlen(s) + 1;
	if (rest && s[0] != '*')
		c.instance_type = s;
	if (id < s + rest && id[0] != '*')
		c.instance_id = id;

	uint8_t ep[SMBIOS_EP_LEN];
	uint8_t *table = malloc(len ? len : 1);
	CHECK(table);
	long n = smbios_build(ep, table, len, 0x10000, &c);
	CHECK(n >= -1 && n <= (long)len);
	if (n > 0)
		check_table(ep, table, (size_t)n, c.instance_type);
	free(table);
	free(s);
	return 0;
}
