/* The enclave glue behind the NE device's ops (see enclave.h). */
#include "hv/enclave.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nitro_enclaves.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include "hv/enclave_spawn.h"
#include "hv/tpm.h"
#include "lib/util.h"

_Static_assert(ENCLAVE_MEM_FOREIGN_SLOT == TPM_KVM_SLOT, "the TPM's KVM slot is skipped");

#define REPLY_TIMEOUT_S 120 /* EIF copy, parse and kernel load, even emulated */

static struct enclave_run *find(struct enclave_glue *g, uint64_t uid)
{
	for (unsigned i = 0; i < ENCLAVE_MAX; i++)
		if (g->run[i].used && g->run[i].uid == uid)
			return &g->run[i];
	return NULL;
}

/* Every donated range (of the running enclaves, plus extra) into holes; returns how many. */
static unsigned gather_holes(const struct enclave_glue *g, struct enclave_hole *holes,
			     const struct enclave_run *extra)
{
	unsigned nh = 0;
	for (unsigned i = 0; i < ENCLAVE_MAX; i++)
		if (g->run[i].used && &g->run[i] != extra)
			for (unsigned k = 0; k < g->run[i].nholes; k++)
				holes[nh++] = g->run[i].holes[k];
	for (unsigned k = 0; extra && k < extra->nholes; k++)
		holes[nh++] = extra->holes[k];
	return nh;
}

static struct enclave_hole plan_holes[ENCLAVE_MAX * NE_MAX_REGIONS + NE_MAX_REGIONS];
static struct enclave_slot_plan plan[ENCLAVE_MAX_SLOTS];

/* Whether the parent's slots still fit KVM with r's ranges donated too (checked before
 * anything changes: a START the slots cannot hold is refused, never half-applied). */
static bool slots_fit(struct enclave_glue *g, const struct enclave_run *r)
{
	unsigned nh = gather_holes(g, plan_holes, r);
	return enclave_mem_plan(&g->vm->vm_mem, plan_holes, nh, plan, g->max_slots) >= 0;
}

/* The parent's KVM slots for the ranges donated now (its vCPUs are held out of KVM_RUN by
 * the caller). Callers checked slots_fit first; a failure here leaves the VM's memory
 * undefined: the process ends. Without a KVM VM (vm_fd < 0: the unit tests) only the
 * plan is made. */
static void set_slots(struct enclave_glue *g)
{
	unsigned nh = gather_holes(g, plan_holes, NULL);
	int n = enclave_mem_plan(&g->vm->vm_mem, plan_holes, nh, plan, g->max_slots);
	if (n < 0) {
		fprintf(stderr, "%s: enclaves: too many memory slots\n", util_prog());
		vm_exit(1);
	}
	if (g->vm->vm_fd < 0) {
		g->nslots = (unsigned)n;
		return;
	}
	for (unsigned i = 0; i < g->nslots; i++) {
		struct kvm_userspace_memory_region del = {.slot = enclave_mem_slot_id(i)};
		if (ioctl(g->vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &del) < 0)
			goto fail;
	}
	for (int i = 0; i < n; i++) {
		struct kvm_userspace_memory_region r = {
		    .slot = enclave_mem_slot_id((unsigned)i),
		    .flags = plan[i].zero ? KVM_MEM_READONLY : 0,
		    .guest_phys_addr = plan[i].gpa,
		    .memory_size = plan[i].size,
		    .userspace_addr =
			(uint64_t)(uintptr_t)(plan[i].zero ? g->zero
							   : g->vm->vm_mem.gm_base + plan[i].map)};
		if (ioctl(g->vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			goto fail;
	}
	g->nslots = (unsigned)n;
	return;
fail:
	fprintf(stderr, "%s: enclaves: KVM_SET_USER_MEMORY_REGION: %s\n", util_prog(),
		strerror(errno));
	vm_exit(1);
}

/* Publishes the holes of every running enclave (gpa_ptr refuses them, the cards' tables
 * leave them out); returns the list it replaces, to be freed once no thread can use it. */
static struct mem_holes *publish_holes(struct enclave_glue *g)
{
	static struct mem_hole h[ENCLAVE_MAX * NE_MAX_REGIONS];
	unsigned n = 0;
	for (unsigned i = 0; i < ENCLAVE_MAX; i++)
		for (unsigned k = 0; g->run[i].used && k < g->run[i].nholes; k++)
			h[n++] = (struct mem_hole){g->run[i].holes[k].gpa, g->run[i].holes[k].size};
	struct mem_holes *now = mem_holes_make(h, n);
	if (!now) {
		fprintf(stderr, "%s: enclaves: out of memory\n", util_prog());
		vm_exit(1);
	}
	struct mem_holes *old = g->holes;
	g->holes = now;
	mem_set_holes(&g->vm->vm_mem, now);
	return old;
}

/* The parent's memory for the enclaves running now: the holes published, its KVM slots,
 * then every card's memory table (each card answers before this returns), with the
 * vCPUs held out of KVM_RUN throughout. Every card is asked even after one refused: each
 * sync takes its device's lock, so afterwards no thread still uses the old hole list (or a
 * pointer gpa_ptr gave before the holes were published). 0, or -1 with the first card's
 * refusal in err. */
static int apply(struct enclave_glue *g, char *err, size_t errlen)
{
	int rc = 0;
	bool kvm = g->vm->vm_fd >= 0; /* no KVM VM: the unit tests' plan-only glue */
	if (kvm)
		vm_pause(g->vm);
	struct mem_holes *old = publish_holes(g);
	set_slots(g);
	for (unsigned i = 0; i < g->ncards; i++) {
		char why[256];
		if (g->cards[i].sync(g->cards[i].dev, why, sizeof(why)) < 0 && !rc) {
			snprintf(err, errlen, "%s", why);
			rc = -1;
		}
	}
	free(old);
	if (kvm)
		vm_resume(g->vm);
	return rc;
}

/* The donated ranges in nitro-hv's own mapping: PROT_NONE anonymous memory while the
 * enclave runs (on), the memfd again (off). Failing leaves the mapping undefined: the
 * process ends. */
static void withhold(struct enclave_glue *g, const struct enclave_run *r, bool on)
{
	const struct guest_mem *m = &g->vm->vm_mem;
	for (unsigned k = 0; k < r->nholes; k++) {
		uint8_t *at =
		    m->gm_base + r->holes[k].fd_off; /* the parent maps its memfd from 0 */
		void *p = on ? mmap(at, r->holes[k].size, PROT_NONE,
				    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0)
			     : mmap(at, r->holes[k].size, PROT_READ | PROT_WRITE,
				    MAP_SHARED | MAP_NORESERVE | MAP_FIXED, m->gm_fd,
				    (off_t)r->holes[k].fd_off);
		if (p == MAP_FAILED) {
			fprintf(stderr, "%s: enclaves: remapping donated memory: %s\n", util_prog(),
				strerror(errno));
			vm_exit(1);
		}
		if (!on)
			madvise(at, r->holes[k].size, MADV_HUGEPAGE);
	}
}

/* The enclave's pages back to zeros, before the parent gets them: written over through
 * nitro-hv's mapping rather than punched out of the memfd, so that they stay allocated: a
 * punched range is allocated, zeroed and faulted in again, page by page, the next time the
 * parent touches it (its next enclave's huge pages: 5.7-12 s instead of 0.5 s for
 * 256 MiB under the emulated host). */
static void scrub(struct enclave_glue *g, const struct enclave_run *r)
{
	const struct guest_mem *m = &g->vm->vm_mem;
	for (unsigned k = 0; k < r->nholes; k++)
		memset(m->gm_base + r->holes[k].fd_off, 0, r->holes[k].size);
}

/* The enclave's vCPUs in the parent (on): held out of KVM_RUN while it runs, as on AWS
 * where a donated CPU is gone from the parent: root there may online it again
 * (cpuN/online), but its INIT/SIPI stays pending and the bring-up times out; the parent's
 * other vCPUs go on. NE ids are the parent's Linux CPU numbers = APIC ids (acpi.c's MADT)
 * = nitro-hv's vCPU indexes; ne_cmd.c refuses 0 and ids past the parent's count. Off: run
 * again (any INIT sent meanwhile dropped: vm_vcpu_release). */
static void hold_vcpus(struct enclave_glue *g, struct enclave_run *r, bool on)
{
	if (on == r->held)
		return;
	bool kvm = g->vm->vm_fd >= 0;
	if (on && kvm)
		vm_pause(g->vm);
	for (unsigned i = 0; i < r->nvcpus; i++)
		if (on)
			vm_vcpu_hold(g->vm, r->vcpu[i]);
		else
			vm_vcpu_release(g->vm, r->vcpu[i]);
	if (on && kvm)
		vm_resume(g->vm);
	r->held = on;
}

/* The enclave is gone: its ranges scrubbed and given back to the parent (nitro-hv's
 * mapping first, since the scrub may write through it; the cards last, once zero). */
static void release(struct enclave_glue *g, struct enclave_run *r)
{
	char err[256];
	if (r->withheld)
		withhold(g, r, false);
	scrub(g, r);
	r->used = false;
	if (apply(g, err, sizeof(err)) < 0)
		warnmsg("enclave %llu: a card did not take its memory back: %s",
			(unsigned long long)r->uid, err);
	hold_vcpus(g, r, false);
}

/* An enclave that ended on its own, for the notifier to report (under g->lock). The
 * reader never calls the exited callback itself: that takes the NE device's lock, which a
 * START or STOP of another enclave holds while it waits for the reader to bring its
 * spawner's reply (the reader would wait for the device, the device for the reader). */
static void gone_push(struct enclave_glue *g, uint64_t uid)
{
	if (g->ngone == g->gone_cap) {
		unsigned cap = g->gone_cap ? 2 * g->gone_cap : ENCLAVE_MAX;
		uint64_t *n = realloc(g->gone, cap * sizeof(*n));
		if (!n) {
			warnmsg("enclave %llu: out of memory; its slot stays RUNNING until the "
				"parent stops it",
				(unsigned long long)uid);
			return;
		}
		g->gone = n;
		g->gone_cap = cap;
	}
	g->gone[g->ngone++] = uid;
	pthread_cond_broadcast(&g->gone_cond);
}

/* Reports the enclaves that ended on their own (g->exited: the NE device's state and
 * event), in the order they ended, without the glue's lock. */
static void *notifier(void *arg)
{
	struct enclave_glue *g = arg;
	uint64_t batch[ENCLAVE_MAX];
	for (;;) {
		pthread_mutex_lock(&g->lock);
		while (!g->ngone)
			pthread_cond_wait(&g->gone_cond, &g->lock);
		unsigned n = g->ngone < ENCLAVE_MAX ? g->ngone : ENCLAVE_MAX;
		memcpy(batch, g->gone, n * sizeof(batch[0]));
		memmove(g->gone, g->gone + n, (g->ngone - n) * sizeof(batch[0]));
		g->ngone -= n;
		pthread_mutex_unlock(&g->lock);
		for (unsigned i = 0; i < n && g->exited; i++)
			g->exited(g->dev, batch[i]);
	}
	return NULL;
}

static void *reader(void *arg)
{
	struct enclave_glue *g = arg;
	static struct es_msg m;
	for (;;) {
		ssize_t n = recv(g->sock, &m, sizeof(m), 0);
		if (n < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&g->lock);
		if (n < (ssize_t)offsetof(struct es_msg, range)) {
			/* the spawner is gone, and with it every enclave (PDEATHSIG) */
			fprintf(stderr, "%s: the enclave spawner ended\n", util_prog());
			for (unsigned i = 0; i < ENCLAVE_MAX; i++) {
				struct enclave_run *r = &g->run[i];
				if (!r->used)
					continue;
				if (!r->replied) {
					r->replied = true;
					r->status = -EIO;
				} else {
					r->exited = true;
				}
			}
			pthread_cond_broadcast(&g->cond);
			pthread_mutex_unlock(&g->lock);
			return NULL;
		}
		struct enclave_run *r = find(g, m.slot_uid);
		if (r && m.type == ES_REPLY) {
			r->status = m.status;
			r->replied = true;
			pthread_cond_broadcast(&g->cond);
		} else if (r && m.type == ES_EXITED) {
			r->exited = true;
			if (!r->stopping) { /* ended on its own */
				uint64_t uid = r->uid;
				release(g, r);
				gone_push(g, uid);
			}
			pthread_cond_broadcast(&g->cond);
		}
		pthread_mutex_unlock(&g->lock);
	}
}

static int wait_for(struct enclave_glue *g, bool *flag, int seconds)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += seconds;
	while (!*flag)
		if (pthread_cond_timedwait(&g->cond, &g->lock, &t) == ETIMEDOUT)
			return -1;
	return 0;
}

static int send_start(struct enclave_glue *g, const struct ne_slot *s, uint64_t cid,
		      const struct mem_piece *p)
{
	static struct es_msg m;
	memset(&m, 0, sizeof(m));
	m.type = ES_START;
	m.slot_uid = s->uid;
	m.cid = cid;
	m.flags = s->flags & 1 ? ES_FLAG_DEBUG : 0; /* NE_ENCLAVE_DEBUG_MODE */
	m.nvcpus = s->nvcpus;
	m.nranges = s->nranges;
	for (unsigned i = 0; i < s->nranges; i++) {
		m.range[i].off = p[i].mp_fd_off;
		m.range[i].size = p[i].mp_size;
	}
	char cbuf[CMSG_SPACE(sizeof(int))] = {0};
	struct iovec iov = {&m, offsetof(struct es_msg, range) + s->nranges * sizeof(m.range[0])};
	struct msghdr h = {
	    .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&h);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &g->vm->vm_mem.gm_fd, sizeof(int));
	return sendmsg(g->sock, &h, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

static bool cid_taken(struct enclave_glue *g, uint64_t cid)
{
	for (unsigned i = 0; i < ENCLAVE_MAX; i++)
		if (g->run[i].used && g->run[i].cid == cid)
			return true;
	return false;
}

int enclave_glue_start(void *ctx, struct ne_slot *s)
{
	struct enclave_glue *g = ctx;
	static struct enclave_hole taken[ENCLAVE_MAX * NE_MAX_REGIONS];
	static struct mem_piece pieces[NE_MAX_REGIONS];
	char err[256];
	int rc = 0;
	pthread_mutex_lock(&g->lock);
	struct enclave_run *r = NULL;
	unsigned nt = 0;
	for (unsigned i = 0; i < ENCLAVE_MAX; i++) {
		if (!g->run[i].used && !r)
			r = &g->run[i];
		for (unsigned k = 0; g->run[i].used && k < g->run[i].nholes; k++)
			taken[nt++] = g->run[i].holes[k];
	}
	if (find(g, s->uid))
		rc = -EBUSY;
	else if (!r)
		rc = -ENOSPC;
	else if (!s->nvcpus)
		rc = -EINVAL;
	else if (enclave_mem_translate(&g->vm->vm_mem, s->range, s->nranges, taken, nt, pieces, err,
				       sizeof(err)) < 0) {
		warnmsg("enclave %llu: %s", (unsigned long long)s->uid, err);
		rc = -EINVAL;
	}
	uint64_t cid = s->cid;
	if (!rc && !cid)
		for (cid = ENCLAVE_FIRST_CID; cid_taken(g, cid); cid++)
			;
	else if (!rc && cid_taken(g, cid))
		rc = -EADDRINUSE;
	if (rc) {
		pthread_mutex_unlock(&g->lock);
		return rc;
	}
	struct enclave_run cand = {
	    .used = true, .uid = s->uid, .cid = cid, .nholes = s->nranges, .nvcpus = s->nvcpus};
	memcpy(cand.vcpu, s->vcpu, s->nvcpus * sizeof(s->vcpu[0]));
	for (unsigned i = 0; i < s->nranges; i++)
		cand.holes[i] = (struct enclave_hole){.gpa = s->range[i].gpa,
						      .size = s->range[i].size,
						      .fd_off = pieces[i].mp_fd_off};
	if (!slots_fit(g, &cand)) {
		warnmsg("enclave %llu: its %u ranges would need more than the %u KVM memory slots "
			"the parent may use",
			(unsigned long long)s->uid, s->nranges, g->max_slots);
		pthread_mutex_unlock(&g->lock);
		return -NE_ERR_MEM_MAX_REGIONS;
	}
	*r = cand;
	/* The parent loses the ranges before the enclave gets them: its vCPUs, its cards
	 * (each has answered that it no longer maps them) and nitro-hv itself. */
	if (apply(g, err, sizeof(err)) < 0) {
		warnmsg("enclave %llu: %s", (unsigned long long)s->uid, err);
		r->used = false;
		if (apply(g, err, sizeof(err)) < 0)
			warnmsg("enclave %llu: giving the memory back: %s",
				(unsigned long long)s->uid, err);
		pthread_mutex_unlock(&g->lock);
		return -EIO;
	}
	withhold(g, r, true);
	r->withheld = true;
	if (send_start(g, s, cid, pieces) < 0) {
		r->replied = true;
		r->status = -EIO;
	}
	if (wait_for(g, &r->replied, REPLY_TIMEOUT_S) < 0) {
		r->stopping = true;
		struct es_msg stop = {.type = ES_STOP, .slot_uid = s->uid};
		send(g->sock, &stop, offsetof(struct es_msg, range), MSG_NOSIGNAL);
		wait_for(g, &r->replied, 10);
		r->status = -ETIMEDOUT;
	}
	rc = r->status;
	if (rc) {
		release(g, r);
	} else {
		s->cid = cid;
		if (!r->exited)			/* (not already ended and released by the reader) */
			hold_vcpus(g, r, true); /* the enclave runs on them now */
	}
	pthread_mutex_unlock(&g->lock);
	return rc;
}

void enclave_glue_stop(void *ctx, struct ne_slot *s)
{
	struct enclave_glue *g = ctx;
	pthread_mutex_lock(&g->lock);
	struct enclave_run *r = find(g, s->uid);
	if (r && r->replied && !r->status) {
		r->stopping = true;
		struct es_msg m = {.type = ES_STOP, .slot_uid = s->uid};
		send(g->sock, &m, offsetof(struct es_msg, range), MSG_NOSIGNAL);
		while (wait_for(g, &r->exited, 30) < 0)
			warnmsg("enclave %llu: still waiting for it to end",
				(unsigned long long)s->uid);
		release(g, r);
	}
	pthread_mutex_unlock(&g->lock);
}

int enclave_glue_add_card(struct enclave_glue *g, int (*sync)(void *, char *, size_t), void *dev)
{
	if (g->ncards >= ENCLAVE_MAX_CARDS)
		return -1;
	g->cards[g->ncards++] = (struct enclave_card){sync, dev};
	return 0;
}

struct ne_ops enclave_glue_ops(struct enclave_glue *g)
{
	return (struct ne_ops){.start = enclave_glue_start, .stop = enclave_glue_stop, .ctx = g};
}

int enclave_glue_init(struct enclave_glue *g, struct vm *vm, int spawner_sock,
		      void (*exited)(struct ne_dev *, uint64_t), struct ne_dev *dev, char *err,
		      size_t errlen)
{
	memset(g, 0, sizeof(*g));
	g->vm = vm;
	g->sock = spawner_sock;
	g->exited = exited;
	g->dev = dev;
	g->nslots = vm->vm_mem.gm_nregions; /* vm_create's slots 0..n-1 */
	/* KVM's own limit, less the TPM's slot (enclave_mem_slot_id skips it) */
	g->max_slots = ENCLAVE_MAX_SLOTS;
	int kvm_max =
	    vm->vm_fd >= 0 ? ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_NR_MEMSLOTS) : 0;
	if (kvm_max > 1 && (unsigned)kvm_max - 1 < g->max_slots)
		g->max_slots = (unsigned)kvm_max - 1;
	pthread_mutex_init(&g->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_cond_init(&g->cond, &ca);
	g->zero = mmap(NULL, vm->vm_mem.gm_size, PROT_READ,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g->zero == MAP_FAILED)
		RETURN_ERR(-1, "enclaves: zero mapping: %s", strerror(errno));
	pthread_cond_init(&g->gone_cond, NULL);
	if (pthread_create(&g->reader, NULL, reader, g) != 0)
		RETURN_ERR(-1, "enclaves: cannot start the spawner's reader thread");
	if (pthread_create(&g->notifier, NULL, notifier, g) != 0)
		RETURN_ERR(-1, "enclaves: cannot start the exit notifier thread");
	return 0;
}
