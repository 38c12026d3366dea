/* nitro-card-nsm's pool filler: one thread that keeps every connection's ES384 pool
 * (src/enclave/es384_pool.h) full, so that an Attestation's signature is made with a
 * precomputed (k^-1, r) pair instead of a P-384 scalar multiplication on the request path.
 *
 * The thread runs at SCHED_IDLE: it gets a CPU only when nothing else of the machine wants
 * one, so filling never delays a request (the card's loop thread preempts it on wake-up);
 * the pools are refilled when the card and the machine are idle. It fills the pools that
 * want pairs one pair at a time in turn (one enclave's burst does not starve another's
 * pool), and sleeps on a condition variable when every pool is full; a pair taken
 * (es384_pool's on_take: nsm_refill_wake) wakes it.
 *
 * Start it before the card's seccomp filter (the thread sets its policy and instantiates
 * its OpenSSL DRBG then); after it the thread uses only futex, memory calls and getrandom,
 * all in the cards' base list. Threading: nsm_refill_add/remove/stop are called on the
 * card's loop thread; nsm_refill_wake on any thread.
 */
#ifndef NITRO_CARDS_NSM_REFILL_H
#define NITRO_CARDS_NSM_REFILL_H

#include <stddef.h>

#include "enclave/es384_pool.h"

#define NSM_REFILL_MAX 64 /* pools at once (the card's connections) */

/* Starts the thread. 0, or -1 with err. */
int nsm_refill_start(char *err, size_t errlen);
/* Stops and joins it (no-op if not started). Pools still added are left to their owners. */
void nsm_refill_stop(void);
/* Adds a pool to fill. 0, or -1 if NSM_REFILL_MAX pools are in already. */
int nsm_refill_add(struct es384_pool *p);
/* Removes a pool; returns once the thread no longer uses it (it may have been computing a
 * pair for it: at most one pair's time). Then the caller may free it. */
void nsm_refill_remove(struct es384_pool *p);
/* es384_pool's on_take callback (arg unused): a pool wants a pair. */
void nsm_refill_wake(void *arg);

#endif
