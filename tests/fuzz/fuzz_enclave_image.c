/* libFuzzer target: an enclave's nitro-hv taking its EIF out of enclave memory
 * (src/hv/enclave_image.c): the input is what follows offset 8 MiB of a memory that ends
 * with it. Once as given and once with the header's CRC recomputed (so mutations reach the
 * kernel's setup header and the command line). An accepted image lies inside the memory,
 * has a bzImage kernel and a NUL-free command line; a refusal names its reason. */
// fuzz-extra: src/hv/enclave_image.c src/enclave/[ecp]*.c -lcbor
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "boot/memory.h"
#include "hv/enclave_image.h"

#include "fuzz.h"

#define MAX_IN (1u << 16)
static uint8_t mem[ENCLAVE_EIF_OFFSET + MAX_IN];

static void one(size_t n)
{
	struct guest_mem m;
	memset(&m, 0, sizeof(m));
	m.gm_fd = -1;
	m.gm_base = mem;
	m.gm_size = ENCLAVE_EIF_OFFSET + n;
	struct enclave_image im;
	char err[256] = "";
	int r = enclave_image_read(&m, &im, err, sizeof(err));
	if (r) {
		CHECK(err[0] && memchr(err, 0, sizeof(err)));
		CHECK((r >= EIF_E_TRUNCATED && r <= EIF_E_TRAILING) || r == ENCLAVE_E_CONTENT);
	} else {
		CHECK(im.len >= EIF_HDR_SIZE && im.len <= n);
		CHECK(strlen(im.cmdline) < 4096 || im.bz.bz_cmdline_max >= strlen(im.cmdline));
		CHECK(im.ramdisk_size <= im.len);
	}
	enclave_image_free(&im);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	if (n > MAX_IN)
		return 0;
	memcpy(mem + ENCLAVE_EIF_OFFSET, d, n);
	one(n);
	if (n >= EIF_HDR_SIZE) { /* a CRC that matches whatever the sections are */
		uint64_t len = 0;
		char err[256];
		if (enclave_eif_extent(d, n, &len, err, sizeof(err)) == EIF_OK) {
			uint8_t *p = mem + ENCLAVE_EIF_OFFSET;
			uint32_t crc = eif_crc32(0, p, EIF_HDR_SIZE - 4);
			crc = eif_crc32(crc, p + EIF_HDR_SIZE, len - EIF_HDR_SIZE);
			for (int i = 0; i < 4; i++)
				p[EIF_HDR_SIZE - 4 + i] = (uint8_t)(crc >> (24 - 8 * i));
			one(n);
		}
	}
	return 0;
}
