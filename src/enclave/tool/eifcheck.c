/* The early EIF check of nitro-enclave run (eifcheck.h). The CRC is computed here rather
 * than with eif.c's eif_crc32 (the same lib/crc32.h): the static tool does not link eif.c
 * (libcbor, libcrypto). */
#include "enclave/tool/eifcheck.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/be.h"
#include "lib/crc32.h"

#define HDR 548
#define CRC_AT 544

static uint32_t crc32_iso_hdlc(uint32_t crc, const uint8_t *p, size_t n)
{
	static crc32_table t;
	static bool ready; /* idempotent: every thread computes the same table */
	if (!ready) {
		crc32_tables(t);
		ready = true;
	}
	return crc32_slice8((const uint32_t(*)[256])t, crc, p, n);
}

int net_eif_check(const uint8_t *b, size_t len, char *err, size_t errlen)
{
	if (len < HDR || memcmp(b, ".eif", 4)) {
		snprintf(
		    err, errlen,
		    "not an EIF (%s): build one with `nitro eif build` or nitro-cli build-enclave",
		    len < HDR ? "shorter than the 548-byte header" : "no \".eif\" magic");
		return -1;
	}
	unsigned version = be16_get(b + 4);
	unsigned nsec = be16_get(b + 26);
	if (version == 0 || version > 4) {
		snprintf(err, errlen, "EIF version %u is not supported (1 to 4)", version);
		return -1;
	}
	if (nsec == 0 || nsec > 32) {
		snprintf(err, errlen, "the EIF says it has %u sections (1 to 32 expected)", nsec);
		return -1;
	}
	uint32_t crc = crc32_iso_hdlc(0, b, CRC_AT);
	crc = crc32_iso_hdlc(crc, b + HDR, len - HDR);
	if (crc != be32_get(b + CRC_AT)) {
		snprintf(err, errlen,
			 "the EIF is damaged: its CRC32 is %08x, the header says %08x (copied "
			 "incompletely?); `nitro eif describe` shows more",
			 crc, be32_get(b + CRC_AT));
		return -1;
	}
	return 0;
}
