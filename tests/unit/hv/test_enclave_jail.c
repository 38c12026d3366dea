/* An enclave's nitro-hv cannot open a card connection of its own, and the spawner's
 * connections carry the identity it was given:
 * - the filter the spawner's child installs before it execs an enclave's nitro-hv
 *   (sandbox_enter_enclave_exec): socket, connect, fork fatal, also after an exec;
 * - the "hv-enclave" seccomp list (src/sandbox/sandbox.c), installed in a forked child:
 *   socket(), connect() and fallocate() kill the child with SIGSYS; what an enclave does
 *   after set-up (vhost-user sendmsg/recvmsg with fds on a connection it was handed,
 *   eventfds, threads, writes) goes on; the parent's "hv" list, by contrast, allows an
 *   AF_UNIX socket;
 * - enclave_card_open (src/hv/enclave_spawn.c) against a card played by a thread: the
 *   ENW_HELLO it sends (cid, slot, debug flag, module id, PCR4 of the parent id, zeros
 *   where the EIF's PCRs go), a refusal reported with the card's errno.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "enclave/eif.h"
#include "hv/enclave_image.h"
#include "hv/enclave_spawn.h"
#include "lib/enclave_wire.h"
#include "lib/vu_wire.h"
#include "sandbox/sandbox.h"

enum { TRY_SOCKET, TRY_CONNECT, TRY_FALLOCATE, TRY_ALLOWED, TRY_FORK, TRY_EXEC_SOCKET };

static const char *self_exe;

static void *thread_fn(void *arg)
{
	return arg;
}

/* In the child: a connected pair and an open file made before the list, then the list,
 * then the call. Exits 0 when the call returned (whatever its result). */
static _Noreturn void child(const char *kind, int what, bool stacked)
{
	int sv[2];
	char path[] = "/tmp/nitro-enclave-jail-XXXXXX";
	int file = mkstemp(path);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 || file < 0)
		_exit(90);
	unlink(path);
	char err[256];
	/* stacked: the spawner child's filter, then the enclave's list, as in nitro-hv */
	if ((stacked && sandbox_enter_enclave_exec(err, sizeof(err)) < 0) ||
	    (kind ? sandbox_enter(kind, err, sizeof(err)) < 0
		  : sandbox_enter_enclave_exec(err, sizeof(err)) < 0)) {
		fprintf(stderr, "%s\n", err);
		_exit(91);
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX, .sun_path = "/tmp/nitro-no-such-card"};
	switch (what) {
	case TRY_SOCKET:
		(void)socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		break;
	case TRY_CONNECT: /* even on a socket it was handed before the list */
		(void)connect(sv[0], (struct sockaddr *)&a, sizeof(a));
		break;
	case TRY_FALLOCATE:
		(void)fallocate(file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
		break;
	case TRY_FORK:
		if (fork() == 0)
			_exit(0);
		break;
	case TRY_EXEC_SOCKET: /* the filter stays across exec: the new program is held too */
		execl(self_exe, self_exe, "try-socket", (char *)NULL);
		_exit(93);
	case TRY_ALLOWED: {
		int efd = eventfd(0, EFD_CLOEXEC);
		uint8_t b = 1;
		pthread_t t;
		/* a vhost-user request with an fd, as SET_VRING_KICK, and its answer */
		if (efd < 0 || vu_wire_send(sv[0], 12, 1, &b, 1, &efd, 1) < 0 ||
		    read(sv[1], &b, 1) != 1 || write(sv[1], &b, 1) != 1 ||
		    read(sv[0], &b, 1) != 1 || pthread_create(&t, NULL, thread_fn, NULL) != 0 ||
		    pthread_join(t, NULL) != 0)
			_exit(92);
		break;
	}
	}
	_exit(0);
}

/* The child's end: exit status, or 128 + the signal that killed it. */
static int run_child_stacked(const char *kind, int what, bool stacked)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		child(kind, what, stacked);
	int ws;
	assert_int_equal(waitpid(pid, &ws, 0), pid);
	return WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
}

static int run_child(const char *kind, int what)
{
	return run_child_stacked(kind, what, false);
}

static void test_enclave_list_has_no_socket_or_connect(void **state)
{
	(void)state;
	assert_int_equal(run_child("hv-enclave", TRY_SOCKET), 128 + SIGSYS);
	assert_int_equal(run_child("hv-enclave", TRY_CONNECT), 128 + SIGSYS);
	assert_int_equal(run_child("hv-enclave", TRY_FALLOCATE), 128 + SIGSYS);
	assert_int_equal(run_child("hv-enclave", TRY_ALLOWED), 0);
	/* the parent's list is wider: that is why the enclave no longer takes it */
	assert_int_equal(run_child("hv", TRY_SOCKET), 0);
	assert_int_equal(run_child("hv", TRY_ALLOWED), 0);
}

/* The spawner's child's filter before the exec (kind NULL here): what an enclave's
 * nitro-hv never does is fatal from its exec on, the rest of its set-up is not. */
static void test_exec_filter(void **state)
{
	(void)state;
	assert_int_equal(run_child(NULL, TRY_SOCKET), 128 + SIGSYS);
	assert_int_equal(run_child(NULL, TRY_CONNECT), 128 + SIGSYS);
	assert_int_equal(run_child(NULL, TRY_FORK), 128 + SIGSYS);
	assert_int_equal(run_child(NULL, TRY_EXEC_SOCKET), 128 + SIGSYS);
	assert_int_equal(run_child(NULL, TRY_ALLOWED), 0);
	/* and the enclave's own list on top of it, as nitro-hv --enclave installs it */
	assert_int_equal(run_child_stacked("hv-enclave", TRY_ALLOWED, true), 0);
	assert_int_equal(run_child_stacked("hv-enclave", TRY_SOCKET, true), 128 + SIGSYS);
}

/* A card played by a thread: accepts one connection, reads the hello, answers status. */
struct fake_card {
	int listen_fd;
	uint64_t status;
	struct enw_hello got;
	int rc;
};

static void *card_thread(void *arg)
{
	struct fake_card *c = arg;
	int s = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	c->rc = s < 0 ? -1 : enw_hello_recv(s, &c->got, 5000);
	if (c->rc == 0)
		c->rc = enw_hello_reply(s, c->status);
	if (s >= 0)
		close(s);
	return NULL;
}

static void with_card(uint64_t status, const struct enw_hello *id, struct fake_card *c, int *fd,
		      char *err, size_t errlen)
{
	char path[] = "/tmp/nitro-card-XXXXXX";
	assert_non_null(mkdtemp(path));
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/card.sock", path);
	const char *sock = a.sun_path;
	memset(c, 0, sizeof(*c));
	c->status = status;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(bind(c->listen_fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(c->listen_fd, 1), 0);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, card_thread, c), 0);
	*fd = enclave_card_open(sock, id, err, errlen);
	pthread_join(t, NULL);
	close(c->listen_fd);
	unlink(sock);
	rmdir(path);
}

static void test_spawner_identifies_the_connection(void **state)
{
	(void)state;
	struct enw_hello id;
	const char *parent = "i-0123456789abcdef0";
	assert_int_equal(enclave_hello_fill(&id, true, 21, 0x1234, parent), 0);
	struct fake_card c;
	int fd;
	char err[256] = "";
	with_card(0, &id, &c, &fd, err, sizeof(err));
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC); /* the spawner's child clears it */
	close(fd);
	assert_int_equal(c.rc, 0);
	assert_int_equal(enw_hello_check(&c.got), 0);
	assert_int_equal(c.got.version, ENW_VERSION);
	assert_int_equal(c.got.cid, 21);
	assert_int_equal(c.got.slot_uid, 0x1234);
	assert_int_equal(c.got.flags, ENW_FLAG_DEBUG);
	assert_string_equal(c.got.module_id, "i-0123456789abcdef0-enc0000000000001234");
	uint8_t pcr4[48], zero[48] = {0};
	assert_int_equal(eif_pcr_of_text(parent, pcr4), 0);
	assert_memory_equal(c.got.pcr[4], pcr4, 48);
	for (unsigned i = 0; i < ENW_BOOT_PCRS; i++)
		if (i != 4)
			assert_memory_equal(c.got.pcr[i], zero, 48);

	/* the card refuses (the CID is held): no fd, the card's reason */
	with_card(EADDRINUSE, &id, &c, &fd, err, sizeof(err));
	assert_int_equal(fd, -1);
	assert_non_null(strstr(err, strerror(EADDRINUSE)));
	assert_non_null(strstr(err, "cid 21"));
	/* no card at all */
	assert_int_equal(enclave_card_open("/tmp/nitro-no-such-card.sock", &id, err, sizeof(err)),
			 -1);
	assert_non_null(strstr(err, "nitro-no-such-card"));
}

/* The enclave's own message: the EIF's PCRs, zeros for 0-2 in debug mode. */
static void test_pcrs_fill(void **state)
{
	(void)state;
	struct eif_pcrs e;
	memset(&e, 0, sizeof(e));
	memset(e.pcr0, 0xa0, 48);
	memset(e.pcr1, 0xa1, 48);
	memset(e.pcr2, 0xa2, 48);
	memset(e.pcr8, 0xa8, 48);
	e.has_pcr8 = true;
	struct enw_pcrs p;
	uint8_t want[48], zero[48] = {0};
	enclave_pcrs_fill(&p, &e, false);
	assert_int_equal(enw_pcrs_check(&p), 0);
	memset(want, 0xa1, 48);
	assert_memory_equal(p.pcr[1], want, 48);
	memset(want, 0xa8, 48);
	assert_memory_equal(p.pcr[3], want, 48);
	enclave_pcrs_fill(&p, &e, true);
	assert_memory_equal(p.pcr[0], zero, 48);
	assert_memory_equal(p.pcr[2], zero, 48);
	assert_memory_equal(p.pcr[3], want, 48);
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "try-socket")) { /* TRY_EXEC_SOCKET's program */
		(void)socket(AF_UNIX, SOCK_STREAM, 0);
		return 0;
	}
	self_exe = argv[0];
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_enclave_list_has_no_socket_or_connect),
	    cmocka_unit_test(test_exec_filter),
	    cmocka_unit_test(test_spawner_identifies_the_connection),
	    cmocka_unit_test(test_pcrs_fill),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
