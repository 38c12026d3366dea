/* cmocka tests of pausing the NVMe card for a crash-consistent snapshot
 * (src/cards/nvme/pause.c, and the control socket src/cards/bdev/blkctl.c through the
 * front's ops, nvme_front_ctl_ops): on heap guest memory and the io_uring file back end
 * on a real file, so that a write stays in flight until the card's loop takes its
 * completion. While paused, a command the guest submits is not started (its SQ head does
 * not move, the file does not change), the admin queue is served, the pause is reported
 * only once the write in flight completed and the flush ran, and resume (or a client
 * that goes away) starts the waiting command. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cards/bdev/blkctl.h"
#include "cards/lib/loop.h"
#include "cards/nvme/front.h"
#include "cards/nvme/pause.h"
#include "nvmetest.h"

#define SIZE (16u << 20)
#define BUF_A (NT_DATA + 0x8000) /* one 4 KiB data page each */
#define BUF_B (NT_DATA + 0x9000)
#define BUF_C (NT_DATA + 0xa000)

struct pt {
	struct nt t;
	int file; /* the back end's file, to read what reached it */
	char dir[64];
};

/* The controller of nvmetest.h with its null back end swapped for a file (io_uring: a
 * completion waits until the loop, or the test, takes it) and one I/O queue pair. */
static int setup(void **state)
{
	static struct pt p;
	char err[256], path[96];
	if (nt_init(&p.t, SIZE, false))
		return -1;
	bdev_close(&p.t.b);
	snprintf(p.dir, sizeof(p.dir), "/var/tmp/nvme-pause-XXXXXX");
	if (!mkdtemp(p.dir))
		return -1;
	snprintf(path, sizeof(path), "%s/vol", p.dir);
	p.file = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (p.file < 0 || ftruncate(p.file, SIZE) < 0 ||
	    bdev_file_open(&p.t.b, p.file, 0, SIZE, "pause-test", err, sizeof(err)))
		return -1;
	unlink(path);
	struct nt *t = &p.t;
	uint8_t c[64];
	nt_cmd(c, 0x09, 0, 0, 0); /* Set Features: number of queues, 1 pair */
	c[40] = 0x07;
	if (nt_post(t, 0, c, NULL))
		return -1;
	t->sq[1] = NT_DATA + 0x4000;
	t->cq[1] = NT_DATA + 0x6000;
	nt_cmd(c, 0x05, 0, t->cq[1], 0); /* Create I/O CQ 1, interrupts on, vector 1 */
	le32_put(c + 40, (NT_QD - 1) << 16 | 1);
	le32_put(c + 44, 3 | 1u << 16);
	if (nt_post(t, 0, c, NULL))
		return -1;
	nt_cmd(c, 0x01, 0, t->sq[1], 0); /* Create I/O SQ 1 on CQ 1 */
	le32_put(c + 40, (NT_QD - 1) << 16 | 1);
	le32_put(c + 44, 1 | 1u << 16);
	if (nt_post(t, 0, c, NULL))
		return -1;
	*state = &p;
	return 0;
}

static int teardown(void **state)
{
	struct pt *p = *state;
	nt_fini(&p->t);
	close(p->file);
	rmdir(p->dir);
	return 0;
}

/* Submits a 4 KiB write of byte v at LBA slba from buf on SQ 1 and rings (its
 * completion, if any, is for next_cqe). */
static void submit4k(struct nt *t, uint64_t slba, uint64_t buf, uint8_t v)
{
	uint8_t c[64];
	memset(nt_ptr(t, buf), v, 4096);
	nt_cmd(c, 0x01, 1, buf, 0);
	le64_put(c + 40, slba);
	le32_put(c + 48, 7);
	le16_put(c + 2, ++t->cid);
	memcpy(nt_ptr(t, t->sq[1]) + t->tail[1] * 64, c, 64);
	t->tail[1] = (t->tail[1] + 1) % NT_QD;
	t->sh.s_db[2] = t->tail[1];
	nvme_kick(&t->c, 1);
}

/* The next completion of CQ q (-1: none yet). */
static int next_cqe(struct nt *t, unsigned q)
{
	uint8_t *e = nt_ptr(t, t->cq[q]) + t->head[q] * 16;
	uint16_t st = le16_get(e + 14);
	if ((st & 1) != t->phase[q])
		return -1;
	if (++t->head[q] == NT_QD) {
		t->head[q] = 0;
		t->phase[q] ^= 1;
	}
	t->sh.s_db[2 * q + 1] = t->head[q];
	return st >> 1;
}

/* The first byte of the file at LBA slba. */
static int on_disk(struct pt *p, uint64_t slba)
{
	uint8_t b;
	return pread(p->file, &b, 1, (off_t)(slba * NVME_LBA)) == 1 ? b : -1;
}

/* Waits for the back end's completions and hands them to the card. */
static void complete_all(struct nt *t)
{
	for (int i = 0; i < 500 && t->b.bd_inflight; i++) {
		struct pollfd pfd = {.fd = t->b.bd_event_fd, .events = POLLIN};
		poll(&pfd, 1, 10);
		t->b.bd_ops->bo_event(&t->b);
	}
	nvme_flush_irqs(&t->c);
}

static void quiet_count(void *opaque)
{
	++*(int *)opaque;
}

static void test_pause_waits_for_io_in_flight(void **state)
{
	struct pt *p = *state;
	struct nt *t = &p->t;
	int quiet = 0;
	/* A write in flight: the file back end holds its completion until it is taken. */
	submit4k(t, 0, BUF_A, 0xa1);
	assert_int_equal(next_cqe(t, 1), -1);
	assert_int_equal(t->c.c_inflight, 1);
	nvme_pause_io(&t->c, quiet_count, &quiet);
	assert_int_equal(quiet, 0); /* not quiet while the write is in flight */
	/* New guest I/O is not started while paused: the SQ head stays, nothing in flight
	 * is added, the file does not change. */
	submit4k(t, 8, BUF_B, 0xb2);
	assert_int_equal(next_cqe(t, 1), -1);
	assert_int_equal(t->c.c_inflight, 1);
	assert_int_equal(t->c.c_sq[1].s_head, 1);
	/* The admin queue is served meanwhile (Get Features: volatile write cache). */
	uint8_t c[64];
	uint32_t dw0 = 0;
	nt_cmd(c, 0x0a, 0, 0, 0);
	c[40] = 0x06;
	assert_int_equal(nt_post(t, 0, c, &dw0), 0);
	assert_int_equal(dw0, 1);
	/* The write in flight completes: its completion is posted, then quiet runs, once. */
	complete_all(t);
	assert_int_equal(next_cqe(t, 1), 0);
	assert_int_equal(quiet, 1);
	assert_int_equal(on_disk(p, 0), 0xa1);
	assert_int_equal(on_disk(p, 8), 0);
	assert_int_equal(next_cqe(t, 1), -1);
	nvme_kick(&t->c, 1); /* a doorbell while paused starts nothing either */
	assert_int_equal(t->c.c_sq[1].s_head, 1);
	assert_int_equal(t->c.c_inflight, 0);
	/* Resume: the command that waited starts and completes. */
	nvme_unpause_io(&t->c);
	assert_int_equal(t->c.c_sq[1].s_head, 2);
	complete_all(t);
	assert_int_equal(next_cqe(t, 1), 0);
	assert_int_equal(on_disk(p, 8), 0xb2);
	assert_int_equal(quiet, 1);
	/* Paused with nothing in flight: quiet at once. */
	nvme_pause_io(&t->c, quiet_count, &quiet);
	assert_int_equal(quiet, 2);
	nvme_unpause_io(&t->c);
	assert_false(t->c.c_paused);
}

static void test_controller_reset_keeps_the_pause(void **state)
{
	struct pt *p = *state;
	struct nt *t = &p->t;
	int quiet = 0;
	nvme_pause_io(&t->c, quiet_count, &quiet);
	assert_int_equal(quiet, 1);
	/* The guest's driver resets the controller (CC.EN 1 -> 0 -> 1) and makes its I/O
	 * queues again: still paused. */
	nvme_disable(&t->c);
	struct nvw_enable e = {.e_cc = 1 | 6u << 16 | 4u << 20,
			       .e_aqa = (NT_QD - 1) << 16 | (NT_QD - 1),
			       .e_asq = NT_ASQ,
			       .e_acq = NT_ACQ};
	memset(t->tail, 0, sizeof(t->tail));
	memset(t->head, 0, sizeof(t->head));
	for (unsigned i = 0; i < NVME_MAX_QIDS; i++)
		t->phase[i] = 1;
	memset(nt_ptr(t, NT_ACQ), 0, 4096);
	memset(nt_ptr(t, t->cq[1]), 0, 4096);
	assert_true(nvme_enable(&t->c, &e));
	uint8_t c[64];
	nt_cmd(c, 0x09, 0, 0, 0);
	c[40] = 0x07;
	assert_int_equal(nt_post(t, 0, c, NULL), 0);
	nt_cmd(c, 0x05, 0, t->cq[1], 0);
	le32_put(c + 40, (NT_QD - 1) << 16 | 1);
	le32_put(c + 44, 3 | 1u << 16);
	assert_int_equal(nt_post(t, 0, c, NULL), 0);
	nt_cmd(c, 0x01, 0, t->sq[1], 0);
	le32_put(c + 40, (NT_QD - 1) << 16 | 1);
	le32_put(c + 44, 1 | 1u << 16);
	assert_int_equal(nt_post(t, 0, c, NULL), 0);
	submit4k(t, 16, BUF_A, 0xc3);
	assert_int_equal(next_cqe(t, 1), -1);
	assert_int_equal(t->c.c_inflight, 0);
	assert_int_equal(on_disk(p, 16), 0);
	nvme_unpause_io(&t->c);
	complete_all(t);
	assert_int_equal(next_cqe(t, 1), 0);
	assert_int_equal(on_disk(p, 16), 0xc3);
}

/* ---- the control socket on the NVMe card ---- */

struct sock_env {
	struct loop l;
	struct nvme_front f;
	struct blkctl ctl;
	int hv[2]; /* the front's hypervisor connection: never used */
	char path[96];
};

/* The front on the test's controller (its loop takes the back end's completions), the
 * control socket with the front's ops. */
static void sock_start(struct pt *p, struct sock_env *s)
{
	char err[256];
	struct nt *t = &p->t;
	assert_int_equal(loop_init(&s->l, false, err, sizeof(err)), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, s->hv), 0);
	assert_int_equal(nvme_front_start(&s->f, &t->c, &s->l, NULL, s->hv[0], err, sizeof(err)),
			 0);
	t->c.c_mem = &t->gm; /* the test's memory and doorbells, not a hypervisor's */
	t->c.c_shared = &t->sh;
	snprintf(s->path, sizeof(s->path), "%s/ctl", p->dir);
	blkctl_init(&s->ctl);
	assert_int_equal(blkctl_open(&s->ctl, &nvme_front_ctl_ops, &s->f, &t->b, &s->l, s->path,
				     err, sizeof(err)),
			 0);
}

static void sock_stop(struct sock_env *s)
{
	blkctl_close(&s->ctl);
	nvme_front_stop(&s->f);
	close(s->hv[1]);
	loop_fini(&s->l);
}

static int client(struct sock_env *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void say(int fd, const char *msg)
{
	assert_int_equal(write(fd, msg, strlen(msg)), (ssize_t)strlen(msg));
}

/* Runs the card's loop until fd has a line (or ~5 s); the line, or "" (or "EOF"). */
static const char *answer(struct sock_env *s, int fd)
{
	static char line[128];
	size_t n = 0;
	for (int i = 0; i < 500; i++) {
		loop_run_once(&s->l, 10);
		ssize_t r = read(fd, line + n, sizeof(line) - 1 - n);
		if (r == 0)
			return n ? line : "EOF";
		if (r > 0)
			n += (size_t)r;
		line[n] = 0;
		char *nl = strchr(line, '\n');
		if (nl) {
			*nl = 0;
			return line;
		}
	}
	return "";
}

/* Runs the card's loop for about ms milliseconds. */
static void run_for(struct sock_env *s, int ms)
{
	for (int i = 0; i < ms / 10; i++)
		loop_run_once(&s->l, 10);
}

static void test_control_socket(void **state)
{
	struct pt *p = *state;
	struct nt *t = &p->t;
	static struct sock_env s;
	sock_start(p, &s);
	/* A write in flight, then a snapshotter pauses and the guest submits another. */
	submit4k(t, 24, BUF_A, 0xd4);
	int c1 = client(&s);
	say(c1, "pause\n");
	for (int i = 0; i < 500 && !t->c.c_paused; i++)
		loop_run_once(&s.l, 10);
	assert_true(t->c.c_paused);
	submit4k(t, 32, BUF_B, 0xe5);
	/* "paused" comes once the write in flight completed and the flush ran: its data is
	 * in the file and its completion posted; the new write was not started. */
	assert_string_equal(answer(&s, c1), "paused");
	assert_int_equal(on_disk(p, 24), 0xd4);
	assert_int_equal(next_cqe(t, 1), 0);
	assert_int_equal(t->c.c_inflight, 0);
	run_for(&s, 100); /* still nothing started, however long it lasts */
	assert_int_equal(on_disk(p, 32), 0);
	assert_int_equal(next_cqe(t, 1), -1);
	/* A second snapshotter meanwhile: busy. */
	int c2 = client(&s);
	assert_string_equal(answer(&s, c2), "busy");
	close(c2);
	/* Resume: answered, and the waiting write runs. */
	say(c1, "resume\n");
	assert_string_equal(answer(&s, c1), "resumed");
	run_for(&s, 100);
	assert_int_equal(on_disk(p, 32), 0xe5);
	assert_int_equal(next_cqe(t, 1), 0);
	/* A snapshotter that dies while it holds the pause never leaves the guest stopped. */
	say(c1, "pause\n");
	assert_string_equal(answer(&s, c1), "paused");
	submit4k(t, 40, BUF_C, 0xf6);
	run_for(&s, 50);
	assert_int_equal(on_disk(p, 40), 0);
	close(c1);
	run_for(&s, 100);
	assert_int_equal(on_disk(p, 40), 0xf6);
	assert_int_equal(next_cqe(t, 1), 0);
	assert_false(t->c.c_paused);
	/* Out of order, unknown or overlong: an error, the connection closed, not paused. */
	const char *bad[] = {"resume\n", "pause\npause\n", "snapshot\n", NULL};
	for (int i = 0; bad[i]; i++) {
		int c = client(&s);
		say(c, bad[i]);
		const char *a = answer(&s, c);
		if (!strcmp(a, "paused")) /* "pause" itself was fine, the second one is not */
			a = answer(&s, c);
		assert_memory_equal(a, "error", 5);
		assert_string_equal(answer(&s, c), "EOF");
		close(c);
		run_for(&s, 20);
		assert_false(t->c.c_paused);
	}
	int c = client(&s);
	char longline[100];
	memset(longline, 'x', sizeof(longline));
	assert_int_equal(write(c, longline, sizeof(longline)), (ssize_t)sizeof(longline));
	assert_string_equal(answer(&s, c), "error line too long");
	close(c);
	sock_stop(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_pause_waits_for_io_in_flight, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_controller_reset_keeps_the_pause, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_control_socket, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
