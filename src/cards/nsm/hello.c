/* ENW_HELLO on an NSM card connection (hello.h), on src/lib/enclave_wire.c's checks and
 * framing. */
#include "cards/nsm/hello.h"

#include <errno.h>
#include <string.h>

int nsm_hello_check(const struct enw_hello *p)
{
	int e = enw_hello_check(p);
	if (e)
		return e;
	/* the module id becomes the leaf certificate's common name: printable, not empty */
	size_t n = strnlen(p->module_id, sizeof(p->module_id));
	if (n == 0)
		return EINVAL;
	for (size_t i = 0; i < n; i++)
		if (p->module_id[i] < 0x21 || p->module_id[i] > 0x7e)
			return EINVAL;
	return 0;
}

int nsm_hello_read(int fd, struct enw_hello *out)
{
	memset(out, 0, sizeof(*out));
	int r = enw_hello_recv(fd, out, NSM_HELLO_TIMEOUT_MS);
	if (r == -EPROTO) /* another message, or the wrong size: answered, then closed */
		return EPROTO;
	if (r < 0)
		return -1;
	return nsm_hello_check(out);
}

int nsm_hello_reply(int fd, uint64_t status)
{
	return enw_hello_reply(fd, status) < 0 ? -1 : 0;
}
