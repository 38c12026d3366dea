/* The requesting side of the protocol in proto.h: what nitro-hv and `nitro run` (EK
 * provisioning) use to talk to nitro-card-tpm. Blocking calls on a connected
 * SOCK_SEQPACKET socket; no state of its own (thread-safe per socket, one request at a
 * time). A reply that does not decode is an error.
 */
#ifndef NITRO_TPM_CLIENT_H
#define NITRO_TPM_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "tpm/proto.h"

#define TPM_CLIENT_TIMEOUT_MS 60000 /* a card's answer to a request */

/* A connected socket to the card at path, or -1 (errno set). */
int tpm_client_connect(const char *path);
/* Sends one request (payload: len bytes inline, for XCMD; fd >= 0: passed along). */
int tpm_client_send(int sock, uint16_t type, uint32_t len, const void *payload, int fd);
/* Receives one reply within timeout_ms; an XCMD reply's response goes to payload
 * (TPM_PROTO_BUF bytes). 0 or -1. */
int tpm_client_recv(int sock, struct tpm_msg *m, uint8_t *payload, int timeout_ms);
/* Request and its reply (of the same type). 0 or -1. */
int tpm_client_call(int sock, uint16_t type, uint32_t len, const void *payload, int fd,
		    struct tpm_msg *rep, uint8_t *rpayload);
/* A TPM command carried inside the message (XCMD); the TPM's response code, or
 * TPM2_RC_FAILURE when the card failed. rsp: TPM_PROTO_BUF bytes. */
uint32_t tpm_client_xcmd(int sock, const uint8_t *cmd, size_t len, uint8_t *rsp, size_t *rlen);
/* HELLO with memfd (a sealed TPM_PROTO_BUF-byte memfd) and INIT (init: TPM_INIT_POWER_ON
 * or TPM_INIT_RESUME); 0 or -1. */
int tpm_client_hello_init(int sock, int memfd, uint32_t init);

#endif
