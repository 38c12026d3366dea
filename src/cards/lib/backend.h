/* The vhost-user back-end program conventions (vhost-user.rst, "Backend program
 * conventions") shared by every card: --socket-path=PATH or --fd=FDNUM (exactly one),
 * --print-capabilities (JSON on stdout, then exit 0; other options are ignored), and
 * serving a single frontend from the event loop.
 *
 * With --socket-path the card listens on PATH (replacing a stale socket, never another kind
 * of file) and accepts the first frontend through the loop, so SIGTERM still ends a card
 * that is waiting; the listener is closed and PATH removed once a frontend is attached, so
 * a second one is refused — or, with bo_serial, kept: later frontends wait in the backlog
 * and the card takes the next one when it calls backend_next() (from its disconnected
 * callback). With --fd the descriptor must already be a connected Unix stream socket.
 */
#ifndef NITRO_CARDS_BACKEND_H
#define NITRO_CARDS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "cards/lib/loop.h"
#include "cards/lib/vhost_user.h"

struct backend_opts {
	const char *bo_socket_path;
	int bo_fd; /* -1 when not given */
	bool bo_print_caps;
	bool bo_serial; /* set by the card: serve frontends one after another */
};

struct backend {
	struct vu_dev *be_dev;
	struct loop *be_loop;
	int be_listen_fd;
	bool be_serial;
	char be_path[108]; /* sun_path; removed on stop */
};

void backend_opts_init(struct backend_opts *o);
/* If argv[*i] is one of the options above ("--opt=value" or "--opt value"), consumes it
 * (advancing *i past a separate value) and returns 1; returns 0 for any other argument,
 * or a negative errno value with a message for a bad or missing value. */
int backend_parse_opt(struct backend_opts *o, int argc, char **argv, int *i, char *err,
		      size_t errlen);
/* After parsing: exactly one of --socket-path and --fd unless --print-capabilities. */
int backend_check_opts(const struct backend_opts *o, char *err, size_t errlen);
/* {"type": TYPE, "features": [...]} and a newline; features is NULL-terminated (or NULL). */
void backend_print_capabilities(FILE *f, const char *type, const char *const *features);
/* Starts serving d (created with loop l) as the options say. Returns 0 or a negative errno
 * value with a message. */
int backend_start(struct backend *b, struct vu_dev *d, struct loop *l, const struct backend_opts *o,
		  char *err, size_t errlen);
/* bo_serial: listen for the next frontend (the current one left); -1 when there is no
 * listener (--fd) or it cannot be watched. */
int backend_next(struct backend *b);
/* Closes the listener (if still open) and removes the socket file. */
void backend_stop(struct backend *b);

#endif
