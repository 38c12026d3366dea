/* What every card's main() shares (nitro-card-ebs, nitro-card-vpc).
 *
 * card_opt(): the value of "--name VALUE" or "--name=VALUE" at argv[*i] (advancing *i past
 * a separate value), NULL when argv[*i] is another argument; a missing value exits 2 with
 * the message and the card's usage text.
 * card_backend_opt(): backend_parse_opt() (backend.h) exiting 2 on a bad value; true when
 * argv[*i] was one of the back-end options. card_backend_opts_done(), after the options:
 * --print-capabilities prints TYPE's capabilities and exits 0, else exactly one of
 * --socket-path and --fd must be there (or exit 2 with the usage).
 * card_loop_init(): the card's event loop (SIGTERM and SIGINT end it) plus SIGUSR1 on a
 * signalfd: each SIGUSR1 calls on_usr1(opaque) once (cards print their counters). One per
 * process. Returns 0 or a negative errno value with a message; *usr1_fd is for the card
 * to close at the end.
 */
#ifndef NITRO_CARDS_CARDMAIN_H
#define NITRO_CARDS_CARDMAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "cards/lib/backend.h"
#include "cards/lib/loop.h"

const char *card_opt(const char *name, int argc, char **argv, int *i, const char *usage);
bool card_backend_opt(struct backend_opts *bo, int argc, char **argv, int *i);
void card_backend_opts_done(const struct backend_opts *bo, const char *type, const char *usage);
int card_loop_init(struct loop *l, int *usr1_fd, void (*on_usr1)(void *opaque), void *opaque,
		   char *err, size_t errlen);

#endif
