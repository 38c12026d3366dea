/* A test-only LD_PRELOAD shim: I/O errors on nitrod's audit log, on demand
 * (tests/api/test_audit_limits.py, issue 10 item 6). Never linked into nitrod.
 *
 * $NITRO_TEST_AUDIT_FAULT names a control file. While it exists and holds "write N" or
 * "sync N", the first N write()s (fdatasync()s) of a file named audit.log after the file
 * last changed pass and every later one fails with EIO, as a failing disk would answer;
 * other files and other calls are untouched. Contract: single control file, read on every
 * audit write; thread-safe (one mutex).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct timespec seen_mtime;
static ino_t seen_ino;
static unsigned long passed[2]; /* write, sync since the control file last changed */

static int is_audit_log(int fd)
{
	char link[64], path[4096];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n < 10)
		return 0;
	path[n] = 0;
	return !strcmp(path + n - 10, "/audit.log");
}

/* 1 when this call (kind 0: write, 1: sync) on fd must fail. */
static int must_fail(int fd, int kind)
{
	const char *ctl = getenv("NITRO_TEST_AUDIT_FAULT");
	struct stat st;
	if (!ctl || stat(ctl, &st) < 0 || !is_audit_log(fd))
		return 0;
	char buf[64] = {0};
	FILE *f = fopen(ctl, "re");
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	unsigned long allow;
	char what[8];
	if (sscanf(buf, "%7s %lu", what, &allow) != 2 || strcmp(what, kind ? "sync" : "write") != 0)
		return 0;
	pthread_mutex_lock(&lock);
	if (st.st_ino != seen_ino || st.st_mtim.tv_sec != seen_mtime.tv_sec ||
	    st.st_mtim.tv_nsec != seen_mtime.tv_nsec) {
		seen_ino = st.st_ino;
		seen_mtime = st.st_mtim;
		passed[0] = passed[1] = 0;
	}
	int fail = passed[kind] >= allow;
	if (!fail)
		passed[kind]++;
	pthread_mutex_unlock(&lock);
	return fail;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	static ssize_t (*real)(int, const void *, size_t);
	if (!real)
		real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
	if (must_fail(fd, 0)) {
		errno = EIO;
		return -1;
	}
	return real(fd, buf, len);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	if (must_fail(fd, 1)) {
		errno = EIO;
		return -1;
	}
	return real(fd);
}
