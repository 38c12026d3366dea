/* ENW_HELLO and ENW_PCRS: checks and framing (enclave_wire.h). */
#include "lib/enclave_wire.h"

#include <errno.h>
#include <string.h>

#include "lib/vu_wire.h"

static const unsigned eif_index[ENW_EIF_PCRS] = ENW_EIF_PCR_INDEX;

static bool all_zero(const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

int enw_hello_check(const struct enw_hello *h)
{
	if (h->version != ENW_VERSION)
		return EPROTONOSUPPORT;
	if (h->flags & ~ENW_FLAG_DEBUG)
		return EINVAL;
	if (h->cid <= 3 || h->cid >= UINT32_MAX)
		return EINVAL;
	if (!memchr(h->module_id, 0, sizeof(h->module_id)))
		return EINVAL;
	for (unsigned i = 0; i < ENW_EIF_PCRS; i++) /* the EIF's come by ENW_PCRS only */
		if (!all_zero(h->pcr[eif_index[i]], ENW_PCR_LEN))
			return EINVAL;
	return 0;
}

int enw_pcrs_check(const struct enw_pcrs *p)
{
	if (p->version != ENW_VERSION)
		return EPROTONOSUPPORT;
	return p->flags ? EINVAL : 0;
}

/* One message of request req and payload len bytes, as its bytes arrive (see
 * enw_hello_parse). */
static int parse(const uint8_t *buf, size_t got, uint32_t req, size_t len, void *out)
{
	size_t whole = VU_HDR_SIZE + len;
	if (got > whole)
		return -EPROTO;
	if (got < VU_HDR_SIZE)
		return (int)(whole - got);
	struct vu_wire_hdr hdr;
	vu_wire_hdr_get(buf, &hdr);
	if (hdr.request != req || hdr.size != len ||
	    (hdr.flags & (VU_FLAG_VERSION_MASK | VU_FLAG_REPLY)) != VU_FLAG_VERSION)
		return -EPROTO;
	if (got < whole)
		return (int)(whole - got);
	if (out)
		memcpy(out, buf + VU_HDR_SIZE, len);
	return 0;
}

int enw_hello_parse(const uint8_t *buf, size_t got, struct enw_hello *h)
{
	return parse(buf, got, ENW_HELLO, sizeof(*h), h);
}

int enw_pcrs_parse(const uint8_t *buf, size_t got, struct enw_pcrs *p)
{
	return parse(buf, got, ENW_PCRS, sizeof(*p), p);
}

int enw_hello_recv(int fd, struct enw_hello *h, int timeout_ms)
{
	struct vu_wire_hdr hdr;
	unsigned nfds;
	int r = vu_wire_recv(fd, &hdr, h, sizeof(*h), NULL, 0, &nfds, timeout_ms);
	if (r == 0)
		return -EPIPE;
	if (r < 0)
		return r == -EMSGSIZE ? -EPROTO : r;
	if (hdr.request != ENW_HELLO || hdr.size != sizeof(*h) ||
	    (hdr.flags & (VU_FLAG_VERSION_MASK | VU_FLAG_REPLY)) != VU_FLAG_VERSION)
		return -EPROTO;
	return 0;
}

int enw_hello_reply(int fd, uint64_t status)
{
	return vu_wire_send(fd, ENW_HELLO, VU_FLAG_VERSION | VU_FLAG_REPLY, &status, sizeof(status),
			    NULL, 0);
}

int enw_pcrs_reply(int fd, uint64_t status)
{
	return vu_wire_send(fd, ENW_PCRS, VU_FLAG_VERSION | VU_FLAG_REPLY, &status, sizeof(status),
			    NULL, 0);
}

/* Sends one message and waits for its u64 status. */
static int exchange(int fd, uint32_t req, const void *body, size_t len, int timeout_ms)
{
	int r = vu_wire_send(fd, req, VU_FLAG_VERSION, body, len, NULL, 0);
	if (r < 0)
		return r;
	struct vu_wire_hdr hdr;
	uint64_t status;
	unsigned nfds;
	r = vu_wire_recv(fd, &hdr, &status, sizeof(status), NULL, 0, &nfds, timeout_ms);
	if (r != 1)
		return r < 0 ? r : -EPIPE;
	if (hdr.request != req || !(hdr.flags & VU_FLAG_REPLY) || hdr.size != sizeof(status))
		return -EPROTO;
	if (status > 4095)
		return -EPROTO;
	return (int)status;
}

int enw_hello_send(int fd, const struct enw_hello *h, int timeout_ms)
{
	return exchange(fd, ENW_HELLO, h, sizeof(*h), timeout_ms);
}

int enw_pcrs_send(int fd, const struct enw_pcrs *p, int timeout_ms)
{
	return exchange(fd, ENW_PCRS, p, sizeof(*p), timeout_ms);
}
