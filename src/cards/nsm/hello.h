/* The first message of an enclave's connection to nitro-card-nsm: ENW_HELLO
 * (src/lib/enclave_wire.h), read before any vhost-user request.
 *
 * nsm_hello_check() is pure over the bytes received (hostile: a compromised enclave
 * nitro-hv may send anything): the header must be request ENW_HELLO, vhost-user version 1,
 * not a reply, payload exactly sizeof(struct enw_hello); the payload version ENW_VERSION,
 * no flag but ENW_FLAG_DEBUG, a CID that is an enclave's (not 0, 1, 2, 3 = the parent,
 * U32_MAX, nor above 32 bits) and a module id that is NUL-terminated, non-empty and
 * printable ASCII. The caller checks that the CID is not taken on this card.
 */
#ifndef NITRO_CARDS_NSM_HELLO_H
#define NITRO_CARDS_NSM_HELLO_H

#include <stddef.h>
#include <stdint.h>

#include "lib/enclave_wire.h"
#include "lib/vu_wire.h"

#define NSM_HELLO_TIMEOUT_MS 2000 /* a connection that does not send its hello by then goes */

/* 0 when (h, payload of h->size bytes) is an acceptable hello, else the errno value the
 * card answers with: EPROTO (not a hello, wrong framing or version), EINVAL (flags, CID or
 * module id). */
int nsm_hello_check(const struct vu_wire_hdr *h, const struct enw_hello *payload);

/* Reads the hello from the blocking socket fd (waiting at most NSM_HELLO_TIMEOUT_MS per
 * piece) into *out and checks it. Returns 0, an errno value to answer with, or -1 when the
 * stream is unusable (end of file, truncated, oversized, fds attached): close without
 * answer. */
int nsm_hello_read(int fd, struct enw_hello *out);

/* Answers a hello with status (0 accepted, else an errno value). 0, or -1. */
int nsm_hello_reply(int fd, uint64_t status);

#endif
