/* The synthetic bzImage setup header of the unit tests (bzimage.h). */
#include "bzimage.h"

#include <string.h>

#include "lib/le.h"

void bz_header(uint8_t *b, struct bz_shape s)
{
	b[0x1f1] = BZ_SETUP_SECTS;
	le16_put(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb;
	b[0x201] = BZ_JUMP;
	memcpy(b + 0x202, "HdrS", 4);
	le16_put(b + 0x206, 0x020f);	     /* protocol 2.15 */
	b[0x211] = 0x01;		     /* LOADED_HIGH */
	le32_put(b + 0x22c, BZ_INITRD_MAX);  /* initrd_addr_max */
	le16_put(b + 0x236, 0x0003);	     /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	le32_put(b + 0x238, s.cmdline_size); /* cmdline_size */
	le32_put(b + 0x248, s.payload_off);  /* payload_offset */
	le32_put(b + 0x24c, s.payload_len);  /* payload_length */
	le64_put(b + 0x258, BZ_PREF);	     /* pref_address */
	le32_put(b + 0x260, s.init_size);    /* init_size */
}
