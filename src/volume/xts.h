/* AES-256-XTS (IEEE 1619) over runs of 512-byte sectors, the tweak of each sector being
 * its number, little-endian in 16 bytes. Byte for byte what OpenSSL's "AES-256-XTS"
 * cipher gives when called once per sector with that tweak as the IV; only faster for
 * runs of sectors: the tweaks of up to XTS_RUN sectors are encrypted in one OpenSSL
 * AES-256-ECB call under the second key half, their GF(2^128) multiples by alpha are
 * XORed in, and the data goes through one AES-256-ECB call under the first half.
 * (OpenSSL's own XTS takes one data unit per call, and re-keying the tweak costs about
 * as much as encrypting a sector.) The block cipher stays OpenSSL's (AES-NI where the
 * CPU has it); this file only does the XTS arithmetic.
 *
 * xts_new() takes the 64-byte key (two unequal halves) and the direction; xts_run()
 * needs len to be a multiple of 512 and allows in == out. Both return NULL / -EIO on an
 * OpenSSL failure. xts_free() wipes the key schedules.
 *
 * Key material in locked memory: xts_secure_init(), called first thing in a process (before
 * OpenSSL allocates anything), sets up OpenSSL's secure heap (mlocked, MADV_DONTDUMP,
 * guard pages) and allocation hooks; from then on whatever OpenSSL allocates between
 * xts_secure_begin() and xts_secure_end() (cipher contexts and their expanded key
 * schedules) comes from the secure heap, as do xts_new()'s contexts and tweak buffers.
 * Only that is locked (not every mapped library, as mlockall would). 0 when locked, 1
 * when the heap works but mlock was refused (RLIMIT_MEMLOCK), -1 when OpenSSL had already
 * allocated (keys then live in the ordinary heap). Not thread-safe: set-up only. */
#ifndef NITRO_CARDS_EBS_XTS_H
#define NITRO_CARDS_EBS_XTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XTS_SECTOR 512
#define XTS_RUN 16 /* sectors per pair of ECB calls */

struct xts;

struct xts *xts_new(const uint8_t key[64], bool encrypt);
int xts_run(struct xts *x, uint64_t sector, const uint8_t *in, uint8_t *out, size_t len);
void xts_free(struct xts *x);
int xts_secure_init(size_t heap_bytes);
void xts_secure_begin(void);
void xts_secure_end(void);

#endif
