/* The VPC card's underlay: one UDP socket per card (IPv4, its own port) carrying the
 * Geneve packets between cards, on one host (loopback) or between hosts.
 *
 * Sends are batched: ul_out() hands out room for UL_MAX_PKT bytes for the next packet,
 * ul_commit() queues it for ADDR:PORT and ul_flush() sends the queue (also done when it is
 * full) with sendmmsg; runs of equal-sized packets to one destination leave as one UDP GSO
 * send (UDP_SEGMENT: the kernel cuts it into the datagrams), sent one by one when the
 * path refuses it. ul_recv() reads with recvmmsg and UDP_GRO (the kernel may hand several
 * datagrams of one sender as one buffer with their size): afterwards ul_nseg datagrams
 * are at ul_seg[i] with their sender. Every datagram keeps its own boundaries either way.
 * A send that fails (peer host unreachable, buffer full) drops that packet and counts it.
 */
#ifndef NITRO_CARDS_VPC_UNDERLAY_H
#define NITRO_CARDS_VPC_UNDERLAY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define UL_BATCH 128	     /* packets queued before a send */
#define UL_MAX_PKT 9600	     /* one datagram (Geneve + inner frame) */
#define UL_ARENA (256 << 10) /* bytes of queued packets before a send */
#define UL_RBUFS 16	     /* receive buffers per recvmmsg */
#define UL_RBUF_SIZE 65536   /* one (GRO-coalesced) receive buffer */
#define UL_GSO_MAX_SEGS 128  /* UDP_MAX_SEGMENTS (64 before Linux 6.10ish: learnt) */
#define UL_GSO_MAX_BYTES 60000
#define UL_DEFAULT_ADDR "127.0.0.1"

struct ul_stats {
	uint64_t st_sent, st_send_errors, st_gso_sends;
	uint64_t st_received, st_truncated, st_gro_buffers, st_gro_overflow;
};

struct ul_seg {
	const uint8_t *sg_data;
	uint32_t sg_len;
	const struct sockaddr_in *sg_src;
};

struct underlay {
	int ul_fd;
	struct sockaddr_in ul_addr; /* bound address (the port filled in when 0 was asked) */
	bool ul_gso, ul_gro;	    /* the kernel accepted UDP_SEGMENT / UDP_GRO */
	unsigned ul_gso_segs;	    /* segments per GSO send this kernel takes */
	unsigned ul_nout;
	uint32_t ul_olen[UL_BATCH];
	struct sockaddr_in ul_odst[UL_BATCH];
	uint32_t ul_ooff[UL_BATCH]; /* where each queued packet is in ul_arena */
	size_t ul_arena_used;
	/* Queued packets back to back (64-byte aligned), so a batch of small ones stays in a
	 * few cache lines: one buffer of UL_MAX_PKT per packet made every copy a miss. */
	uint8_t ul_arena[UL_ARENA] __attribute__((aligned(64)));
	/* receive side */
	struct mmsghdr ul_imsg[UL_RBUFS];
	struct iovec ul_iiov[UL_RBUFS];
	struct sockaddr_in ul_isrc[UL_RBUFS];
	char ul_icmsg[UL_RBUFS][64];
	uint8_t *ul_ibuf; /* UL_RBUFS * UL_RBUF_SIZE */
	unsigned ul_nmsg; /* buffers the last ul_recv filled (< UL_RBUFS: drained) */
	unsigned ul_nseg;
	struct ul_seg ul_seg[UL_RBUFS * UL_GSO_MAX_SEGS];
	struct ul_stats ul_stats;
	char ul_err[160]; /* the last send error, logged once per kind */
};

/* "ADDR" or "ADDR:PORT" (IPv4; port 0 or none: any free port) into *sa. 0, or -1 with err. */
int ul_parse_addr(const char *spec, struct sockaddr_in *sa, char *err, size_t errlen);
int ul_open(struct underlay *u, const char *spec, char *err, size_t errlen);
/* Takes over fd: an IPv4 UDP socket its launcher created and bound (the card then never
 * calls socket(); jailed, it has no network of its own). Checks the family, type and
 * binding, makes it non-blocking and close-on-exec. 0, or -1 with err (fd left open). */
int ul_adopt(struct underlay *u, int fd, char *err, size_t errlen);
void ul_close(struct underlay *u);
uint8_t *ul_out(struct underlay *u);
void ul_commit(struct underlay *u, size_t len, uint32_t ip_be, uint16_t port_be);
void ul_flush(struct underlay *u);
/* Reads what is waiting into ul_seg: the number of datagrams (0 when none), or -1 with
 * errno on an error. */
int ul_recv(struct underlay *u);

#endif
