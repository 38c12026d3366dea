/* libFuzzer target: the EIF parser and measurer (src/enclave/eif.c) on hostile images, as a
 * user writes them into enclave memory. Each input is parsed as given and once more with
 * its CRC field recomputed (so mutations get past the CRC to the section checks). Accepted
 * images must have every section inside the input, contiguous from the header on, the
 * kernel/cmdline/ramdisk present; measuring them must not fail except on the signature. */
// fuzz-extra: src/enclave/[ecp]*.c -lcbor -lcrypto
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/eif.h"

#include "fuzz.h"

static void one(const uint8_t *d, size_t n)
{
	struct eif_info info;
	char err[256] = "";
	enum eif_err e = eif_parse(d, n, &info, err, sizeof(err));
	if (e != EIF_OK) {
		CHECK(err[0] && memchr(err, 0, sizeof(err)));
		CHECK(e >= EIF_E_TRUNCATED && e <= EIF_E_TRAILING);
		return;
	}
	uint64_t pos = EIF_HDR_SIZE;
	bool kernel = false, cmdline = false, ramdisk = false, sig = false;
	CHECK(info.num_sections >= 1 && info.num_sections <= EIF_MAX_SECTIONS);
	for (unsigned i = 0; i < info.num_sections; i++) {
		const struct eif_section *s = &info.sec[i];
		CHECK(s->offset == pos);
		CHECK(s->body == d + pos + EIF_SEC_HDR_SIZE);
		CHECK(s->size <= n - pos - EIF_SEC_HDR_SIZE);
		pos += EIF_SEC_HDR_SIZE + s->size;
		kernel |= s->type == EIF_SEC_KERNEL;
		cmdline |= s->type == EIF_SEC_CMDLINE;
		ramdisk |= s->type == EIF_SEC_RAMDISK;
		sig |= s->type == EIF_SEC_SIGNATURE;
	}
	CHECK(pos == n && kernel && cmdline && ramdisk);
	struct eif_pcrs p;
	int rc = eif_measure(&info, &p, err, sizeof(err));
	CHECK(rc == 0 || sig);
	CHECK(!p.has_pcr8 || sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	one(d, n);
	if (n >= EIF_HDR_SIZE) {
		uint8_t *c = malloc(n);
		memcpy(c, d, n);
		uint32_t crc = eif_crc32(eif_crc32(0, c, EIF_HDR_SIZE - 4), c + EIF_HDR_SIZE,
					 n - EIF_HDR_SIZE);
		for (int i = 0; i < 4; i++)
			c[EIF_HDR_SIZE - 4 + i] = (uint8_t)(crc >> (24 - 8 * i));
		one(c, n);
		free(c);
	}
	return 0;
}
