/* The IMDS's TCP over lwIP (contract: imds_net.h). */
#include "cards/vpc/imds_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lwip/init.h"
#include "lwip/ip4.h"
#include "lwip/netif.h"
#include "lwip/pbuf.h"
#include "lwip/sys.h"
#include "lwip/tcp.h"
#include "lwip/timeouts.h"

#include "cards/vpc/verdict.h"

#define NORMAL_TTL 64

struct conn {
	struct conn *prev, *next; /* g.conns, least recently active first */
	u32_t active;		  /* sys_now() of its last segment in or out */
	struct tcp_pcb *pcb;
	char in[HTTP_HEAD_MAX + HTTP_BODY_MAX];
	size_t inlen;
	char out[IMDS_REPLY_MAX];
	size_t outlen, outoff;
	bool close_after; /* the reply being sent asks for it */
	bool peer_closed;
	bool ttl1;	/* a token reply is in flight */
	u32_t ttl1_end; /* its last sequence number + 1 */
};

static struct {
	struct imds *m;
	struct netif nif;
	uint8_t mac[6];
	imds_out_fn *out;
	void *ctx;
	unsigned nconns;
	struct conn *conns, *last; /* least recently active first */
	struct imds_net_stats st;
	uint8_t frame[14 + 1500];
} g;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static err_t nif_output(struct netif *nif, struct pbuf *p, const ip4_addr_t *dst)
{
	(void)nif;
	(void)dst;
	if (p->tot_len > sizeof(g.frame) - 14)
		return ERR_BUF;
	memcpy(g.frame, g.mac, 6);
	memcpy(g.frame + 6, vpc_gateway_mac, 6);
	g.frame[12] = 0x08;
	g.frame[13] = 0x00;
	pbuf_copy_partial(p, g.frame + 14, p->tot_len, 0);
	g.st.out_packets++;
	g.out(g.ctx, g.frame, 14 + (size_t)p->tot_len);
	return ERR_OK;
}

static err_t nif_init(struct netif *nif)
{
	nif->output = nif_output;
	nif->mtu = 1500;
	nif->name[0] = 'i';
	nif->name[1] = 'm';
	nif->flags = NETIF_FLAG_LINK_UP;
	return ERR_OK;
}

static void unlink_conn(struct conn *c)
{
	if (!c->prev && g.conns != c)
		return; /* not in the list */
	*(c->prev ? &c->prev->next : &g.conns) = c->next;
	*(c->next ? &c->next->prev : &g.last) = c->prev;
	c->prev = c->next = NULL;
}

/* Marks c active now: to the end of the list. */
static void touch(struct conn *c)
{
	unlink_conn(c);
	c->active = sys_now();
	c->prev = g.last;
	*(g.last ? &g.last->next : &g.conns) = c;
	g.last = c;
}

static void conn_free(struct conn *c)
{
	unlink_conn(c);
	free(c);
	g.nconns--;
}

/* ERR_OK (closed: lwIP sends what is queued, then FIN) or ERR_ABRT (aborted). */
static err_t conn_close(struct conn *c)
{
	struct tcp_pcb *pcb = c->pcb;
	err_t r = ERR_OK;
	tcp_arg(pcb, NULL);
	tcp_recv(pcb, NULL);
	tcp_sent(pcb, NULL);
	tcp_err(pcb, NULL);
	if (tcp_close(pcb) != ERR_OK) {
		tcp_abort(pcb);
		r = ERR_ABRT;
	}
	conn_free(c);
	return r;
}

/* Writes what fits of the reply; true when all of it is queued. */
static bool push(struct conn *c)
{
	while (c->outoff < c->outlen) {
		u16_t room = tcp_sndbuf(c->pcb);
		size_t n = c->outlen - c->outoff;
		if (!room)
			break;
		if (n > room)
			n = room;
		if (tcp_write(c->pcb, c->out + c->outoff, (u16_t)n, TCP_WRITE_FLAG_COPY) != ERR_OK)
			break;
		c->outoff += n;
	}
	tcp_output(c->pcb);
	return c->outoff == c->outlen;
}

/* Answers the requests in c->in, one at a time (a pipelined one waits until the reply
 * before it is queued). ERR_OK, ERR_CLSD when c is closed, ERR_ABRT when aborted (c is
 * gone in both). */
static err_t serve(struct conn *c)
{
	while (c->outoff == c->outlen) {
		if (c->close_after || (c->peer_closed && c->inlen == 0)) {
			err_t e = conn_close(c);
			return e == ERR_OK ? ERR_CLSD : e;
		}
		struct http_req rq;
		enum http_result r = http_parse(c->in, c->inlen, &rq);
		if (r == HTTP_MORE) {
			if (c->peer_closed) {
				err_t e = conn_close(c);
				return e == ERR_OK ? ERR_CLSD : e;
			}
			return ERR_OK;
		}
		struct imds_reply rep;
		g.st.requests++;
		imds_answer(g.m, r, &rq, now_ns(), c->out, sizeof(c->out), &rep);
		c->outlen = rep.len;
		c->outoff = 0;
		c->close_after = rep.close || c->peer_closed;
		if (rep.ttl1) {
			c->pcb->ttl = 1;
			c->ttl1 = true;
			c->ttl1_end = c->pcb->snd_lbb + (u32_t)rep.len;
		}
		if (r == HTTP_OK) {
			memmove(c->in, c->in + rq.rq_used, c->inlen - rq.rq_used);
			c->inlen -= rq.rq_used;
		} else {
			c->inlen = 0;
		}
		push(c);
	}
	return ERR_OK;
}

static err_t on_sent(void *arg, struct tcp_pcb *pcb, u16_t len)
{
	struct conn *c = arg;
	(void)len;
	touch(c);
	if (c->ttl1 && (s32_t)(pcb->lastack - c->ttl1_end) >= 0) {
		pcb->ttl = NORMAL_TTL;
		c->ttl1 = false;
	}
	if (push(c))
		return serve(c) == ERR_ABRT ? ERR_ABRT : ERR_OK;
	return ERR_OK;
}

static err_t on_recv(void *arg, struct tcp_pcb *pcb, struct pbuf *p, err_t err)
{
	struct conn *c = arg;
	(void)err;
	touch(c);
	if (!p) {
		c->peer_closed = true;
		return serve(c) == ERR_ABRT ? ERR_ABRT : ERR_OK;
	}
	size_t room = sizeof(c->in) - c->inlen, n = p->tot_len;
	if (n > room)
		n = room; /* the parser answers 431/413 at the limit; the rest is dropped */
	pbuf_copy_partial(p, c->in + c->inlen, (u16_t)n, 0);
	c->inlen += n;
	tcp_recved(pcb, p->tot_len);
	pbuf_free(p);
	return serve(c) == ERR_ABRT ? ERR_ABRT : ERR_OK;
}

static void on_err(void *arg, err_t err)
{
	(void)err;
	if (arg)
		conn_free(arg); /* the pcb is already freed by lwIP */
}

static err_t on_accept(void *arg, struct tcp_pcb *pcb, err_t err)
{
	(void)arg;
	if (err != ERR_OK || !pcb)
		return ERR_VAL;
	/* At the limit the least recently active connection makes room (its peer gets a
	 * RST): a guest process that leaks connections cannot lock others out. */
	if (g.nconns >= IMDS_NET_CONNS && g.conns) {
		g.st.conns_evicted++;
		tcp_abort(g.conns->pcb); /* on_err frees it */
	}
	struct conn *c = g.nconns < IMDS_NET_CONNS ? calloc(1, sizeof(*c)) : NULL;
	if (!c) {
		g.st.conns_refused++;
		tcp_abort(pcb);
		return ERR_ABRT;
	}
	g.nconns++;
	touch(c);
	c->pcb = pcb;
	c->inlen = c->outlen = c->outoff = 0;
	c->close_after = c->peer_closed = c->ttl1 = false;
	pcb->ttl = NORMAL_TTL;
	tcp_arg(pcb, c);
	tcp_recv(pcb, on_recv);
	tcp_sent(pcb, on_sent);
	tcp_err(pcb, on_err);
	tcp_nagle_disable(pcb);
	return ERR_OK;
}

int imds_net_init(struct imds *m, const uint8_t guest_mac[6], imds_out_fn *out, void *ctx,
		  char *err, size_t errlen)
{
	g.m = m;
	memcpy(g.mac, guest_mac, 6);
	g.out = out;
	g.ctx = ctx;
	lwip_init();
	ip4_addr_t ip, mask, gw;
	IP4_ADDR(&ip, 169, 254, 169, 254);
	IP4_ADDR(&mask, 255, 255, 255, 255);
	ip4_addr_set_zero(&gw);
	if (!netif_add(&g.nif, &ip, &mask, &gw, NULL, nif_init, ip4_input)) {
		snprintf(err, errlen, "lwIP: netif_add failed");
		return -1;
	}
	netif_set_default(&g.nif);
	netif_set_up(&g.nif);
	struct tcp_pcb *l = tcp_new();
	if (!l || tcp_bind(l, IP_ADDR_ANY, 80) != ERR_OK) {
		snprintf(err, errlen, "lwIP: cannot bind port 80");
		return -1;
	}
	struct tcp_pcb *lp = tcp_listen_with_backlog(l, IMDS_NET_CONNS);
	if (!lp) {
		snprintf(err, errlen, "lwIP: listen failed");
		return -1;
	}
	tcp_accept(lp, on_accept);
	return 0;
}

void imds_net_input(const uint8_t *ip, size_t len)
{
	if (len > 0xffff)
		return;
	struct pbuf *p = pbuf_alloc(PBUF_RAW, (u16_t)len, PBUF_RAM);
	if (!p)
		return;
	pbuf_take(p, ip, (u16_t)len);
	g.st.in_packets++;
	if (g.nif.input(p, &g.nif) != ERR_OK)
		pbuf_free(p);
}

void imds_net_poll(void)
{
	sys_check_timeouts();
	/* Idle connections end after IMDS_NET_IDLE_MS (their peer gets a RST). */
	u32_t now = sys_now();
	while (g.conns && now - g.conns->active > IMDS_NET_IDLE_MS) {
		g.st.conns_idle_closed++;
		tcp_abort(g.conns->pcb); /* on_err frees it */
	}
}

void imds_net_stats(struct imds_net_stats *st)
{
	*st = g.st;
}
