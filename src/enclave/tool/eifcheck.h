/* nitro-enclave's early look at an EIF before it takes any resource: magic, version,
 * section count and CRC (the enclave VM parses the image in full at START and refuses
 * anything else; this check only turns the common mistakes into a clear message first).
 *
 * Contract: pure, thread-safe; buf is the user's file (hostile), never read outside
 * [buf, buf+len). */
#ifndef NITRO_ENCLAVE_TOOL_EIFCHECK_H
#define NITRO_ENCLAVE_TOOL_EIFCHECK_H

#include <stddef.h>
#include <stdint.h>

/* 0, or -1 with a one-line reason in err. */
int net_eif_check(const uint8_t *buf, size_t len, char *err, size_t errlen);

#endif
