/* Which enclave a card connection belongs to. nitro-card-vsock and nitro-card-nsm serve
 * several VMs each (the parent and every enclave it starts); an enclave's nitro-hv opens
 * its connection to such a card with one ENW_HELLO message, framed by src/lib/vu_wire.h
 * (12-byte header, request ENW_HELLO, payload struct enw_hello, no fds), before any
 * vhost-user request. The card answers with a reply (VU_FLAG_REPLY) whose payload is a
 * u64 status: 0 accepted, else an errno value, after which it closes the connection.
 *
 * Hostile input: the card checks version, size, flags, a CID not already taken on this
 * card and not reserved (0, 1, 2, 3 = the parent, U32_MAX, above 32 bits), NUL-terminated
 * ids. A lying enclave nitro-hv reaches only its own parent's cards: each parent instance
 * has its own card processes and sockets (docs/enclaves.md).
 * Little-endian on the wire (x86-64 only), no padding: the layout is fixed below.
 */
#ifndef NITRO_LIB_ENCLAVE_WIRE_H
#define NITRO_LIB_ENCLAVE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENW_VERSION 1
#define ENW_HELLO 0x4e45 /* "NE": outside vhost-user's and nvme_wire's request numbers */
#define ENW_FLAG_DEBUG 1u
/* Only to nitro-card-vsock, with ENW_FLAG_DEBUG: this connection is the debug enclave's
 * console feed (raw serial output after the reply), not a device; the card accepts it only
 * beside the device connection of that CID with the same hello and peer (docs/enclaves.md
 * "Debug console"). enw_hello_check refuses it: the other cards have no console. */
#define ENW_FLAG_CONSOLE 2u
#define ENW_BOOT_PCRS 16
#define ENW_PCR_LEN 48
#define ENW_ID_LEN 64

struct enw_hello {
	uint32_t version; /* ENW_VERSION */
	uint32_t flags;	  /* ENW_FLAG_DEBUG for a debug-mode enclave; ENW_FLAG_CONSOLE */
	uint64_t cid;	  /* the enclave's vsock CID */
	uint64_t slot_uid;
	/* Boot PCRs 0..15 as the enclave's nitro-hv computed them from the EIF (PCR0-2, 8)
	 * and the parent (PCR4); zero where unused; PCR0-2 zero in debug mode, like AWS. */
	uint8_t pcr[ENW_BOOT_PCRS][ENW_PCR_LEN];
	char module_id[ENW_ID_LEN]; /* "i-<17 hex>-enc<16 hex>", NUL-padded */
};

_Static_assert(sizeof(struct enw_hello) == 4 + 4 + 8 + 8 + 16 * 48 + 64, "enw_hello layout");
_Static_assert(sizeof(struct enw_hello) == 856, "ENW_HELLO_MSG_LEN");

/* enclave_wire.c: the hello's checks and framing, shared by the cards and nitro-hv. */

/* The checks every card makes (except "not already taken", which is the card's):
 * version, flags, CID (not 0..3, not U32_MAX or above), a NUL in module_id.
 * 0, or the errno value to answer with (EPROTONOSUPPORT, EINVAL). */
int enw_hello_check(const struct enw_hello *h);
/* The hello as it travels: vhost-user header and struct enw_hello. */
#define ENW_HELLO_MSG_LEN (12 + 856)
/* Card side, for a reader that takes the hello's bytes as they arrive: buf holds the first
 * got bytes of the connection (got <= ENW_HELLO_MSG_LEN). Returns how many more bytes the
 * hello needs (> 0), 0 when it is complete (*h filled when h is not NULL; not yet checked
 * with enw_hello_check), or -EPROTO as soon as the header shows another message (request,
 * size, version or the reply flag). Pure: hostile bytes. */
int enw_hello_parse(const uint8_t *buf, size_t got, struct enw_hello *h);
/* Card side: reads the first message of a connection, which must be one ENW_HELLO of
 * exactly sizeof(struct enw_hello) bytes without fds (waiting at most timeout_ms for each
 * piece). 0 with *h filled (not yet checked), or a negative errno value (-EPROTO for
 * another message). */
int enw_hello_recv(int fd, struct enw_hello *h, int timeout_ms);
/* Card side: the reply (status 0: accepted; else the errno value; close after it). */
int enw_hello_reply(int fd, uint64_t status);
/* nitro-hv side: sends h and waits for the reply. 0 when accepted, the card's errno value
 * (positive) when refused, or a negative errno value when the exchange failed. */
int enw_hello_send(int fd, const struct enw_hello *h, int timeout_ms);

#endif
