/* Unit tests for the SMBIOS tables (src/hv/smbios.c): the tables parsed back (entry point
 * and its checksum, every structure's header, strings and the end marker), the fields
 * /sys/class/dmi/id and cloud-init's ds-identify read (vendor, product, UUID in the
 * SMBIOS 2.6+ byte order equal to the serial and starting with "ec2"), buffer-size and
 * argument rejection with a guard region, and the same tables read by dmidecode
 * (--from-dump) when it is installed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot/config.h"
#include "hv/smbios.h"
#include "lib/le.h"

#define BUF 65536
#define GPA 0xf0000ull
#define ID "i-0123456789abcdef0"

/* The dump layout dmidecode reads (entry point at 0, table at 32), here at GPA. */
static long build(uint8_t *b, size_t len, uint64_t gpa, const struct smbios_config *c)
{
	if (len < 0x20)
		return -1;
	long n = smbios_build(b, b + 0x20, len - 0x20, gpa + 0x20, c);
	return n < 0 ? -1 : n + 0x20;
}

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

struct parsed {
	unsigned n, ncpu, types[256];
	const uint8_t *st[512];
	size_t used;
};

/* The n-th string (1-based) of structure s, or NULL. */
static const char *str_of(const uint8_t *s, unsigned n)
{
	const char *p = (const char *)s + s[1];
	if (!n)
		return NULL;
	for (unsigned i = 1; *p; i++) {
		if (i == n)
			return p;
		p += strlen(p) + 1;
	}
	return NULL;
}

static const uint8_t *find(const struct parsed *p, uint8_t type)
{
	for (unsigned i = 0; i < p->n; i++)
		if (p->st[i][0] == type)
			return p->st[i];
	return NULL;
}

/* Walks the tables the way Linux's dmi_scan does; fails the test on any defect. */
static void parse(const uint8_t *b, long len, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	assert_true(len > 0x20);
	assert_memory_equal(b, "_SM3_", 5);
	assert_int_equal(b[6], 0x18);
	assert_int_equal(sum8(b, 0x18), 0);
	assert_int_equal(b[7], 3);
	uint32_t max = le32_get(b + 12);
	uint64_t addr = le64_get(b + 16);
	assert_int_equal(addr, GPA + 0x20);
	assert_int_equal(max, (uint32_t)len - 0x20);
	size_t o = 0x20;
	uint16_t handle = 0;
	for (;;) {
		assert_true(o + 4 <= (size_t)len);
		const uint8_t *s = b + o;
		assert_true(s[1] >= 4);
		assert_int_equal(le16_get(s + 2), handle++); /* unique, in order */
		p->st[p->n++] = s;
		p->types[s[0]]++;
		size_t e = o + s[1];
		/* strings: printable, up to a double NUL */
		if (b[e] == 0) {
			assert_int_equal(b[e + 1], 0);
			e += 2;
		} else {
			while (b[e]) {
				size_t l = strlen((const char *)b + e);
				for (size_t k = 0; k < l; k++)
					assert_true(isprint(b[e + k]));
				e += l + 1;
			}
			e++;
		}
		o = e;
		if (s[0] == 127)
			break;
	}
	assert_int_equal(o, (size_t)len);
	p->used = o;
}

/* The UUID as Linux prints product_uuid for SMBIOS >= 2.6 (%pUl). */
static void uuid_str(const uint8_t *u, char out[37])
{
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[3], u[2], u[1], u[0], u[5], u[4], u[7], u[6], u[8], u[9], u[10], u[11], u[12],
		 u[13], u[14], u[15]);
}

static void ec2_fields(void **state)
{
	(void)state;
	static uint8_t b[BUF];
	struct smbios_config c = {.ncpus = 2, .mem_mib = 8192, .instance_id = ID};
	long n = build(b, sizeof(b), GPA, &c);
	struct parsed p;
	parse(b, n, &p);
	assert_int_equal(p.types[0], 1);
	assert_int_equal(p.types[1], 1);
	assert_int_equal(p.types[2], 1);
	assert_int_equal(p.types[3], 1);
	assert_int_equal(p.types[4], 1); /* one socket */
	assert_int_equal(p.types[16], 1);
	assert_int_equal(p.types[17], 1);
	assert_int_equal(p.types[127], 1);
	const uint8_t *bios = find(&p, 0), *sys = find(&p, 1), *ch = find(&p, 3);
	assert_string_equal(str_of(bios, bios[4]), "Amazon EC2");
	assert_string_equal(str_of(sys, sys[4]), "Amazon EC2");
	assert_string_equal(str_of(sys, sys[5]), "m5.large");
	assert_string_equal(str_of(ch, ch[4]), "Amazon EC2");
	assert_string_equal(str_of(ch, ch[8]), "Amazon EC2");
	/* the baseboard: EC2's, its asset tag the instance id, in the chassis */
	const uint8_t *board = find(&p, 2);
	assert_string_equal(str_of(board, board[4]), "Amazon EC2");
	assert_string_equal(str_of(board, board[8]), ID);
	assert_int_equal(le16_get(board + 0x0b), le16_get(ch + 2));
	char u[37], want[37];
	uuid_str(sys + 8, u);
	const char *serial = str_of(sys, sys[7]);
	/* ds-identify: product_uuid and product_serial equal ignoring case, both ec2... */
	assert_int_equal(strcasecmp(u, serial), 0);
	assert_int_equal(strncasecmp(u, "ec2", 3), 0);
	assert_int_equal(smbios_uuid(ID, want), 0);
	assert_string_equal(u, want);
	assert_memory_equal(want, "ec201234-5678-9abc-def0", 23);
	/* another instance, another UUID */
	assert_int_equal(smbios_uuid("i-0123456789abcdef1", u), 0);
	assert_string_not_equal(u, want);
	/* memory: type 17 size in MiB, pointing at the type 16 array */
	const uint8_t *arr = find(&p, 16), *dimm = find(&p, 17);
	assert_int_equal(le16_get(dimm + 4), le16_get(arr + 2));
	assert_int_equal(le16_get(dimm + 0x0c), 8192);
	/* the processor: enabled; 1 core of 2 threads (as CPUID says); 64-bit, threads */
	const uint8_t *cpu = find(&p, 4);
	assert_int_equal(cpu[0x18], 0x41);
	assert_string_equal(str_of(cpu, cpu[4]), "CPU 0");
	assert_int_equal(cpu[0x23], 1);
	assert_int_equal(cpu[0x24], 1);
	assert_int_equal(cpu[0x25], 2);
	assert_int_equal(le16_get(cpu + 0x26), 1u << 2 | 1u << 4);
}

static void types_and_sizes(void **state)
{
	(void)state;
	static uint8_t b[BUF];
	struct smbios_config c = {.ncpus = 1, .mem_mib = 256};
	struct parsed p;
	long n = build(b, sizeof(b), GPA, &c);
	parse(b, n, &p);
	const uint8_t *sys = find(&p, 1);
	assert_string_equal(str_of(sys, sys[5]), "t3.nano");
	char tb[32];
	assert_string_equal(hv_default_instance_type(2, 8192, tb), "m5.large");
	assert_string_equal(hv_default_instance_type(4, 8192, tb), "c5.xlarge");
	assert_string_equal(hv_default_instance_type(4, 16384, tb), "m5.xlarge");
	assert_string_equal(hv_default_instance_type(2, 16384, tb), "r5.large");
	assert_string_equal(hv_default_instance_type(1, 1024, tb), "t3.micro");
	assert_string_equal(hv_default_instance_type(2, 2048, tb), "t3.small");
	/* big memory: extended size */
	c = (struct smbios_config){.ncpus = 96, .mem_mib = 768 * 1024, .instance_type = "x.y"};
	n = build(b, sizeof(b), GPA, &c);
	parse(b, n, &p);
	assert_int_equal(p.types[4], 1);
	const uint8_t *cpu = find(&p, 4);
	assert_int_equal(cpu[0x23], 48); /* 48 cores x 2 threads */
	assert_int_equal(cpu[0x24], 48);
	assert_int_equal(cpu[0x25], 96);
	assert_int_equal(le16_get(cpu + 0x26), 1u << 2 | 1u << 3 | 1u << 4);
	const uint8_t *dimm = find(&p, 17);
	assert_int_equal(le16_get(dimm + 0x0c), 0x7fff);
	assert_int_equal(le32_get(dimm + 0x1c), 768 * 1024);
	sys = find(&p, 1);
	assert_string_equal(str_of(sys, sys[5]), "x.y");
	c = (struct smbios_config){.ncpus = 3, .mem_mib = 1024};
	n = build(b, sizeof(b), GPA, &c);
	parse(b, n, &p);
	cpu = find(&p, 4);
	assert_int_equal(cpu[0x23], 3); /* odd: single-thread cores */
	assert_int_equal(cpu[0x25], 3);
	assert_int_equal(le16_get(cpu + 0x26), 1u << 2 | 1u << 3);
}

static void rejects(void **state)
{
	(void)state;
	static uint8_t b[BUF + 64];
	struct smbios_config c = {.ncpus = 4, .mem_mib = 4096, .instance_id = ID};
	long need = build(b, BUF, GPA, &c);
	assert_true(need > 0);
	/* every shorter buffer: -1, and nothing written past it */
	for (long len = 0; len < need; len++) {
		memset(b, 0xa5, sizeof(b));
		assert_int_equal(build(b, (size_t)len, GPA, &c), -1);
		for (size_t k = (size_t)len; k < sizeof(b); k++)
			if (b[k] != 0xa5)
				fail_msg("len %ld: byte %zu written", len, k);
	}
	struct smbios_config bad[] = {
	    {.ncpus = 0, .mem_mib = 256},
	    {.ncpus = 255, .mem_mib = 256},
	    {.ncpus = 1, .mem_mib = 0},
	    {.ncpus = 1, .mem_mib = 256, .instance_id = "i-123"},
	    {.ncpus = 1, .mem_mib = 256, .instance_id = "i-0123456789ABCDEF0"},
	    {.ncpus = 1, .mem_mib = 256, .instance_type = ""},
	    {.ncpus = 1, .mem_mib = 256, .instance_type = "m5 large"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(build(b, BUF, GPA, &bad[i]), -1);
}

/* dmidecode reads a dump laid out as entry point at 0, table at 32: ours once the table
 * address says 32. */
static void dmidecode_reads_it(void **state)
{
	(void)state;
	if (access("/usr/sbin/dmidecode", X_OK) != 0)
		skip();
	static uint8_t b[BUF];
	struct smbios_config c = {.ncpus = 2, .mem_mib = 8192, .instance_id = ID};
	long n = build(b, sizeof(b), GPA, &c);
	assert_true(n > 0);
	le64_put(b + 16, 32);
	b[5] = 0;
	b[5] = (uint8_t)(0x100 - sum8(b, 0x18));
	char path[] = "/tmp/nitro-smbios-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, b, (size_t)n), n);
	close(fd);
	static const struct {
		const char *key, *want;
	} k[] = {{"system-manufacturer", "Amazon EC2"},
		 {"system-product-name", "m5.large"},
		 {"system-serial-number", NULL},
		 {"system-uuid", NULL},
		 {"bios-vendor", "Amazon EC2"},
		 {"chassis-asset-tag", "Amazon EC2"},
		 {"baseboard-manufacturer", "Amazon EC2"},
		 {"baseboard-asset-tag", ID}};
	char uuid[37];
	assert_int_equal(smbios_uuid(ID, uuid), 0);
	for (size_t i = 0; i < sizeof(k) / sizeof(k[0]); i++) {
		char cmd[256], out[128] = "";
		snprintf(cmd, sizeof(cmd), "/usr/sbin/dmidecode --from-dump %s -s %s 2>&1", path,
			 k[i].key);
		FILE *f = popen(cmd, "r");
		assert_non_null(f);
		if (!fgets(out, sizeof(out), f))
			out[0] = 0;
		int st = pclose(f);
		out[strcspn(out, "\n")] = 0;
		if (st != 0)
			fail_msg("%s: %s", cmd, out);
		const char *want = k[i].want ? k[i].want : uuid;
		if (strcasecmp(out, want))
			fail_msg("%s: %s, want %s", k[i].key, out, want);
	}
	/* and with no complaint about the structures */
	char cmd[256], line[256];
	snprintf(cmd, sizeof(cmd), "/usr/sbin/dmidecode --from-dump %s 2>&1", path);
	FILE *f = popen(cmd, "r");
	assert_non_null(f);
	unsigned handles = 0, topo = 0;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, "Invalid") || strstr(line, "Wrong") || strstr(line, "truncated"))
			fail_msg("dmidecode: %s", line);
		if (!strncmp(line, "Handle 0x", 9))
			handles++;
		/* the 2-vCPU processor: one core of two threads */
		topo += !strcmp(line, "\tCore Count: 1\n") ||
			!strcmp(line, "\tThread Count: 2\n") ||
			!strcmp(line, "\t\tHardware Thread\n");
	}
	pclose(f);
	unlink(path);
	assert_int_equal(handles, 8); /* 0, 1, 2, 3, 4, 16, 17, 127 */
	assert_int_equal(topo, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(ec2_fields),
	    cmocka_unit_test(types_and_sizes),
	    cmocka_unit_test(rejects),
	    cmocka_unit_test(dmidecode_reads_it),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
