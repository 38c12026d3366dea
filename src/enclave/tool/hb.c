/* The heartbeat broker of concurrent runs (hb.h). Wire, on a SOCK_SEQPACKET unix socket:
 * the waiter sends one message, its enclave's CID as a u64 (host order); the broker sends
 * one byte, 0xB7, when that enclave's heartbeat came, and closes. A waiter closing is a
 * run that ended or failed. */
#include "enclave/tool/hb.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "enclave/tool/hbtab.h"
#include "enclave/tool/tool.h"

#define HB_SOCK NET_RUN_DIR "/heartbeat.sock"
#define HB_LOCK NET_RUN_DIR "/heartbeat.lock"
#define HEARTBEAT 0xB7
#define HEARTBEAT_PORT 9000
#define PEER_MS 10000 /* an enclave's connection must send its byte within this */

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static int lock_open(void)
{
	int l = open(HB_LOCK, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	if (l >= 0 && flock(l, LOCK_EX) < 0) {
		close(l);
		return -1;
	}
	return l;
}

/* An enclave's heartbeat connection, until its byte comes. */
struct peer {
	int fd;
	uint64_t cid, deadline;
};

static _Noreturn void broker(int vs, int us)
{
	static struct net_hb_table t;
	static struct peer peer[NET_HB_MAX];
	unsigned npeer = 0;
	net_hb_init(&t);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		struct pollfd p[2 + 2 * NET_HB_MAX];
		unsigned n = 0;
		p[n++] = (struct pollfd){.fd = vs, .events = POLLIN};
		p[n++] = (struct pollfd){.fd = us, .events = POLLIN};
		for (unsigned i = 0; i < t.nwait; i++)
			p[n++] = (struct pollfd){.fd = t.wait[i].key, .events = POLLIN};
		unsigned first_peer = n;
		uint64_t now = now_ms(), next = now + 60000;
		for (unsigned i = 0; i < npeer; i++) {
			p[n++] = (struct pollfd){.fd = peer[i].fd, .events = POLLIN};
			if (peer[i].deadline < next)
				next = peer[i].deadline;
		}
		if (net_hb_idle(&t) && !npeer) {
			/* End, unless a run connected meanwhile: runs connect under the lock. */
			int l = lock_open();
			struct pollfd q = {.fd = us, .events = POLLIN};
			if (poll(&q, 1, 0) == 0) {
				unlink(HB_SOCK);
				close(us);
				close(vs);
				_exit(0);
			}
			if (l >= 0)
				close(l);
		}
		if (poll(p, n, (int)(next > now ? next - now : 0)) < 0 && errno != EINTR)
			_exit(1);
		now = now_ms();
		/* waiters first (one that is gone is closed before a heartbeat could be
		 * passed to it): a CID, or gone */
		for (unsigned k = 2; k < first_peer; k++) {
			if (!p[k].revents)
				continue;
			int key = p[k].fd;
			uint64_t cid;
			ssize_t r = read(key, &cid, sizeof(cid));
			if (r == (ssize_t)sizeof(cid)) {
				if (net_hb_set_cid(&t, key, cid)) {
					unsigned char b = HEARTBEAT;
					(void)!write(key, &b, 1);
					close(key);
				}
				continue;
			}
			if (r < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			net_hb_remove(&t, key);
			close(key);
		}
		/* peers: their byte (answered, passed on), or their time is up */
		unsigned kept = 0;
		for (unsigned i = 0; i < npeer; i++) {
			struct peer e = peer[i];
			if (p[first_peer + i].revents) {
				unsigned char b = 0;
				if (read(e.fd, &b, 1) == 1 && b == HEARTBEAT) {
					b = HEARTBEAT;
					if (write(e.fd, &b, 1) == 1) {
						int key = net_hb_heartbeat(&t, e.cid);
						if (key >= 0) {
							(void)!write(key, &b, 1);
							close(key);
						}
					}
				}
			} else if (now < e.deadline) {
				peer[kept++] = e;
				continue;
			}
			close(e.fd);
		}
		npeer = kept;
		if (p[1].revents & POLLIN) {
			int c = accept4(us, NULL, NULL, SOCK_CLOEXEC);
			if (c >= 0 && net_hb_add(&t, c) < 0)
				close(c); /* too many: that run is told the broker ended */
		}
		if (p[0].revents & POLLIN) {
			struct sockaddr_vm sa;
			socklen_t sl = sizeof(sa);
			int c = accept4(vs, (struct sockaddr *)&sa, &sl, SOCK_CLOEXEC);
			if (c >= 0 && npeer < NET_HB_MAX)
				peer[npeer++] = (struct peer){c, sa.svm_cid, now + PEER_MS};
			else if (c >= 0)
				close(c);
		}
	}
}

/* Starts the broker (under the lock): its sockets bound here, so that errors reach the
 * run; the process forked twice (no zombie, own session) with only its sockets open. */
static int start_broker(char *err, size_t errlen)
{
	int vs = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = HEARTBEAT_PORT};
	if (vs < 0) {
		snprintf(err, errlen,
			 "socket(AF_VSOCK): %s: load the vsock driver (vmw_vsock_virtio_transport)",
			 strerror(errno));
		return -1;
	}
	if (bind(vs, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(vs, 64) < 0) {
		int e = errno;
		snprintf(err, errlen, "cannot listen on vsock port %d for the heartbeat: %s%s",
			 HEARTBEAT_PORT, strerror(e),
			 e == EADDRINUSE ? " (nitro-cli or another program waits on it)" : "");
		close(vs);
		return -1;
	}
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", HB_SOCK);
	unlink(HB_SOCK);
	int us = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (us < 0 || bind(us, (struct sockaddr *)&un, sizeof(un)) < 0 ||
	    chmod(HB_SOCK, 0600) < 0 || listen(us, NET_HB_MAX) < 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", HB_SOCK, strerror(errno));
		close(vs);
		if (us >= 0)
			close(us);
		return -1;
	}
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork: %s", strerror(errno));
		close(vs);
		close(us);
		return -1;
	}
	if (pid == 0) {
		if (fork() != 0)
			_exit(0);
		setsid();
		/* nothing of the run: not its pipe to `run`, not its locks */
		int top = (int)sysconf(_SC_OPEN_MAX);
		for (int fd = 3; fd < (top > 0 && top < 65536 ? top : 4096); fd++)
			if (fd != vs && fd != us)
				close(fd);
		broker(vs, us);
	}
	waitpid(pid, NULL, 0);
	close(vs);
	close(us);
	return 0;
}

int net_hb_join(char *err, size_t errlen)
{
	int l = lock_open();
	if (l < 0) {
		snprintf(err, errlen, "cannot lock %s: %s", HB_LOCK, strerror(errno));
		return -1;
	}
	struct sockaddr_un un = {.sun_family = AF_UNIX};
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", HB_SOCK);
	int s = -1;
	for (int attempt = 0; attempt < 2 && s < 0; attempt++) {
		s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (s < 0)
			break;
		if (connect(s, (struct sockaddr *)&un, sizeof(un)) == 0)
			break;
		close(s);
		s = -1;
		if (attempt == 0 && start_broker(err, errlen) < 0) {
			close(l);
			return -1;
		}
	}
	close(l);
	if (s < 0)
		snprintf(err, errlen, "cannot reach the heartbeat listener %s: %s", HB_SOCK,
			 strerror(errno));
	return s;
}

int net_hb_name_cid(int fd, uint64_t cid)
{
	return send(fd, &cid, sizeof(cid), MSG_NOSIGNAL) == (ssize_t)sizeof(cid) ? 0 : -1;
}
