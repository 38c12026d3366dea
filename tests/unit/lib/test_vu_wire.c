/* Unit tests for the vhost-user framing (src/lib/vu_wire.c) over a socketpair: the bytes
 * a message puts on the wire, a normal message, fds passed (and close-on-exec), more fds
 * than the receiver accepts (each one closed, also past what the control buffer holds:
 * MSG_CTRUNC), a truncated header, an oversized size field, a peer that hangs up
 * mid-message (its fds closed), a peer that stalls (poll timeout and SO_RCVTIMEO), and a
 * payload larger than the socket buffer. No test may leak an fd.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "lib/vu_wire.h"

#include "../testlib/fds.h"

struct fx {
	int a, b; /* the two ends */
	int fds_before;
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	f->fds_before = count_fds();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	f->a = sv[0];
	f->b = sv[1];
	*state = f;
	return 0;
}

/* A fresh connection (after a failure the stream is out of step). */
static void reconnect(struct fx *f)
{
	close(f->a);
	close(f->b);
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	f->a = sv[0];
	f->b = sv[1];
}

static int teardown(void **state)
{
	struct fx *f = *state;
	if (f->a >= 0)
		close(f->a);
	if (f->b >= 0)
		close(f->b);
	int before = f->fds_before;
	free(f);
	assert_int_equal(count_fds(), before); /* nothing leaked */
	return 0;
}

static void hdr_bytes(uint8_t *b, uint32_t req, uint32_t flags, uint32_t size)
{
	vu_wire_hdr_put(b, &(struct vu_wire_hdr){req, flags, size});
}

/* The bytes on the wire: 12-byte little-endian header, then the payload, nothing else. */
static void test_wire_bytes(void **state)
{
	struct fx *f = *state;
	const uint8_t payload[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	assert_int_equal(vu_wire_send(f->a, VU_SET_FEATURES, VU_FLAG_VERSION | VU_FLAG_NEED_REPLY,
				      payload, sizeof(payload), NULL, 0),
			 0);
	const uint8_t want[] = {2, 0, 0, 0, 0x09, 0, 0, 0, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8};
	uint8_t got[64];
	assert_int_equal(recv(f->b, got, sizeof(got), MSG_DONTWAIT), (ssize_t)sizeof(want));
	assert_memory_equal(got, want, sizeof(want));
	/* An empty payload is the header alone. */
	assert_int_equal(vu_wire_send(f->a, VU_GET_FEATURES, VU_FLAG_VERSION, NULL, 0, NULL, 0), 0);
	assert_int_equal(recv(f->b, got, sizeof(got), MSG_DONTWAIT), VU_HDR_SIZE);
	const uint8_t want2[] = {1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0};
	assert_memory_equal(got, want2, sizeof(want2));
	struct vu_wire_hdr h;
	vu_wire_hdr_get(want, &h);
	assert_int_equal(h.request, 2);
	assert_int_equal(h.flags, 9);
	assert_int_equal(h.size, 8);
}

static void test_normal(void **state)
{
	struct fx *f = *state;
	struct vu_vring_state st = {.index = 3, .num = 256};
	assert_int_equal(
	    vu_wire_send(f->a, VU_SET_VRING_NUM, VU_FLAG_VERSION, &st, sizeof(st), NULL, 0), 0);
	assert_int_equal(vu_wire_send(f->a, VU_GET_FEATURES, VU_FLAG_VERSION, NULL, 0, NULL, 0), 0);
	struct vu_wire_hdr h;
	uint8_t p[64];
	int fds[VU_WIRE_MAX_FDS];
	unsigned n = 99;
	assert_int_equal(vu_wire_recv(f->b, &h, p, sizeof(p), fds, VU_WIRE_MAX_FDS, &n, 1000), 1);
	assert_int_equal(h.request, VU_SET_VRING_NUM);
	assert_int_equal(h.flags, VU_FLAG_VERSION);
	assert_int_equal(h.size, sizeof(st));
	assert_memory_equal(p, &st, sizeof(st));
	assert_int_equal(n, 0);
	/* The second message, not glued to the first; then end of file between messages. */
	assert_int_equal(vu_wire_recv(f->b, &h, p, sizeof(p), NULL, 0, &n, -1), 1);
	assert_int_equal(h.request, VU_GET_FEATURES);
	assert_int_equal(h.size, 0);
	close(f->a);
	f->a = -1;
	assert_int_equal(vu_wire_recv(f->b, &h, p, sizeof(p), fds, VU_WIRE_MAX_FDS, &n, 1000), 0);
	assert_int_equal(n, 0);
}

static void test_fds_passed(void **state)
{
	struct fx *f = *state;
	int pipes[VU_WIRE_MAX_FDS][2];
	int wr[VU_WIRE_MAX_FDS];
	for (unsigned i = 0; i < VU_WIRE_MAX_FDS; i++) {
		assert_int_equal(pipe2(pipes[i], O_CLOEXEC), 0);
		wr[i] = pipes[i][1];
	}
	uint64_t idx = 0;
	assert_int_equal(vu_wire_send(f->a, VU_SET_MEM_TABLE, VU_FLAG_VERSION, &idx, sizeof(idx),
				      wr, VU_WIRE_MAX_FDS),
			 0);
	assert_int_equal(vu_wire_send(f->a, 1, 1, NULL, 0, wr, VU_WIRE_MAX_FDS + 1), -EINVAL);
	struct vu_wire_hdr h;
	uint64_t p;
	int fds[VU_WIRE_MAX_FDS];
	unsigned n;
	assert_int_equal(vu_wire_recv(f->b, &h, &p, sizeof(p), fds, VU_WIRE_MAX_FDS, &n, 1000), 1);
	assert_int_equal(n, VU_WIRE_MAX_FDS);
	for (unsigned i = 0; i < n; i++) {
		/* A new descriptor for the same pipe, close-on-exec. */
		assert_int_not_equal(fds[i], wr[i]);
		assert_true(fcntl(fds[i], F_GETFD) & FD_CLOEXEC);
		char c = (char)('a' + i), got = 0;
		assert_int_equal(write(fds[i], &c, 1), 1);
		assert_int_equal(read(pipes[i][0], &got, 1), 1);
		assert_int_equal(got, c);
		close(fds[i]);
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
}

/* More fds than the receiver accepts: the message fails, every fd that came is closed. */
static void test_too_many_fds(void **state)
{
	struct fx *f = *state;
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	int three[3] = {p[1], p[1], p[1]};
	uint64_t idx = 0;
	assert_int_equal(
	    vu_wire_send(f->a, VU_SET_VRING_KICK, VU_FLAG_VERSION, &idx, sizeof(idx), three, 3), 0);
	struct vu_wire_hdr h;
	uint64_t pl;
	int fds[VU_WIRE_MAX_FDS];
	unsigned n = 99;
	int before = count_fds();
	assert_int_equal(vu_wire_recv(f->b, &h, &pl, sizeof(pl), fds, 2, &n, 1000), -ETOOMANYREFS);
	assert_int_equal(n, 0);
	assert_int_equal(count_fds(), before);
	/* A receiver that accepts none (a frontend reading a reply). */
	reconnect(f);
	assert_int_equal(
	    vu_wire_send(f->a, VU_GET_FEATURES, VU_FLAG_VERSION | VU_FLAG_REPLY, &idx, 8, p, 1), 0);
	assert_int_equal(vu_wire_recv(f->b, &h, &pl, sizeof(pl), NULL, 0, &n, 1000), -ETOOMANYREFS);
	assert_int_equal(count_fds(), before);
	/* 16 fds, more than the control buffer holds: the kernel truncates (MSG_CTRUNC). */
	int many[16];
	for (unsigned i = 0; i < 16; i++)
		many[i] = p[1];
	uint8_t msg[VU_HDR_SIZE + 8] = {0};
	hdr_bytes(msg, VU_SET_MEM_TABLE, VU_FLAG_VERSION, 8);
	reconnect(f);
	send_with_fds(f->a, msg, sizeof(msg), many, 16);
	assert_int_equal(vu_wire_recv(f->b, &h, &pl, sizeof(pl), fds, VU_WIRE_MAX_FDS, &n, 1000),
			 -ETOOMANYREFS);
	assert_int_equal(count_fds(), before);
	/* Every copy is gone: closing ours leaves the pipe with no writer. */
	close(p[1]);
	char c;
	assert_int_equal(read(p[0], &c, 1), 0);
	close(p[0]);
}

static void test_truncated_header(void **state)
{
	struct fx *f = *state;
	uint8_t msg[VU_HDR_SIZE];
	hdr_bytes(msg, VU_GET_FEATURES, VU_FLAG_VERSION, 0);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	send_with_fds(f->a, msg, 5, &p[0], 1); /* 5 of 12 bytes, with an fd */
	close(p[0]);
	close(f->a);
	f->a = -1;
	struct vu_wire_hdr h;
	int fds[VU_WIRE_MAX_FDS];
	unsigned n = 99;
	assert_int_equal(vu_wire_recv(f->b, &h, NULL, 0, fds, VU_WIRE_MAX_FDS, &n, 1000), -EPIPE);
	assert_int_equal(n, 0);
	close(p[1]);
}

/* A header whose size field is larger than the receiver's buffer: refused before a byte
 * of payload is read into it. */
static void test_oversized(void **state)
{
	struct fx *f = *state;
	uint8_t msg[VU_HDR_SIZE + 16];
	memset(msg, 0xaa, sizeof(msg));
	hdr_bytes(msg, VU_SET_CONFIG, VU_FLAG_VERSION, 0xffffffffu);
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	send_with_fds(f->a, msg, sizeof(msg), &p[0], 1);
	struct vu_wire_hdr h;
	uint8_t buf[64];
	memset(buf, 0, sizeof(buf));
	int fds[VU_WIRE_MAX_FDS];
	unsigned n = 99;
	assert_int_equal(vu_wire_recv(f->b, &h, buf, 16, fds, VU_WIRE_MAX_FDS, &n, 1000),
			 -EMSGSIZE);
	assert_int_equal(h.request, VU_SET_CONFIG);
	assert_int_equal(h.size, 0xffffffffu);
	assert_int_equal(n, 0);
	for (unsigned i = 0; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0);
	/* One byte over the bound is refused too. */
	hdr_bytes(msg, VU_SET_CONFIG, VU_FLAG_VERSION, 17);
	send_with_fds(f->a, msg, VU_HDR_SIZE, NULL, 0);
	uint8_t rest[16];
	assert_int_equal(recv(f->b, rest, sizeof(rest), MSG_DONTWAIT), 16); /* the old payload */
	assert_int_equal(vu_wire_recv(f->b, &h, buf, 16, NULL, 0, &n, 1000), -EMSGSIZE);
	assert_int_equal(h.size, 17);
	close(p[0]);
	close(p[1]);
}

/* The peer dies mid-payload: a clean error, and the fds that came with it are closed. */
static void test_hangup_mid_message(void **state)
{
	struct fx *f = *state;
	uint8_t msg[VU_HDR_SIZE + 10];
	memset(msg, 0x55, sizeof(msg));
	hdr_bytes(msg, VU_SET_MEM_TABLE, VU_FLAG_VERSION, 100); /* promises 100 bytes */
	int p[2];
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	send_with_fds(f->a, msg, sizeof(msg), &p[1], 1);
	close(p[1]);
	close(f->a);
	f->a = -1;
	struct vu_wire_hdr h;
	uint8_t buf[256];
	int fds[VU_WIRE_MAX_FDS];
	unsigned n = 99;
	int before = count_fds();
	assert_int_equal(vu_wire_recv(f->b, &h, buf, sizeof(buf), fds, VU_WIRE_MAX_FDS, &n, 1000),
			 -EPIPE);
	assert_int_equal(n, 0);
	assert_int_equal(count_fds(), before);
	char c;
	assert_int_equal(read(p[0], &c, 1), 0); /* no writer left anywhere */
	close(p[0]);
}

/* A peer that stalls mid-message: poll's timeout, or the socket's SO_RCVTIMEO. */
static void test_stall(void **state)
{
	struct fx *f = *state;
	uint8_t msg[VU_HDR_SIZE];
	hdr_bytes(msg, VU_GET_FEATURES, VU_FLAG_VERSION, 8);
	send_with_fds(f->a, msg, sizeof(msg), NULL, 0);
	struct vu_wire_hdr h;
	uint64_t pl;
	unsigned n;
	assert_int_equal(vu_wire_recv(f->b, &h, &pl, sizeof(pl), NULL, 0, &n, 50), -ETIMEDOUT);
	struct timeval tv = {.tv_usec = 50000};
	assert_int_equal(setsockopt(f->b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	send_with_fds(f->a, msg, 3, NULL, 0);
	assert_int_equal(vu_wire_recv(f->b, &h, &pl, sizeof(pl), NULL, 0, &n, -1), -ETIMEDOUT);
}

struct big {
	int sock;
	size_t len;
	uint8_t *buf;
	int ret;
};

static void *big_reader(void *arg)
{
	struct big *b = arg;
	struct vu_wire_hdr h;
	unsigned n;
	b->ret = vu_wire_recv(b->sock, &h, b->buf, (uint32_t)b->len, NULL, 0, &n, 5000);
	if (b->ret == 1 && h.size != b->len)
		b->ret = -1;
	return NULL;
}

/* A payload far larger than the socket buffer (a send timeout on the socket, so the
 * kernel may return short sends): every byte arrives, in order, however it was split. */
static void test_large(void **state)
{
	struct fx *f = *state;
	size_t len = 4u << 20;
	uint8_t *out = malloc(len);
	struct big b = {.sock = f->b, .len = len, .buf = malloc(len)};
	assert_non_null(out);
	assert_non_null(b.buf);
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(i * 7 + (i >> 12));
	struct timeval tv = {.tv_sec = 5};
	assert_int_equal(setsockopt(f->a, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, big_reader, &b), 0);
	assert_int_equal(vu_wire_send(f->a, 99, VU_FLAG_VERSION, out, (uint32_t)len, NULL, 0), 0);
	pthread_join(t, NULL);
	assert_int_equal(b.ret, 1);
	assert_memory_equal(b.buf, out, len);
	free(out);
	free(b.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_wire_bytes, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_normal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_fds_passed, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_too_many_fds, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_truncated_header, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_hangup_mid_message, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_stall, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_large, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
