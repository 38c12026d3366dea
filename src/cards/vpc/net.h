/* The VPC card's virtio-net device over vhost-user, single-threaded on the card's loop.
 *
 * Queues: N pairs (rx 2p, tx 2p+1) and a control queue (2N) that answers
 * VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET; MQ, CTRL_VQ, MAC, MTU, STATUS and MRG_RXBUF are
 * offered, no offloads (the guest sends complete frames with checksums). Config space:
 * mac, status (link up), max_virtqueue_pairs, mtu.
 *
 * Transmit: each chain the guest makes available on a tx queue is copied once out of
 * guest memory (so the guest cannot change a frame after it was checked), its
 * virtio_net_hdr (12 bytes with VERSION_1 or MRG_RXBUF, else 10) is checked (no GSO, no
 * checksum offload: those were not negotiated) and the frame handed to vn_tx; runts and
 * frames longer than mtu + 18 are dropped and counted. vn_tx_done follows every batch.
 * Receive: vnet_rx() writes a frame into the next chain(s) of a pair's rx queue; no
 * buffer means the frame is dropped and counted. vn_rx_ready runs when the guest adds rx
 * buffers (a kick). A malformed chain fails that queue (the library's NEEDS_RESET path).
 */
#ifndef NITRO_CARDS_VPC_NET_H
#define NITRO_CARDS_VPC_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cards/lib/loop.h"
#include "cards/lib/vhost_user.h"

#define VNET_MAX_PAIRS 8
#define VNET_CONFIG_SIZE 12
#define VNET_MAX_MTU 9216
#define VNET_MAX_FRAME (VNET_MAX_MTU + 18) /* Ethernet header + one VLAN tag */
#define VNET_TX_BUDGET 256		   /* chains per kick before yielding to the loop */
#define VNET_MAX_SEGS 64

struct vnet_stats {
	uint64_t st_tx_packets, st_tx_bytes;
	uint64_t st_tx_bad_header, st_tx_runt, st_tx_oversize;
	uint64_t st_rx_packets, st_rx_bytes;
	uint64_t st_rx_no_buffer, st_rx_too_big;
	uint64_t st_ctrl_ok, st_ctrl_err;
};

struct vnet;
/* A frame the guest sent on pair p: len bytes, valid during the call. */
typedef void vnet_tx_fn(struct vnet *n, unsigned pair, const uint8_t *frame, size_t len);
typedef void vnet_event_fn(struct vnet *n);

struct vnet {
	struct vu_dev vn_dev;
	struct vu_ops vn_ops;
	struct loop *vn_loop;
	uint8_t vn_mac[6];
	uint16_t vn_mtu;
	unsigned vn_pairs;	  /* offered */
	unsigned vn_active_pairs; /* set by the driver (1 until VQ_PAIRS_SET) */
	vnet_tx_fn *vn_tx;
	vnet_event_fn *vn_tx_done;  /* after each batch of vn_tx calls (flush sends) */
	vnet_event_fn *vn_rx_ready; /* the guest posted receive buffers */
	void *vn_opaque;
	uint32_t vn_rx_dirty; /* rx queues (bit per pair) to notify at vnet_rx_flush */
	struct vr_seg vn_segs[VNET_MAX_SEGS];
	uint8_t vn_buf[VNET_MAX_FRAME + 16];
	struct vnet_stats vn_stats;
};

int vnet_init(struct vnet *n, struct loop *l, const uint8_t mac[6], unsigned mtu, unsigned pairs,
	      char *err, size_t errlen);
void vnet_fini(struct vnet *n);
/* Bytes of virtio_net_hdr under the negotiated features. */
size_t vnet_hdr_len(const struct vnet *n);
/* Writes frame into pair's rx queue (pair is taken modulo the active pairs). 0, or -1 when
 * it was dropped (no buffer, queue not running; counted). Call vnet_rx_flush() after a
 * batch to interrupt the guest. */
int vnet_rx(struct vnet *n, unsigned pair, const uint8_t *frame, size_t len);
void vnet_rx_flush(struct vnet *n);
/* Whether any active rx queue has a buffer available now. */
bool vnet_rx_room(struct vnet *n);

#endif
