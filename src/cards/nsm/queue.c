/* The NSM virtqueue: chains in, nsm_handle() answers out (queue.h). */
#include "cards/nsm/queue.h"

#include <string.h>
#include <sys/eventfd.h>

void nsm_queue_init(struct nsm_queue *q, struct nsm_state *s)
{
	memset(q, 0, sizeof(*q));
	q->nq_state = s;
}

/* Copies the readable part of ch (at most NSM_REQUEST_MAX + 1 bytes) into q->nq_req. */
static void take_request(struct nsm_queue *q, const struct vr_chain *ch)
{
	size_t n = 0;
	for (unsigned i = 0; i < ch->ch_nsegs && n < sizeof(q->nq_req); i++) {
		const struct vr_seg *s = &ch->ch_segs[i];
		if (s->sg_write)
			continue;
		size_t k = s->sg_len < sizeof(q->nq_req) - n ? s->sg_len : sizeof(q->nq_req) - n;
		memcpy(q->nq_req + n, s->sg_ptr, k);
		n += k;
	}
	q->nq_req_len = n;
}

/* Answers the request in q->nq_req into the writable part of ch; the bytes written. */
static uint32_t answer(struct nsm_queue *q, const struct vr_chain *ch)
{
	size_t cap = ch->ch_write_bytes < NSM_RESPONSE_MAX ? ch->ch_write_bytes : NSM_RESPONSE_MAX;
	size_t n = nsm_handle(q->nq_state, q->nq_req, q->nq_req_len, q->nq_resp, cap);
	size_t done = 0;
	for (unsigned i = 0; i < ch->ch_nsegs && done < n; i++) {
		const struct vr_seg *s = &ch->ch_segs[i];
		if (!s->sg_write)
			continue;
		size_t k = s->sg_len < n - done ? s->sg_len : n - done;
		memcpy(s->sg_ptr, q->nq_resp + done, k);
		done += k;
	}
	q->nq_requests++;
	return (uint32_t)done;
}

/* Hands the pending request chain back unanswered. */
static void drop_pending(struct nsm_queue *q, struct vu_dev *d, unsigned qi)
{
	if (!q->nq_pending)
		return;
	q->nq_pending = false;
	q->nq_unpaired++;
	vu_queue_push(d, qi, q->nq_req_head, 0);
}

void nsm_queue_kick(struct nsm_queue *q, struct vu_dev *d, unsigned qi)
{
	struct vr_seg segs[NSM_QUEUE_MAX_SEGS];
	struct vr_chain ch = {.ch_segs = segs, .ch_max = NSM_QUEUE_MAX_SEGS};
	bool pushed = false;
	unsigned taken = 0;
	int r;
	while ((r = vu_queue_pop(d, qi, &ch)) == 1) {
		pushed = true;
		taken++;
		bool reads = ch.ch_read_bytes > 0, writes = ch.ch_write_bytes > 0;
		if (reads && writes) { /* request and reply buffer in one chain */
			drop_pending(q, d, qi);
			take_request(q, &ch);
			if (vu_queue_push(d, qi, ch.ch_head, answer(q, &ch)) < 0)
				break;
		} else if (reads) { /* the driver's request; its reply chain follows */
			drop_pending(q, d, qi);
			take_request(q, &ch);
			q->nq_pending = true;
			q->nq_req_head = ch.ch_head;
		} else if (writes && q->nq_pending) { /* the reply buffer of the pending request */
			uint32_t n = answer(q, &ch);
			q->nq_pending = false;
			/* the request chain first, then the reply: the order the driver reads */
			if (vu_queue_push(d, qi, q->nq_req_head, 0) < 0 ||
			    vu_queue_push(d, qi, ch.ch_head, n) < 0)
				break;
		} else { /* a reply buffer without a request, or an empty chain */
			q->nq_unpaired++;
			if (vu_queue_push(d, qi, ch.ch_head, 0) < 0)
				break;
		}
		if (taken == NSM_QUEUE_BUDGET) {
			/* more may wait: this enclave's turn is over, the others' kicks come
			 * first, and its own kick fd brings it back from the event loop */
			r = 0;
			q->nq_yields++;
			if (d->vd_queues[qi].vq_kick >= 0)
				eventfd_write(d->vd_queues[qi].vq_kick, 1);
			break;
		}
	}
	if (r < 0) /* the ring failed (the library said why); nothing pending survives it */
		q->nq_pending = false;
	if (pushed)
		vu_queue_notify(d, qi);
}

void nsm_queue_stopping(struct nsm_queue *q, struct vu_dev *d, unsigned qi)
{
	if (!q->nq_pending)
		return;
	drop_pending(q, d, qi);
	vu_queue_notify(d, qi);
}

void nsm_queue_stop(struct nsm_queue *q)
{
	q->nq_pending = false;
}
