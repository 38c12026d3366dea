/* An enclave's boot image: the EIF that the parent's user wrote into enclave memory at
 * ENCLAVE_EIF_OFFSET (8 MiB; NE_GET_IMAGE_LOAD_INFO), taken into this process and checked
 * before anything of it is used (reference §4, docs/enclaves.md).
 *
 * Hostile input: enclave memory is the parent's memfd; the parent's user wrote it, and the
 * parent's own processes still map it. enclave_image_read() therefore copies the image
 * into private memory once (length from its own header, bounded by the memory after the
 * offset) and parses, measures and boots only that copy: nothing changed in shared memory
 * afterwards can change what was measured. Single-threaded (start-up of nitro-hv).
 */
#ifndef NITRO_HV_ENCLAVE_IMAGE_H
#define NITRO_HV_ENCLAVE_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "boot/boot.h"
#include "boot/memory.h"
#include "enclave/eif.h"
#include "lib/enclave_wire.h"

#define ENCLAVE_EIF_OFFSET (8ull << 20)

/* nitro-hv --enclave's exit statuses beside main.c's (0 powered off, 1 error, 2 usage, 3
 * panic): the parent's glue maps them to NE reply codes (src/hv/enclave.h). */
#define ENCLAVE_EXIT_EIF 5 /* the EIF at 8 MiB was refused (reason on stderr) */
#define ENCLAVE_EXIT_MEM 6 /* the memory ranges were refused */

/* A refusal that is not one of eif_parse's: the kernel section is no bzImage, the command
 * line has a NUL or is too long, the signature does not verify. */
#define ENCLAVE_E_CONTENT 16

struct enclave_image {
	uint8_t *buf; /* the private copy, malloc'd */
	size_t len;
	struct eif_info info;
	struct bzimage bz;     /* of the kernel section (points into buf) */
	char *cmdline;	       /* malloc'd, NUL-terminated */
	uint64_t ramdisk_size; /* all ramdisk sections, concatenated */
	struct eif_pcrs pcrs;
};

/* The image's length as its header's section table gives it (the end of its last
 * section), from the first EIF_HDR_SIZE bytes at hdr; refused when it is no EIF header,
 * counts no or too many sections, overflows, or ends past avail bytes. EIF_OK with *len,
 * or a code with err. */
enum eif_err enclave_eif_extent(const uint8_t *hdr, uint64_t avail, uint64_t *len, char *err,
				size_t errlen);

/* Copies the EIF out of enclave memory m (at ENCLAVE_EIF_OFFSET of the enclave's memory,
 * i.e. of the ranges concatenated), parses it, checks the kernel's setup header and the
 * command line, and measures it. 0 (EIF_OK), or an eif_err / ENCLAVE_E_CONTENT with err. */
int enclave_image_read(const struct guest_mem *m, struct enclave_image *im, char *err,
		       size_t errlen);
/* Concatenates the ramdisks into guest memory at gpa (im->ramdisk_size bytes). 0 or -1. */
int enclave_image_put_ramdisks(const struct enclave_image *im, const struct guest_mem *m,
			       uint64_t gpa);
void enclave_image_free(struct enclave_image *im);

/* The identity the spawner sends first on each of an enclave's card connections
 * (enclave_wire.h): flags, cid, slot, PCR4 = SHA-384(zeros || parent id) when the parent
 * id is known (zero elsewhere) and module_id "<parent id>-enc<slot uid as 16 hex>". 0 or
 * -1. */
int enclave_hello_fill(struct enw_hello *h, bool debug, uint64_t cid, uint64_t slot_uid,
		       const char *parent_id);
/* The PCRs the enclave's nitro-hv measured, for its ENW_PCRS: PCR0-2 from the image (zeros
 * in debug mode, like AWS), PCR8 when signed. */
void enclave_pcrs_fill(struct enw_pcrs *p, const struct eif_pcrs *pcrs, bool debug);

#endif
