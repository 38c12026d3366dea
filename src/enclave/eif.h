/* EIF (Enclave Image File) parsing, writing and measuring: AWS's format
 * (aws-nitro-enclaves-image-format; docs/enclaves.md).
 *
 * Layout, big-endian: a 548-byte header {".eif", u16 version 4, u16 flags, u64 default_mem,
 * u64 default_cpus, u16 reserved, u16 num_sections, u64 section_offsets[32],
 * u64 section_sizes[32], u32 unused, u32 crc32}, then sections, each a 12-byte header
 * {u16 type, u16 flags, u64 size} and its body. The CRC is CRC-32/ISO-HDLC (zlib's) over
 * the header's first 544 bytes, then every section header and body in order.
 *
 * Contract: pure functions, no global state, thread-safe. eif_parse takes hostile bytes
 * (an image written by an untrusted user) and never reads outside [buf, buf+len); any
 * inconsistency is refused with an eif_err code and a one-line reason. Parsed section
 * bodies point into the caller's buffer (no copies; valid while it is).
 */
#ifndef NITRO_ENCLAVE_EIF_H
#define NITRO_ENCLAVE_EIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EIF_MAGIC ".eif"
#define EIF_VERSION 4
#define EIF_HDR_SIZE 548
#define EIF_SEC_HDR_SIZE 12
#define EIF_MAX_SECTIONS 32
#define EIF_DIGEST_LEN 48
#define EIF_MAX_RAMDISKS (EIF_MAX_SECTIONS - 4)

enum eif_section_type {
	EIF_SEC_INVALID = 0,
	EIF_SEC_KERNEL = 1,
	EIF_SEC_CMDLINE = 2,
	EIF_SEC_RAMDISK = 3,
	EIF_SEC_SIGNATURE = 4,
	EIF_SEC_METADATA = 5,
};

/* Why an image is refused (stable numbers: the NE device maps them to reply codes). */
enum eif_err {
	EIF_OK = 0,
	EIF_E_TRUNCATED = 1,	  /* shorter than its header or than a section says */
	EIF_E_MAGIC = 2,	  /* not ".eif" */
	EIF_E_VERSION = 3,	  /* version 0 or newer than we know */
	EIF_E_NUM_SECTIONS = 4,	  /* 0 or more than 32 sections */
	EIF_E_SECTION_LAYOUT = 5, /* offsets/sizes overlap, leave gaps, overflow or disagree */
	EIF_E_SECTION_TYPE = 6,	  /* unknown type, or a section that must be unique repeated */
	EIF_E_CRC = 7,		  /* the CRC does not match */
	EIF_E_MISSING = 8,	  /* no kernel, no cmdline or no ramdisk */
	EIF_E_TRAILING = 9,	  /* bytes after the last section */
};

struct eif_section {
	uint16_t type, flags;
	uint64_t offset; /* of its 12-byte header in the file */
	uint64_t size;	 /* of its body */
	const uint8_t *body;
};

struct eif_info {
	uint16_t version, flags;
	uint64_t default_mem, default_cpus;
	uint16_t num_sections;
	uint32_t crc;
	struct eif_section sec[EIF_MAX_SECTIONS];
};

/* CRC-32/ISO-HDLC, continued from crc (start with 0). */
uint32_t eif_crc32(uint32_t crc, const void *data, size_t len);

/* Parses and checks an image. EIF_OK, or a code with why (a sentence) in err. */
enum eif_err eif_parse(const uint8_t *buf, size_t len, struct eif_info *out, char *err,
		       size_t errlen);
const char *eif_err_name(enum eif_err e);
const char *eif_section_name(uint16_t type);

/* PCRs of a parsed image (reference §4): extend(x) = SHA-384(48 zero bytes || SHA-384(x)),
 * PCR0 = extend(kernel||cmdline||ramdisks), PCR1 = extend(kernel||cmdline||ramdisk0),
 * PCR2 = extend(ramdisk1..N), PCR8 = extend(signing cert DER) when signed (has_pcr8).
 * A signature section counts only if its COSE_Sign1 (ES384) verifies with its certificate's
 * key over this image's PCR0: a certificate copied from another image gives no PCR8 but an
 * error. 0, or -1 with err (libcrypto failure, or a signature section that does not
 * verify). */
struct eif_pcrs {
	uint8_t pcr0[EIF_DIGEST_LEN], pcr1[EIF_DIGEST_LEN], pcr2[EIF_DIGEST_LEN];
	uint8_t pcr8[EIF_DIGEST_LEN];
	bool has_pcr8;
	/* SHA-384 of the (first) kernel section's bytes alone, not extended: the kernel
	 * cache's key (boot/kernel.h), from the same pass over the image */
	uint8_t kernel[EIF_DIGEST_LEN];
	bool has_kernel;
};
int eif_measure(const struct eif_info *in, struct eif_pcrs *out, char *err, size_t errlen);

/* PCR3 / PCR4 of an enclave (reference §4): SHA-384(48 zero bytes || data), data the UTF-8
 * IAM role ARN (PCR3) or the parent's instance id (PCR4), not hashed first. 0 or -1. */
int eif_pcr_of_text(const char *text, uint8_t out[EIF_DIGEST_LEN]);

/* What eif_build writes. cmdline is stored without a trailing NUL. The signing pair is
 * optional (both NULL: unsigned): PEM certificate bytes and a PEM private key (EC P-384). */
struct eif_build_in {
	const uint8_t *kernel;
	size_t kernel_len;
	const char *cmdline;
	const uint8_t *ramdisk[EIF_MAX_RAMDISKS];
	size_t ramdisk_len[EIF_MAX_RAMDISKS];
	unsigned nramdisks;
	const char *metadata_json; /* NULL: a fixed deterministic document */
	const uint8_t *cert_pem;
	size_t cert_pem_len;
	const uint8_t *key_pem;
	size_t key_pem_len;
};

/* Builds the image (malloc'd, *len) in builder order: kernel, cmdline, metadata, ramdisks,
 * signature. Same inputs, same bytes (no timestamps; ECDSA signatures are deterministic
 * only with deterministic nonces, so a signed image differs per build in its signature
 * section alone). NULL with err on bad input. */
uint8_t *eif_build(const struct eif_build_in *in, size_t *len, char *err, size_t errlen);

#endif
