/* cmocka tests of src/enclave/eif.c: the CRC (CRC-32/ISO-HDLC check value), build -> parse
 * round trip, PCR0/1/2 against vectors computed outside nitro (Python hashlib) and against
 * SHA-384 recomputed here, deterministic bytes, and every refusal code on a damaged image. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "enclave/eif.h"

static void to_hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static uint8_t *build(const char *k, const char *cmd, const char *r0, const char *r1, size_t *len)
{
	struct eif_build_in in = {
	    .kernel = (const uint8_t *)k, .kernel_len = strlen(k), .cmdline = cmd};
	in.ramdisk[0] = (const uint8_t *)r0;
	in.ramdisk_len[0] = strlen(r0);
	in.nramdisks = 1;
	if (r1) {
		in.ramdisk[1] = (const uint8_t *)r1;
		in.ramdisk_len[1] = strlen(r1);
		in.nramdisks = 2;
	}
	char err[200];
	uint8_t *img = eif_build(&in, len, err, sizeof(err));
	assert_non_null(img);
	return img;
}

static void test_crc_check_value(void **st)
{
	(void)st;
	assert_int_equal(eif_crc32(0, "123456789", 9), 0xcbf43926u);
	/* continued in two pieces = in one */
	assert_int_equal(eif_crc32(eif_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
}

/* Vectors: python3 -c "import hashlib; z=bytes(48); e=lambda d: hashlib.sha384(z+
 * hashlib.sha384(d).digest()).hexdigest(); print(e(b'kernelcmdrd0rd1'), ...)" */
static void test_pcr_vectors(void **st)
{
	(void)st;
	size_t len;
	uint8_t *img = build("kernel", "cmd", "rd0", "rd1", &len);
	struct eif_info info;
	char err[200];
	assert_int_equal(eif_parse(img, len, &info, err, sizeof(err)), EIF_OK);
	struct eif_pcrs p;
	assert_int_equal(eif_measure(&info, &p, err, sizeof(err)), 0);
	char h[97];
	to_hex(p.pcr0, 48, h);
	assert_string_equal(h, "3bfb8df3178418e272a6024b5f2538da053073509e16066e1c878f8f32dc242aca"
			       "59318ca6683fee6fa020228ee8c324");
	to_hex(p.pcr1, 48, h);
	assert_string_equal(h, "e72a65db029569127824e6531acc95da4a542f7054a36528a6124c09dc836a7e87"
			       "b1043333334e035c564fb54a137270");
	to_hex(p.pcr2, 48, h);
	assert_string_equal(h, "695029c2c04573eb1daf702d94e399b1c92ea53256b3f6683606ddbbb368c9c3b6"
			       "f0a5059b95c334d8f9dca2d1bcf6b4");
	assert_false(p.has_pcr8);
	free(img);
}

/* SHA-384(zeros || SHA-384(data)) done here with one-shot digests. */
static void extend_ref(const uint8_t *data, size_t n, uint8_t out[48])
{
	uint8_t buf[96] = {0};
	unsigned l;
	assert_int_equal(EVP_Digest(data, n, buf + 48, &l, EVP_sha384(), NULL), 1);
	assert_int_equal(EVP_Digest(buf, 96, out, &l, EVP_sha384(), NULL), 1);
}

static void test_round_trip_and_independent_pcrs(void **st)
{
	(void)st;
	enum { K = 50000, R0 = 7000, R1 = 3 };
	uint8_t *k = malloc(K), *r0 = malloc(R0), r1[R1] = {1, 2, 3};
	for (size_t i = 0; i < K; i++)
		k[i] = (uint8_t)(i * 7 + 1);
	for (size_t i = 0; i < R0; i++)
		r0[i] = (uint8_t)(i * 13);
	const char *cmd = "console=ttyS0 reboot=k";
	struct eif_build_in in = {.kernel = k, .kernel_len = K, .cmdline = cmd, .nramdisks = 2};
	in.ramdisk[0] = r0, in.ramdisk_len[0] = R0;
	in.ramdisk[1] = r1, in.ramdisk_len[1] = R1;
	char err[200];
	size_t len, len2;
	uint8_t *img = eif_build(&in, &len, err, sizeof(err));
	uint8_t *img2 = eif_build(&in, &len2, err, sizeof(err));
	assert_non_null(img);
	assert_int_equal(len, len2);
	assert_memory_equal(img, img2, len); /* deterministic */
	struct eif_info info;
	assert_int_equal(eif_parse(img, len, &info, err, sizeof(err)), EIF_OK);
	assert_int_equal(info.version, 4);
	assert_int_equal(info.num_sections, 5);
	uint16_t want[] = {EIF_SEC_KERNEL, EIF_SEC_CMDLINE, EIF_SEC_METADATA, EIF_SEC_RAMDISK,
			   EIF_SEC_RAMDISK};
	for (int i = 0; i < 5; i++)
		assert_int_equal(info.sec[i].type, want[i]);
	assert_int_equal(info.sec[0].offset, EIF_HDR_SIZE);
	assert_memory_equal(info.sec[0].body, k, K);
	assert_int_equal(info.sec[1].size, strlen(cmd)); /* no NUL */
	assert_memory_equal(info.sec[1].body, cmd, strlen(cmd));
	assert_memory_equal(info.sec[4].body, r1, R1);
	size_t cl = strlen(cmd);
	uint8_t *all = malloc(K + cl + R0 + R1);
	memcpy(all, k, K);
	memcpy(all + K, cmd, cl);
	memcpy(all + K + cl, r0, R0);
	memcpy(all + K + cl + R0, r1, R1);
	uint8_t p0[48], p1[48], p2[48];
	extend_ref(all, K + cl + R0 + R1, p0);
	extend_ref(all, K + cl + R0, p1);
	extend_ref(r1, R1, p2);
	struct eif_pcrs p;
	assert_int_equal(eif_measure(&info, &p, err, sizeof(err)), 0);
	assert_memory_equal(p.pcr0, p0, 48);
	assert_memory_equal(p.pcr1, p1, 48);
	assert_memory_equal(p.pcr2, p2, 48);
	/* the kernel cache's key from the same pass: SHA-384 of the kernel's bytes alone */
	uint8_t kd[48];
	unsigned kl;
	assert_int_equal(EVP_Digest(k, K, kd, &kl, EVP_sha384(), NULL), 1);
	assert_true(p.has_kernel);
	assert_memory_equal(p.kernel, kd, 48);
	free(all);
	free(k);
	free(r0);
	free(img);
	free(img2);
}

static void recrc(uint8_t *img, size_t len)
{
	uint32_t c = eif_crc32(0, img, EIF_HDR_SIZE - 4);
	c = eif_crc32(c, img + EIF_HDR_SIZE, len - EIF_HDR_SIZE);
	img[544] = (uint8_t)(c >> 24), img[545] = (uint8_t)(c >> 16);
	img[546] = (uint8_t)(c >> 8), img[547] = (uint8_t)c;
}

static enum eif_err parse_mut(void (*mut)(uint8_t *img, size_t *len), bool fix_crc)
{
	size_t len;
	uint8_t *img = build("kernel", "cmd", "rd0", NULL, &len);
	img = realloc(img, len + 64);
	mut(img, &len);
	if (fix_crc)
		recrc(img, len);
	struct eif_info info;
	char err[200] = "";
	enum eif_err e = eif_parse(img, len, &info, err, sizeof(err));
	if (e != EIF_OK)
		assert_true(strlen(err) > 10); /* a reason, not just a code */
	free(img);
	return e;
}

static void m_short(uint8_t *img, size_t *len)
{
	(void)img, *len = 100;
}
static void m_short_body(uint8_t *img, size_t *len)
{
	(void)img, *len -= 1;
}
static void m_magic(uint8_t *img, size_t *len)
{
	(void)len, img[1] = 'E';
}
static void m_version(uint8_t *img, size_t *len)
{
	(void)len, img[5] = 5;
}
static void m_version0(uint8_t *img, size_t *len)
{
	(void)len, img[5] = 0;
}
static void m_nsec0(uint8_t *img, size_t *len)
{
	(void)len, img[27] = 0;
}
static void m_nsec33(uint8_t *img, size_t *len)
{
	(void)len, img[27] = 33;
}
static void m_body(uint8_t *img, size_t *len)
{
	(void)len, img[EIF_HDR_SIZE + 13] ^= 1;
}
static void m_trailing(uint8_t *img, size_t *len)
{
	img[(*len)++] = 0;
}
static void m_gap(uint8_t *img, size_t *len)
{
	(void)len, img[28 + 8 + 7] += 1;
}
static void m_table_extra(uint8_t *img, size_t *len)
{
	(void)len, img[28 + 8 * 31 + 7] = 1;
}
/* section table says 1 byte more than the section's own header */
static void m_size_mismatch(uint8_t *img, size_t *len)
{
	(void)len, img[28 + 256 + 7] += 1;
}
static void m_type(uint8_t *img, size_t *len)
{
	(void)len, img[EIF_HDR_SIZE + 1] = 9;
}
/* the cmdline section relabelled as a second kernel */
static void m_dup_kernel(uint8_t *img, size_t *len)
{
	(void)len;
	img[EIF_HDR_SIZE + 12 + 6 + 1] = EIF_SEC_KERNEL;
}
/* kernel + cmdline + metadata only: the table cut to 3 entries, the ramdisk dropped. */
static void m_missing(uint8_t *img, size_t *len)
{
	uint64_t rd_off = 0;
	for (int i = 0; i < 8; i++)
		rd_off = rd_off << 8 | img[28 + 8 * 3 + i];
	img[27] = 3;
	memset(img + 28 + 8 * 3, 0, 8);
	memset(img + 28 + 256 + 8 * 3, 0, 8);
	*len = rd_off;
}

static void test_refusals(void **st)
{
	(void)st;
	assert_int_equal(parse_mut(m_short, false), EIF_E_TRUNCATED);
	assert_int_equal(parse_mut(m_short_body, false), EIF_E_TRUNCATED);
	assert_int_equal(parse_mut(m_magic, false), EIF_E_MAGIC);
	assert_int_equal(parse_mut(m_version, false), EIF_E_VERSION);
	assert_int_equal(parse_mut(m_version0, false), EIF_E_VERSION);
	assert_int_equal(parse_mut(m_nsec0, false), EIF_E_NUM_SECTIONS);
	assert_int_equal(parse_mut(m_nsec33, false), EIF_E_NUM_SECTIONS);
	assert_int_equal(parse_mut(m_body, false), EIF_E_CRC);
	assert_int_equal(parse_mut(m_trailing, true), EIF_E_TRAILING);
	assert_int_equal(parse_mut(m_gap, true), EIF_E_SECTION_LAYOUT);
	assert_int_equal(parse_mut(m_table_extra, true), EIF_E_SECTION_LAYOUT);
	assert_int_equal(parse_mut(m_size_mismatch, true), EIF_E_SECTION_LAYOUT);
	assert_int_equal(parse_mut(m_type, true), EIF_E_SECTION_TYPE);
	assert_int_equal(parse_mut(m_dup_kernel, true), EIF_E_SECTION_TYPE);
	assert_int_equal(parse_mut(m_missing, true), EIF_E_MISSING);
}

static void test_build_refuses_bad_input(void **st)
{
	(void)st;
	struct eif_build_in in = {.kernel = (const uint8_t *)"k", .kernel_len = 1};
	size_t len;
	char err[200] = "";
	assert_null(eif_build(&in, &len, err, sizeof(err))); /* no ramdisk */
	assert_non_null(strstr(err, "ramdisk"));
	in.ramdisk[0] = (const uint8_t *)"r", in.ramdisk_len[0] = 1, in.nramdisks = 1;
	in.cert_pem = (const uint8_t *)"x", in.cert_pem_len = 1;
	assert_null(eif_build(&in, &len, err, sizeof(err))); /* cert without key */
	in.key_pem = (const uint8_t *)"not a key", in.key_pem_len = 9;
	assert_null(eif_build(&in, &len, err, sizeof(err)));
	assert_non_null(strstr(err, "private-key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_crc_check_value),
	    cmocka_unit_test(test_pcr_vectors),
	    cmocka_unit_test(test_round_trip_and_independent_pcrs),
	    cmocka_unit_test(test_refusals),
	    cmocka_unit_test(test_build_refuses_bad_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
