/* The VPC card's underlay: one UDP socket per card (IPv4, its own port) carrying the
 * Geneve packets between cards, on one host (loopback) or between hosts.
 *
 * Sends are batched: ul_out() hands out a buffer of UL_MAX_PKT bytes for the next packet,
 * ul_commit() queues it for ADDR:PORT and ul_flush() sends the queue with sendmmsg (also
 * done when the queue is full). ul_recv() reads up to UL_BATCH datagrams with recvmmsg;
 * each is then at ul_in[i] (ul_in_len[i] bytes, truncated ones flagged) with its sender.
 * A send that fails (peer host unreachable, buffer full) drops that packet and counts it.
 */
#ifndef NITRO_CARDS_VPC_UNDERLAY_H
#define NITRO_CARDS_VPC_UNDERLAY_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define UL_BATCH 32
#define UL_MAX_PKT 9600
#define UL_DEFAULT_ADDR "127.0.0.1"

struct ul_stats {
	uint64_t st_sent, st_send_errors;
	uint64_t st_received, st_truncated;
};

struct underlay {
	int ul_fd;
	struct sockaddr_in ul_addr; /* bound address (the port filled in when 0 was asked) */
	unsigned ul_nout;
	struct mmsghdr ul_omsg[UL_BATCH];
	struct iovec ul_oiov[UL_BATCH];
	struct sockaddr_in ul_odst[UL_BATCH];
	uint8_t ul_obuf[UL_BATCH][UL_MAX_PKT];
	struct mmsghdr ul_imsg[UL_BATCH];
	struct iovec ul_iiov[UL_BATCH];
	struct sockaddr_in ul_isrc[UL_BATCH];
	uint8_t ul_ibuf[UL_BATCH][UL_MAX_PKT];
	struct ul_stats ul_stats;
	char ul_err[160]; /* the last send error, logged once per kind */
};

/* "ADDR" or "ADDR:PORT" (IPv4; port 0 or none: any free port) into *sa. 0, or -1 with err. */
int ul_parse_addr(const char *spec, struct sockaddr_in *sa, char *err, size_t errlen);
int ul_open(struct underlay *u, const char *spec, char *err, size_t errlen);
void ul_close(struct underlay *u);
uint8_t *ul_out(struct underlay *u);
void ul_commit(struct underlay *u, size_t len, uint32_t ip_be, uint16_t port_be);
void ul_flush(struct underlay *u);
/* Reads what is waiting: the number of datagrams (0 when none), or -1 on an error. */
int ul_recv(struct underlay *u);
static inline const uint8_t *ul_in(const struct underlay *u, unsigned i)
{
	return u->ul_ibuf[i];
}
static inline size_t ul_in_len(const struct underlay *u, unsigned i)
{
	return u->ul_imsg[i].msg_len;
}
static inline bool ul_in_truncated(const struct underlay *u, unsigned i)
{
	return u->ul_imsg[i].msg_hdr.msg_flags & MSG_TRUNC;
}

#endif
