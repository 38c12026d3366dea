/* Unit tests for the AML encoder (src/hv/aml.c) and the ACPI tables (src/hv/acpi.c):
 * encodings byte for byte, table checksums, signatures, lengths and pointers, FADT and
 * MADT fields against acpi.h, argument and buffer-size rejection with a guard region,
 * and that every table disassembles cleanly with `iasl -d` (acpica-tools).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hv/acpi.h"
#include "lib/le.h"
#include "hv/aml.h"

#define IASL "/usr/bin/iasl"
#define BUF_SIZE (64 * 1024)
#define GUARD 64
#define GUARD_BYTE 0xa5
#define TEST_GPA 0x000e0000ull

/* ---- little helpers ---- */

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

/* Decodes a PkgLength at p; returns its value and stores its size in *n. */
static uint32_t pkglen_decode(const uint8_t *p, size_t *n)
{
	size_t extra = p[0] >> 6;
	uint32_t v;

	*n = extra + 1;
	if (extra == 0)
		return p[0] & 0x3f;
	v = p[0] & 0x0f;
	for (size_t i = 1; i <= extra; i++)
		v |= (uint32_t)p[i] << (4 + 8 * (i - 1));
	return v;
}

/* A built set of tables and where they are in the buffer. */
struct tables {
	uint8_t *buf;
	long len;
	uint64_t gpa;
	const uint8_t *rsdp, *xsdt, *fadt, *madt, *mcfg, *dsdt; /* mcfg: NULL without PCI */
};

/* Turns a guest-physical pointer into a buffer pointer, checking it lies inside. */
static const uint8_t *gpa_ptr(const struct tables *t, uint64_t addr, size_t min_len)
{
	assert_true(addr >= t->gpa);
	assert_true(addr - t->gpa + min_len <= (uint64_t)t->len);
	assert_int_equal((addr - t->gpa) % 8, 0); /* aligned */
	return t->buf + (addr - t->gpa);
}

static void check_sdt(const uint8_t *p, const char *sig, uint8_t rev, const struct tables *t)
{
	uint32_t len = le32_get(p + 4);

	assert_memory_equal(p, sig, 4);
	assert_true(len >= 36);
	assert_true((uint64_t)(p - t->buf) + len <= (uint64_t)t->len);
	assert_int_equal(p[8], rev);
	assert_int_equal(sum8(p, len), 0);
	assert_memory_equal(p + 10, "NITRO ", 6);
	assert_memory_equal(p + 16, "NITROHV ", 8);
	assert_memory_equal(p + 28, "NITR", 4);
}

/* Builds the tables into a fresh guarded buffer and follows every pointer from the RSDP. */
static void build_pci(struct tables *t, unsigned ncpus, bool pci, uint64_t gpa)
{
	struct acpi_config cfg = {.ncpus = ncpus, .pci = pci};

	t->buf = malloc(BUF_SIZE + GUARD);
	assert_non_null(t->buf);
	memset(t->buf, GUARD_BYTE, BUF_SIZE + GUARD);
	t->gpa = gpa;
	t->len = acpi_build(t->buf, BUF_SIZE, gpa, &cfg);
	assert_true(t->len > 0 && t->len <= BUF_SIZE);
	for (size_t i = 0; i < GUARD; i++)
		assert_int_equal(t->buf[BUF_SIZE + i], GUARD_BYTE);

	t->rsdp = t->buf;
	assert_memory_equal(t->rsdp, "RSD PTR ", 8);
	t->xsdt = gpa_ptr(t, le64_get(t->rsdp + 24), 36);
	check_sdt(t->xsdt, "XSDT", 1, t);
	assert_int_equal(le32_get(t->xsdt + 4), 36 + (pci ? 3 : 2) * 8);
	t->fadt = gpa_ptr(t, le64_get(t->xsdt + 36), 276);
	t->madt = gpa_ptr(t, le64_get(t->xsdt + 44), 44);
	check_sdt(t->fadt, "FACP", 6, t);
	check_sdt(t->madt, "APIC", 5, t);
	t->mcfg = NULL;
	if (pci) {
		t->mcfg = gpa_ptr(t, le64_get(t->xsdt + 52), 60);
		check_sdt(t->mcfg, "MCFG", 1, t);
	}
	t->dsdt = gpa_ptr(t, le64_get(t->fadt + 140), 36);
	check_sdt(t->dsdt, "DSDT", 2, t);
}

static void build(struct tables *t, unsigned ncpus, uint64_t gpa)
{
	build_pci(t, ncpus, false, gpa);
}

static void tables_free(struct tables *t)
{
	free(t->buf);
}

/* ---- iasl ---- */

/* Runs argv with stdout and stderr appended to log; returns the exit status. */
static int run(char *const argv[], const char *log)
{
	pid_t pid = fork();
	int status;

	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Reads a whole file, NUL-terminated; its size goes to *len if len is not NULL. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	s = malloc((size_t)n + 1);
	assert_non_null(s);
	assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	if (len)
		*len = (size_t)n;
	return s;
}

static void write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Runs iasl; on a non-zero exit, fails showing its log (the temp dir is kept). */
static void run_iasl(char *const argv[], const char *log)
{
	int rc = run(argv, log);

	if (rc != 0) {
		char *text = slurp(log, NULL);

		fail_msg("%s exited with %d (files kept in the dir of %s):\n%s", argv[0], rc, log,
			 text);
	}
}

/* Fails on any line of text that reports a problem. */
static void assert_clean(const char *text, const char *what)
{
	static const char *const bad[] = {"Error", "ERROR", "Warning", "Invalid", "Incorrect"};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *hit = strstr(text, bad[i]);

		if (hit) {
			const char *eol = strchr(hit, '\n');
			int n = eol ? (int)(eol - hit) : (int)strlen(hit);

			fail_msg("%s: iasl reports \"%.*s\"", what, n, hit);
		}
	}
}

/* Compiles the disassembly back with optimizations off (-oa) and asserts the AML after
 * the header is byte for byte the AML we generated. */
static void iasl_recompile(const char *dir, const char *name, const char *dsl, const char *log,
			   const uint8_t *table, size_t len)
{
	char prefix[128], aml[160];
	uint8_t *out;
	size_t out_len;

	snprintf(prefix, sizeof(prefix), "%s/%s-re", dir, name);
	snprintf(aml, sizeof(aml), "%s.aml", prefix);
	char *comp[] = {IASL, "-oa", "-p", prefix, (char *)dsl, NULL};
	run_iasl(comp, log);
	out = (uint8_t *)slurp(aml, &out_len);
	assert_int_equal(out_len, len);
	assert_memory_equal(out + 36, table + 36, len - 36);
	free(out);
	unlink(aml);
}

/* Disassembles one table with `iasl -d` in a temp dir, asserts a clean run and that the
 * .dsl contains each of the NULL-terminated needles. With recompile, the .dsl must also
 * compile back to the same AML. */
static void iasl_check(const char *name, const uint8_t *table, size_t len, bool recompile,
		       const char *const *needles)
{
	char dir[] = "/tmp/nitro-acpi-XXXXXX", dat[128], dsl[128], log[128];
	char *text, *logtext;

	if (access(IASL, X_OK) != 0)
		fail_msg("%s not found: install acpica-tools (make deps)", IASL);
	assert_non_null(mkdtemp(dir));
	snprintf(dat, sizeof(dat), "%s/%s.dat", dir, name);
	snprintf(dsl, sizeof(dsl), "%s/%s.dsl", dir, name);
	snprintf(log, sizeof(log), "%s/iasl.log", dir);
	write_file(dat, table, len);

	char *dis[] = {IASL, "-d", dat, NULL};
	run_iasl(dis, log);
	text = slurp(dsl, NULL);
	logtext = slurp(log, NULL);
	assert_clean(text, dsl);
	assert_clean(logtext, log);
	for (size_t i = 0; needles && needles[i]; i++)
		if (!strstr(text, needles[i]))
			fail_msg("%s: \"%s\" not in the disassembly", name, needles[i]);
	if (recompile)
		iasl_recompile(dir, name, dsl, log, table, len);
	free(text);
	free(logtext);
	unlink(dat);
	unlink(dsl);
	unlink(log);
	assert_int_equal(rmdir(dir), 0);
}

/* ---- AML encoder ---- */

static void test_pkglen_boundaries(void **state)
{
	static const struct {
		uint32_t value;
		size_t n;
		uint8_t enc[4];
	} cases[] = {
	    {0, 1, {0x00}},
	    {63, 1, {0x3f}},
	    {64, 2, {0x40, 0x04}},
	    {4095, 2, {0x4f, 0xff}},
	    {4096, 3, {0x80, 0x00, 0x01}},
	    {1048575, 3, {0x8f, 0xff, 0xff}},
	    {1048576, 4, {0xc0, 0x00, 0x00, 0x01}},
	    {AML_PKGLEN_MAX, 4, {0xcf, 0xff, 0xff, 0xff}},
	};
	uint8_t out[4];
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memset(out, 0xee, sizeof(out));
		assert_int_equal(aml_pkglen_encode(out, cases[i].value), cases[i].n);
		assert_memory_equal(out, cases[i].enc, cases[i].n);
		assert_int_equal(pkglen_decode(out, &n), cases[i].value);
		assert_int_equal(n, cases[i].n);
	}
	assert_int_equal(aml_pkglen_encode(out, AML_PKGLEN_MAX + 1), 0);

	/* The size needed for a payload counts the PkgLength's own bytes. */
	assert_int_equal(aml_pkglen_size(0), 1);
	assert_int_equal(aml_pkglen_size(62), 1);   /* 63 */
	assert_int_equal(aml_pkglen_size(63), 2);   /* 65 */
	assert_int_equal(aml_pkglen_size(4093), 2); /* 4095 */
	assert_int_equal(aml_pkglen_size(4094), 3); /* 4097 */
	assert_int_equal(aml_pkglen_size(1048572), 3);
	assert_int_equal(aml_pkglen_size(1048573), 4);
	assert_int_equal(aml_pkglen_size(AML_PKGLEN_MAX - 4), 4);
	assert_int_equal(aml_pkglen_size(AML_PKGLEN_MAX - 3), 0);
}

/* Scope(\XXXX) wrapping `fill` bytes: the backpatched PkgLength must cover exactly the
 * rest of the object and the contents must be intact after being moved. */
static void check_scope_of(size_t fill)
{
	size_t cap = fill + 64, n, mark;
	uint8_t *buf = malloc(cap);
	struct aml a;

	assert_non_null(buf);
	aml_init(&a, buf, cap);
	mark = aml_scope_begin(&a, "\\SCOP");
	for (size_t i = 0; i < fill; i++)
		aml_byte(&a, (uint8_t)(i * 7 + 1));
	aml_end(&a, mark);
	assert_false(a.error);
	assert_int_equal(buf[0], 0x10);
	assert_int_equal(pkglen_decode(buf + 1, &n), a.len - 1);
	assert_int_equal(n, aml_pkglen_size(5 + fill));
	assert_memory_equal(buf + 1 + n, "\\SCOP", 5);
	for (size_t i = 0; i < fill; i++)
		assert_int_equal(buf[1 + n + 5 + i], (uint8_t)(i * 7 + 1));
	free(buf);
}

static void test_aml_backpatch(void **state)
{
	static const size_t fills[] = {0, 57, 58, 59, 4088, 4089, 4090, 1048567, 1048568};

	(void)state;
	for (size_t i = 0; i < sizeof(fills) / sizeof(fills[0]); i++)
		check_scope_of(fills[i]);
}

#define EXPECT(a, ...)                                                                             \
	do {                                                                                       \
		static const uint8_t want_[] = {__VA_ARGS__};                                      \
		assert_false((a)->error);                                                          \
		assert_int_equal((a)->len, sizeof(want_));                                         \
		assert_memory_equal((a)->buf, want_, sizeof(want_));                               \
	} while (0)

static void test_aml_encodings(void **state)
{
	uint8_t buf[64];
	struct aml a;
	size_t mark;

	(void)state;
#define FRESH() aml_init(&a, buf, sizeof(buf))
	FRESH();
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 2);
	aml_integer(&a, 0xff);
	EXPECT(&a, 0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff);
	FRESH();
	aml_integer(&a, 0x100);
	aml_integer(&a, 0x10000);
	aml_integer(&a, 0x100000000ull);
	EXPECT(&a, 0x0b, 0x00, 0x01, 0x0c, 0x00, 0x00, 0x01, 0x00, 0x0e, 0x00, 0x00, 0x00, 0x00,
	       0x01, 0x00, 0x00, 0x00);
	FRESH();
	aml_string(&a, "AB");
	EXPECT(&a, 0x0d, 'A', 'B', 0x00);
	FRESH();
	aml_eisaid(&a, "PNP0501");
	EXPECT(&a, 0x0c, 0x41, 0xd0, 0x05, 0x01);
	FRESH();
	aml_namestring(&a, "\\_SB");
	EXPECT(&a, '\\', '_', 'S', 'B', '_');
	FRESH();
	aml_namestring(&a, "\\_SB.PCI0");
	EXPECT(&a, '\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
	FRESH();
	aml_namestring(&a, "^^A.B.C");
	EXPECT(&a, '^', '^', 0x2f, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_');
	FRESH();
	aml_namestring(&a, "\\");
	EXPECT(&a, '\\', 0x00);
	FRESH();
	aml_name(&a, "_UID");
	aml_integer(&a, 1);
	EXPECT(&a, 0x08, '_', 'U', 'I', 'D', 0x01);
	FRESH();
	mark = aml_package_begin(&a, 2);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_end(&a, mark);
	EXPECT(&a, 0x12, 0x05, 0x02, 0x0a, 0x05, 0x00);
	FRESH();
	aml_end(&a, aml_device_begin(&a, "COM1"));
	EXPECT(&a, 0x5b, 0x82, 0x05, 'C', 'O', 'M', '1');
#undef FRESH
}

static void test_aml_resources(void **state)
{
	uint8_t buf[64], res[32];
	struct aml a, r;

	(void)state;
	aml_init(&r, res, sizeof(res));
	aml_res_io(&r, true, 0x3f8, 0x3f8, 0, 8);
	aml_res_irq_noflags(&r, 4);
	aml_res_end(&r);
	EXPECT(&r, 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x00, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00);
	aml_init(&a, buf, sizeof(buf));
	aml_buffer(&a, res, r.len);
	assert_false(a.error);
	assert_int_equal(a.len, 4 + 13);
	assert_memory_equal(buf, ((const uint8_t[]){0x11, 0x10, 0x0a, 0x0d}), 4);
	assert_memory_equal(buf + 4, res, r.len);

	aml_init(&r, res, sizeof(res));
	aml_res_irq_noflags(&r, 16);
	assert_true(r.error);
}

/* The large address descriptors, byte for byte as iasl compiles the same ASL. */
static void test_aml_address_resources(void **state)
{
	uint8_t res[64];
	struct aml r;

	(void)state;
	aml_init(&r, res, sizeof(res));
	aml_res_word_bus_number(&r, 0, 0);
	/* WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0, 0, 1) */
	EXPECT(&r, 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	       0x00, 0x01, 0x00);
	aml_init(&r, res, sizeof(res));
	aml_res_word_bus_number(&r, 0x10, 0xff);
	EXPECT(&r, 0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00, 0x00, 0x00, 0x10, 0x00, 0xff, 0x00, 0x00,
	       0x00, 0xf0, 0x00);
	/* DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable,
	 * ReadWrite, 0, 0xC0000000, 0xDFFFFFFF, 0, 0x20000000) */
	aml_init(&r, res, sizeof(res));
	aml_res_dword_memory(&r, 0xc0000000u, 0xdfffffffu);
	EXPECT(&r, 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	       0xc0, 0xff, 0xff, 0xff, 0xdf, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x20);
	/* Memory32Fixed (ReadWrite, 0xE0000000, 0x00100000) and ReadOnly */
	aml_init(&r, res, sizeof(res));
	aml_res_memory32_fixed(&r, true, 0xe0000000u, 0x100000);
	aml_res_memory32_fixed(&r, false, 0x12345678u, 0x1000);
	EXPECT(&r, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xe0, 0x00, 0x00, 0x10, 0x00, 0x86,
	       0x09, 0x00, 0x00, 0x78, 0x56, 0x34, 0x12, 0x00, 0x10, 0x00, 0x00);

	/* An empty window, or a length the field cannot hold, is an error. */
	aml_init(&r, res, sizeof(res));
	aml_res_word_bus_number(&r, 1, 0);
	assert_true(r.error);
	aml_init(&r, res, sizeof(res));
	aml_res_word_bus_number(&r, 0, UINT16_MAX);
	assert_true(r.error);
	aml_init(&r, res, sizeof(res));
	aml_res_word_bus_number(&r, 1, UINT16_MAX);
	assert_false(r.error);
	aml_init(&r, res, sizeof(res));
	aml_res_dword_memory(&r, 0x1000, 0xfff);
	assert_true(r.error);
	aml_init(&r, res, sizeof(res));
	aml_res_dword_memory(&r, 0, UINT32_MAX);
	assert_true(r.error);
	assert_int_equal(r.len, 0);

	/* Too small a buffer: sticky error, nothing past cap. */
	for (size_t cap = 0; cap < 26; cap++) {
		memset(res, GUARD_BYTE, sizeof(res));
		aml_init(&r, res, cap);
		aml_res_dword_memory(&r, 0xc0000000u, 0xdfffffffu);
		assert_true(r.error);
		for (size_t i = cap; i < sizeof(res); i++)
			assert_int_equal(res[i], GUARD_BYTE);
	}
}

static void test_aml_rejects(void **state)
{
	static const char *const bad_names[] = {"abc", "TOOLONG", "1ABC", "A..B",
						".A",  "A.",	  "\\^A", "A-B"};
	static const char *const bad_eisa[] = {"PNP050", "PNP05011", "pNP0501", "PNP050G"};
	uint8_t buf[16];
	struct aml a;

	(void)state;
	for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_namestring(&a, bad_names[i]);
		if (!a.error)
			fail_msg("name \"%s\" accepted", bad_names[i]);
	}
	for (size_t i = 0; i < sizeof(bad_eisa) / sizeof(bad_eisa[0]); i++) {
		aml_init(&a, buf, sizeof(buf));
		aml_eisaid(&a, bad_eisa[i]);
		if (!a.error)
			fail_msg("EisaId \"%s\" accepted", bad_eisa[i]);
	}
	aml_init(&a, buf, sizeof(buf));
	aml_string(&a, "\xc3\xa9");
	assert_true(a.error);
	aml_init(&a, buf, sizeof(buf));
	aml_end(&a, 1); /* mark past the end */
	assert_true(a.error);
}

/* Overflow is sticky and nothing lands past cap, whatever the call. */
static void test_aml_overflow(void **state)
{
	uint8_t buf[8 + GUARD];
	struct aml a;
	size_t mark;

	(void)state;
	for (size_t cap = 0; cap <= 8; cap++) {
		memset(buf, GUARD_BYTE, sizeof(buf));
		aml_init(&a, buf, cap);
		mark = aml_scope_begin(&a, "\\_SB");
		aml_name(&a, "_HID");
		aml_eisaid(&a, "PNP0501");
		aml_end(&a, mark);
		assert_true(a.error);
		assert_true(a.len <= cap);
		for (size_t i = cap; i < sizeof(buf); i++)
			assert_int_equal(buf[i], GUARD_BYTE);
		aml_byte(&a, 0);
		assert_true(a.error);
	}
	/* The PkgLength does not fit after the contents: exact cap minus one. */
	memset(buf, GUARD_BYTE, sizeof(buf));
	aml_init(&a, buf, 6);
	mark = aml_scope_begin(&a, "\\_SB");
	aml_end(&a, mark);
	assert_true(a.error);
	for (size_t i = 6; i < sizeof(buf); i++)
		assert_int_equal(buf[i], GUARD_BYTE);
}

/* ---- ACPI tables ---- */

static void check_rsdp(const struct tables *t)
{
	const uint8_t *r = t->rsdp;

	assert_int_equal(sum8(r, 20), 0);
	assert_int_equal(sum8(r, 36), 0);
	assert_memory_equal(r + 9, "NITRO ", 6);
	assert_int_equal(r[15], 2);	    /* revision */
	assert_int_equal(le32_get(r + 16), 0);  /* RsdtAddress */
	assert_int_equal(le32_get(r + 20), 36); /* Length */
	assert_int_equal(le64_get(r + 24), t->gpa + (uint64_t)(t->xsdt - t->buf));
}

static void check_gas_io8(const uint8_t *g, uint16_t port)
{
	assert_int_equal(g[0], 1); /* SystemIO */
	assert_int_equal(g[1], 8);
	assert_int_equal(g[2], 0);
	assert_int_equal(g[3], 1); /* byte access */
	assert_int_equal(le64_get(g + 4), port);
}

static void check_fadt(const struct tables *t)
{
	const uint8_t *f = t->fadt;
	uint64_t dsdt = t->gpa + (uint64_t)(t->dsdt - t->buf);
	uint32_t flags = le32_get(f + 112);

	assert_int_equal(le32_get(f + 4), 276);
	assert_int_equal(f[131], 3); /* minor revision */
	assert_int_equal(flags, (1u << 20) | (1u << 10));
	assert_int_equal(le16_get(f + 109), (1u << 2) | (1u << 5)); /* IAPC_BOOT_ARCH, no 8042 */
	assert_int_equal(le16_get(f + 46), 0);			/* SCI_INT */
	assert_int_equal(le64_get(f + 140), dsdt);
	assert_int_equal(le32_get(f + 40), dsdt <= UINT32_MAX ? dsdt : 0);
	check_gas_io8(f + 116, ACPI_RESET_PORT);
	assert_int_equal(f[128], ACPI_RESET_VALUE);
	check_gas_io8(f + 244, ACPI_SLEEP_CTL_PORT);
	check_gas_io8(f + 256, ACPI_SLEEP_STS_PORT);
	assert_memory_equal(f + 268, "NITROHV\0", 8);
	/* No legacy PM blocks in hardware-reduced mode. */
	assert_int_equal(le32_get(f + 56), 0); /* PM1a_EVT_BLK */
	assert_int_equal(le32_get(f + 64), 0); /* PM1a_CNT_BLK */
	assert_int_equal(le32_get(f + 76), 0); /* PM_TMR_BLK */
}

static void check_madt(const struct tables *t, unsigned ncpus)
{
	const uint8_t *m = t->madt, *e, *end = m + le32_get(m + 4);
	unsigned lapics = 0, ioapics = 0, isos = 0, nmis = 0;

	assert_int_equal(le32_get(m + 36), ACPI_LAPIC_ADDR);
	assert_int_equal(le32_get(m + 40), 1); /* PCAT_COMPAT */
	for (e = m + 44; e < end; e += e[1]) {
		assert_true(e + 2 <= end && e[1] >= 2 && e + e[1] <= end);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_int_equal(e[2], lapics); /* UID */
			assert_int_equal(e[3], lapics); /* APIC id */
			assert_int_equal(le32_get(e + 4), 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], ACPI_MAX_CPUS);
			assert_int_equal(le32_get(e + 4), ACPI_IOAPIC_ADDR);
			assert_int_equal(le32_get(e + 8), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			assert_int_equal(e[3], 0);
			assert_int_equal(le32_get(e + 4), 2);
			assert_int_equal(le16_get(e + 8), 0);
			isos++;
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(le16_get(e + 3), 0);
			assert_int_equal(e[5], 1); /* LINT1 */
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
	}
	assert_ptr_equal(e, end);
	assert_int_equal(lapics, ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(isos, 1);
	assert_int_equal(nmis, 1);
}

/* Name(_S5, Package(4){ACPI_S5_TYP, 0, 0, 0}) at the root, right after the header. */
static void check_dsdt_s5(const struct tables *t)
{
	/* clang-format off */
	static const uint8_t s5[] = {
		0x08, '_', 'S', '5', '_',	/* Name(_S5_, */
		0x12, 0x07, 0x04,		/* Package, PkgLength 7, 4 elements */
		0x0a, ACPI_S5_TYP, 0x00, 0x00, 0x00,
	};
	/* clang-format on */

	assert_true(le32_get(t->dsdt + 4) >= 36 + sizeof(s5));
	assert_memory_equal(t->dsdt + 36, s5, sizeof(s5));
}

static void assert_dsdt_has(const struct tables *t, const void *what, size_t n, const char *name)
{
	if (!memmem(t->dsdt, le32_get(t->dsdt + 4), what, n))
		fail_msg("DSDT lacks %s", name);
}

/* The devices' _HID and _CRS encodings, from the acpi.h constants. */
static void check_dsdt_devices(const struct tables *t)
{
	/* clang-format off */
	const uint8_t com1_crs[] = {0x08, '_', 'C', 'R', 'S', 0x11, 0x10, 0x0a, 13,
				    0x47, 0x01, ACPI_COM1_PORT & 0xff, ACPI_COM1_PORT >> 8,
				    ACPI_COM1_PORT & 0xff, ACPI_COM1_PORT >> 8, 0x00, 0x08,
				    0x22, (1u << ACPI_COM1_IRQ) & 0xff, (1u << ACPI_COM1_IRQ) >> 8,
				    0x79, 0x00};
	const uint8_t pevt_crs[] = {0x08, '_', 'C', 'R', 'S', 0x11, 0x0d, 0x0a, 10,
				    0x47, 0x01, ACPI_PVPANIC_PORT & 0xff, ACPI_PVPANIC_PORT >> 8,
				    ACPI_PVPANIC_PORT & 0xff, ACPI_PVPANIC_PORT >> 8, 0x01, 0x01,
				    0x79, 0x00};
	static const uint8_t com1_hid[] = {'C', 'O', 'M', '1', 0x08, '_', 'H', 'I', 'D',
					   0x0c, 0x41, 0xd0, 0x05, 0x01};
	/* clang-format on */
	static const uint8_t pevt_hid[] = "PEVT\x08_HID\x0dQEMU0001";

	assert_dsdt_has(t, com1_hid, sizeof(com1_hid), "COM1 _HID");
	assert_dsdt_has(t, com1_crs, sizeof(com1_crs), "COM1 _CRS");
	assert_dsdt_has(t, pevt_hid, sizeof(pevt_hid), "PEVT _HID");
	assert_dsdt_has(t, pevt_crs, sizeof(pevt_crs), "PEVT _CRS");
}

static bool dsdt_contains(const struct tables *t, const void *what, size_t n)
{
	return memmem(t->dsdt, le32_get(t->dsdt + 4), what, n) != NULL;
}

/* Without PCI there is neither an MCFG nor a host bridge nor its reservation. */
static void check_no_pci(const struct tables *t)
{
	assert_null(t->mcfg);
	assert_false(dsdt_contains(t, "PCI0", 4));
	assert_false(dsdt_contains(t, "MRES", 4));
	assert_false(memmem(t->buf, (size_t)t->len, "MCFG", 4));
}

static void check_tables(unsigned ncpus, uint64_t gpa)
{
	struct tables t;

	build(&t, ncpus, gpa);
	check_no_pci(&t);
	check_rsdp(&t);
	check_fadt(&t);
	check_madt(&t, ncpus);
	check_dsdt_s5(&t);
	check_dsdt_devices(&t);
	/* The DSDT is last: the returned size ends with it. */
	assert_int_equal((long)(t.dsdt - t.buf) + (long)le32_get(t.dsdt + 4), t.len);
	tables_free(&t);
}

static void check_mcfg(const struct tables *t)
{
	const uint8_t *m = t->mcfg;

	assert_int_equal(le64_get(t->xsdt + 52), t->gpa + (uint64_t)(m - t->buf));
	assert_int_equal(le32_get(m + 4), 60);
	for (size_t i = 36; i < 44; i++)
		assert_int_equal(m[i], 0);
	assert_int_equal(le64_get(m + 44), ACPI_PCI_ECAM_BASE);
	assert_int_equal(le16_get(m + 52), 0); /* segment */
	assert_int_equal(m[54], 0);	       /* start bus */
	assert_int_equal(m[55], ACPI_PCI_BUS_END);
	assert_int_equal(le32_get(m + 56), 0);
	/* One bus is 1 MiB of ECAM. */
	assert_int_equal((uint64_t)(ACPI_PCI_BUS_END + 1) << 20, ACPI_PCI_ECAM_SIZE);
}

#define LE16(v) (uint8_t)(v), (uint8_t)((v) >> 8)
#define LE32(v) (uint8_t)(v), (uint8_t)((v) >> 8), (uint8_t)((v) >> 16), (uint8_t)((v) >> 24)

/* \_SB.PCI0 and \_SB.MRES, from the acpi.h constants. */
static void check_dsdt_pci(const struct tables *t)
{
	/* clang-format off */
	static const uint8_t pci0_ids[] = {
		'P', 'C', 'I', '0',
		0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08,	/* PNP0A08 */
		0x08, '_', 'C', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x03,	/* PNP0A03 */
		0x08, '_', 'S', 'E', 'G', 0x00,
		0x08, '_', 'B', 'B', 'N', 0x00,
		0x08, '_', 'U', 'I', 'D', 0x00,
	};
	static const uint8_t pci0_crs[] = {
		0x08, '_', 'C', 'R', 'S', 0x11, 0x2f, 0x0a, 44,
		0x88, LE16(13), 0x02, 0x0c, 0x00,	/* WordBusNumber */
		LE16(0), LE16(0), LE16(ACPI_PCI_BUS_END), LE16(0), LE16(ACPI_PCI_BUS_END + 1),
		0x87, LE16(23), 0x00, 0x0c, 0x01,	/* DWordMemory */
		LE32(0), LE32(ACPI_PCI_MMIO_BASE),
		LE32(ACPI_PCI_MMIO_BASE + ACPI_PCI_MMIO_SIZE - 1), LE32(0),
		LE32(ACPI_PCI_MMIO_SIZE),
		0x79, 0x00,
	};
	static const uint8_t mres[] = {
		'M', 'R', 'E', 'S',
		0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0c, 0x02,	/* PNP0C02 */
		0x08, '_', 'U', 'I', 'D', 0x01,
		0x08, '_', 'C', 'R', 'S', 0x11, 0x11, 0x0a, 14,
		0x86, LE16(9), 0x01, LE32(ACPI_PCI_ECAM_BASE), LE32(ACPI_PCI_ECAM_SIZE),
		0x79, 0x00,
	};
	/* clang-format on */

	assert_dsdt_has(t, pci0_ids, sizeof(pci0_ids), "PCI0 ids");
	assert_dsdt_has(t, pci0_crs, sizeof(pci0_crs), "PCI0 _CRS");
	assert_dsdt_has(t, mres, sizeof(mres), "MRES");
	/* The ECAM window is outside the BAR window. */
	assert_true(ACPI_PCI_ECAM_BASE >= ACPI_PCI_MMIO_BASE + ACPI_PCI_MMIO_SIZE ||
		    ACPI_PCI_ECAM_BASE + ACPI_PCI_ECAM_SIZE <= ACPI_PCI_MMIO_BASE);
}

/* With PCI: the same FADT, MADT and devices, plus the MCFG (before the DSDT, which is
 * still last) and the host bridge. */
static void test_tables_pci(void **state)
{
	unsigned ncpus = (unsigned)(uintptr_t)*state;
	struct tables t;

	build_pci(&t, ncpus, true, TEST_GPA);
	check_rsdp(&t);
	check_fadt(&t);
	check_madt(&t, ncpus);
	check_mcfg(&t);
	check_dsdt_s5(&t);
	check_dsdt_devices(&t);
	check_dsdt_pci(&t);
	assert_true(t.mcfg < t.dsdt);
	assert_int_equal((long)(t.dsdt - t.buf) + (long)le32_get(t.dsdt + 4), t.len);
	tables_free(&t);
}

static void test_tables(void **state)
{
	unsigned ncpus = (unsigned)(uintptr_t)*state;

	check_tables(ncpus, TEST_GPA);
}

static void test_tables_high_gpa(void **state)
{
	(void)state;
	check_tables(4, 0x100000000ull); /* DSDT only through X_DSDT */
	check_tables(2, 0xffffff00ull);	 /* DSDT just above 4 GiB */
}

static void test_deterministic(void **state)
{
	struct tables a, b;

	(void)state;
	build(&a, 8, TEST_GPA);
	build(&b, 8, TEST_GPA);
	assert_int_equal(a.len, b.len);
	assert_memory_equal(a.buf, b.buf, (size_t)a.len);
	tables_free(&a);
	tables_free(&b);
}

static void test_rejects_config(void **state)
{
	uint8_t buf[BUF_SIZE];
	struct acpi_config cfg = {.ncpus = 0};

	(void)state;
	memset(buf, GUARD_BYTE, sizeof(buf));
	assert_int_equal(acpi_build(buf, sizeof(buf), TEST_GPA, &cfg), -1);
	cfg.ncpus = ACPI_MAX_CPUS + 1;
	assert_int_equal(acpi_build(buf, sizeof(buf), TEST_GPA, &cfg), -1);
	cfg.ncpus = 1;
	assert_int_equal(acpi_build(NULL, sizeof(buf), TEST_GPA, &cfg), -1);
	assert_int_equal(acpi_build(buf, sizeof(buf), TEST_GPA, NULL), -1);
	assert_int_equal(acpi_build(buf, sizeof(buf), UINT64_MAX - 16, &cfg), -1);
	for (size_t i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], GUARD_BYTE);
}

/* Every length short of the need fails and leaves the guard after it alone; the exact
 * need succeeds with the same bytes as a roomy buffer. */
static void check_too_small_cfg(const struct acpi_config cfg, size_t step)
{
	uint8_t *buf = malloc(BUF_SIZE + GUARD);
	uint8_t *ref = malloc(BUF_SIZE);
	long need;

	assert_non_null(buf);
	assert_non_null(ref);
	need = acpi_build(ref, BUF_SIZE, TEST_GPA, &cfg);
	assert_true(need > 0);
	for (size_t len = 0; len < (size_t)need; len += (len + step < (size_t)need ? step : 1)) {
		memset(buf, GUARD_BYTE, len + GUARD);
		assert_int_equal(acpi_build(buf, len, TEST_GPA, &cfg), -1);
		for (size_t i = 0; i < GUARD; i++)
			assert_int_equal(buf[len + i], GUARD_BYTE);
	}
	memset(buf, GUARD_BYTE, (size_t)need + GUARD);
	assert_int_equal(acpi_build(buf, (size_t)need, TEST_GPA, &cfg), need);
	assert_memory_equal(buf, ref, (size_t)need);
	for (size_t i = 0; i < GUARD; i++)
		assert_int_equal(buf[need + i], GUARD_BYTE);
	free(buf);
	free(ref);
}

static void check_too_small(unsigned ncpus, size_t step)
{
	check_too_small_cfg((struct acpi_config){.ncpus = ncpus}, step);
}

static void check_too_small_pci(unsigned ncpus, size_t step)
{
	check_too_small_cfg((struct acpi_config){.ncpus = ncpus, .pci = true}, step);
}

static void test_too_small(void **state)
{
	(void)state;
	check_too_small(1, 1);
	check_too_small(4, 1);
	check_too_small(ACPI_MAX_CPUS, 7);
	check_too_small_pci(1, 1);
	check_too_small_pci(4, 1);
}

static void test_iasl(void **state)
{
	static const char *const dsdt_needles[] = {"_S5_",     "PNP0501", "QEMU0001",
						   "ACPI0007", "_CRS",	  NULL};
	static const char *const fadt_needles[] = {"Hardware Reduced (V5) : 1",
						   "Reset Register Supported (V2) : 1", NULL};
	static const char *const madt_needles[] = {"Processor Local APIC", "I/O APIC",
						   "Interrupt Source Override", "Local APIC NMI",
						   NULL};
	unsigned ncpus = (unsigned)(uintptr_t)*state;
	struct tables t;

	/* iasl -d does not take a binary RSDP ("not a valid ACPI table"), so the RSDP is
	 * checked by check_rsdp() only. */
	build(&t, ncpus, TEST_GPA);
	iasl_check("xsdt", t.xsdt, le32_get(t.xsdt + 4), false, NULL);
	iasl_check("facp", t.fadt, le32_get(t.fadt + 4), false, fadt_needles);
	iasl_check("apic", t.madt, le32_get(t.madt + 4), false, madt_needles);
	iasl_check("dsdt", t.dsdt, le32_get(t.dsdt + 4), true, dsdt_needles);
	tables_free(&t);
}

static void test_iasl_pci(void **state)
{
	/* clang-format off */
	static const char *const dsdt_needles[] = {
		"_S5_", "PNP0501", "QEMU0001", "ACPI0007",
		"Device (PCI0)", "PNP0A08", "PNP0A03", "_SEG", "_BBN",
		"WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,",
		"0x0001,             // Length",
		"DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,",
		"0xC0000000,         // Range Minimum",
		"0xDFFFFFFF,         // Range Maximum",
		"0x20000000,         // Length",
		"Device (MRES)", "PNP0C02",
		"Memory32Fixed (ReadWrite,",
		"0xE0000000,         // Address Base",
		"0x00100000,         // Address Length",
		NULL,
	};
	static const char *const mcfg_needles[] = {
		"Base Address : 00000000E0000000", "Segment Group Number : 0000",
		"Start Bus Number : 00", "End Bus Number : 00", NULL,
	};
	/* clang-format on */
	unsigned ncpus = (unsigned)(uintptr_t)*state;
	struct tables t;

	build_pci(&t, ncpus, true, TEST_GPA);
	iasl_check("xsdt", t.xsdt, le32_get(t.xsdt + 4), false, NULL);
	iasl_check("facp", t.fadt, le32_get(t.fadt + 4), false, NULL);
	iasl_check("apic", t.madt, le32_get(t.madt + 4), false, NULL);
	iasl_check("mcfg", t.mcfg, le32_get(t.mcfg + 4), false, mcfg_needles);
	iasl_check("dsdt", t.dsdt, le32_get(t.dsdt + 4), true, dsdt_needles);
	tables_free(&t);
}

/* A test run with ncpus as its state, named "test/ncpus". */
/* clang-format off */
#define WITH_NCPUS(f, n) {#f "/" #n, f, NULL, NULL, (void *)(uintptr_t)(n)}
/* clang-format on */

/* NitroTPM: the TPM2 table (revision 4, CRB start method, log area at LAML 64 / LASA 68),
 * listed in the XSDT, and \_SB.TPM0 (MSFT0101) with the CRB range as its memory; both
 * disassemble with iasl. */
static void test_tables_tpm(void **state)
{
	(void)state;
	struct acpi_config cfg = {.ncpus = 2,
				  .tpm = true,
				  .tpm_base = 0xfed40000u,
				  .tpm_size = 0x6000,
				  .tpm_ctrl = 0xfed40040u,
				  .tpm_log = 0xf0000,
				  .tpm_log_len = 0x10000};
	uint8_t *buf = calloc(1, BUF_SIZE);
	assert_non_null(buf);
	long len = acpi_build(buf, BUF_SIZE, TEST_GPA, &cfg);
	assert_true(len > 0);
	struct tables t = {.buf = buf, .gpa = TEST_GPA, .len = len};
	const uint8_t *xsdt = gpa_ptr(&t, le64_get(buf + 24), 36);
	assert_int_equal(le32_get(xsdt + 4), 36 + 3 * 8);
	const uint8_t *tpm2 = gpa_ptr(&t, le64_get(xsdt + 52), 76);
	check_sdt(tpm2, "TPM2", 4, &t);
	assert_int_equal(le32_get(tpm2 + 4), 76);
	assert_int_equal(le16_get(tpm2 + 36), 0);	       /* client */
	assert_int_equal(le64_get(tpm2 + 40), 0xfed40040u); /* control area */
	assert_int_equal(le32_get(tpm2 + 48), ACPI_TPM2_START_CRB);
	assert_int_equal(le32_get(tpm2 + 64), 0x10000); /* LAML */
	assert_int_equal(le64_get(tpm2 + 68), 0xf0000); /* LASA */
	/* clang-format off */
	static const uint8_t dev[] = {
		'T', 'P', 'M', '0',
		0x08, '_', 'H', 'I', 'D', 0x0d, 'M', 'S', 'F', 'T', '0', '1', '0', '1', 0x00,
		0x08, '_', 'U', 'I', 'D', 0x00,
		0x08, '_', 'C', 'R', 'S', 0x11, 0x11, 0x0a, 14,
		0x86, LE16(9), 0x01, LE32(0xfed40000u), LE32(0x6000),
		0x79, 0x00,
	};
	/* clang-format on */
	t.dsdt = gpa_ptr(&t, le64_get(gpa_ptr(&t, le64_get(xsdt + 36), 276) + 140), 36);
	assert_dsdt_has(&t, dev, sizeof(dev), "TPM0");
	static const char *const tpm2_needles[] = {"Start Method : 07", NULL};
	iasl_check("tpm2", tpm2, 76, false, tpm2_needles);
	iasl_check("dsdt", t.dsdt, le32_get(t.dsdt + 4), true, NULL);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pkglen_boundaries),
	    cmocka_unit_test(test_aml_backpatch),
	    cmocka_unit_test(test_aml_encodings),
	    cmocka_unit_test(test_aml_resources),
	    cmocka_unit_test(test_aml_address_resources),
	    cmocka_unit_test(test_aml_rejects),
	    cmocka_unit_test(test_aml_overflow),
	    WITH_NCPUS(test_tables, 1),
	    WITH_NCPUS(test_tables, 4),
	    WITH_NCPUS(test_tables, ACPI_MAX_CPUS),
	    WITH_NCPUS(test_tables_pci, 1),
	    WITH_NCPUS(test_tables_pci, 4),
	    cmocka_unit_test(test_tables_high_gpa),
	    cmocka_unit_test(test_deterministic),
	    cmocka_unit_test(test_tables_tpm),
	    cmocka_unit_test(test_rejects_config),
	    cmocka_unit_test(test_too_small),
	    WITH_NCPUS(test_iasl, 1),
	    WITH_NCPUS(test_iasl, 4),
	    WITH_NCPUS(test_iasl, ACPI_MAX_CPUS),
	    WITH_NCPUS(test_iasl_pci, 1),
	    WITH_NCPUS(test_iasl_pci, 4),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
