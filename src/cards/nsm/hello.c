/* ENW_HELLO on an NSM card connection (hello.h). */
#include "cards/nsm/hello.h"

#include <errno.h>
#include <string.h>

int nsm_hello_check(const struct vu_wire_hdr *h, const struct enw_hello *p)
{
	if (h->request != ENW_HELLO || (h->flags & VU_FLAG_VERSION_MASK) != VU_FLAG_VERSION ||
	    (h->flags & VU_FLAG_REPLY) || h->size != sizeof(struct enw_hello) ||
	    p->version != ENW_VERSION)
		return EPROTO;
	if (p->flags & ~ENW_FLAG_DEBUG)
		return EINVAL;
	if (p->cid <= 3 || p->cid >= UINT32_MAX)
		return EINVAL;
	size_t n = strnlen(p->module_id, sizeof(p->module_id));
	if (n == 0 || n == sizeof(p->module_id))
		return EINVAL;
	for (size_t i = 0; i < n; i++)
		if (p->module_id[i] < 0x21 || p->module_id[i] > 0x7e)
			return EINVAL;
	return 0;
}

int nsm_hello_read(int fd, struct enw_hello *out)
{
	struct vu_wire_hdr h;
	unsigned nfds;
	memset(out, 0, sizeof(*out));
	int r = vu_wire_recv(fd, &h, out, sizeof(*out), NULL, 0, &nfds, NSM_HELLO_TIMEOUT_MS);
	if (r != 1)
		return -1;
	return nsm_hello_check(&h, out);
}

int nsm_hello_reply(int fd, uint64_t status)
{
	return vu_wire_send(fd, ENW_HELLO, VU_FLAG_VERSION | VU_FLAG_REPLY, &status, sizeof(status),
			    NULL, 0) < 0
		   ? -1
		   : 0;
}
