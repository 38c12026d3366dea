/* libFuzzer target: the link-local time server's request check (a guest's UDP payload to
 * 169.254.169.123:123). An answered request is a v1..4 client-mode packet of at least 48
 * bytes with a transmit timestamp; the reply is server mode, the client's version, and
 * echoes that timestamp as its origin.
 */
// fuzz-extra: src/cards/vpc/ntp.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cards/vpc/ntp.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[NTP_LEN];
	uint8_t *m = malloc(size ? size : 1);
	CHECK(m);
	memcpy(m, data, size);
	struct timespec rx = {1700000000, 1}, tx = {1700000000, 2};
	if (ntp_answer(m, size, &rx, &tx, out)) {
		CHECK(size >= NTP_LEN && (m[0] & 7) == 3);
		CHECK((out[0] & 7) == 4 && (out[0] >> 3 & 7) == (m[0] >> 3 & 7));
		CHECK(!memcmp(out + 24, m + 40, 8) && out[2] >= 4 && out[2] <= 17);
	}
	free(m);
	return 0;
}
