/* nitrod's HTTP/1.1 server on a Unix socket (libmicrohttpd), issue 5.
 *
 * The socket is created 0600 (0666 when other uids are allowed: then SO_PEERCRED decides).
 * Each request's caller is the uid of the connected peer (SO_PEERCRED); a uid not in the
 * allowed set gets 403 before its body is read. Bodies over API_MAX_BODY get 413 (from the
 * Content-Length before reading, else as soon as the limit is passed). A client that
 * stalls longer than the timeout is dropped by MHD without holding up anyone else (an
 * epoll loop per worker thread). Every request, answered or not, leaves one audit line.
 */
#ifndef NITRO_CONTROLLER_HTTP_H
#define NITRO_CONTROLLER_HTTP_H

#include <stddef.h>

/* Binds path and starts serving; 0, or -1 with err set. */
int http_start(const char *path, unsigned timeout_s, unsigned threads, char *err, size_t errlen);
void http_stop(void);

#endif
