/* A debug-mode enclave's console feed (enclave_console.h). */
#include "hv/enclave_console.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/util.h"

#define FEED_HELLO_TIMEOUT_MS 5000

int enclave_console_connect(const char *path, const struct enw_hello *hello, char *err,
			    size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		RETURN_ERR(-1, "console feed %s: path too long", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	struct enw_hello h = *hello;
	h.flags |= ENW_FLAG_CONSOLE;
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		snprintf(err, errlen, "console feed %s: %s", path, strerror(errno));
		if (s >= 0)
			close(s);
		return -1;
	}
	int st = enw_hello_send(s, &h, FEED_HELLO_TIMEOUT_MS);
	if (st || fcntl(s, F_SETFL, O_NONBLOCK) < 0) {
		snprintf(err, errlen, "console feed %s: %s", path,
			 st > 0	  ? strerror(st)
			 : st < 0 ? strerror(-st)
				  : strerror(errno));
		close(s);
		return -1;
	}
	return s;
}
