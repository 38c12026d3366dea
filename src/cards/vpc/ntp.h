/* The link-local time server (AWS's Time Sync Service at 169.254.169.123): NTP server
 * mode (RFC 5905) from the host's clock, in the card. Pure: the caller passes the times.
 *
 * Contract:
 * - ntp_answer() reads a client's request (hostile: any bytes) and writes the 48-byte
 *   server reply. Only NTP versions 1..4 in client mode (3) of at least 48 bytes are
 *   answered (extension fields and MACs after the header are ignored, not echoed); the
 *   rest, a request whose transmit timestamp is zero (RFC 5905's bogus packet) among
 *   them, gets no answer.
 * - The reply: leap indicator 0, the client's version, mode 4, stratum NTP_STRATUM,
 *   poll the client's (clamped to 4..17), precision 2^-20, root delay 0, root dispersion
 *   NTP_ROOT_DISP_MS, reference id 127.0.0.1 (the host's own clock), reference time the
 *   receive time rounded down to the second, origin = the client's transmit timestamp,
 *   receive and transmit from rx and tx (CLOCK_REALTIME).
 * - Rate: the VPC core's link-local allowance (1024 packets/s per interface) bounds it.
 */
#ifndef NITRO_CARDS_VPC_NTP_H
#define NITRO_CARDS_VPC_NTP_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define NTP_LEN 48
#define NTP_STRATUM 3
#define NTP_ROOT_DISP_MS 10
#define NTP_UNIX_OFFSET 2208988800ull /* 1900 -> 1970 */

/* NTP_LEN (the reply in out), or 0: no answer. */
size_t ntp_answer(const uint8_t *req, size_t n, const struct timespec *rx,
		  const struct timespec *tx, uint8_t out[NTP_LEN]);

/* A CLOCK_REALTIME time as a 64-bit NTP timestamp (seconds since 1900 . fraction). */
uint64_t ntp_timestamp(const struct timespec *t);

#endif
