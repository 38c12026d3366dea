/* The enclave's /init (issue 12): a small static program, the first process of an EIF's
 * ramdisk, after aws-nitro-enclaves-sdk-bootstrap's init/init.c. See docs/enclaves.md.
 *
 * Steps: mount devtmpfs, proc and sysfs; load the kernel modules the ramdisk carries, in
 * the order /lib/modules/load lists them (one file name a line; vsock,
 * vmw_vsock_virtio_transport_common, vmw_vsock_virtio_transport, nsm), and a legacy /nsm.ko;
 * send the boot heartbeat to the parent (connect AF_VSOCK CID 3 port 9000, write 0xB7,
 * read 0xB7, close); read /env (VAR=value a line) and /cmd (one argument a line); when the
 * ramdisk has /rootfs, move it over / and chroot there (as the bootstrap does); mount
 * /run, /tmp, /dev/shm, /dev/pts; run the command as its own session, reap every child
 * until it exits, then power off (the enclave VM ends when its guest powers off).
 *
 * Contract: runs as PID 1 with every signal blocked (SIGCHLD still ends wait()); the
 * ramdisk's files are trusted (they are measured in PCR0/1/2). Nothing is fatal before
 * the command runs: a module that does not load, or a heartbeat with no vsock peer (the
 * same ramdisk booted as an ordinary guest), is reported on the console in one line and
 * init goes on, so the payload still runs and the VM still powers off.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define HEARTBEAT 0xB7
#define PARENT_CID 3
#define HEARTBEAT_PORT 9000
#define HEARTBEAT_REPLY_MS 20000
#define MODULE_LIST "/lib/modules/load"
#define MAX_LINES 256

static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("enclave init: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static void power_off(void)
{
	sync();
	reboot(RB_POWER_OFF);
	say("power-off failed: %s", strerror(errno));
	for (;;)
		pause();
}

static void mount_one(const char *src, const char *dst, const char *type, unsigned long fl,
		      const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, fl, data) < 0 && errno != EBUSY)
		say("mount %s on %s: %s", type, dst, strerror(errno));
}

static void console(void)
{
	int fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		return; /* keep what the kernel gave us */
	dup2(fd, 0);
	dup2(fd, 1);
	dup2(fd, 2);
	if (fd > 2)
		close(fd);
	setvbuf(stdout, NULL, _IOLBF, 0);
}

static int load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = (int)syscall(SYS_finit_module, fd, "", 0);
	int e = errno;
	close(fd);
	return rc < 0 && e != EEXIST ? -e : 0;
}

static void load_modules(void)
{
	FILE *f = fopen(MODULE_LIST, "r");
	char line[256], path[512];
	unsigned n = 0, bad = 0;
	while (f && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = 0;
		if (!line[0] || line[0] == '#')
			continue;
		snprintf(path, sizeof(path), "/lib/modules/%s", line);
		int rc = load_module(path);
		if (rc < 0) {
			say("module %s: %s", line, strerror(-rc));
			bad++;
		} else
			n++;
	}
	if (f)
		fclose(f);
	int rc = load_module("/nsm.ko"); /* the bootstrap's place for the NSM driver */
	if (rc == 0)
		n++, unlink("/nsm.ko");
	else if (rc != -ENOENT)
		say("module /nsm.ko: %s", strerror(-rc));
	say("%u module(s) loaded%s", n, bad ? ", some failed (see above)" : "");
}

/* 0, or -1 with why in err: the heartbeat of reference §5. */
static int heartbeat(char *err, size_t len)
{
	struct sockaddr_vm sa = {
	    .svm_family = AF_VSOCK, .svm_cid = PARENT_CID, .svm_port = HEARTBEAT_PORT};
	unsigned char b = HEARTBEAT;
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, len, "socket(AF_VSOCK): %s (no vsock module?)", strerror(errno));
		return -1;
	}
	const char *step = "connect";
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		goto fail;
	step = "write";
	if (write(fd, &b, 1) != 1)
		goto fail;
	step = "read";
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, HEARTBEAT_REPLY_MS);
	if (r == 0)
		errno = ETIMEDOUT;
	if (r <= 0)
		goto fail;
	ssize_t n = read(fd, &b, 1);
	if (n != 1) {
		if (n == 0)
			errno = ECONNRESET;
		goto fail;
	}
	close(fd);
	if (b != HEARTBEAT) {
		snprintf(err, len, "the parent answered 0x%02x, not 0x%02x", b, HEARTBEAT);
		return -1;
	}
	return 0;
fail:
	snprintf(err, len, "%s: %s", step, strerror(errno));
	close(fd);
	return -1;
}

/* The lines of a file as a NULL-terminated array (malloc'd), NULL if it is missing. */
static char **read_lines(const char *path, unsigned *count)
{
	FILE *f = fopen(path, "r");
	*count = 0;
	if (!f)
		return NULL;
	char **v = calloc(MAX_LINES + 1, sizeof(*v));
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while (v && *count < MAX_LINES && (n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = 0;
		v[(*count)++] = strdup(line);
	}
	free(line);
	fclose(f);
	unlink(path);
	return v;
}

static void enter_rootfs(void)
{
	struct stat st;
	if (stat("/rootfs", &st) < 0 || !S_ISDIR(st.st_mode))
		return;
	if (mount("/rootfs", "/rootfs", NULL, MS_BIND, NULL) < 0 || chdir("/rootfs") < 0 ||
	    mount(".", "/", NULL, MS_MOVE, NULL) < 0 || chroot(".") < 0 || chdir("/") < 0) {
		say("cannot enter /rootfs: %s; staying in the ramdisk's root", strerror(errno));
		return;
	}
	mount_one("dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL);
	mount_one("proc", "/proc", "proc", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
}

static pid_t launch(char **argv, char **envp)
{
	static char *const default_env[] = {"PATH=/sbin:/usr/sbin:/bin:/usr/bin", NULL};
	pid_t pid = fork();
	if (pid != 0)
		return pid;
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_UNBLOCK, &all, NULL);
	setsid();
	if (!envp || !envp[0])
		envp = (char **)default_env;
	setenv("PATH", "/sbin:/usr/sbin:/bin:/usr/bin", 0); /* execvpe's search */
	execvpe(argv[0], argv, envp);
	say("cannot run %s: %s", argv[0], strerror(errno));
	_exit(127);
}

int main(void)
{
	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);

	mount_one("dev", "/dev", "devtmpfs", MS_NOSUID | MS_NOEXEC, NULL);
	console();
	mount_one("proc", "/proc", "proc", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
	mount_one("sysfs", "/sys", "sysfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
	load_modules();

	char err[256];
	if (heartbeat(err, sizeof(err)) == 0)
		say("heartbeat sent to the parent (CID %d, port %d)", PARENT_CID, HEARTBEAT_PORT);
	else
		say("no heartbeat to the parent (CID %d, port %d): %s; not an enclave, or the "
		    "parent does not listen; going on",
		    PARENT_CID, HEARTBEAT_PORT, err);

	unsigned nenv, ncmd;
	char **env = read_lines("/env", &nenv);
	char **cmd = read_lines("/cmd", &ncmd);
	enter_rootfs();
	mount_one("tmpfs", "/run", "tmpfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, "mode=0755");
	mount_one("tmpfs", "/tmp", "tmpfs", MS_NODEV | MS_NOSUID, NULL);
	mount_one("shm", "/dev/shm", "tmpfs", MS_NODEV | MS_NOSUID | MS_NOEXEC, NULL);
	mount_one("devpts", "/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC, NULL);

	if (!cmd || !ncmd || !cmd[0][0]) {
		say("no command (/cmd missing or empty); powering off");
		power_off();
	}
	say("running %s (%u argument(s), %u environment variable(s))", cmd[0], ncmd - 1, nenv);
	pid_t pid = launch(cmd, env);
	if (pid < 0) {
		say("fork: %s", strerror(errno));
		power_off();
	}
	for (;;) { /* reap every orphan until the command itself ends */
		int st;
		pid_t w = wait(&st);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			say("wait: %s", strerror(errno));
			break;
		}
		if (w != pid)
			continue;
		if (WIFEXITED(st))
			say("%s exited with status %d; powering off", cmd[0], WEXITSTATUS(st));
		else
			say("%s killed by signal %d; powering off", cmd[0], WTERMSIG(st));
		break;
	}
	power_off();
}
