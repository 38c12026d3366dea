/* jail-probe: run inside a jail by tests/security; reports what it can see and do as
 * key=value lines, then (with an argument) installs its seccomp filter and makes one
 * system call:
 *   jail-probe                 report: uid, gid, groups, no_new_privs, dumpable, open fds,
 *                              whether /etc/shadow, /etc/passwd, /home, /proc exist, and
 *                              whether / is writable
 *   jail-probe call NAME       sandbox_enter_from_env (NITRO_SECCOMP from the jailer),
 *                              then NAME: getpid | eventfd (allowed everywhere),
 *                              socket-inet | openat | ptrace | fork | mmap-exec |
 *                              execve (not allowed); socket-raw, socket-inet6,
 *                              socket-unix, bind (a bound AF_INET TCP socket: what the
 *                              internet gateway's NAT may not do); tcp PORT (connect to 127.0.0.1:PORT),
 *                              abstract NAME (connect to the abstract unix socket @NAME)
 *   jail-probe kill PID        kill(PID, SIGKILL): "kill rc=R errno=E"
 *   jail-probe forkbomb N      forks (children wait) until fork fails or N made:
 *                              "forks=K errno=E"; the children die with it
 *   jail-probe write PATH      "write PATH ok=1|0 errno=E" (open for writing + write)
 *   jail-probe wait            reads stdin until end of file, then exits 0
 *   jail-probe eat N           allocates and touches N MiB: "ate N MiB"
 * Prints "survived NAME rc=R" when the call returns (then exits 0). */
#include "sandbox/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

static void exists(const char *key, const char *path)
{
	struct stat st;
	printf("%s=%d\n", key, stat(path, &st) == 0);
}

int main(int argc, char **argv)
{
	if (argc == 1) {
		gid_t g[64];
		int ng = getgroups(64, g);
		printf("uid=%u\ngid=%u\nngroups=%d\n", getuid(), getgid(), ng);
		printf("euid=%u\n", geteuid());
		printf("pid=%d\n", (int)getpid());
		printf("ppid=%d\n", (int)getppid());
		printf("no_new_privs=%d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
		exists("shadow", "/etc/shadow");
		exists("passwd", "/etc/passwd");
		exists("home", "/home");
		exists("proc", "/proc/self");
		exists("kvm", "/dev/kvm");
		int fd = open("/probe-write", O_WRONLY | O_CREAT, 0600);
		printf("root_writable=%d\n", fd >= 0);
		printf("fds=");
		for (int i = 0; i < 1024; i++)
			if (fcntl(i, F_GETFD) >= 0 && i != fd)
				printf("%d,", i);
		printf("\n");
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "kill")) {
		int rc = kill((pid_t)atoi(argv[2]), SIGKILL);
		printf("kill rc=%d errno=%d\n", rc, rc < 0 ? errno : 0);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "forkbomb")) {
		int max = atoi(argv[2]), k = 0, e = 0;
		for (; k < max; k++) {
			pid_t p = fork();
			if (p < 0) {
				e = errno;
				break;
			}
			if (p == 0) {
				prctl(PR_SET_PDEATHSIG, SIGKILL);
				pause();
				_exit(0);
			}
		}
		printf("forks=%d errno=%d\n", k, e);
		return 0; /* the children die with it (PR_SET_PDEATHSIG) */
	}
	if (argc == 3 && !strcmp(argv[1], "write")) {
		int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int ok = fd >= 0 && write(fd, "x", 1) == 1;
		printf("write %s ok=%d errno=%d\n", argv[2], ok, ok ? 0 : errno);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "eat")) {
		int mib = atoi(argv[2]);
		for (int i = 0; i < mib; i++) {
			char *p = malloc(1 << 20);
			if (!p)
				break;
			memset(p, 1, 1 << 20);
		}
		printf("ate %d MiB\n", mib);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "wait")) {
		char b[64];
		while (read(0, b, sizeof(b)) > 0)
			;
		return 0;
	}
	if ((argc != 3 && argc != 4) || strcmp(argv[1], "call"))
		return 2;
	char err[256];
	if (sandbox_enter_from_env(err, sizeof(err)) < 0) {
		fprintf(stderr, "jail-probe: %s\n", err);
		return 3;
	}
	printf("filter=%s\n", getenv("NITRO_SECCOMP") ? getenv("NITRO_SECCOMP") : "none");
	fflush(stdout);
	const char *n = argv[2];
	long rc;
	if (!strcmp(n, "getpid"))
		rc = getpid();
	else if (!strcmp(n, "eventfd"))
		rc = eventfd(0, EFD_CLOEXEC);
	else if (!strcmp(n, "socket-inet"))
		rc = socket(AF_INET, SOCK_STREAM, 0);
	else if (!strcmp(n, "socket-raw"))
		rc = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	else if (!strcmp(n, "socket-inet6"))
		rc = socket(AF_INET6, SOCK_STREAM, 0);
	else if (!strcmp(n, "socket-unix"))
		rc = socket(AF_UNIX, SOCK_STREAM, 0);
	else if (!strcmp(n, "bind")) {
		struct sockaddr_in sa = {.sin_family = AF_INET};
		int s = socket(AF_INET, SOCK_STREAM, 0);
		rc = s < 0 ? -1 : bind(s, (struct sockaddr *)&sa, sizeof(sa));
	} else if (!strcmp(n, "openat"))
		rc = open("/", O_RDONLY);
	else if (!strcmp(n, "openat-append"))
		rc = open("/probe-append", O_WRONLY | O_CREAT | O_APPEND, 0600);
	else if (!strcmp(n, "ptrace"))
		rc = ptrace(PTRACE_TRACEME, 0, 0, 0);
	else if (!strcmp(n, "mmap-exec"))
		rc = (long)mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1,
				0);
	else if (!strcmp(n, "tcp") && argc == 4) {
		struct sockaddr_in sa = {.sin_family = AF_INET,
					 .sin_port = htons((uint16_t)atoi(argv[3])),
					 .sin_addr = {htonl(INADDR_LOOPBACK)}};
		int s = socket(AF_INET, SOCK_STREAM, 0);
		rc = s < 0 ? -1 : connect(s, (struct sockaddr *)&sa, sizeof(sa));
	} else if (!strcmp(n, "abstract") && argc == 4) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		size_t l = strlen(argv[3]);
		if (l + 1 > sizeof(sa.sun_path))
			return 2;
		memcpy(sa.sun_path + 1, argv[3], l); /* sun_path[0] = 0: the abstract namespace */
		int s = socket(AF_UNIX, SOCK_STREAM, 0);
		rc = s < 0 ? -1
			   : connect(s, (struct sockaddr *)&sa,
				     (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + l));
	} else if (!strcmp(n, "fork"))
		rc = syscall(SYS_clone, 17 /* SIGCHLD: a process, not a thread */, 0, 0, 0, 0);
	else if (!strcmp(n, "execve")) {
		char *av[] = {argv[0], NULL};
		rc = execve(argv[0], av, NULL);
	} else
		return 2;
	if (rc == 0 && !strcmp(n, "fork"))
		_exit(0);
	printf("survived %s rc=%ld errno=%d\n", n, rc, rc < 0 ? errno : 0);
	return 0;
}
