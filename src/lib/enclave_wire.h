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

#include <stdint.h>

#define ENW_VERSION 1
#define ENW_HELLO 0x4e45 /* "NE": outside vhost-user's and nvme_wire's request numbers */
#define ENW_FLAG_DEBUG 1u
#define ENW_BOOT_PCRS 16
#define ENW_PCR_LEN 48
#define ENW_ID_LEN 64

struct enw_hello {
	uint32_t version; /* ENW_VERSION */
	uint32_t flags;	  /* ENW_FLAG_DEBUG for a debug-mode enclave */
	uint64_t cid;	  /* the enclave's vsock CID */
	uint64_t slot_uid;
	/* Boot PCRs 0..15 as the enclave's nitro-hv computed them from the EIF (PCR0-2, 8)
	 * and the parent (PCR4); zero where unused; PCR0-2 zero in debug mode, like AWS. */
	uint8_t pcr[ENW_BOOT_PCRS][ENW_PCR_LEN];
	char module_id[ENW_ID_LEN]; /* "i-<17 hex>-enc<16 hex>", NUL-padded */
};

_Static_assert(sizeof(struct enw_hello) == 4 + 4 + 8 + 8 + 16 * 48 + 64, "enw_hello layout");

#endif
