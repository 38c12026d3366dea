/* nitro-card-nsm's pool filler: one thread that keeps the card's pool of precomputed ECDSA
 * P-384 pairs (src/enclave/es384_pool.h) full, so that an Attestation's signature costs no
 * scalar multiplication on the request path.
 *
 * The pool is first filled at the card's own priority, from the card's start (a pair
 * depends on the curve only, not on an enclave's key): a start-up cost of NSM_SIG_POOL
 * pairs, one P-384 signature's time each, paid beside the parent's boot rather than by the
 * first enclave's requests. Once full, the thread drops to SCHED_IDLE for good (the card's
 * seccomp list allows exactly that change): refills get a CPU only when nothing else of the
 * machine wants one, and the card's loop thread preempts them on wake-up. When the pool is
 * full it sleeps in read() on an eventfd; a pair taken (es384_pool's on_take:
 * nsm_refill_wake, an eventfd write: no lock the signer could wait on) wakes it.
 *
 * The thread blocks every signal (the card takes its signals on the loop's signalfd).
 * Start it before the card's seccomp filter (the thread sets its policy, its name and
 * instantiates its OpenSSL DRBG then); after it the thread uses read, futex, memory calls
 * and getrandom (the cards' base list) and sched_setscheduler(0, SCHED_IDLE) once. Threading:
 * start/stop on the card's loop thread; nsm_refill_wake on any thread.
 */
#ifndef NITRO_CARDS_NSM_REFILL_H
#define NITRO_CARDS_NSM_REFILL_H

#include <stddef.h>

#include "enclave/es384_pool.h"

/* Starts the thread filling p (which must outlive nsm_refill_stop). 0, or -1 with err. */
int nsm_refill_start(struct es384_pool *p, char *err, size_t errlen);
/* Stops and joins it (no-op if not started); returns once it no longer uses the pool. */
void nsm_refill_stop(void);
/* es384_pool's on_take callback (arg unused): the pool wants a pair. */
void nsm_refill_wake(void *arg);

#endif
