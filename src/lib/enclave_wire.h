/* Which enclave a card connection belongs to, and its measured boot PCRs. nitro-card-vsock
 * and nitro-card-nsm serve several VMs each (the parent and every enclave it starts). Each
 * enclave-side connection is opened by the parent's enclave spawner (trusted: part of the
 * parent's nitro-hv, src/hv/enclave_spawn.c), which sends one ENW_HELLO with the identity
 * it knows from the NE device's START (CID, slot, flags, module id, PCR4), waits for the
 * answer and only then hands the connected fd to the enclave's nitro-hv; that process
 * has no socket() or connect() (seccomp list "hv-enclave"), so it cannot open another
 * connection or claim another CID. On its NSM connection the enclave's nitro-hv then sends
 * one ENW_PCRS with the PCRs it measured from the EIF (PCR0, 1, 2, 8), which only it
 * knows; the NSM card takes it once, before any vhost-user request, and never the CID
 * from it. Both are framed by src/lib/vu_wire.h (12-byte header, the request, the
 * payload, no fds); the card answers each with a reply (VU_FLAG_REPLY) whose payload is a
 * u64 status: 0 accepted, else an errno value, after which it closes the connection.
 * Anything else in their place (a second hello, a second ENW_PCRS: not vhost-user
 * requests) ends the connection.
 *
 * Hostile input: the cards check version, size, flags, a CID not already taken on this
 * card and not reserved (0, 1, 2, 3 = the parent, U32_MAX, above 32 bits), NUL-terminated
 * ids, zeros in the hello where the EIF's PCRs belong. The ENW_PCRS a compromised enclave
 * nitro-hv sends may lie about its own image (the same trust AWS places in its
 * hypervisor, docs/enclaves.md "Identity"); it cannot name another enclave. Each parent
 * instance has its own card processes and sockets (docs/enclaves.md).
 * Version 2 (version 1 had the PCRs in the hello, sent by the enclave's nitro-hv itself).
 * Little-endian on the wire (x86-64 only), no padding: the layout is fixed below.
 */
#ifndef NITRO_LIB_ENCLAVE_WIRE_H
#define NITRO_LIB_ENCLAVE_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENW_VERSION 2
#define ENW_HELLO 0x4e45 /* "NE": outside vhost-user's and nvme_wire's request numbers */
#define ENW_PCRS 0x4e46
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
	/* Boot PCRs 0..15 the parent side knows: PCR4 = SHA-384(48 zeros || parent instance
	 * id); zero elsewhere. PCR0, 1, 2 and 8 must be zero here: they come by ENW_PCRS. */
	uint8_t pcr[ENW_BOOT_PCRS][ENW_PCR_LEN];
	char module_id[ENW_ID_LEN]; /* "i-<17 hex>-enc<16 hex>", NUL-padded */
};

_Static_assert(sizeof(struct enw_hello) == 4 + 4 + 8 + 8 + 16 * 48 + 64, "enw_hello layout");
_Static_assert(sizeof(struct enw_hello) == 856, "ENW_HELLO_MSG_LEN");

/* The PCRs measured from the EIF, in this order in enw_pcrs.pcr. */
#define ENW_EIF_PCRS 4
#define ENW_EIF_PCR_INDEX                                                                          \
	{                                                                                          \
		0, 1, 2, 8                                                                         \
	}

struct enw_pcrs {
	uint32_t version; /* ENW_VERSION */
	uint32_t flags;	  /* 0 */
	/* PCR0, PCR1, PCR2 and PCR8 (zero for an unsigned image); the card reports PCR0-2 as
	 * zeros for a debug-mode enclave (the hello's flag) whatever comes here. */
	uint8_t pcr[ENW_EIF_PCRS][ENW_PCR_LEN];
};

_Static_assert(sizeof(struct enw_pcrs) == 4 + 4 + 4 * 48, "enw_pcrs layout");

/* enclave_wire.c: the hello's checks and framing, shared by the cards and nitro-hv. */

/* The checks every card makes (except "not already taken", which is the card's):
 * version, flags, CID (not 0..3, not U32_MAX or above), a NUL in module_id, PCR0-2 and 8
 * zero. 0, or the errno value to answer with (EPROTONOSUPPORT, EINVAL). */
int enw_hello_check(const struct enw_hello *h);
/* ENW_PCRS's checks: version, flags 0. 0, EPROTONOSUPPORT or EINVAL. */
int enw_pcrs_check(const struct enw_pcrs *p);
/* The hello as it travels: vhost-user header and struct enw_hello. */
#define ENW_HELLO_MSG_LEN (12 + 856)
/* Card side, for a reader that takes the hello's bytes as they arrive: buf holds the first
 * got bytes of the connection (got <= ENW_HELLO_MSG_LEN). Returns how many more bytes the
 * hello needs (> 0), 0 when it is complete (*h filled when h is not NULL; not yet checked
 * with enw_hello_check), or -EPROTO as soon as the header shows another message (request,
 * size, version or the reply flag). Pure: hostile bytes. */
int enw_hello_parse(const uint8_t *buf, size_t got, struct enw_hello *h);
/* The same for ENW_PCRS (ENW_PCRS_MSG_LEN bytes), the NSM card's second message. */
#define ENW_PCRS_MSG_LEN (12 + 200)
int enw_pcrs_parse(const uint8_t *buf, size_t got, struct enw_pcrs *p);
/* Card side: reads the first message of a connection, which must be one ENW_HELLO of
 * exactly sizeof(struct enw_hello) bytes without fds (waiting at most timeout_ms for each
 * piece). 0 with *h filled (not yet checked), or a negative errno value (-EPROTO for
 * another message). */
int enw_hello_recv(int fd, struct enw_hello *h, int timeout_ms);
/* Card side: the reply to a hello (status 0: accepted; else the errno value; close after
 * it); enw_pcrs_reply the same for ENW_PCRS. */
int enw_hello_reply(int fd, uint64_t status);
int enw_pcrs_reply(int fd, uint64_t status);
/* Spawner side (and nitro-hv --enclave-hello in tests): sends h and waits for the reply.
 * 0 when accepted, the card's errno value (positive) when refused, or a negative errno
 * value when the exchange failed. */
int enw_hello_send(int fd, const struct enw_hello *h, int timeout_ms);
/* The enclave's nitro-hv side, on its NSM connection after the hello: the same for p. */
int enw_pcrs_send(int fd, const struct enw_pcrs *p, int timeout_ms);

#endif
