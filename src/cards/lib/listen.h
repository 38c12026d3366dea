/* The cards' listening Unix stream sockets (non-blocking, close-on-exec). Errors are
 * written to err (as RETURN_ERR does) and returned as -errno; nothing is left behind on
 * failure. Called at start-up, from one thread.
 *
 * listen_renamed: the vhost-user socket. It is bound under PATH.PID~ and renamed to path
 * once it listens, so whoever waits for the file can connect at once; the rename replaces
 * a stale socket of an earlier run; path existing as anything but a socket is refused.
 * The socket is mode 0600 (the owner's only, whatever the umask).
 *
 * listen_replacing: a control socket. A stale socket at path is unlinked first; path
 * existing as anything but a socket is refused.
 */
#ifndef NITRO_CARDS_LIB_LISTEN_H
#define NITRO_CARDS_LIB_LISTEN_H

#include <stddef.h>

/* The listening fd (backlog 4), or -errno. */
int listen_renamed(const char *path, char *err, size_t errlen);
/* The listening fd, or -errno. */
int listen_replacing(const char *path, int backlog, char *err, size_t errlen);

#endif
