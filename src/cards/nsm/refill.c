/* nitro-card-nsm's pool filler thread (refill.h). */
#include "cards/nsm/refill.h"

#include <openssl/rand.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static struct {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* a pool wants pairs, or stop */
	pthread_cond_t idle; /* the thread let go of `busy` */
	pthread_t thread;
	bool started, stop, ready;
	int ready_err; /* errno of the thread's set-up */
	struct es384_pool *pools[NSM_REFILL_MAX];
	unsigned npools, next; /* next: where the round starts */
	struct es384_pool *busy;
} r = {.lock = PTHREAD_MUTEX_INITIALIZER,
       .wake = PTHREAD_COND_INITIALIZER,
       .idle = PTHREAD_COND_INITIALIZER};

/* A pool that wants a pair, the round going on from r.next; NULL if all are full. Under
 * r.lock. */
static struct es384_pool *pick(void)
{
	for (unsigned k = 0; k < r.npools; k++) {
		unsigned i = (r.next + k) % r.npools;
		if (es384_pool_wants(r.pools[i])) {
			r.next = i + 1;
			return r.pools[i];
		}
	}
	return NULL;
}

static void *run(void *arg)
{
	(void)arg;
	/* Idle priority, and this thread's DRBG made now, before the card's filter. */
	struct sched_param sp = {0};
	uint8_t b;
	pthread_setname_np(pthread_self(), "nsm-refill");
	int err = sched_setscheduler(0, SCHED_IDLE, &sp) < 0 ? -1 : 0;
	if (!err && RAND_priv_bytes(&b, 1) != 1)
		err = -2;
	pthread_mutex_lock(&r.lock);
	r.ready = true;
	r.ready_err = err;
	pthread_cond_broadcast(&r.idle);
	while (!err && !r.stop) {
		struct es384_pool *p = pick();
		if (!p) {
			pthread_cond_wait(&r.wake, &r.lock);
			continue;
		}
		r.busy = p;
		pthread_mutex_unlock(&r.lock);
		int rc = es384_pool_fill(p); /* -1: OpenSSL failed; the pool's signer signs on
						the spot, the next round tries again */
		pthread_mutex_lock(&r.lock);
		r.busy = NULL;
		pthread_cond_broadcast(&r.idle);
		if (rc < 0)
			fprintf(stderr, "nitro-card-nsm: precomputing an ECDSA pair failed\n");
	}
	pthread_mutex_unlock(&r.lock);
	return NULL;
}

int nsm_refill_start(char *err, size_t errlen)
{
	if (r.started)
		return 0;
	int e = pthread_create(&r.thread, NULL, run, NULL);
	if (e) {
		snprintf(err, errlen, "pool filler thread: %s", strerror(e));
		return -1;
	}
	r.started = true;
	pthread_mutex_lock(&r.lock);
	while (!r.ready)
		pthread_cond_wait(&r.idle, &r.lock);
	e = r.ready_err;
	pthread_mutex_unlock(&r.lock);
	if (e) {
		pthread_join(r.thread, NULL);
		r.started = false;
		snprintf(err, errlen, "pool filler thread: %s",
			 e == -1 ? "cannot set SCHED_IDLE" : "OpenSSL's DRBG failed");
		return -1;
	}
	return 0;
}

void nsm_refill_stop(void)
{
	if (!r.started)
		return;
	pthread_mutex_lock(&r.lock);
	r.stop = true;
	pthread_cond_broadcast(&r.wake);
	pthread_mutex_unlock(&r.lock);
	pthread_join(r.thread, NULL);
	r.started = false;
}

int nsm_refill_add(struct es384_pool *p)
{
	pthread_mutex_lock(&r.lock);
	int rc = -1;
	if (r.npools < NSM_REFILL_MAX) {
		r.pools[r.npools++] = p;
		pthread_cond_signal(&r.wake);
		rc = 0;
	}
	pthread_mutex_unlock(&r.lock);
	return rc;
}

void nsm_refill_remove(struct es384_pool *p)
{
	pthread_mutex_lock(&r.lock);
	for (unsigned i = 0; i < r.npools; i++)
		if (r.pools[i] == p) {
			r.pools[i] = r.pools[--r.npools];
			r.pools[r.npools] = NULL;
			break;
		}
	while (r.busy == p)
		pthread_cond_wait(&r.idle, &r.lock);
	pthread_mutex_unlock(&r.lock);
}

void nsm_refill_wake(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&r.lock);
	pthread_cond_signal(&r.wake);
	pthread_mutex_unlock(&r.lock);
}
