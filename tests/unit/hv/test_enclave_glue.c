/* Attack tests of the START path as a hostile parent guest drives it: the NE PCI device
 * (src/hv/ne_pci.c) in front of the real enclave glue (src/hv/enclave.c) over a real memfd,
 * with a fake spawner on the glue's socket (it checks what a real one would be asked to
 * start, answers, and can end an enclave on its own). No KVM: the glue plans the parent's
 * memory slots without applying them (vm_fd -1).
 *
 * - memslot exhaustion: two slots of 256 scattered 2 MiB ranges each would need more than
 *   the KVM slots the parent may use; the second START is refused (MEM_MAX_REGIONS) instead
 *   of ending nitro-hv, and goes through once the first enclave is stopped;
 * - the TPM's KVM slot id is never one the glue rewrites;
 * - ENABLE 0, SLOT_FREE and STOP of a running enclave: the enclave is stopped, its pages
 *   are scrubbed (a secret the enclave wrote reads back as zeros) and given back;
 * - an enclave that ends on its own: STOPPED, the event vector, pages scrubbed;
 * - a START whose enclave refuses its EIF: the ranges come back to the parent at once;
 * - four vCPU threads sending random commands at once (the device lock) while enclaves end
 *   on their own: no memory is ever given to two live enclaves, and afterwards every range
 *   is back with the parent.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <linux/nitro_enclaves.h>

#include "boot/memory.h"
#include "hv/enclave.h"
#include "hv/enclave_mem.h"
#include "hv/enclave_spawn.h"
#include "hv/mmio.h"
#include "hv/ne_cmd.h"
#include "hv/ne_pci.h"
#include "hv/pci.h"
#include "hv/tpm.h"
#include "hv/vm.h"
#include "lib/le.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define NCPUS 8
#define SECRET 0x5ec7e75ec7e75ec7ull

/* ---- the fake spawner ---- */

struct live {
	bool used;
	uint64_t uid;
	unsigned n;
	uint64_t off[NE_MAX_REGIONS], size[NE_MAX_REGIONS];
};

struct spawner {
	int sock;
	pthread_t thread;
	pthread_mutex_t lock;
	uint8_t *mem; /* the parent's memfd mapping: what the enclave would map */
	struct live live[ENCLAVE_MAX];
	unsigned starts, overlaps;
	int reply; /* the status START gets */
	bool hold; /* START's reply waits for sp_reply_held */
	uint64_t held;
};

static void sp_send(struct spawner *s, uint32_t type, uint64_t uid, int32_t status)
{
	struct es_msg m = {.type = type, .slot_uid = uid, .status = status};
	assert_true(send(s->sock, &m, offsetof(struct es_msg, range), MSG_NOSIGNAL) > 0);
}

static bool ranges_overlap(const struct live *a, const struct es_msg *m)
{
	for (unsigned i = 0; i < a->n; i++)
		for (unsigned k = 0; k < m->nranges; k++)
			if (a->off[i] < m->range[k].off + m->range[k].size &&
			    m->range[k].off < a->off[i] + a->size[i])
				return true;
	return false;
}

static void *spawner_main(void *arg)
{
	struct spawner *s = arg;
	static struct es_msg m;
	for (;;) {
		char cbuf[CMSG_SPACE(sizeof(int))];
		struct iovec iov = {&m, sizeof(m)};
		struct msghdr h = {.msg_iov = &iov,
				   .msg_iovlen = 1,
				   .msg_control = cbuf,
				   .msg_controllen = sizeof(cbuf)};
		ssize_t r = recvmsg(s->sock, &h, MSG_CMSG_CLOEXEC);
		if (r <= 0)
			return NULL;
		struct cmsghdr *cm = CMSG_FIRSTHDR(&h);
		int memfd = -1; /* the parent's memfd, as the enclave's nitro-hv gets it */
		if (cm && cm->cmsg_type == SCM_RIGHTS)
			memcpy(&memfd, CMSG_DATA(cm), sizeof(int));
		pthread_mutex_lock(&s->lock);
		if (m.type == ES_START) {
			s->starts++;
			struct live *l = NULL;
			for (unsigned i = 0; i < ENCLAVE_MAX; i++) {
				if (s->live[i].used && ranges_overlap(&s->live[i], &m))
					s->overlaps++;
				if (!s->live[i].used && !l)
					l = &s->live[i];
			}
			int st = s->reply;
			if (!st && l) {
				*l = (struct live){.used = true, .uid = m.slot_uid, .n = m.nranges};
				for (unsigned i = 0; i < m.nranges; i++) {
					l->off[i] = m.range[i].off;
					l->size[i] = m.range[i].size;
					/* the enclave writes a secret into each of its pages,
					 * through its own view of the memfd (the parent's
					 * nitro-hv no longer maps them) */
					uint64_t secret = SECRET;
					if (pwrite(memfd, &secret, 8, (off_t)m.range[i].off) != 8)
						s->overlaps++; /* fails the test */
				}
			}
			if (s->hold && l)
				s->held = m.slot_uid; /* the enclave is still loading */
			else
				sp_send(s, ES_REPLY, m.slot_uid, l ? st : -ENOSPC);
			if (memfd >= 0)
				close(memfd);
		} else if (m.type == ES_STOP) {
			for (unsigned i = 0; i < ENCLAVE_MAX; i++)
				if (s->live[i].used && s->live[i].uid == m.slot_uid) {
					s->live[i].used = false;
					sp_send(s, ES_EXITED, m.slot_uid, 9 /* SIGKILL */);
				}
		}
		pthread_mutex_unlock(&s->lock);
	}
}

/* The enclave of uid ends on its own (powered off). */
static void sp_exit(struct spawner *s, uint64_t uid)
{
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < ENCLAVE_MAX; i++)
		if (s->live[i].used && s->live[i].uid == uid) {
			s->live[i].used = false;
			sp_send(s, ES_EXITED, uid, 0);
		}
	pthread_mutex_unlock(&s->lock);
}

/* The held START's enclave is ready now. */
static void sp_reply_held(struct spawner *s)
{
	pthread_mutex_lock(&s->lock);
	s->hold = false;
	sp_send(s, ES_REPLY, s->held, 0);
	pthread_mutex_unlock(&s->lock);
}

static unsigned sp_starts(struct spawner *s)
{
	pthread_mutex_lock(&s->lock);
	unsigned n = s->starts;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static unsigned sp_nlive(struct spawner *s)
{
	unsigned n = 0;
	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < ENCLAVE_MAX; i++)
		n += s->live[i].used;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- the fixture: a parent VM of 3 GiB with the NE device and the glue ---- */

struct fix {
	struct vm vm;
	struct pci_bus bus;
	struct ne_dev d;
	struct enclave_glue g;
	struct spawner sp;
	uint64_t bar;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	char err[256];
	int sv[2];
	if (!f || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	f->vm.vm_fd = f->vm.vm_kvm_fd = -1;
	f->vm.vm_ncpus = NCPUS;
	f->vm.vm_vcpus = calloc(NCPUS, sizeof(struct vcpu)); /* no threads: the held flags */
	if (!f->vm.vm_vcpus)
		return -1;
	mmio_init(&f->vm.vm_mmio);
	if (mem_create(&f->vm.vm_mem, 3 * GiB) != 0)
		return -1;
	if (pci_init(&f->bus, &f->vm.vm_mmio) != 0 ||
	    ne_pci_create(&f->d, &f->vm, &f->bus, err, sizeof(err)) != 0)
		return -1;
	f->sp.sock = sv[1];
	f->sp.mem = f->vm.vm_mem.gm_base;
	pthread_mutex_init(&f->sp.lock, NULL);
	if (pthread_create(&f->sp.thread, NULL, spawner_main, &f->sp) != 0)
		return -1;
	if (enclave_glue_init(&f->g, &f->vm, sv[0], ne_enclave_exited, &f->d, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	struct ne_ops ops = enclave_glue_ops(&f->g);
	ne_pci_set_ops(&f->d, &ops);
	/* the driver's probe */
	uint8_t b[4] = {0};
	le16_put(b, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	pci_ecam_access(&f->bus, (uint64_t)f->d.nd_pci.pd_slot << 15 | PCI_COMMAND, b, 2, true);
	f->bar = f->d.nd_pci.pd_bar_addr;
	ne_pci_bar_access(&f->d, NE_R_ENABLE, &(uint8_t){0}, 1, true);
	ne_pci_bar_access(&f->d, NE_R_VERSION, (uint8_t[]){1, 0}, 2, true);
	ne_pci_bar_access(&f->d, NE_R_ENABLE, &(uint8_t){1}, 1, true);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	(void)state; /* the glue's reader thread lives on with the process */
	return 0;
}

/* One command the way the driver sends it: SEND_DATA, COMMAND, RECV_DATA. */
static struct ne_reply cmd(struct fix *f, uint32_t type, uint64_t a0, uint64_t a1, uint64_t a2)
{
	uint8_t req[24];
	le64_put(req, a0);
	le64_put(req + 8, a1);
	le64_put(req + 16, a2);
	for (unsigned i = 0; i < 3; i++)
		ne_pci_bar_access(&f->d, NE_R_SEND + 8 * i, req + 8 * i, 8, true);
	uint8_t t[4];
	le32_put(t, type);
	ne_pci_bar_access(&f->d, NE_R_COMMAND, t, 4, true);
	uint8_t out[NE_REPLY_SIZE];
	for (unsigned i = 0; i < NE_REPLY_SIZE; i += 8)
		ne_pci_bar_access(&f->d, NE_R_RECV + i, out + i, 8, false);
	struct ne_reply r;
	ne_reply_decode(out, &r);
	return r;
}

static uint64_t alloc_slot(struct fix *f)
{
	struct ne_reply r = cmd(f, NE_CMD_SLOT_ALLOC, 0, 0, 0);
	assert_int_equal(r.rc, 0);
	return r.slot_uid;
}

/* n ranges of 2 MiB every 4 MiB from gpa (no two adjacent: each its own KVM slot pair). */
static void add_scattered(struct fix *f, uint64_t uid, uint64_t gpa, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_MEM, uid, gpa + 4 * MiB * i, 2 * MiB).rc,
				 0);
}

static uint64_t peek(struct fix *f, uint64_t gpa)
{
	uint64_t v;
	/* the memfd itself at that gpa (< 3 GiB): nitro-hv's own mapping of a running
	 * enclave's range is PROT_NONE (memiso) */
	assert_int_equal(pread(f->vm.vm_mem.gm_fd, &v, 8, (off_t)gpa), 8);
	return v;
}

static void wait_state(struct fix *f, uint64_t uid, uint16_t state)
{
	for (int i = 0; i < 2000 && cmd(f, NE_CMD_SLOT_INFO, uid, 0, 0).state != state; i++)
		usleep(1000);
	assert_int_equal(cmd(f, NE_CMD_SLOT_INFO, uid, 0, 0).state, state);
}

/* ---- the attacks ---- */

static void test_memslot_storm_refused_not_fatal(void **state)
{
	struct fix *f = *state;
	uint64_t a = alloc_slot(f), b = alloc_slot(f);
	add_scattered(f, a, 64 * MiB, NE_MAX_REGIONS);
	add_scattered(f, b, 1152 * MiB, NE_MAX_REGIONS);
	assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_VCPU, a, 1, 0).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_VCPU, b, 2, 0).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_START, a, 0, 0).rc, 0);
	/* 1 + 2 x 256 slots with a donated; b's 512 more pass ENCLAVE_MAX_SLOTS */
	assert_true(f->g.nslots > 2 * NE_MAX_REGIONS);
	struct ne_reply r = cmd(f, NE_CMD_ENCLAVE_START, b, 0, 0);
	assert_int_equal(r.rc, -NE_ERR_MEM_MAX_REGIONS);
	assert_int_equal(cmd(f, NE_CMD_SLOT_INFO, b, 0, 0).state, NE_STATE_INIT);
	assert_int_equal(f->sp.starts, 1); /* never asked for b */
	/* a's secret is unreachable once a stops: scrubbed */
	assert_int_equal(peek(f, 64 * MiB), SECRET);
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_STOP, a, 0, 0).rc, 0);
	assert_int_equal(peek(f, 64 * MiB), 0);
	assert_int_equal(f->g.nslots, f->vm.vm_mem.gm_nregions);
	/* with a's ranges back, b fits */
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_START, b, 0, 0).rc, 0);
	assert_int_equal(f->sp.starts, 2);
}

static void test_slot_ids_skip_the_tpm(void **state)
{
	(void)state;
	uint32_t prev = 0;
	for (unsigned i = 0; i < ENCLAVE_MAX_SLOTS; i++) {
		uint32_t id = enclave_mem_slot_id(i);
		assert_int_not_equal(id, TPM_KVM_SLOT);
		assert_true(i == 0 || id > prev);
		prev = id;
	}
}

/* Whether the parent's vCPU i is held out of KVM_RUN (an enclave runs on it). */
static bool held(struct fix *f, unsigned i)
{
	return atomic_load(&f->vm.vm_vcpus[i].vc_held);
}

static uint64_t started(struct fix *f, uint64_t gpa, uint32_t vcpu)
{
	uint64_t uid = alloc_slot(f);
	assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_MEM, uid, gpa, 64 * MiB).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_VCPU, uid, vcpu, 0).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_START, uid, 0, 0).rc, 0);
	assert_int_equal(peek(f, gpa), SECRET);
	assert_true(held(f, vcpu));
	return uid;
}

static void test_enable0_slot_free_stop_scrub(void **state)
{
	struct fix *f = *state;
	uint64_t a = started(f, 128 * MiB, 1), b = started(f, 256 * MiB, 2),
		 c = started(f, 512 * MiB, 3);
	assert_int_equal(sp_nlive(&f->sp), 3);
	assert_false(held(f, 0));
	assert_false(vm_vcpu_hold(&f->vm, 0)); /* never the boot vCPU */
	assert_false(vm_vcpu_hold(&f->vm, NCPUS));
	/* SLOT_FREE of a running slot */
	assert_int_equal(cmd(f, NE_CMD_SLOT_FREE, a, 0, 0).rc, 0);
	assert_int_equal(peek(f, 128 * MiB), 0);
	assert_false(held(f, 1));
	assert_true(held(f, 2) && held(f, 3));
	assert_int_equal(cmd(f, NE_CMD_SLOT_INFO, a, 0, 0).rc, -EINVAL);
	/* STOP twice: the second is a no-op */
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_STOP, b, 0, 0).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_STOP, b, 0, 0).rc, 0);
	assert_int_equal(peek(f, 256 * MiB), 0);
	assert_false(held(f, 2));
	assert_true(held(f, 3));
	/* b's memory can't be added to another slot while b holds it, even stopped */
	uint64_t d = alloc_slot(f);
	assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_MEM, d, 256 * MiB, 2 * MiB).rc,
			 -NE_ERR_MEM_REGION_ALREADY_USED);
	/* ENABLE 0 with c running: every slot ends and is freed */
	ne_pci_bar_access(&f->d, NE_R_ENABLE, &(uint8_t){0}, 1, true);
	assert_int_equal(peek(f, 512 * MiB), 0);
	assert_false(held(f, 3));
	assert_int_equal(sp_nlive(&f->sp), 0);
	assert_int_equal(f->g.nslots, f->vm.vm_mem.gm_nregions);
	/* commands while disabled are dropped; re-enabled, the table is empty */
	ne_pci_bar_access(&f->d, NE_R_ENABLE, &(uint8_t){1}, 1, true);
	assert_int_equal(cmd(f, NE_CMD_SLOT_COUNT, 0, 0, 0).slot_count, 0);
	assert_int_equal(cmd(f, NE_CMD_SLOT_INFO, c, 0, 0).rc, -EINVAL);
}

static void test_enclave_exits_on_its_own(void **state)
{
	struct fix *f = *state;
	uint64_t a = started(f, 128 * MiB, 1);
	unsigned long events = f->d.nd_msis[NE_VEC_EVENT] + ((f->d.nd_pba >> NE_VEC_EVENT) & 1);
	sp_exit(&f->sp, a);
	wait_state(f, a, NE_STATE_STOPPED);
	assert_int_equal(peek(f, 128 * MiB), 0);
	assert_false(held(f, 1));
	assert_int_equal(f->d.nd_events, 1);
	assert_true(f->d.nd_msis[NE_VEC_EVENT] + ((f->d.nd_pba >> NE_VEC_EVENT) & 1) > events);
	/* STOP and SLOT_FREE after that: nothing left to stop */
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_STOP, a, 0, 0).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_SLOT_FREE, a, 0, 0).rc, 0);
	assert_int_equal(f->g.nslots, f->vm.vm_mem.gm_nregions);
}

/* A START of b under way (the device's lock held, the glue waiting for the spawner) while a
 * ends on its own: the glue's reader must still bring b's reply (it used to wait for the
 * device's lock to report a's end: START then hung for its 120 s timeout). */
struct start_call {
	struct fix *f;
	uint64_t uid;
	struct ne_reply r;
};

static void *start_main(void *arg)
{
	struct start_call *c = arg;
	c->r = cmd(c->f, NE_CMD_ENCLAVE_START, c->uid, 0, 0);
	return NULL;
}

static void test_exit_while_another_starts(void **state)
{
	struct fix *f = *state;
	uint64_t a = started(f, 128 * MiB, 1);
	uint64_t b = alloc_slot(f);
	add_scattered(f, b, 512 * MiB, 40);
	assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_VCPU, b, 2, 0).rc, 0);
	unsigned before = sp_starts(&f->sp);
	f->sp.hold = true;
	struct start_call c = {f, b, {0}};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, start_main, &c), 0);
	for (int i = 0; i < 5000 && sp_starts(&f->sp) == before; i++)
		usleep(1000);
	assert_int_equal(sp_starts(&f->sp), before + 1);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sp_exit(&f->sp, a);    /* a ends while b's START waits */
	usleep(200 * 1000);    /* the reader has taken a's end by now */
	sp_reply_held(&f->sp); /* b's enclave is ready */
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_int_equal(c.r.rc, 0);
	assert_true(t1.tv_sec - t0.tv_sec < 10); /* not the glue's 120 s timeout */
	assert_int_equal(cmd(f, NE_CMD_SLOT_INFO, b, 0, 0).state, NE_STATE_RUNNING);
	assert_true(held(f, 2));
	wait_state(f, a, NE_STATE_STOPPED); /* a's end reported once the device is free */
	assert_false(held(f, 1));
	assert_int_equal(f->d.nd_events, 1);
	assert_int_equal(peek(f, 128 * MiB), 0);
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_STOP, b, 0, 0).rc, 0);
	assert_false(held(f, 2));
	assert_int_equal(f->g.nslots, f->vm.vm_mem.gm_nregions);
}

static void test_refused_start_gives_memory_back(void **state)
{
	struct fix *f = *state;
	f->sp.reply = -ENOEXEC; /* the enclave refused its EIF */
	uint64_t a = alloc_slot(f);
	add_scattered(f, a, 64 * MiB, 40);
	assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_VCPU, a, 1, 0).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_START, a, 0, 0).rc, -ENOEXEC);
	assert_int_equal(cmd(f, NE_CMD_SLOT_INFO, a, 0, 0).state, NE_STATE_INIT);
	assert_int_equal(f->g.nslots, f->vm.vm_mem.gm_nregions);
	assert_false(held(f, 1)); /* never held for a refused START */
	f->sp.reply = 0;
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_START, a, 0, 0).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_SLOT_INFO, a, 0, 0).state, NE_STATE_RUNNING);
	assert_true(held(f, 1));
}

/* ---- four vCPUs at once ---- */

struct racer {
	struct fix *f;
	unsigned seed;
};

static atomic_bool racing;

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	struct fix *f = r->f;
	static const uint32_t types[] = {NE_CMD_SLOT_ALLOC,    NE_CMD_SLOT_ADD_MEM,
					 NE_CMD_SLOT_ADD_MEM,  NE_CMD_SLOT_ADD_VCPU,
					 NE_CMD_ENCLAVE_START, NE_CMD_ENCLAVE_STOP,
					 NE_CMD_SLOT_FREE,     NE_CMD_SLOT_INFO,
					 NE_CMD_NEXT_SLOT,     NE_CMD_SLOT_ADD_BULK_VCPUS};
	while (atomic_load(&racing)) {
		uint32_t t = types[rand_r(&r->seed) % (sizeof(types) / sizeof(types[0]))];
		uint64_t uid = 1 + rand_r(&r->seed) % 24;
		uint64_t a1 = 0, a2 = 0;
		if (t == NE_CMD_SLOT_ADD_MEM) {
			a1 = (uint64_t)(rand_r(&r->seed) % 48) * 32 * MiB;
			a2 = (uint64_t)(1 + rand_r(&r->seed) % 16) * 2 * MiB;
		} else if (t == NE_CMD_SLOT_ADD_VCPU || t == NE_CMD_SLOT_ADD_BULK_VCPUS) {
			a1 = rand_r(&r->seed) % NCPUS;
		}
		cmd(f, t, uid, a1, a2);
		if (rand_r(&r->seed) % 16 == 0)
			sp_exit(&f->sp, uid);
	}
	return NULL;
}

static void test_four_vcpus_at_once(void **state)
{
	struct fix *f = *state;
	pthread_t t[4];
	struct racer r[4];
	/* One enclave runs before the race starts, so that the racers' STOP, SLOT_FREE and
	 * own exits always meet a live enclave (the random commands alone start one only
	 * now and then: four threads interleave each other's SEND_DATA writes). */
	uint64_t a = alloc_slot(f);
	add_scattered(f, a, 2 * GiB, 32);
	assert_int_equal(cmd(f, NE_CMD_SLOT_ADD_VCPU, a, NCPUS - 1, 0).rc, 0);
	assert_int_equal(cmd(f, NE_CMD_ENCLAVE_START, a, 0, 0).rc, 0);
	atomic_store(&racing, true);
	for (unsigned i = 0; i < 4; i++) {
		r[i] = (struct racer){f, 1234 + i};
		assert_int_equal(pthread_create(&t[i], NULL, racer_main, &r[i]), 0);
	}
	usleep(1500 * 1000);
	atomic_store(&racing, false);
	for (unsigned i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	assert_true(f->sp.starts > 0);
	assert_int_equal(f->sp.overlaps, 0); /* no page ever in two live enclaves */
	ne_pci_bar_access(&f->d, NE_R_ENABLE, &(uint8_t){0}, 1, true);
	/* exits the racers announced may still be on their way to the glue */
	for (int i = 0; i < 2000 && f->g.nslots != f->vm.vm_mem.gm_nregions; i++)
		usleep(1000);
	assert_int_equal(sp_nlive(&f->sp), 0);
	assert_int_equal(f->g.nslots, f->vm.vm_mem.gm_nregions);
	for (unsigned i = 0; i < ENCLAVE_MAX; i++)
		assert_false(f->g.run[i].used);
	for (unsigned i = 0; i < NCPUS; i++)
		assert_false(held(f, i));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_memslot_storm_refused_not_fatal, setup, teardown),
	    cmocka_unit_test(test_slot_ids_skip_the_tpm),
	    cmocka_unit_test_setup_teardown(test_enable0_slot_free_stop_scrub, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_enclave_exits_on_its_own, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exit_while_another_starts, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused_start_gives_memory_back, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_four_vcpus_at_once, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
