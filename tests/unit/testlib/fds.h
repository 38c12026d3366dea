/* File descriptors in the unit tests of the vhost-user framing and device (tests/unit/lib,
 * tests/unit/cardlib): counting the open ones (no test may leak one) and playing a raw,
 * possibly hostile peer that sends bytes with SCM_RIGHTS. Failures are cmocka failures.
 */
#ifndef NITRO_TESTS_UNIT_TESTLIB_FDS_H
#define NITRO_TESTS_UNIT_TESTLIB_FDS_H

#include <stddef.h>

#define FDS_SEND_MAX 16

/* The number of this process's open file descriptors, or -1. */
int count_fds(void);
/* Sends len bytes from p with the n (at most FDS_SEND_MAX) descriptors fds in one sendmsg
 * (no framing) and asserts that all of it went. */
void send_with_fds(int sock, const void *p, size_t len, const int *fds, unsigned n);

#endif
