/* NTP server mode from the host clock (contract: ntp.h). */
#include "cards/vpc/ntp.h"

#include <string.h>

#include "lib/be.h"

uint64_t ntp_timestamp(const struct timespec *t)
{
	uint64_t s = (uint64_t)t->tv_sec + NTP_UNIX_OFFSET;
	uint64_t frac = ((uint64_t)t->tv_nsec << 32) / 1000000000ull;
	return s << 32 | frac;
}

size_t ntp_answer(const uint8_t *req, size_t n, const struct timespec *rx,
		  const struct timespec *tx, uint8_t out[NTP_LEN])
{
	if (n < NTP_LEN)
		return 0;
	unsigned vn = (req[0] >> 3) & 7, mode = req[0] & 7;
	static const uint8_t zero[8];
	if (vn < 1 || vn > 4 || mode != 3 || !memcmp(req + 40, zero, 8))
		return 0;
	int8_t poll = (int8_t)req[2];
	if (poll < 4)
		poll = 4;
	if (poll > 17)
		poll = 17;
	memset(out, 0, NTP_LEN);
	out[0] = (uint8_t)(0 << 6 | vn << 3 | 4);
	out[1] = NTP_STRATUM;
	out[2] = (uint8_t)poll;
	out[3] = (uint8_t)-20;				    /* precision: ~1 us */
	be32_put(out + 4, 0);				    /* root delay */
	be32_put(out + 8, NTP_ROOT_DISP_MS * 65536 / 1000); /* root dispersion, 16.16 s */
	be32_put(out + 12, 0x7f000001);			    /* reference id */
	be64_put(out + 16, ntp_timestamp(rx) & ~0xffffffffull);
	memcpy(out + 24, req + 40, 8); /* origin: the client's transmit */
	be64_put(out + 32, ntp_timestamp(rx));
	be64_put(out + 40, ntp_timestamp(tx));
	return NTP_LEN;
}
