/* CRC-32/ISO-HDLC (the EIF header's checksum, zlib's crc32), slice-by-8: eight bytes per
 * step instead of one, which is what an EIF's 14 MB cost under an emulated CPU at every
 * `nitro-enclave run` and again in the enclave's nitro-hv.
 *
 * Header-only (static inline) so that the static nitro-enclave tool and eif.c share it
 * without a common object. Contract: pure; the tables are built by crc32_tables into
 * storage the caller owns (build once, then read from any thread); p is read only in
 * [p, p + n). crc32_slice8(0, p, n) = zlib's crc32(0, p, n); a running value continues:
 * crc32_slice8(crc32_slice8(0, a, n), b, m) = the CRC of a || b. */
#ifndef NITRO_LIB_CRC32_H
#define NITRO_LIB_CRC32_H

#include <stddef.h>
#include <stdint.h>

typedef uint32_t crc32_table[8][256];

static inline void crc32_tables(crc32_table t)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
		t[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int s = 1; s < 8; s++)
			t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
}

static inline uint32_t crc32_slice8(const crc32_table t, uint32_t crc, const uint8_t *p, size_t n)
{
	crc = ~crc;
	for (; n >= 8; p += 8, n -= 8) {
		uint32_t a = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				    (uint32_t)p[3] << 24);
		uint32_t b = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
			     (uint32_t)p[7] << 24;
		crc = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^
		      t[4][a >> 24] ^ t[3][b & 0xff] ^ t[2][(b >> 8) & 0xff] ^
		      t[1][(b >> 16) & 0xff] ^ t[0][b >> 24];
	}
	while (n--)
		crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#endif
