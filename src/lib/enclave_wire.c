/* ENW_HELLO: checks and framing (enclave_wire.h). */
#include "lib/enclave_wire.h"

#include <errno.h>
#include <string.h>

#include "lib/vu_wire.h"

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
	return 0;
}

int enw_hello_parse(const uint8_t *buf, size_t got, struct enw_hello *h)
{
	if (got > ENW_HELLO_MSG_LEN)
		return -EPROTO;
	if (got < VU_HDR_SIZE)
		return (int)(ENW_HELLO_MSG_LEN - got);
	struct vu_wire_hdr hdr;
	vu_wire_hdr_get(buf, &hdr);
	if (hdr.request != ENW_HELLO || hdr.size != sizeof(*h) ||
	    (hdr.flags & (VU_FLAG_VERSION_MASK | VU_FLAG_REPLY)) != VU_FLAG_VERSION)
		return -EPROTO;
	if (got < ENW_HELLO_MSG_LEN)
		return (int)(ENW_HELLO_MSG_LEN - got);
	if (h)
		memcpy(h, buf + VU_HDR_SIZE, sizeof(*h));
	return 0;
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

int enw_hello_send(int fd, const struct enw_hello *h, int timeout_ms)
{
	int r = vu_wire_send(fd, ENW_HELLO, VU_FLAG_VERSION, h, sizeof(*h), NULL, 0);
	if (r < 0)
		return r;
	struct vu_wire_hdr hdr;
	uint64_t status;
	unsigned nfds;
	r = vu_wire_recv(fd, &hdr, &status, sizeof(status), NULL, 0, &nfds, timeout_ms);
	if (r != 1)
		return r < 0 ? r : -EPIPE;
	if (hdr.request != ENW_HELLO || !(hdr.flags & VU_FLAG_REPLY) || hdr.size != sizeof(status))
		return -EPROTO;
	if (status > 4095)
		return -EPROTO;
	return (int)status;
}
