/* Synthetic bzImages for the unit tests of the kernel loader and its callers (tests/unit/boot,
 * tests/unit/controller): the boot protocol 2.15 setup header that src/boot/boot.c accepts,
 * with the fields a test varies as arguments. No allocation; not thread-safe by itself.
 */
#ifndef NITRO_TESTS_UNIT_TESTLIB_BZIMAGE_H
#define NITRO_TESTS_UNIT_TESTLIB_BZIMAGE_H

#include <stdint.h>

#define BZ_SETUP_SECTS 4
#define BZ_PM_OFF ((BZ_SETUP_SECTS + 1) * 512) /* the protected-mode part starts here */
#define BZ_JUMP 0x66			       /* header ends at 0x202 + 0x66 = 0x268 */
#define BZ_PREF 0x1000000ull		       /* pref_address: 16 MiB */
#define BZ_INITRD_MAX 0x7fffffffu

struct bz_shape {
	uint32_t payload_off; /* into the protected-mode part */
	uint32_t payload_len;
	uint32_t cmdline_size; /* the longest command line, without its NUL */
	uint32_t init_size;    /* bytes the kernel needs from pref_address */
};

/* Writes the setup header into b (at least BZ_PM_OFF bytes; the caller zeroed them): 64-bit,
 * loaded high, relocatable above 4 GiB, initrd below 2 GiB. */
void bz_header(uint8_t *b, struct bz_shape s);

#endif
