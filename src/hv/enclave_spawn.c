/* The enclave spawner (see enclave_spawn.h). */
#include "hv/enclave_spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sys/un.h>

#include "hv/enclave_console.h"
#include "hv/enclave_image.h"
#include "lib/enclave_wire.h"
#include "lib/util.h"
#include "sandbox/sandbox.h"

struct child {
	bool used, replied;
	uint64_t uid;
	pid_t pid;
	int ready; /* read end of the ready pipe until the reply */
};

static struct child kids[ES_MAX_ENCLAVES];
static const struct enclave_spawner_config *conf;
static int exe_fd = -1, sock = -1;

int enclave_exit_rc(int ws)
{
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == ENCLAVE_EXIT_EIF)
		return -ENOEXEC;
	if (WIFEXITED(ws) && WEXITSTATUS(ws) == ENCLAVE_EXIT_MEM)
		return -EINVAL;
	return -EIO;
}

static void send_msg(uint32_t type, uint64_t uid, int32_t status)
{
	struct es_msg m = {.type = type, .slot_uid = uid, .status = status};
	/* only the fixed part: the ranges are START's */
	if (send(sock, &m, offsetof(struct es_msg, range), MSG_NOSIGNAL) < 0)
		_exit(0); /* the parent is gone */
}

static void kill_all_and_exit(void)
{
	for (unsigned i = 0; i < ES_MAX_ENCLAVES; i++)
		if (kids[i].used)
			kill(kids[i].pid, SIGKILL);
	_exit(0);
}

int enclave_card_open(const char *path, const struct enw_hello *id, char *err, size_t errlen)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path))
		RETURN_ERR(-1, "card socket %s: path too long", path);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		RETURN_ERR(-1, "card socket %s: %s", path, strerror(e));
	}
	int st = enw_hello_send(fd, id, ES_CARD_TIMEOUT_MS);
	if (st) {
		close(fd);
		RETURN_ERR(-1, "card %s: %s enclave cid %llu: %s", path,
			   st < 0 ? "no answer to the hello of" : "refused",
			   (unsigned long long)id->cid, strerror(st < 0 ? -st : st));
	}
	return fd;
}

/* The child side of a START: the card connections opened and identified, fds in place,
 * then the executable. */
static _Noreturn void exec_enclave(const struct es_msg *m, int memfd, int ready_w)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	char *argv[48], num[6][32];
	static char mem[ES_MAX_RANGES * 42 + 16];
	size_t at = (size_t)snprintf(mem, sizeof(mem), "3:");
	for (unsigned i = 0; i < m->nranges; i++)
		at += (size_t)snprintf(mem + at, sizeof(mem) - at, "%s%llu:%llu", i ? "," : "",
				       (unsigned long long)m->range[i].off,
				       (unsigned long long)m->range[i].size);
	unsigned n = 0;
	argv[n++] = "nitro-hv";
	argv[n++] = "--enclave";
	argv[n++] = "--enclave-mem";
	argv[n++] = mem;
	argv[n++] = "--cpus";
	snprintf(num[0], sizeof(num[0]), "%u", m->nvcpus);
	argv[n++] = num[0];
	argv[n++] = "--enclave-cid";
	snprintf(num[1], sizeof(num[1]), "%llu", (unsigned long long)m->cid);
	argv[n++] = num[1];
	argv[n++] = "--enclave-slot";
	snprintf(num[2], sizeof(num[2]), "%llu", (unsigned long long)m->slot_uid);
	argv[n++] = num[2];
	argv[n++] = "--enclave-ready-fd";
	argv[n++] = "4";
	if (m->flags & ES_FLAG_DEBUG)
		argv[n++] = "--enclave-debug";
	if (conf->parent_id) {
		argv[n++] = "--enclave-parent-id";
		argv[n++] = (char *)conf->parent_id;
	}
	if (conf->cache_dir) {
		argv[n++] = "--cache-dir";
		argv[n++] = (char *)conf->cache_dir;
	}
	/* Each enclave-side card connection: made here, identified by the hello (what START
	 * said: cid, slot, debug; the parent's id: PCR4, module id), then handed over as
	 * OPTION VALUEfd=N. The enclave's nitro-hv makes no connection of its own. One more
	 * kind of connection is one more line. */
	static struct enw_hello id;
	if (enclave_hello_fill(&id, m->flags & ES_FLAG_DEBUG, m->cid, m->slot_uid,
			       conf->parent_id) < 0)
		_exit(ES_EXIT_CARD);
	const struct {
		const char *path, *option, *value; /* value: "KIND," or "" */
		/* connects and sends the hello (enclave_console_connect adds
		 * ENW_FLAG_CONSOLE); the fd, or -1 with err */
		int (*open)(const char *path, const struct enw_hello *id, char *err, size_t len);
		bool console; /* debug mode only; without it the enclave goes on */
	} links[] = {
	    {conf->vsock, "--vhost-user", "vsock,", enclave_card_open, false},
	    {conf->nsm, "--vhost-user", "nsm,", enclave_card_open, false},
	    /* after the vsock device's: the card takes a feed only beside it */
	    {conf->vsock, "--enclave-console-feed", "", enclave_console_connect, true},
	};
	static char linkarg[ARRAY_SIZE(links)][48];
	for (unsigned i = 0; i < ARRAY_SIZE(links); i++) {
		if (!links[i].path || (links[i].console && !(m->flags & ES_FLAG_DEBUG)))
			continue;
		char err[512];
		int c = links[i].open(links[i].path, &id, err, sizeof(err));
		/* at 10 or above (clear of 0-4, set below), without close-on-exec */
		int fd = c < 0 ? -1 : fcntl(c, F_DUPFD, 10);
		if (c < 0 && links[i].console) { /* costs only the parent-side console */
			fprintf(stderr,
				"nitro-hv enclave spawner: enclave %llu: no console for the "
				"parent: %s\n",
				(unsigned long long)m->slot_uid, err);
			continue;
		}
		if (fd < 0 || fd > 9999) {
			fprintf(stderr, "nitro-hv enclave spawner: enclave %llu: %s\n",
				(unsigned long long)m->slot_uid,
				c < 0 ? err : "cannot keep a card connection");
			_exit(ES_EXIT_CARD);
		}
		close(c);
		snprintf(linkarg[i], sizeof(linkarg[i]), "%sfd=%d", links[i].value, fd);
		argv[n++] = (char *)links[i].option;
		argv[n++] = linkarg[i];
	}
	int out = -1;
	if ((m->flags & ES_FLAG_DEBUG) && conf->console_dir) {
		char path[4200];
		snprintf(path, sizeof(path), "%s/enclave-%llu.log", conf->console_dir,
			 (unsigned long long)m->slot_uid);
		out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		argv[n++] = "--console-max"; /* past 128 KiB it keeps the newest 64 KiB */
		argv[n++] = "131072";
	}
	argv[n] = NULL;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* above every target number first, then into place */
	int fds[4] = {fcntl(memfd, F_DUPFD_CLOEXEC, 10), fcntl(ready_w, F_DUPFD_CLOEXEC, 10),
		      fcntl(exe_fd, F_DUPFD_CLOEXEC, 10),
		      fcntl(out >= 0 ? out : null, F_DUPFD_CLOEXEC, 10)};
	if (fds[0] < 0 || fds[1] < 0 || fds[2] < 0 || fds[3] < 0 || null < 0 || dup2(null, 0) < 0 ||
	    dup2(fds[3], 1) < 0 || dup2(fds[0], 3) < 0 || dup2(fds[1], 4) < 0)
		_exit(127);
	/* From here on, for good: no socket, connect, fork (sandbox.h); the enclave's own
	 * list comes on top after its set-up. */
	char ferr[256];
	if (sandbox_enter_enclave_exec(ferr, sizeof(ferr)) < 0) {
		fprintf(stderr, "nitro-hv enclave spawner: %s\n", ferr);
		_exit(127);
	}
	extern char **environ;
	fexecve(fds[2], argv, environ);
	fprintf(stderr, "nitro-hv enclave spawner: cannot start nitro-hv: %s\n", strerror(errno));
	_exit(127);
}

static void start(const struct es_msg *m, int memfd)
{
	struct child *c = NULL;
	for (unsigned i = 0; i < ES_MAX_ENCLAVES && !c; i++)
		if (!kids[i].used)
			c = &kids[i];
	int p[2];
	if (!c || memfd < 0 || m->nranges == 0 || m->nranges > ES_MAX_RANGES ||
	    pipe2(p, O_CLOEXEC) < 0) {
		send_msg(ES_REPLY, m->slot_uid, c ? -EINVAL : -ENOSPC);
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		exec_enclave(m, memfd, p[1]);
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		send_msg(ES_REPLY, m->slot_uid, -ENOMEM);
		return;
	}
	*c = (struct child){.used = true, .uid = m->slot_uid, .pid = pid, .ready = p[0]};
}

/* The ready pipe of c: a byte = the enclave runs; EOF = it ended before (the reply
 * waits for its exit status). */
static void check_ready(struct child *c)
{
	uint8_t b;
	ssize_t r = read(c->ready, &b, 1);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	close(c->ready);
	c->ready = -1;
	if (r == 1) {
		c->replied = true;
		send_msg(ES_REPLY, c->uid, 0);
	}
}

static void reap(void)
{
	int ws;
	pid_t pid;
	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0)
		for (unsigned i = 0; i < ES_MAX_ENCLAVES; i++) {
			struct child *c = &kids[i];
			if (!c->used || c->pid != pid)
				continue;
			if (c->ready >= 0) { /* a byte written just before it ended */
				fcntl(c->ready, F_SETFL, O_NONBLOCK);
				check_ready(c);
				if (c->ready >= 0)
					close(c->ready);
			}
			if (c->replied)
				send_msg(ES_EXITED, c->uid, ws);
			else
				send_msg(ES_REPLY, c->uid, enclave_exit_rc(ws));
			c->used = false;
		}
}

static _Noreturn void spawner_main(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	prctl(PR_SET_NAME, "nitro-enc-spawn");
	/* nothing of the parent's but stdio (nitrod's boot files, a console log) */
	for (int fd = 3; fd < 4096; fd++)
		if (fd != sock && fd != exe_fd)
			close(fd);
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		_exit(1);
	for (;;) {
		struct pollfd pf[2 + ES_MAX_ENCLAVES];
		struct child *who[2 + ES_MAX_ENCLAVES];
		unsigned n = 0;
		pf[n++] = (struct pollfd){.fd = sock, .events = POLLIN};
		pf[n++] = (struct pollfd){.fd = sfd, .events = POLLIN};
		for (unsigned i = 0; i < ES_MAX_ENCLAVES; i++)
			if (kids[i].used && kids[i].ready >= 0) {
				who[n] = &kids[i];
				pf[n++] = (struct pollfd){.fd = kids[i].ready, .events = POLLIN};
			}
		if (poll(pf, n, -1) < 0)
			continue;
		for (unsigned i = 2; i < n; i++)
			if (pf[i].revents)
				check_ready(who[i]);
		if (pf[1].revents) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof(si)) > 0)
				;
			reap();
		}
		if (pf[0].revents & POLLIN) {
			static struct es_msg m;
			char cbuf[CMSG_SPACE(sizeof(int))];
			struct iovec iov = {&m, sizeof(m)};
			struct msghdr h = {.msg_iov = &iov,
					   .msg_iovlen = 1,
					   .msg_control = cbuf,
					   .msg_controllen = sizeof(cbuf)};
			memset(&m, 0, sizeof(m));
			ssize_t r = recvmsg(sock, &h, MSG_CMSG_CLOEXEC);
			if (r <= 0)
				kill_all_and_exit();
			int memfd = -1;
			struct cmsghdr *cm = CMSG_FIRSTHDR(&h);
			if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
				memcpy(&memfd, CMSG_DATA(cm), sizeof(int));
			if (m.type == ES_START && (size_t)r >= offsetof(struct es_msg, range) +
								   m.nranges * sizeof(m.range[0]))
				start(&m, memfd);
			else if (m.type == ES_STOP)
				for (unsigned i = 0; i < ES_MAX_ENCLAVES; i++)
					if (kids[i].used && kids[i].uid == m.slot_uid)
						kill(kids[i].pid, SIGKILL);
			if (memfd >= 0)
				close(memfd);
		} else if (pf[0].revents & (POLLHUP | POLLERR)) {
			kill_all_and_exit();
		}
	}
}

int enclave_spawner_start(const struct enclave_spawner_config *c, pid_t *pid, char *err,
			  size_t errlen)
{
	int sv[2];
	if (c->exe_fd > 2) {
		exe_fd = c->exe_fd;
		if (fcntl(exe_fd, F_SETFD, FD_CLOEXEC) < 0)
			RETURN_ERR(-1, "enclave spawner: --enclave-exe-fd %d: %s", exe_fd,
				   strerror(errno));
	} else {
		exe_fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	}
	if (exe_fd < 0)
		RETURN_ERR(-1, "enclave spawner: /proc/self/exe: %s (a jail: --enclave-exe-fd)",
			   strerror(errno));
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		RETURN_ERR(-1, "enclave spawner: socketpair: %s", strerror(errno));
	pid_t parent = getpid();
	conf = c;
	*pid = fork();
	if (*pid < 0)
		RETURN_ERR(-1, "enclave spawner: fork: %s", strerror(errno));
	if (*pid == 0) {
		close(sv[0]);
		sock = sv[1];
		spawner_main(parent);
	}
	close(sv[1]);
	close(exe_fd);
	exe_fd = -1;
	return sv[0];
}
