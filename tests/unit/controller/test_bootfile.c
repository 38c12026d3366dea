/* Unit tests for bootfile_open (src/controller/bootfile.c, issue 10 item 2): a boot file
 * named by a caller is opened beneath its served folder without following any link, both
 * with openat2 and with the component-by-component fallback (openat2 made to fail with
 * ENOSYS by a seccomp filter, as on kernels before 5.6). A caller's file is opened with
 * the caller's rights: root never opens for uid 4242 what 4242 could not read (a hard
 * link to a root-only file, a file in a folder closed to it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "controller/bootfile.h"
#include "controller/ctl.h"

struct ctl g_ctl; /* bootfile.c reads the served folders from here */

static char base[64], served[128], outside[128];

static void put(const char *dir, const char *name, const char *text)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void link_in(const char *target, const char *name)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", served, name);
	assert_int_equal(symlink(target, p), 0);
}

static int setup(void **state)
{
	(void)state;
	char p0[512];
	snprintf(base, sizeof(base), "/tmp/nitro-test-bootfile-XXXXXX");
	if (!mkdtemp(base))
		return -1;
	snprintf(served, sizeof(served), "%s/served", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	mkdir(served, 0755);
	mkdir(outside, 0700);
	put(served, "vmlinuz", "the kernel");
	put(outside, "secret", "TOP SECRET");
	char sub[256];
	snprintf(sub, sizeof(sub), "%s/sub", served);
	mkdir(sub, 0755);
	put(sub, "initrd", "the initrd");
	char fifo[256];
	snprintf(fifo, sizeof(fifo), "%s/fifo", served);
	mkfifo(fifo, 0644);
	char secret[256];
	snprintf(secret, sizeof(secret), "%s/secret", outside);
	link_in(secret, "abs-link");
	link_in("vmlinuz", "rel-link"); /* even a link that stays inside */
	link_in("../outside/secret", "dotdot-link");
	link_in(outside, "dir-link");
	link_in("/proc/self/fd/0", "magic-link");
	/* For uid 4242 (the caller): a root-only file, a hard link to one (as if
	 * fs.protected_hardlinks were 0, or the caller owned the target once), a readable
	 * file in a folder closed to it. */
	put(served, "root-only", "ROOT ONLY");
	chmod(secret, 0600);
	snprintf(p0, sizeof(p0), "%s/root-only", served);
	chmod(p0, 0600);
	snprintf(p0, sizeof(p0), "%s/hard-link", served);
	if (link(secret, p0) < 0)
		return -1;
	snprintf(p0, sizeof(p0), "%s/closed", served);
	mkdir(p0, 0700);
	put(p0, "initrd", "CLOSED");
	memset(&g_ctl, 0, sizeof(g_ctl));
	snprintf(g_ctl.c_file_dirs[0], PATH_MAX, "%s", served);
	g_ctl.c_nfile_dirs = 1;
	snprintf(g_ctl.c_images_dir, PATH_MAX, "%s/images-not-there", base);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", base);
	return system(cmd) == 0 ? 0 : -1;
}

static void expect_ok(const char *rel, const char *content)
{
	char p[512], err[512] = "", buf[64] = "";
	snprintf(p, sizeof(p), "%s/%s", served, rel);
	int fd = bootfile_open("kernel", p, 0, err, sizeof(err));
	if (fd < 0)
		fail_msg("%s: %s", rel, err);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, content);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
}

static void expect_refused(const char *path, const char *why)
{
	char err[512] = "";
	assert_int_equal(bootfile_open("kernel", path, 0, err, sizeof(err)), -1);
	if (!strstr(err, why) || !strstr(err, path))
		fail_msg("%s: \"%s\" lacks \"%s\"", path, err, why);
}

static void expect_refused_in(const char *rel, const char *why)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", served, rel);
	expect_refused(p, why);
}

static void cases(void)
{
	expect_ok("vmlinuz", "the kernel");
	expect_ok("sub/initrd", "the initrd");
	expect_ok("sub//initrd", "the initrd");
	expect_refused_in("missing", "No such file");
	expect_refused_in("sub", "not a regular file");
	expect_refused_in("fifo", "not a regular file"); /* and no hang: O_NONBLOCK */
	expect_refused_in("abs-link", "");
	expect_refused_in("rel-link", "");
	expect_refused_in("dotdot-link", "");
	expect_refused_in("dir-link/secret", "");
	expect_refused_in("magic-link", "");
	char p[512];
	snprintf(p, sizeof(p), "%s/secret", outside);
	expect_refused(p, "outside the folders");
	snprintf(p, sizeof(p), "%sx/vmlinuz", served); /* a prefix is not the folder */
	expect_refused(p, "outside the folders");
	expect_refused("/etc/passwd", "outside the folders");
}

/* A caller's rights: what uid 4242 may not read is refused, what it may is opened, and
 * the thread is root again afterwards (fsuid, fsgid, groups). */
static void caller_cases(void)
{
	if (geteuid() != 0) {
		print_message("not root: the caller's rights are not taken\n");
		return;
	}
	gid_t before[64], after[64];
	int nb = getgroups(64, before);
	const char *refused[] = {"root-only", "hard-link", "closed/initrd"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char p[512], err[512] = "";
		snprintf(p, sizeof(p), "%s/%s", served, refused[i]);
		assert_int_equal(bootfile_open("initrd", p, 4242, err, sizeof(err)), -1);
		if (!strstr(err, "uid 4242 may not read it"))
			fail_msg("%s: %s", refused[i], err);
		int fd = bootfile_open("initrd", p, 0, err, sizeof(err)); /* root's own: opens */
		if (fd < 0)
			fail_msg("%s as root: %s", refused[i], err);
		close(fd);
	}
	char p[512], err[512] = "", buf[32] = "";
	snprintf(p, sizeof(p), "%s/sub/initrd", served);
	int fd = bootfile_open("initrd", p, 4242, err, sizeof(err));
	if (fd < 0)
		fail_msg("sub/initrd as 4242: %s", err);
	assert_true(read(fd, buf, sizeof(buf) - 1) > 0);
	assert_string_equal(buf, "the initrd");
	close(fd);
	assert_int_equal(setfsuid((uid_t)-1), 0);
	assert_int_equal(setfsgid((gid_t)-1), 0);
	assert_int_equal(getgroups(64, after), nb);
	assert_memory_equal(before, after, (size_t)nb * sizeof(gid_t));
}

static void test_openat2(void **state)
{
	(void)state;
	cases();
	caller_cases();
	/* Links are refused with the reason named. */
	expect_refused_in("abs-link", "symbolic link");
	expect_refused_in("dir-link/secret", "symbolic link");
}

static void test_fallback_without_openat2(void **state)
{
	(void)state;
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	assert_non_null(ctx);
	assert_int_equal(seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0), 0);
	assert_int_equal(seccomp_load(ctx), 0);
	seccomp_release(ctx);
	struct open_how how = {.flags = O_RDONLY};
	errno = 0;
	assert_int_equal(syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how)), -1);
	assert_int_equal(errno, ENOSYS);
	cases();
	caller_cases();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_openat2),
	    cmocka_unit_test(test_fallback_without_openat2), /* last: the filter stays */
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
