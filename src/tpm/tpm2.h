/* The few TPM 2.0 commands nitro itself sends (TCG TPM 2.0 Library, Part 3), built and
 * parsed as byte strings: TPM2_Startup, TPM2_PCR_Extend with the empty password session,
 * TPM2_GetCapability(TPM_CAP_PCRS) and TPM2_GetRandom (the benchmark). Also the response
 * the hypervisor hands the guest when the card cannot answer (TPM_RC_FAILURE).
 *
 * Contract: pure functions on caller buffers; builders return the command's length, or 0
 * when it does not fit. Parsers take hostile bytes (a card's reply) and check every length
 * before reading. Thread-safe (no state).
 */
#ifndef NITRO_TPM_TPM2_H
#define NITRO_TPM_TPM2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TPM2_ST_NO_SESSIONS 0x8001
#define TPM2_ST_SESSIONS 0x8002
#define TPM2_HEADER 10 /* tag u16, size u32, code u32 */

#define TPM2_CC_STARTUP 0x144
#define TPM2_CC_PCR_EXTEND 0x182
#define TPM2_CC_GET_CAPABILITY 0x17a
#define TPM2_CC_GET_RANDOM 0x17b
#define TPM2_CC_HIERARCHY_CONTROL 0x121
#define TPM2_CC_PCR_ALLOCATE 0x12b
#define TPM2_CC_SHUTDOWN 0x145
#define TPM2_CC_CREATE_PRIMARY 0x131
#define TPM2_CC_FLUSH_CONTEXT 0x165
#define TPM2_CC_NV_DEFINE_SPACE 0x12a
#define TPM2_CC_NV_WRITE 0x137
#define TPM2_CC_NV_READ_PUBLIC 0x169
#define TPM2_CC_PCR_READ 0x17e
#define TPM2_CC_READ_PUBLIC 0x173
#define TPM2_CC_GET_TEST_RESULT 0x17c
#define TPM2_CC_READ_CLOCK 0x181
#define TPM2_RH_ENDORSEMENT 0x4000000b
#define TPM2_NV_EK_CERT_RSA 0x01c00002
#define TPM2_NV_EK_CERT_ECC 0x01c0000a
#define TPM2_NV_EK_CERT_RSA 0x01c00002
#define TPM2_EK_RSA_BYTES 256 /* RSA-2048 modulus */
#define TPM2_NV_MAX_WRITE 512 /* bytes per TPM2_NV_Write (below any MAX_NV_BUFFER_SIZE) */
#define TPM2_RH_PLATFORM 0x4000000c

#define TPM2_SU_CLEAR 0
#define TPM2_RS_PW 0x40000009
#define TPM2_CAP_PCRS 5

#define TPM2_RC_SUCCESS 0
#define TPM2_RC_INITIALIZE 0x100 /* already started */
#define TPM2_RC_FAILURE 0x101
#define TPM2_RC_COMMAND_SIZE 0x142
#define TPM2_RC_CANCELED 0x909

#define TPM2_ALG_SHA1 0x0004
#define TPM2_ALG_SHA256 0x000b
#define TPM2_ALG_SHA384 0x000c
#define TPM2_ALG_SHA512 0x000d
#define TPM2_MAX_DIGEST 64
#define TPM2_MAX_BANKS 4 /* SHA-1, SHA-256, SHA-384, SHA-512 */

static inline uint16_t be16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline uint32_t be32_get(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void be16_put(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}
static inline void be32_put(uint8_t *p, uint32_t v)
{
	be16_put(p, (uint16_t)(v >> 16));
	be16_put(p + 2, (uint16_t)v);
}

/* Digest size of a hash algorithm nitro measures with; 0 for any other. */
unsigned tpm2_digest_size(uint16_t alg);

/* One digest per bank, as in a TPML_DIGEST_VALUES. */
struct tpm2_digests {
	unsigned count;
	uint16_t alg[TPM2_MAX_BANKS];
	uint8_t digest[TPM2_MAX_BANKS][TPM2_MAX_DIGEST];
};

size_t tpm2_cmd_startup(uint8_t *buf, size_t cap, uint16_t su);
size_t tpm2_cmd_get_random(uint8_t *buf, size_t cap, uint16_t bytes);
size_t tpm2_cmd_get_pcrs(uint8_t *buf, size_t cap);
/* TPM2_PCR_Extend(pcr) with the empty password (platform auth as a booting platform
 * uses it for PCRs 0..15). */
size_t tpm2_cmd_pcr_extend(uint8_t *buf, size_t cap, uint32_t pcr, const struct tpm2_digests *d);
/* TPM2_HierarchyControl(platform, enable platform = NO): what firmware does before the
 * OS runs, so the guest never holds platform authority. */
size_t tpm2_cmd_disable_platform(uint8_t *buf, size_t cap);
/* TPM2_PCR_Allocate(platform): PCRs 0..23 in the SHA-256 and SHA-384 banks (SHA-1 and
 * SHA-512 none), effective at the next _TPM_Init; and TPM2_Shutdown(su). */
size_t tpm2_cmd_allocate_banks(uint8_t *buf, size_t cap);
size_t tpm2_cmd_shutdown(uint8_t *buf, size_t cap, uint16_t su);
/* The endorsement key: TPM2_CreatePrimary(endorsement) with the TCG EK Credential
 * Profile's template L-2 (ECC NIST P-256, AES-128-CFB, the PolicySecret(endorsement)
 * policy, zero unique), which `tpm2_createek -G ecc` also uses; and from its response the
 * object handle and the public point (x, y: 32 bytes each). 0 or -1. */
size_t tpm2_cmd_create_ek_ecc(uint8_t *buf, size_t cap);
int tpm2_parse_ek_ecc(const uint8_t *rsp, size_t len, uint32_t *handle, uint8_t x[32],
		      uint8_t y[32]);
/* The RSA endorsement key: template L-1 (RSA 2048, exponent 65537 given as 0,
 * AES-128-CFB, the same policy, a 256-byte zero unique): what `tpm2_createek -G rsa`
 * derives; and from its response the handle and the modulus (big-endian). 0 or -1. */
size_t tpm2_cmd_create_ek_rsa(uint8_t *buf, size_t cap);
int tpm2_parse_ek_rsa(const uint8_t *rsp, size_t len, uint32_t *handle,
		      uint8_t n[TPM2_EK_RSA_BYTES]);
size_t tpm2_cmd_flush(uint8_t *buf, size_t cap, uint32_t handle);
size_t tpm2_cmd_nv_read_public(uint8_t *buf, size_t cap, uint32_t index);
/* An NV index of size bytes the platform writes and owner or anyone reads (the EK
 * certificate's attributes: PPWRITE, PPREAD, OWNERREAD, AUTHREAD, NO_DA,
 * PLATFORMCREATE), and one platform write of data at offset. */
size_t tpm2_cmd_nv_define_cert(uint8_t *buf, size_t cap, uint32_t index, uint16_t size);
size_t tpm2_cmd_nv_write(uint8_t *buf, size_t cap, uint32_t index, const uint8_t *data,
			 uint16_t len, uint16_t offset);
/* A bare response with code rc (10 bytes). */
size_t tpm2_rsp_error(uint8_t *buf, size_t cap, uint32_t rc);

/* The response code of a response of len bytes, or TPM2_RC_FAILURE when it is not a
 * well-formed header whose size field equals len. */
uint32_t tpm2_rsp_code(const uint8_t *rsp, size_t len);
/* The size field of a command header, 0 when fewer than 10 bytes. */
uint32_t tpm2_cmd_size(const uint8_t *cmd, size_t len);
/* From a GetCapability(TPM_CAP_PCRS) response: the banks that have at least one PCR
 * selected (allocated), in the TPM's order, only the algorithms tpm2_digest_size knows.
 * 0, or -1 when the response is malformed or an error. */
int tpm2_parse_pcrs(const uint8_t *rsp, size_t len, uint16_t *algs, unsigned *nalgs);

#endif
