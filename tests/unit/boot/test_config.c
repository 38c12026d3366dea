/* Unit tests for the hypervisor's command line (src/boot/config.c) and the number parsers
 * (src/lib/util.c): usage errors (status 2) that name the argument, a full valid line,
 * the file checks of hv_config_check (status 1) on files in a temporary directory, and
 * parse_u64 / parse_size edge cases.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "boot/config.h"
#include "boot/kernel.h"
#include "lib/util.h"

#include "../testlib/bzimage.h"
#include "../testlib/tmpdir.h"

#include <linux/virtio_ids.h>

#define MiB (1ull << 20)

/* ---- hv_config_parse ---- */

static int parse_args(char **argv, struct hv_config *c, char *err, size_t errlen)
{
	int argc = 0;

	while (argv[argc])
		argc++;
	hv_config_defaults(c);
	err[0] = '\0';
	return hv_config_parse(argc, argv, c, err, errlen);
}

/* Expects status 2 and a message containing each of want1 and want2 (want2 may be NULL). */
static void expect_usage(char **argv, const char *want1, const char *want2)
{
	struct hv_config c;
	char err[512];

	int r = parse_args(argv, &c, err, sizeof(err));
	if (r != 2)
		fail_msg("status %d for %s ... (message \"%s\")", r, argv[0], err);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", err, want1, want2 ? want2 : "");
}

#define ARGS(...) ((char *[]){__VA_ARGS__, NULL})

static void test_parse_usage_errors(void **state)
{
	(void)state;

	expect_usage(ARGS("--kernel", "k", "--bogus"), "--bogus", "unknown");
	expect_usage(ARGS("-k", "k"), "-k", "unknown");
	expect_usage(ARGS("vmlinuz"), "vmlinuz", "unknown");
	expect_usage(ARGS("--kernel", "k", "--cpus"), "--cpus", "missing value");
	expect_usage(ARGS("--kernel"), "--kernel", "missing value");
	expect_usage(ARGS("--kernel", "k", "--memory"), "--memory", "missing value");
	expect_usage(ARGS("--kernel", "k", "--initrd"), "--initrd", "missing value");
	expect_usage(ARGS("--kernel", "k", "--cmdline"), "--cmdline", "missing value");
	expect_usage(ARGS("--kernel", "k", "--console-log"), "--console-log", "missing value");
	expect_usage(ARGS("--kernel", "k", "--cache-dir"), "--cache-dir", "missing value");
	expect_usage(ARGS("--kernel", "k", "--cpus", "0"), "--cpus 0", NULL);
	expect_usage(ARGS("--kernel", "k", "--cpus", "255"), "--cpus 255", NULL);
	expect_usage(ARGS("--kernel", "k", "--cpus", "abc"), "--cpus abc", NULL);
	expect_usage(ARGS("--kernel", "k", "--cpus", "-1"), "--cpus -1", NULL);
	expect_usage(ARGS("--kernel", "k", "--cpus", ""), "--cpus", NULL);
	expect_usage(ARGS("--kernel", "k", "--cpus", "4294967297"), "--cpus 4294967297", NULL);
	expect_usage(ARGS("--kernel", "k", "--memory", "0"), "--memory 0", NULL);
	expect_usage(ARGS("--kernel", "k", "--memory", "63"), "--memory 63", NULL);
	expect_usage(ARGS("--kernel", "k", "--memory", "99999999999999999999"),
		     "--memory 99999999999999999999", NULL);
	expect_usage(ARGS("--kernel", "k", "--memory", "12x"), "--memory 12x", NULL);
	expect_usage(ARGS("--kernel", "k", "--memory", "1G"), "--memory 1G", NULL);
	expect_usage(ARGS("--kernel", "k", "--memory", "1048577"), "--memory 1048577", NULL);
	expect_usage(ARGS("--cpus", "2"), "--kernel", "missing");
	expect_usage(ARGS("--memory", "128", "--no-reboot"), "--kernel", "missing");

	expect_usage(ARGS("--kernel-fd", "2"), "--kernel-fd 2", "open file descriptor");
	expect_usage(ARGS("--kernel-fd", "x"), "--kernel-fd x", NULL);
	expect_usage(ARGS("--kernel", "k", "--initrd-fd", "-1"), "--initrd-fd -1", NULL);
	expect_usage(ARGS("--kernel", "k", "--kernel-sha384", "abc"), "--kernel-sha384", "hex");
	expect_usage(
	    ARGS("--kernel", "k", "--vmlinux-sha384",
		 "ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"
		 "456789abcdef01234567"),
	    "--vmlinux-sha384", "lower-case hex");
	expect_usage(ARGS("--kernel", "k", "--initrd-sha384",
			  "00000000000000000000000000000000000000000000000000000000000000000000"
			  "0000000000000000000000000000"),
		     "--initrd-sha384", "no --initrd");
	/* A SHA-256 only beside the SHA-384 the loaded bytes are checked against. */
	expect_usage(ARGS("--kernel", "k", "--kernel-sha256",
			  "0000000000000000000000000000000000000000000000000000000000000000"),
		     "--kernel-sha256", "no --kernel-sha384");
	expect_usage(ARGS("--kernel", "k", "--initrd", "i", "--initrd-sha256",
			  "0000000000000000000000000000000000000000000000000000000000000000"),
		     "--initrd-sha256", "no --initrd-sha384");
	expect_usage(ARGS("--kernel", "k", "--kernel-sha256", "00"), "--kernel-sha256", "hex");

	/* vsock and the test enclave identity (docs/vsock.md) */
	expect_usage(ARGS("--kernel", "k", "--vhost-user", "vsock,"), "vsock,", "vsock,SOCKET");
	expect_usage(ARGS("--kernel", "k", "--vhost-user", "vsock"), "vsock", "vsock,SOCKET");
	const char *bad_hellos[] = {
	    "",		  "cid=",  "cid=3",   "cid=0", "cid=4294967295", "cid=16,cid=17",
	    "cid=16,dbg", "debug", "cid=16x", "cid=-1"};
	for (size_t i = 0; i < sizeof(bad_hellos) / sizeof(bad_hellos[0]); i++)
		expect_usage(ARGS("--kernel", "k", "--enclave-hello", (char *)bad_hellos[i]),
			     "--enclave-hello", "cid=N");
	expect_usage(ARGS("--kernel", "k", "--enclave-hello"), "--enclave-hello", "missing value");
	/* KIND,fd=N: an enclave's connections, made and identified by its spawner */
	expect_usage(ARGS("--kernel", "k", "--vhost-user", "vsock,fd=5"), "fd=5",
		     "only in enclave mode");
	expect_usage(ARGS("--kernel", "k", "--vhost-user", "blk,fd=5"), "blk,fd=5",
		     "only for vsock and nsm");
	expect_usage(ARGS("--kernel", "k", "--vhost-user", "nsm,fd=2"), "nsm,fd=2", "3 or more");
	expect_usage(ARGS("--kernel", "k", "--vhost-user", "nsm,fd=x"), "nsm,fd=x", "fd=N");
	expect_usage(ARGS("--enclave", "--enclave-mem", "3:0:67108864", "--enclave-cid", "16",
			  "--vhost-user", "vsock,/run/v.sock"),
		     "/run/v.sock", "spawner");
	expect_usage(ARGS("--enclave", "--enclave-mem", "3:0:67108864", "--enclave-cid", "16",
			  "--enclave-hello", "cid=17"),
		     "--enclave-hello", "in an enclave");
	{
		struct hv_config e;
		char eerr[512];
		assert_int_equal(parse_args(ARGS("--enclave", "--enclave-mem", "3:0:67108864",
						 "--enclave-cid", "16", "--vhost-user",
						 "vsock,fd=10", "--vhost-user", "nsm,fd=11"),
					    &e, eerr, sizeof(eerr)),
				 0);
		assert_int_equal(e.ncards, 2);
		assert_int_equal(e.cards[0].fd, 10);
		assert_null(e.cards[0].socket);
		assert_int_equal(e.cards[1].type, VIRTIO_ID_NITRO_SEC_MOD);
		assert_int_equal(e.cards[1].fd, 11);
		assert_int_equal(e.enclave_feed_fd, -1);
		assert_int_equal(
		    parse_args(ARGS("--enclave", "--enclave-mem", "3:0:67108864", "--enclave-cid",
				    "16", "--enclave-console-feed", "fd=12"),
			       &e, eerr, sizeof(eerr)),
		    0);
		assert_int_equal(e.enclave_feed_fd, 12);
	}
	expect_usage(ARGS("--enclave", "--enclave-mem", "3:0:67108864", "--enclave-cid", "16",
			  "--enclave-console-feed", "12"),
		     "--enclave-console-feed", "fd=N");
	expect_usage(ARGS("--kernel", "k", "--enclave-console-feed", "fd=12"), "--enclave-*",
		     "only with --enclave");
	/* --enclave-exe-fd: an fd of nitro-hv itself (nitrod's measured one), 3 or more */
	expect_usage(ARGS("--kernel", "k", "--enclaves", "--enclave-exe-fd", "2"),
		     "--enclave-exe-fd", "file descriptor");
	expect_usage(ARGS("--kernel", "k", "--enclaves", "--enclave-exe-fd", "x"),
		     "--enclave-exe-fd", "file descriptor");
	expect_usage(ARGS("--kernel", "k", "--enclave-exe-fd"), "--enclave-exe-fd",
		     "missing value");

	/* A flag given as a value is a value, not a flag. */
	struct hv_config c;
	char err[512];
	assert_int_equal(parse_args(ARGS("--kernel", "k", "--vhost-user", "blk,/b", "--vhost-user",
					 "vsock,/v", "--enclave-hello", "debug,cid=4294967294"),
				    &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.ncards, 2);
	assert_int_equal(c.cards[1].type, VIRTIO_ID_VSOCK);
	assert_string_equal(c.cards[1].socket, "/v");
	assert_int_equal(c.cards[1].fd, -1);
	assert_true(c.cards[1].enclave);
	assert_false(c.cards[0].enclave);
	assert_true(c.have_hello);
	assert_int_equal(c.hello.version, ENW_VERSION);
	assert_int_equal(c.hello.cid, 4294967294ull);
	assert_int_equal(c.hello.flags, ENW_FLAG_DEBUG);
	assert_int_equal(enw_hello_check(&c.hello), 0);
	assert_int_equal(c.pcrs.version, ENW_VERSION); /* zeros, sent after the hello (NSM) */
	assert_int_equal(enw_pcrs_check(&c.pcrs), 0);
	assert_int_equal(c.enclave_exe_fd, -1);
	assert_int_equal(parse_args(ARGS("--kernel", "k", "--enclaves", "--enclave-exe-fd", "7"),
				    &c, err, sizeof(err)),
			 0);
	assert_true(c.enclaves);
	assert_int_equal(c.enclave_exe_fd, 7);
	assert_null(c.enclave_console_dir);
	assert_int_equal(
	    parse_args(ARGS("--kernel", "k", "--enclaves", "--enclave-console-dir", "/run/i-1"), &c,
		       err, sizeof(err)),
	    0);
	assert_string_equal(c.enclave_console_dir, "/run/i-1");
	expect_usage(ARGS("--kernel", "k", "--enclave-console-dir", ""), "--enclave-console-dir",
		     "empty folder");
	expect_usage(ARGS("--kernel", "k", "--enclave-console-dir"), "--enclave-console-dir",
		     "missing value");
	assert_int_equal(parse_args(ARGS("--kernel", "--cpus"), &c, err, sizeof(err)), 0);
	assert_string_equal(c.kernel, "--cpus");
}

static void test_parse_valid(void **state)
{
	(void)state;
	struct hv_config c;
	char err[512];

	int r = parse_args(ARGS("--kernel", "/boot/vmlinuz", "--initrd", "/boot/initrd.img",
				"--cmdline", "console=ttyS0 quiet", "--cpus", "4", "--memory",
				"128", "--no-reboot", "--console-log", "/tmp/log",
				"--no-host-decompress", "--require-kvm", "--cache-dir", "/tmp/c"),
			   &c, err, sizeof(err));
	if (r != 0)
		fail_msg("status %d: %s", r, err);
	assert_string_equal(c.kernel, "/boot/vmlinuz");
	assert_string_equal(c.initrd, "/boot/initrd.img");
	assert_string_equal(c.cmdline, "console=ttyS0 quiet");
	assert_string_equal(c.console_log, "/tmp/log");
	assert_string_equal(c.cache_dir, "/tmp/c");
	assert_int_equal(c.cpus, 4);
	assert_int_equal(c.mem_mib, 128);
	assert_true(c.no_reboot);
	assert_true(c.no_decompress);
	assert_true(c.require_kvm);

	/* Boot files handed over as fds, with the digests they must have. */
	r = parse_args(ARGS("--kernel-fd", "7", "--initrd-fd", "9", "--kernel-sha384",
			    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"
			    "456789abcdef0123456789abcdef"),
		       &c, err, sizeof(err));
	if (r != 0)
		fail_msg("status %d: %s", r, err);
	assert_int_equal(c.kernel_fd, 7);
	assert_int_equal(c.initrd_fd, 9);
	assert_string_equal(c.kernel, "fd 7");
	assert_string_equal(c.initrd, "fd 9");
	assert_true(c.want_kernel);
	assert_false(c.want_initrd);
	assert_false(c.want_vmlinux);
	assert_int_equal(c.kernel_sha384[0], 0x01);
	assert_int_equal(c.kernel_sha384[47], 0xef);
	assert_false(c.have_kernel_sha256);

	/* With the SHA-256 from the same pass (for the TPM). */
	r = parse_args(ARGS("--kernel-fd", "7", "--kernel-sha384",
			    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123"
			    "456789abcdef0123456789abcdef",
			    "--kernel-sha256",
			    "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"),
		       &c, err, sizeof(err));
	if (r != 0)
		fail_msg("status %d: %s", r, err);
	assert_true(c.have_kernel_sha256);
	assert_false(c.have_initrd_sha256);
	assert_int_equal(c.kernel_sha256[0], 0xfe);
	assert_int_equal(c.kernel_sha256[31], 0x10);

	/* Only --kernel: defaults for the rest. */
	assert_int_equal(parse_args(ARGS("--kernel", "k"), &c, err, sizeof(err)), 0);
	assert_string_equal(c.kernel, "k");
	assert_null(c.initrd);
	assert_null(c.console_log);
	assert_null(c.cache_dir);
	assert_string_equal(c.cmdline, HV_DEFAULT_CMDLINE);
	assert_int_equal(c.cpus, HV_DEFAULT_CPUS);
	assert_int_equal(c.mem_mib, HV_DEFAULT_MEM_MIB);
	assert_false(c.no_reboot);
	assert_false(c.no_decompress);
	assert_false(c.require_kvm);
	assert_int_equal(c.kernel_fd, -1);
	assert_int_equal(c.initrd_fd, -1);
	assert_false(c.want_kernel);

	/* Bounds. */
	assert_int_equal(parse_args(ARGS("--kernel", "k", "--cpus", "1", "--memory", "64"), &c, err,
				    sizeof(err)),
			 0);
	assert_int_equal(c.cpus, 1);
	assert_int_equal(c.mem_mib, 64);
	assert_int_equal(parse_args(ARGS("--kernel", "k", "--cpus", "254"), &c, err, sizeof(err)),
			 0);
	assert_int_equal(c.cpus, 254);
	/* The last of a repeated option wins; an empty command line is allowed. */
	assert_int_equal(parse_args(ARGS("--kernel", "a", "--kernel", "b", "--cmdline", ""), &c,
				    err, sizeof(err)),
			 0);
	assert_string_equal(c.kernel, "b");
	assert_string_equal(c.cmdline, "");
	/* No arguments at all: only the kernel is missing. */
	char *none[] = {NULL};
	assert_int_equal(parse_args(none, &c, err, sizeof(err)), 2);
	assert_non_null(strstr(err, "--kernel"));
}

/* ---- hv_config_check ---- */

struct tmp {
	char dir[64];
	char kernel[128], text[128], missing[128], initrd[128], empty[128], big[128], huge[128];
};

static void write_file(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, p, n), (ssize_t)n);
	assert_int_equal(close(fd), 0);
}

/* A sparse file of size bytes. */
static void sparse_file(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	assert_int_equal(close(fd), 0);
}

#define BZ_LEN 0x2000

/* A minimal valid bzImage whose kernel runs at 16 MiB and needs init_size bytes. */
static void make_bz(uint8_t *b, uint32_t init_size)
{
	memset(b, 0, BZ_LEN);
	bz_header(b, (struct bz_shape){.payload_off = 0,
				       .payload_len = 0x100,
				       .cmdline_size = 255,
				       .init_size = init_size});
}

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	uint8_t bz[BZ_LEN];

	if (!t)
		return -1;
	if (tmpdir_make(t->dir, sizeof(t->dir), "config"))
		return -1;
	snprintf(t->kernel, sizeof(t->kernel), "%s/bzImage", t->dir);
	snprintf(t->text, sizeof(t->text), "%s/notes.txt", t->dir);
	snprintf(t->missing, sizeof(t->missing), "%s/missing", t->dir);
	snprintf(t->initrd, sizeof(t->initrd), "%s/initrd", t->dir);
	snprintf(t->empty, sizeof(t->empty), "%s/empty", t->dir);
	snprintf(t->big, sizeof(t->big), "%s/big-initrd", t->dir);
	snprintf(t->huge, sizeof(t->huge), "%s/huge", t->dir);
	make_bz(bz, 16 * MiB); /* kernel ends at 32 MiB */
	write_file(t->kernel, bz, sizeof(bz));
	const char *text = "this is not a kernel, just a text file that is long enough to\n"
			   "be read and parsed. It has no setup header and no magic.\n";
	char textbuf[4096];
	for (size_t i = 0; i < sizeof(textbuf); i++)
		textbuf[i] = text[i % strlen(text)];
	write_file(t->text, textbuf, sizeof(textbuf));
	sparse_file(t->initrd, 1 * MiB);
	sparse_file(t->empty, 0);
	sparse_file(t->big, 40 * MiB);
	sparse_file(t->huge, HV_KERNEL_MAX + 1ull);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tmp *t = *state;

	tmpdir_remove(t->dir);
	free(t);
	return 0;
}

/* Runs hv_config_check for kernel/initrd/memory and returns its status and message. */
static int check(const char *kernel, const char *initrd, uint64_t mem_mib, const char *cmdline,
		 struct hv_images *img, char *err, size_t errlen)
{
	struct hv_config c;

	hv_config_defaults(&c);
	c.kernel = kernel;
	c.initrd = initrd;
	c.mem_mib = mem_mib;
	if (cmdline)
		c.cmdline = cmdline;
	err[0] = '\0';
	return hv_config_check(&c, img, err, errlen);
}

static void expect_check_fail(const char *kernel, const char *initrd, uint64_t mem_mib,
			      const char *cmdline, const char *want1, const char *want2)
{
	struct hv_images img;
	char err[1024];

	int r = check(kernel, initrd, mem_mib, cmdline, &img, err, sizeof(err));
	free(img.kernel);
	if (r != 1)
		fail_msg("status %d (message \"%s\")", r, err);
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("message \"%s\" lacks \"%s\" / \"%s\"", err, want1, want2 ? want2 : "");
}

static void test_check_ok(void **state)
{
	struct tmp *t = *state;
	struct hv_images img;
	char err[1024];

	int r = check(t->kernel, t->initrd, 64, NULL, &img, err, sizeof(err));
	if (r != 0)
		fail_msg("status %d: %s", r, err);
	assert_non_null(img.kernel);
	assert_int_equal(img.kernel_len, BZ_LEN);
	assert_int_equal(img.kernel[0x1fe], 0x55);
	assert_ptr_equal(img.bz.bz_data, img.kernel);
	assert_int_equal(img.bz.bz_pref_address, 16 * MiB);
	assert_int_equal(img.bz.bz_init_size, 16 * MiB);
	assert_int_equal(img.initrd_size, 1 * MiB);
	free(img.kernel);

	r = check(t->kernel, NULL, 256, NULL, &img, err, sizeof(err));
	if (r != 0)
		fail_msg("status %d: %s", r, err);
	assert_int_equal(img.initrd_size, 0);
	free(img.kernel);
}

/* Handed-over fds are read (not the paths), and a file that is not what was measured is
 * refused: the kernel by its digest before anything else. */
static void test_check_fds_and_digests(void **state)
{
	struct tmp *t = *state;
	struct hv_config c;
	struct hv_images img;
	char err[1024];
	uint8_t bz[BZ_LEN];

	int kfd = open(t->kernel, O_RDONLY | O_CLOEXEC);
	int ifd = open(t->initrd, O_RDONLY | O_CLOEXEC);
	assert_true(kfd >= 3 && ifd >= 3);
	assert_int_equal(pread(kfd, bz, sizeof(bz), 0), (ssize_t)sizeof(bz));
	assert_int_equal(lseek(kfd, 100, SEEK_SET), 100); /* the fd's offset does not matter */
	hv_config_defaults(&c);
	c.kernel = "fd k";
	c.kernel_fd = kfd;
	c.initrd = "fd i";
	c.initrd_fd = ifd;
	c.mem_mib = 64;
	c.want_kernel = true;
	assert_int_equal(kernel_sha384(bz, sizeof(bz), c.kernel_sha384), 0);
	int r = hv_config_check(&c, &img, err, sizeof(err));
	if (r != 0)
		fail_msg("status %d: %s", r, err);
	assert_int_equal(img.kernel_len, BZ_LEN);
	assert_true(img.have_sha384);
	assert_memory_equal(img.kernel_sha384, c.kernel_sha384, HV_DIGEST_LEN);
	assert_int_equal(img.initrd_fd, ifd);
	assert_int_equal(img.initrd_size, 1 * MiB);
	hv_images_release(&c, &img);
	assert_true(fcntl(ifd, F_GETFD) >= 0); /* handed over: not ours to close */

	/* The file changed after it was measured. */
	c.kernel_sha384[5] ^= 1;
	r = hv_config_check(&c, &img, err, sizeof(err));
	hv_images_release(&c, &img);
	assert_int_equal(r, 1);
	assert_non_null(strstr(err, "not the file that was measured"));
	assert_non_null(strstr(err, "fd k"));
	close(kfd);
	close(ifd);
}

static void test_check_kernel_errors(void **state)
{
	struct tmp *t = *state;

	expect_check_fail(t->missing, NULL, 256, NULL, t->missing, "No such file");
	expect_check_fail(t->dir, NULL, 256, NULL, t->dir, "directory");
	expect_check_fail(t->text, NULL, 256, NULL, t->text, "not a bzImage");
	expect_check_fail(t->empty, NULL, 256, NULL, t->empty, "not a bzImage");
	expect_check_fail(t->huge, NULL, 256, NULL, t->huge, "larger than 256 MiB");
}

static void test_check_initrd_errors(void **state)
{
	struct tmp *t = *state;

	expect_check_fail(t->kernel, t->missing, 256, NULL, t->missing, "No such file");
	expect_check_fail(t->kernel, t->empty, 256, NULL, t->empty, "empty");
	expect_check_fail(t->kernel, t->dir, 256, NULL, t->dir, "not a regular file");
	/* 40 MiB does not fit between the kernel's 32 MiB and 64 MiB; it does in 128. */
	expect_check_fail(t->kernel, t->big, 64, NULL, t->big, "does not fit");
	expect_check_fail(t->kernel, t->big, 64, NULL, "initrd", "--memory");
	struct hv_images img;
	char err[1024];
	int r = check(t->kernel, t->big, 128, NULL, &img, err, sizeof(err));
	free(img.kernel);
	if (r != 0)
		fail_msg("status %d: %s", r, err);
}

static void test_check_memory_and_cmdline(void **state)
{
	struct tmp *t = *state;
	uint8_t bz[BZ_LEN];
	char path[160];

	/* A kernel needing 16 + 100 MiB does not boot in 64 MiB. */
	snprintf(path, sizeof(path), "%s/fat-bzImage", t->dir);
	make_bz(bz, 100 * MiB);
	write_file(path, bz, sizeof(bz));
	expect_check_fail(path, NULL, 64, NULL, "--memory 64", "needs at least");

	/* Command line over the image's 255 bytes. */
	char line[257];
	memset(line, 'a', 256);
	line[256] = '\0';
	expect_check_fail(t->kernel, NULL, 256, line, "--cmdline", "256");
	line[255] = '\0';
	struct hv_images img;
	char err[1024];
	int r = check(t->kernel, NULL, 256, line, &img, err, sizeof(err));
	free(img.kernel);
	if (r != 0)
		fail_msg("status %d: %s", r, err);
}

/* ---- parse_u64 and parse_size ---- */

static void test_parse_u64(void **state)
{
	(void)state;
	uint64_t v;

	v = 7;
	assert_true(parse_u64("0", 0, UINT64_MAX, &v));
	assert_int_equal(v, 0);
	assert_true(parse_u64("18446744073709551615", 0, UINT64_MAX, &v));
	assert_int_equal(v, UINT64_MAX);
	assert_true(parse_u64("007", 0, UINT64_MAX, &v));
	assert_int_equal(v, 7);

	v = 42;
	assert_false(parse_u64("18446744073709551616", 0, UINT64_MAX, &v));
	assert_false(parse_u64("18446744073709551620", 0, UINT64_MAX, &v));
	assert_false(parse_u64("99999999999999999999", 0, UINT64_MAX, &v));
	assert_false(parse_u64("184467440737095516150", 0, UINT64_MAX, &v));
	assert_false(parse_u64("", 0, UINT64_MAX, &v));
	assert_false(parse_u64(NULL, 0, UINT64_MAX, &v));
	assert_false(parse_u64("+1", 0, UINT64_MAX, &v));
	assert_false(parse_u64("-1", 0, UINT64_MAX, &v));
	assert_false(parse_u64("-0", 0, UINT64_MAX, &v));
	assert_false(parse_u64("1 ", 0, UINT64_MAX, &v));
	assert_false(parse_u64(" 1", 0, UINT64_MAX, &v));
	assert_false(parse_u64("0x10", 0, UINT64_MAX, &v));
	assert_false(parse_u64("1e3", 0, UINT64_MAX, &v));
	assert_false(parse_u64("1K", 0, UINT64_MAX, &v));
	assert_int_equal(v, 42); /* untouched on failure */

	/* Range. */
	assert_false(parse_u64("5", 6, 10, &v));
	assert_true(parse_u64("6", 6, 10, &v));
	assert_int_equal(v, 6);
	assert_true(parse_u64("10", 6, 10, &v));
	assert_int_equal(v, 10);
	v = 42;
	assert_false(parse_u64("11", 6, 10, &v));
	assert_false(parse_u64("18446744073709551615", 0, UINT64_MAX - 1, &v));
	assert_int_equal(v, 42);
}

static void expect_size(const char *s, uint64_t want)
{
	uint64_t v = 0xdeadbeef;

	if (!parse_size(s, &v))
		fail_msg("parse_size(\"%s\") failed", s);
	if (v != want)
		fail_msg("parse_size(\"%s\") = %llu, want %llu", s, (unsigned long long)v,
			 (unsigned long long)want);
}

static void expect_no_size(const char *s)
{
	uint64_t v = 0xdeadbeef;

	if (parse_size(s, &v))
		fail_msg("parse_size(\"%s\") accepted (%llu)", s, (unsigned long long)v);
	assert_int_equal(v, 0xdeadbeef);
}

static void test_parse_size(void **state)
{
	(void)state;

	expect_size("0", 0);
	expect_size("12", 12);
	expect_size("4K", 4096);
	expect_size("4k", 4096);
	expect_size("4KB", 4096);
	expect_size("4KiB", 4096);
	expect_size("3M", 3ull << 20);
	expect_size("3MiB", 3ull << 20);
	expect_size("2GiB", 2ull << 30);
	expect_size("2g", 2ull << 30);
	expect_size("1T", 1ull << 40);
	expect_size("1TB", 1ull << 40);
	expect_size("0G", 0);
	expect_size("18446744073709551615", UINT64_MAX);
	expect_size("18014398509481983K", 18014398509481983ull << 10); /* (2^54 - 1) K */
	expect_size("16777215T", 16777215ull << 40);

	expect_no_size("");
	expect_no_size("+1");
	expect_no_size("-1");
	expect_no_size("1 ");
	expect_no_size(" 1");
	expect_no_size("1 K");
	expect_no_size("K");
	expect_no_size("KiB");
	expect_no_size("1X");
	expect_no_size("1P");
	expect_no_size("1Ki");
	expect_no_size("1KiBx");
	expect_no_size("1Kb");
	expect_no_size("1iB");
	expect_no_size("1KK");
	expect_no_size("1.5G");
	expect_no_size("0x10");
	expect_no_size("18446744073709551616");
	/* One past the largest value for each suffix: 2^64 bytes. */
	expect_no_size("18014398509481984K");
	expect_no_size("16777216T");
	expect_no_size("17179869184G");
	/* More digits than parse_size buffers. */
	expect_no_size("99999999999999999999999999999999999");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_usage_errors),
	    cmocka_unit_test(test_parse_valid),
	    cmocka_unit_test(test_check_ok),
	    cmocka_unit_test(test_check_fds_and_digests),
	    cmocka_unit_test(test_check_kernel_errors),
	    cmocka_unit_test(test_check_initrd_errors),
	    cmocka_unit_test(test_check_memory_and_cmdline),
	    cmocka_unit_test(test_parse_u64),
	    cmocka_unit_test(test_parse_size),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
