/* nitro-card-nsm's pool filler thread (refill.h). */
#include "cards/nsm/refill.h"

#include <errno.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

static struct {
	pthread_t thread;
	bool started;
	int efd; /* the wake-up: a pair was taken, or stop */
	atomic_bool stop;
	struct es384_pool *pool;
	/* the thread's set-up, reported to nsm_refill_start */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool ready;
	const char *ready_err;
} r = {.efd = -1, .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *run(void *arg)
{
	(void)arg;
	/* A name, and this thread's DRBG made now, before the card's filter. */
	uint8_t b;
	const char *err = NULL;
	bool idle = false;
	pthread_setname_np(pthread_self(), "nsm-refill");
	if (RAND_priv_bytes(&b, 1) != 1)
		err = "OpenSSL's DRBG failed";
	pthread_mutex_lock(&r.lock);
	r.ready = true;
	r.ready_err = err;
	pthread_cond_broadcast(&r.cond);
	pthread_mutex_unlock(&r.lock);
	bool failed = false;
	while (!err && !atomic_load(&r.stop)) {
		int rc = es384_pool_fill(r.pool);
		if (rc > 0) {
			failed = false;
			continue;
		}
		if (rc < 0 && !failed) { /* said once; the pool's signers sign on the spot */
			fprintf(stderr, "nitro-card-nsm: precomputing an ECDSA pair failed\n");
			failed = true;
		}
		/* Full (or failing). The first fill ran at the card's priority, as its start-up;
		 * refills run at idle priority. */
		if (!idle) {
			struct sched_param sp = {0};
			if (sched_setscheduler(0, SCHED_IDLE, &sp) < 0)
				fprintf(stderr, "nitro-card-nsm: pool filler: SCHED_IDLE: %s\n",
					strerror(errno));
			idle = true;
		}
		/* wait for a pair to be taken */
		eventfd_t v;
		if (eventfd_read(r.efd, &v) < 0 && errno != EINTR)
			break;
	}
	return NULL;
}

int nsm_refill_start(struct es384_pool *p, char *err, size_t errlen)
{
	if (r.started)
		return 0;
	r.efd = eventfd(0, EFD_CLOEXEC);
	if (r.efd < 0) {
		snprintf(err, errlen, "pool filler: eventfd: %s", strerror(errno));
		return -1;
	}
	r.pool = p;
	atomic_store(&r.stop, false);
	/* Every signal blocked in the thread: the card's signals (SIGTERM, SIGUSR1...) are
	 * read from its signalfd on the loop, and a process-directed signal goes to a thread
	 * that does not block it: the filler must never be that thread. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&r.thread, NULL, run, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		snprintf(err, errlen, "pool filler thread: %s", strerror(e));
		close(r.efd);
		r.efd = -1;
		return -1;
	}
	r.started = true;
	pthread_mutex_lock(&r.lock);
	while (!r.ready)
		pthread_cond_wait(&r.cond, &r.lock);
	const char *why = r.ready_err;
	pthread_mutex_unlock(&r.lock);
	if (why) {
		nsm_refill_stop();
		snprintf(err, errlen, "pool filler thread: %s", why);
		return -1;
	}
	return 0;
}

void nsm_refill_stop(void)
{
	if (!r.started)
		return;
	atomic_store(&r.stop, true);
	eventfd_write(r.efd, 1);
	pthread_join(r.thread, NULL);
	close(r.efd);
	r.efd = -1;
	r.started = false;
	r.ready = false;
}

void nsm_refill_wake(void *arg)
{
	(void)arg;
	if (r.efd >= 0)
		eventfd_write(r.efd, 1);
}
