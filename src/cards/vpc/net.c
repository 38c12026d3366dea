/* The VPC card's virtio-net device: transmit, receive and control queues. */
#include "cards/vpc/net.h"

#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>

#include <linux/virtio_net.h>

#include "lib/le.h"
#include "lib/util.h"

#define BIT(n) (1ull << (n))

#define ETH_HLEN 14

size_t vnet_hdr_len(const struct vnet *n)
{
	uint64_t f = n->vn_dev.vd_features;
	return f & (BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_NET_F_MRG_RXBUF)) ? 12 : 10;
}

static void tx_one(struct vnet *n, unsigned pair, const struct vr_chain *ch)
{
	size_t hl = vnet_hdr_len(n);
	uint8_t hdr[12];
	if (ch->ch_read_bytes < hl + ETH_HLEN) {
		n->vn_stats.st_tx_runt++;
		return;
	}
	uint64_t len = ch->ch_read_bytes - hl;
	if (len > (uint64_t)n->vn_mtu + 18) {
		n->vn_stats.st_tx_oversize++;
		return;
	}
	vr_chain_read(ch, 0, hdr, hl);
	/* Neither checksum offload nor GSO was offered: a header asking for them is bad. */
	if ((hdr[0] & VIRTIO_NET_HDR_F_NEEDS_CSUM) || hdr[1] != VIRTIO_NET_HDR_GSO_NONE) {
		n->vn_stats.st_tx_bad_header++;
		return;
	}
	vr_chain_read(ch, hl, n->vn_buf, len); /* one copy: the guest cannot change it later */
	n->vn_stats.st_tx_packets++;
	n->vn_stats.st_tx_bytes += len;
	if (n->vn_tx)
		n->vn_tx(n, pair, n->vn_buf, (size_t)len);
}

static void tx_serve(struct vnet *n, unsigned q)
{
	struct vu_dev *d = &n->vn_dev;
	struct vu_queue *vq = &d->vd_queues[q];
	unsigned done = 0;
	bool more = true;
	while (more) {
		vr_set_notify(&vq->vq_ring, false);
		for (; done < VNET_TX_BUDGET; done++) {
			struct vr_chain ch = {.ch_segs = n->vn_segs, .ch_max = VNET_MAX_SEGS};
			if (vu_queue_pop(d, q, &ch) <= 0)
				break;
			tx_one(n, q / 2, &ch);
			if (vu_queue_push(d, q, ch.ch_head, 0) < 0)
				break;
		}
		if (done >= VNET_TX_BUDGET) {
			/* Come back after the loop served the others (rx, the underlay). */
			vr_set_notify(&vq->vq_ring, true);
			if (vq->vq_kick >= 0 && eventfd_write(vq->vq_kick, 1) < 0)
				warnmsg("tx queue %u: self-kick: %s", q, strerror(errno));
			break;
		}
		more = vq->vq_started && !vq->vq_failed && vr_set_notify(&vq->vq_ring, true);
	}
	if (done) {
		vu_queue_notify(d, q);
		if (n->vn_tx_done)
			n->vn_tx_done(n);
	}
}

static void ctrl_serve(struct vnet *n, unsigned q)
{
	struct vu_dev *d = &n->vn_dev;
	bool pushed = false;
	for (;;) {
		struct vr_chain ch = {.ch_segs = n->vn_segs, .ch_max = VNET_MAX_SEGS};
		if (vu_queue_pop(d, q, &ch) <= 0)
			break;
		uint8_t cmd[4] = {0}, ack = VIRTIO_NET_ERR;
		if (ch.ch_read_bytes >= 2 && ch.ch_write_bytes >= 1) {
			vr_chain_read(&ch, 0, cmd, ch.ch_read_bytes < 4 ? ch.ch_read_bytes : 4);
			if (cmd[0] == VIRTIO_NET_CTRL_MQ &&
			    cmd[1] == VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET && ch.ch_read_bytes == 4) {
				unsigned p = le16_get(cmd + 2);
				if (p >= 1 && p <= n->vn_pairs) {
					n->vn_active_pairs = p;
					ack = VIRTIO_NET_OK;
				}
			}
		}
		if (ch.ch_write_bytes >= 1)
			vr_chain_write(&ch, 0, &ack, 1);
		if (ack == VIRTIO_NET_OK)
			n->vn_stats.st_ctrl_ok++;
		else
			n->vn_stats.st_ctrl_err++;
		if (vu_queue_push(d, q, ch.ch_head, ch.ch_write_bytes >= 1 ? 1 : 0) < 0)
			break;
		pushed = true;
	}
	if (pushed)
		vu_queue_notify(d, q);
}

static void on_kick(struct vu_dev *d, unsigned q)
{
	struct vnet *n = d->vd_opaque;
	if (q == 2 * n->vn_pairs)
		ctrl_serve(n, q);
	else if (q & 1)
		tx_serve(n, q);
	else if (n->vn_rx_ready)
		n->vn_rx_ready(n);
}

static bool rx_live(const struct vu_queue *vq)
{
	return vq->vq_started && vq->vq_enabled && !vq->vq_failed;
}

int vnet_rx(struct vnet *n, unsigned pair, const uint8_t *frame, size_t len)
{
	struct vu_dev *d = &n->vn_dev;
	unsigned active = n->vn_active_pairs ? n->vn_active_pairs : 1;
	unsigned p = pair % active, q = 2 * p;
	struct vu_queue *vq = &d->vd_queues[q];
	if (!rx_live(vq)) {
		n->vn_stats.st_rx_no_buffer++;
		return -1;
	}
	struct vr_chain ch = {.ch_segs = n->vn_segs, .ch_max = VNET_MAX_SEGS};
	if (vu_queue_pop(d, q, &ch) <= 0) {
		n->vn_stats.st_rx_no_buffer++;
		return -1;
	}
	size_t hl = vnet_hdr_len(n);
	uint32_t written = 0;
	if (ch.ch_write_bytes < hl + len) {
		/* Linux drops a buffer shorter than its header; the guest gets it back. */
		n->vn_stats.st_rx_too_big++;
	} else {
		uint8_t hdr[12] = {0};
		if (hl == 12)
			le16_put(hdr + 10, 1); /* num_buffers */
		vr_chain_write(&ch, 0, hdr, hl);
		vr_chain_write(&ch, hl, frame, len);
		written = (uint32_t)(hl + len);
		n->vn_stats.st_rx_packets++;
		n->vn_stats.st_rx_bytes += len;
	}
	if (vu_queue_push(d, q, ch.ch_head, written) == 0)
		n->vn_rx_dirty |= 1u << p;
	return written ? 0 : -1;
}

void vnet_rx_flush(struct vnet *n)
{
	for (unsigned p = 0; n->vn_rx_dirty && p < n->vn_pairs; p++)
		if (n->vn_rx_dirty & (1u << p)) {
			vu_queue_notify(&n->vn_dev, 2 * p);
			n->vn_rx_dirty &= ~(1u << p);
		}
	n->vn_rx_dirty = 0;
}

bool vnet_rx_room(struct vnet *n)
{
	unsigned active = n->vn_active_pairs ? n->vn_active_pairs : 1;
	for (unsigned p = 0; p < active && p < n->vn_pairs; p++) {
		struct vu_queue *vq = &n->vn_dev.vd_queues[2 * p];
		if (rx_live(vq) && vr_pending(&vq->vq_ring))
			return true;
	}
	return false;
}

static int config_read(struct vu_dev *d, uint32_t off, void *buf, uint32_t len)
{
	struct vnet *n = d->vd_opaque;
	uint8_t c[VNET_CONFIG_SIZE] = {0};
	if (off > sizeof(c) || len > sizeof(c) - off)
		return -EINVAL;
	memcpy(c, n->vn_mac, 6);
	le16_put(c + 6, VIRTIO_NET_S_LINK_UP);
	le16_put(c + 8, (uint16_t)n->vn_pairs);
	le16_put(c + 10, n->vn_mtu);
	memcpy(buf, c + off, len);
	return 0;
}

static void on_queue_stop(struct vu_dev *d, unsigned q)
{
	struct vnet *n = d->vd_opaque;
	if (q == 0) /* a reset or a new driver: back to one pair until it says otherwise */
		n->vn_active_pairs = 1;
}

int vnet_init(struct vnet *n, struct loop *l, const uint8_t mac[6], unsigned mtu, unsigned pairs,
	      char *err, size_t errlen)
{
	if (pairs < 1 || pairs > VNET_MAX_PAIRS)
		RETURN_ERR(-EINVAL, "%u queue pairs (1..%d)", pairs, VNET_MAX_PAIRS);
	if (mtu < 68 || mtu > VNET_MAX_MTU)
		RETURN_ERR(-EINVAL, "MTU %u (68..%d)", mtu, VNET_MAX_MTU);
	memset(n, 0, sizeof(*n));
	n->vn_loop = l;
	memcpy(n->vn_mac, mac, 6);
	n->vn_mtu = (uint16_t)mtu;
	n->vn_pairs = pairs;
	n->vn_active_pairs = 1;
	n->vn_ops = (struct vu_ops){
	    .vo_features = BIT(VIRTIO_NET_F_MTU) | BIT(VIRTIO_NET_F_MAC) |
			   BIT(VIRTIO_NET_F_STATUS) | BIT(VIRTIO_NET_F_CTRL_VQ) |
			   BIT(VIRTIO_NET_F_MQ),
	    .vo_num_queues = 2 * pairs + 1,
	    .vo_config_size = VNET_CONFIG_SIZE,
	    .vo_config_read = config_read,
	    .vo_queue_kick = on_kick,
	    .vo_queue_stop = on_queue_stop,
	};
	return vu_dev_init(&n->vn_dev, &n->vn_ops, n, l, err, errlen);
}

void vnet_fini(struct vnet *n)
{
	if (n->vn_dev.vd_ops)
		vu_dev_fini(&n->vn_dev);
}
