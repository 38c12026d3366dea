/* The first message of an enclave's connection to nitro-card-nsm: ENW_HELLO
 * (src/lib/enclave_wire.h), read before any vhost-user request, with the shared framing
 * and checks of src/lib/enclave_wire.c (enw_hello_recv, enw_hello_check: request
 * ENW_HELLO of exactly sizeof(struct enw_hello) bytes without fds, version, no flag but
 * ENW_FLAG_DEBUG, an enclave's CID, a NUL in the module id, zeros where the EIF's PCRs
 * go: they come next, by ENW_PCRS, main.c). The parent's enclave spawner sends it.
 *
 * nsm_hello_check() adds what the NSM card needs (hostile input: any peer that reaches the
 * socket may send anything): the module id, which becomes the leaf certificate's common
 * name, non-empty printable ASCII. The caller checks that the CID is not taken on this
 * card.
 */
#ifndef NITRO_CARDS_NSM_HELLO_H
#define NITRO_CARDS_NSM_HELLO_H

#include <stddef.h>
#include <stdint.h>

#include "lib/enclave_wire.h"
#include "lib/vu_wire.h"

#define NSM_HELLO_TIMEOUT_MS 2000 /* a connection that does not send its hello by then goes */

/* 0 when p is an acceptable hello, else the errno value the card answers with:
 * EPROTONOSUPPORT (version), EINVAL (flags, CID or module id). */
int nsm_hello_check(const struct enw_hello *p);

/* Reads the hello from the blocking socket fd (waiting at most NSM_HELLO_TIMEOUT_MS per
 * piece) into *out and checks it. Returns 0, an errno value to answer with (EPROTO: another
 * message, or one of another size), or -1 when the stream is unusable (end of file,
 * truncated, fds attached, a stall): close without answer. */
int nsm_hello_read(int fd, struct enw_hello *out);

/* Answers a hello with status (0 accepted, else an errno value). 0, or -1. */
int nsm_hello_reply(int fd, uint64_t status);

#endif
