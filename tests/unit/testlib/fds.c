/* File descriptor helpers of the unit tests (fds.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "fds.h"

#include <dirent.h>
#include <string.h>
#include <sys/socket.h>

int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

void send_with_fds(int sock, const void *p, size_t len, const int *fds, unsigned n)
{
	union {
		char c[CMSG_SPACE(sizeof(int) * FDS_SEND_MAX)];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {(void *)p, len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
	assert_true(n <= FDS_SEND_MAX);
	if (n) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.c;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	assert_int_equal(sendmsg(sock, &mh, MSG_NOSIGNAL), (ssize_t)len);
}
