/* A debug-mode enclave's console feed to the vsock card (docs/enclaves.md "Debug console"):
 * the enclave's serial output goes to the card as well as to the host's log, and the card
 * serves it to the parent at vsock CID 0, port CID + 10000 (src/cards/vsock/console.h).
 *
 * One more connection to the card's enclave socket, opened after the vsock device's own
 * (the card accepts a feed only beside the attached device of the same CID, with the same
 * hello, from the same peer), with the device's ENW_HELLO plus ENW_FLAG_CONSOLE; after the
 * card's reply the connection carries raw console bytes, enclave to card only. All of it is
 * here, so that whoever opens the enclave's card connections (nitro-hv today, the spawner
 * later) calls this one function and hands the fd on.
 */
#ifndef NITRO_HV_ENCLAVE_CONSOLE_H
#define NITRO_HV_ENCLAVE_CONSOLE_H

#include <stddef.h>

#include "lib/enclave_wire.h"

/* Connects to the vsock card's enclave socket path and opens the feed with hello (which
 * must carry ENW_FLAG_DEBUG; ENW_FLAG_CONSOLE is added). Returns the connection,
 * non-blocking and close-on-exec: a write the card has no room for fails with EAGAIN and
 * that output is dropped (serial.c), so a card that does not read never stalls a vCPU.
 * -1 with a message in err when the card is not there or refuses. */
int enclave_console_connect(const char *path, const struct enw_hello *hello, char *err,
			    size_t errlen);

#endif
