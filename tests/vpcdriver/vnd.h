/* vpc-driver: a virtio-net driver in a test process (the "guest"), on the vhost-user
 * frontend of tests/driver/vu_front.
 *
 * One queue pair (rx 0, tx 1) of VND_QSIZE entries with one descriptor per buffer: tx
 * buffers hold the virtio_net_hdr (12 bytes: VERSION_1) and a frame, rx buffers
 * VND_RXBUF bytes. Everything the device wrote (used ring entries, lengths, headers) is
 * checked before use; a device that hands back an unknown id or a length past the buffer
 * is reported as an error. No interrupts are needed: the used rings are polled, with the
 * call eventfd used only to sleep.
 */
#ifndef NITRO_TESTS_VPCDRIVER_VND_H
#define NITRO_TESTS_VPCDRIVER_VND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_net.h>

#include "../driver/vu_front.h"

#define VND_QSIZE 256
#define VND_HDR 12
#define VND_RXBUF 10240
#define VND_TXBUF 10240

/* <linux/virtio_net.h>'s feature bit numbers and control commands, by short names. */
#define VNET_F_MTU VIRTIO_NET_F_MTU
#define VNET_F_MAC VIRTIO_NET_F_MAC
#define VNET_F_STATUS VIRTIO_NET_F_STATUS
#define VNET_F_CTRL_VQ VIRTIO_NET_F_CTRL_VQ
#define VNET_F_MQ VIRTIO_NET_F_MQ
#define VNET_CTRL_MQ VIRTIO_NET_CTRL_MQ
#define VNET_CTRL_MQ_VQ_PAIRS_SET VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET

struct vnd_ring {
	unsigned r_idx; /* queue index */
	uint64_t r_desc_gpa, r_avail_gpa, r_used_gpa, r_buf_gpa;
	uint8_t *r_desc, *r_avail, *r_used, *r_buf;
	uint32_t r_bufsz;
	uint16_t r_avail_idx; /* next avail index to publish */
	uint16_t r_used_seen; /* used entries consumed */
	uint16_t r_free[VND_QSIZE];
	unsigned r_nfree;
	struct vu_vring r_vr;
};

#define VND_MAX_PAIRS 4

struct vnd {
	struct vu_front d_f;
	unsigned d_npairs;
	struct vnd_ring d_rxs[VND_MAX_PAIRS], d_txs[VND_MAX_PAIRS];
	struct vnd_ring *d_rx, *d_tx; /* pair 0 */
	struct vnd_ring d_ctrl;	      /* with pairs > 1: 2-descriptor command chains */
	bool d_config;		      /* d_mac.. valid */
	uint8_t d_mac[6];
	uint16_t d_status, d_pairs, d_mtu;
	uint64_t d_kicks;
};

/* Connects to the card at path, negotiates (config false: no GET_CONFIG, e.g. for
 * dpdk-testpmd) and starts pairs queue pairs (rx 2p, tx 2p+1) with every rx buffer
 * posted; with more than one pair also MQ, CTRL_VQ and the control queue (2 * pairs). */
int vnd_open(struct vnd *d, const char *path, bool config, unsigned pairs, char *err,
	     size_t errlen);
/* Sends a control command (class, command, data) and waits for the device's ack byte:
 * 0 with *ack, or -1 with err. */
int vnd_ctrl(struct vnd *d, uint8_t cls, uint8_t cmd, const uint8_t *data, size_t len, uint8_t *ack,
	     char *err, size_t errlen);
void vnd_close(struct vnd *d);
/* Queues up to n frames (each len bytes at frames + i * stride) on tx without kicking;
 * returns how many fit. */
unsigned vnd_tx_add(struct vnd *d, const uint8_t *frames, size_t len, size_t stride, unsigned n);
unsigned vnd_tx_addq(struct vnd *d, unsigned pair, const uint8_t *frames, size_t len, size_t stride,
		     unsigned n);
/* Publishes what was added and kicks when the device asks for kicks. */
void vnd_tx_kick(struct vnd *d);
void vnd_tx_kickq(struct vnd *d, unsigned pair);
/* Takes back completed tx buffers (every pair): how many, or -1 on a device error. */
int vnd_tx_reap(struct vnd *d, char *err, size_t errlen);
/* Calls fn for each received frame (without its header; every pair, with its number) and
 * re-posts the buffers; returns how many, or -1 on a device error. fn may be NULL
 * (counting only); *bytes adds up the frame lengths when not NULL. */
typedef void vnd_rx_fn(unsigned pair, const uint8_t *f, size_t len, void *arg);
int vnd_rx_poll(struct vnd *d, vnd_rx_fn *fn, void *arg, uint64_t *bytes, char *err, size_t errlen);
/* Waits up to ms for the device to signal queue q's call eventfd (1), or not (0). */
int vnd_wait(struct vnd *d, bool rx, int ms);

#endif
