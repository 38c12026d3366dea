/* The protocol between nitro-hv and nitro-card-tpm (docs/tpm.md).
 *
 * A Unix SOCK_SEQPACKET connection (the card listens, nitro-hv connects) carrying fixed
 * 16-byte messages, plus one shared memfd of TPM_PROTO_BUF bytes: the CRB command and
 * response buffer, which nitro-hv also maps into the guest as a KVM memory slot. The
 * guest writes a command there; nitro-hv sends CMD with its length; the card copies the
 * command out of the shared page (the guest may change it at any time), runs it and
 * writes the response back, then answers RSP with the response's length.
 *
 *   HELLO  hv -> card, SCM_RIGHTS: the memfd; len = its size. Reply: HELLO, len = size.
 *   INIT   hv -> card: TPM power-on (_TPM_Init): volatile state dropped, NV reloaded.
 *          len TPM_INIT_RESUME (a hypervisor reconnecting after the card died): the card
 *          restores the volatile state it saved after the last command that changed it
 *          (PCRs, loaded objects, sessions), when it has one; the TPM is then already
 *          started (TPM2_Startup answers TPM_RC_INITIALIZE).
 *   CMD    hv -> card: len = command length at offset 0 of the buffer.
 *   XCMD   hv -> card: the command (len bytes) follows the header in the same message,
 *          and so does the response in the reply: nitro-hv's own commands (start-up,
 *          measurements), which the guest must not be able to change in the shared page.
 *   every reply: type | TPM_PROTO_REPLY, status 0 or an errno value, len as above.
 *
 * One request in flight at a time; a reply always answers the last request.
 * tpm_msg_decode() takes hostile bytes: anything but exactly one well-formed message of
 * this version (magic, version, a known type, len within the buffer) is -EPROTO.
 * Pure functions, thread-safe.
 */
#ifndef NITRO_TPM_PROTO_H
#define NITRO_TPM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define TPM_PROTO_MAGIC 0x4d50544eu /* "NTPM" little-endian */
#define TPM_PROTO_VERSION 1
#define TPM_PROTO_BUF 4096 /* the CRB buffer: one page, TPM2's largest command */
#define TPM_PROTO_MSG 16
#define TPM_PROTO_REPLY 0x80

#define TPM_INIT_POWER_ON 0
#define TPM_INIT_RESUME 1

enum tpm_msg_type {
	TPM_MSG_HELLO = 1,
	TPM_MSG_INIT = 2,
	TPM_MSG_CMD = 3,
	TPM_MSG_XCMD = 4,
};

struct tpm_msg {
	uint16_t type; /* enum tpm_msg_type, | TPM_PROTO_REPLY for replies */
	uint32_t len;
	uint32_t status;
};

void tpm_msg_encode(uint8_t out[TPM_PROTO_MSG], const struct tpm_msg *m);
/* 0, or -EPROTO. n is the whole message: TPM_PROTO_MSG, plus len for XCMD and its reply. */
int tpm_msg_decode(const uint8_t *buf, size_t n, struct tpm_msg *m);

#endif
