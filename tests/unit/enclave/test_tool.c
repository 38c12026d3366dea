/* cmocka tests of nitro-enclave's pure parts (src/enclave/tool): the command line and its
 * one-line refusals, the NE errno texts, CPU lists and the whole-core pool choice, the
 * JSON of run/describe, the memory fit and heartbeat timeout rules, and the early EIF
 * check against images written by src/enclave/eif.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enclave/eif.h"
#include "enclave/tool/args.h"
#include "enclave/tool/cpus.h"
#include "enclave/tool/eifcheck.h"
#include "enclave/tool/errors.h"
#include "enclave/tool/hbtab.h"
#include "enclave/tool/json.h"

#define ARGV(...) ((char *[]){"nitro-enclave", __VA_ARGS__, NULL})
#define ARGC(v) ((int)(sizeof(v) / sizeof((v)[0]) - 1))

static char err[512];

static int parse(int argc, char **argv, struct net_args *a)
{
	err[0] = 0;
	return net_parse(argc, argv, a, err, sizeof(err));
}

#define PARSE(a, ...)                                                                              \
	({                                                                                         \
		char *v_[] = {"nitro-enclave", __VA_ARGS__, NULL};                                 \
		parse(ARGC(v_), v_, a);                                                            \
	})

static void test_run_options(void **s)
{
	(void)s;
	struct net_args a;
	assert_int_equal(PARSE(&a, "run", "--eif-path", "/tmp/app.eif", "--cpu-count", "2",
			       "--memory", "65", "--debug-mode", "--enclave-cid", "16"),
			 0);
	assert_int_equal(a.cmd, NET_RUN);
	assert_string_equal(a.eif_path, "/tmp/app.eif");
	assert_int_equal(a.cpu_count, 2);
	assert_int_equal(a.memory_mib, 66); /* rounded up to whole 2 MiB pages */
	assert_true(a.debug_mode);
	assert_int_equal(a.enclave_cid, 16);
	assert_string_equal(a.name, "app"); /* nitro-cli's default: the file name */

	assert_int_equal(PARSE(&a, "run-enclave", "--memory", "128", "--cpu-count", "1",
			       "--eif-path", "x", "--enclave-name", "web-1"),
			 0);
	assert_false(a.debug_mode);
	assert_int_equal(a.enclave_cid, 0); /* auto */
	assert_int_equal(a.memory_mib, 128);
	assert_string_equal(a.name, "web-1");
	assert_int_equal(PARSE(&a, "run", "--memory", "64", "--cpu-count", "256", "--eif-path", "x",
			       "--enclave-cid", "4294967294"),
			 0);
	assert_int_equal(a.enclave_cid, 4294967294u);
}

/* Each refusal names the option and what to give instead. */
static void refused(const char *needle, int rc)
{
	assert_int_equal(rc, -1);
	if (!strstr(err, needle))
		fail_msg("\"%s\" not in: %s", needle, err);
	assert_null(strchr(err, '\n'));
}

static void test_run_refusals(void **s)
{
	(void)s;
	struct net_args a;
	refused("--eif-path FILE is required",
		PARSE(&a, "run", "--cpu-count", "1", "--memory", "64"));
	refused("--cpu-count N is required", PARSE(&a, "run", "--eif-path", "x", "--memory", "64"));
	refused("--memory MIB is required",
		PARSE(&a, "run", "--eif-path", "x", "--cpu-count", "1"));
	const char *bad_cpus[] = {"0", "-1", "+1", "1x", "", "257", "99999999999999999999"};
	for (size_t i = 0; i < sizeof(bad_cpus) / sizeof(*bad_cpus); i++)
		refused("--cpu-count", PARSE(&a, "run", "--eif-path", "x", "--memory", "64",
					     "--cpu-count", (char *)bad_cpus[i]));
	refused("at least 64 MiB; use --memory 64",
		PARSE(&a, "run", "--eif-path", "x", "--cpu-count", "1", "--memory", "63"));
	refused("--memory abc",
		PARSE(&a, "run", "--eif-path", "x", "--cpu-count", "1", "--memory", "abc"));
	const char *bad_cids[] = {"0", "1", "2", "3", "4294967295", "4294967296", "-5", "x"};
	for (size_t i = 0; i < sizeof(bad_cids) / sizeof(*bad_cids); i++)
		refused("reserved (3 is the parent)",
			PARSE(&a, "run", "--eif-path", "x", "--cpu-count", "1", "--memory", "64",
			      "--enclave-cid", (char *)bad_cids[i]));
	refused("unknown option --cpus", PARSE(&a, "run", "--cpus", "1"));
	refused("--memory needs a value", PARSE(&a, "run", "--eif-path", "x", "--memory"));
	refused("--enclave-name a\"b", PARSE(&a, "run", "--eif-path", "x", "--cpu-count", "1",
					     "--memory", "64", "--enclave-name", "a\"b"));
	refused("--eif-path is empty",
		PARSE(&a, "run", "--eif-path", "", "--cpu-count", "1", "--memory", "64"));
}

static void test_other_commands(void **s)
{
	(void)s;
	struct net_args a;
	assert_int_equal(PARSE(&a, "describe"), 0);
	assert_int_equal(a.cmd, NET_DESCRIBE);
	refused("takes no options", PARSE(&a, "describe", "--all"));
	assert_int_equal(PARSE(&a, "terminate", "--enclave-id", "i-0-enc1"), 0);
	assert_int_equal(a.cmd, NET_TERMINATE);
	assert_string_equal(a.enclave_id, "i-0-enc1");
	assert_false(a.all);
	assert_int_equal(PARSE(&a, "terminate-enclave", "--all"), 0);
	assert_true(a.all);
	refused("not both", PARSE(&a, "terminate", "--all", "--enclave-id", "x"));
	refused("--enclave-id ID (or --all) is required", PARSE(&a, "terminate"));
	assert_int_equal(PARSE(&a, "console", "--enclave-name", "web"), 0);
	assert_int_equal(a.cmd, NET_CONSOLE);
	assert_string_equal(a.enclave_id, "web");
	refused("console: --enclave-id ID is required", PARSE(&a, "console"));
	refused("unknown option --all", PARSE(&a, "console", "--all"));
	refused("unknown command start", PARSE(&a, "start"));
	char *none[] = {"nitro-enclave", NULL};
	refused("no command given", parse(1, none, &a));
	assert_int_equal(PARSE(&a, "--help"), 0);
	assert_int_equal(a.cmd, NET_HELP);
	assert_non_null(strstr(net_usage(), "run --eif-path FILE --cpu-count N --memory MIB"));
}

static void test_default_name(void **s)
{
	(void)s;
	char n[NET_NAME_MAX];
	net_default_name("/a/b/my-app.eif", n, sizeof(n));
	assert_string_equal(n, "my-app");
	net_default_name("plain", n, sizeof(n));
	assert_string_equal(n, "plain");
	net_default_name("/x/.eif", n, sizeof(n));
	assert_string_equal(n, ".eif"); /* nothing before the suffix: kept whole */
	net_default_name("/x/", n, sizeof(n));
	assert_string_equal(n, "enclave");
	net_default_name("/x/q\"u\\o\tte.eif", n, sizeof(n));
	assert_string_equal(n, "q_u_o_te");
	char longp[200];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[199] = 0;
	net_default_name(longp, n, sizeof(n));
	assert_int_equal(strlen(n), NET_NAME_MAX - 1);
}

static void test_ne_errors(void **s)
{
	(void)s;
	for (int e = 256; e <= 275; e++) {
		assert_non_null(net_ne_error_name(e));
		assert_non_null(net_ne_error(e));
		assert_null(strchr(net_ne_error(e), '\n'));
		for (int f = 256; f < e; f++)
			assert_string_not_equal(net_ne_error(e), net_ne_error(f));
	}
	assert_string_equal(net_ne_error_name(272), "NE_ERR_NO_CPUS_AVAIL_IN_POOL");
	assert_non_null(strstr(net_ne_error(272), "/sys/module/nitro_enclaves/parameters/ne_cpus"));
	assert_non_null(strstr(net_ne_error(272), "--cpu-count"));
	assert_non_null(strstr(net_ne_error(275), "--enclave-cid"));
	assert_non_null(strstr(net_ne_error(268), "--memory"));
	assert_non_null(strstr(net_ne_error(259), "even --memory"));
	assert_non_null(strstr(net_ne_error(263), "nr_hugepages"));
	assert_non_null(strstr(net_ne_error(ENOENT), "modprobe nitro_enclaves"));
	assert_non_null(strstr(net_ne_error(EINVAL), "nitro eif describe"));
	assert_non_null(strstr(net_ne_error(ENOEXEC), "bzImage"));
	assert_non_null(strstr(net_ne_error(EIO), "try again"));
	assert_null(net_ne_error(255));
	assert_null(net_ne_error(276));
	assert_null(net_ne_error_name(EINVAL));
}

static void test_cpu_lists(void **s)
{
	(void)s;
	bool set[NET_CPU_MAX];
	char out[64];
	assert_int_equal(net_cpulist_parse("1,3-5\n", set), 4);
	assert_true(set[1] && set[3] && set[4] && set[5]);
	assert_false(set[0] || set[2] || set[6]);
	assert_int_equal(net_cpulist_format(set, out, sizeof(out)), 5);
	assert_string_equal(out, "1,3-5");
	assert_int_equal(net_cpulist_parse("\n", set), 0);
	assert_int_equal(net_cpulist_parse("", set), 0);
	assert_int_equal(net_cpulist_format(set, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(net_cpulist_parse("2,2,1-2", set), 2); /* duplicates count once */
	assert_int_equal(net_cpulist_parse("1023", set), 1);
	const char *bad[] = {"1-", "a", "5-3", "1,,2", "1024", "1 2", "-1", "1,", "3-99999"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (net_cpulist_parse(bad[i], set) != -1)
			fail_msg("accepted \"%s\"", bad[i]);
	assert_int_equal(net_cpulist_parse("0-1023", set), 1024);
	assert_int_equal(net_cpulist_format(set, out, 4), -1); /* "0-1023" does not fit in 4 */
}

static void test_pool_choice(void **s)
{
	(void)s;
	bool pool[NET_CPU_MAX];
	char out[64];
	unsigned elig;
	/* 8 CPUs, 2 threads per core: cores {0,4} {1,5} {2,6} {3,7}. */
	int smt[8] = {0, 1, 2, 3, 0, 1, 2, 3};
	assert_int_equal(net_pool_choose(smt, 8, 2, pool, &elig), 2);
	net_cpulist_format(pool, out, sizeof(out));
	assert_string_equal(out, "1,5");
	assert_int_equal(elig, 6);
	assert_int_equal(net_pool_choose(smt, 8, 3, pool, &elig), 4); /* whole cores: 2 of them */
	net_cpulist_format(pool, out, sizeof(out));
	assert_string_equal(out, "1-2,5-6");
	assert_int_equal(net_pool_choose(smt, 8, 7, pool, &elig), -1);
	assert_int_equal(elig, 6);
	/* No SMT, 3 vCPUs (a parent of the tests): CPU 0 is never given. */
	int flat[3] = {0, 1, 2};
	assert_int_equal(net_pool_choose(flat, 3, 2, pool, &elig), 2);
	net_cpulist_format(pool, out, sizeof(out));
	assert_string_equal(out, "1-2");
	assert_int_equal(net_pool_choose(flat, 3, 3, pool, &elig), -1);
	assert_int_equal(elig, 2);
	/* An offline CPU (-1) is skipped. */
	int off[4] = {0, -1, 2, 3};
	assert_int_equal(net_pool_choose(off, 4, 1, pool, &elig), 1);
	net_cpulist_format(pool, out, sizeof(out));
	assert_string_equal(out, "2");
	int one[1] = {0};
	assert_int_equal(net_pool_choose(one, 1, 1, pool, &elig), -1);
	assert_int_equal(elig, 0);
	assert_int_equal(net_pool_choose(flat, 3, 0, pool, &elig), -1);
}

static void test_json(void **s)
{
	(void)s;
	struct net_enclave e = {.name = "app",
				.pid = 321,
				.cid = 16,
				.slot = 0x2a,
				.ncpus = 2,
				.cpu = {1, 3},
				.memory_mib = 256};
	net_enclave_id(NULL, e.slot, e.id, sizeof(e.id));
	assert_string_equal(e.id, "i-0000000000000000-enc2a");
	char out[1024];
	assert_true(net_enclave_json(&e, false, 0, out, sizeof(out)) > 0);
	assert_string_equal(out, "{\n"
				 "  \"EnclaveName\": \"app\",\n"
				 "  \"EnclaveID\": \"i-0000000000000000-enc2a\",\n"
				 "  \"ProcessID\": 321,\n"
				 "  \"EnclaveCID\": 16,\n"
				 "  \"NumberOfCPUs\": 2,\n"
				 "  \"CPUIDs\": [\n"
				 "    1,\n"
				 "    3\n"
				 "  ],\n"
				 "  \"MemoryMiB\": 256\n"
				 "}");
	e.debug = true;
	assert_true(net_enclave_json(&e, true, 2, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, "    \"MemoryMiB\": 256,\n    \"State\": \"RUNNING\",\n"
				    "    \"Flags\": \"DEBUG_MODE\"\n  }"));
	assert_int_equal(strncmp(out, "  {\n    \"EnclaveName\"", 21), 0);
	e.debug = false;
	net_enclave_json(&e, true, 0, out, sizeof(out));
	assert_non_null(strstr(out, "\"Flags\": \"NONE\""));
	strcpy(e.name, "q\"\\\x01");
	net_enclave_json(&e, false, 0, out, sizeof(out));
	assert_non_null(strstr(out, "\"EnclaveName\": \"q\\\"\\\\\\u0001\""));
	assert_int_equal(net_enclave_json(&e, false, 0, out, 40), -1);
	e.ncpus = 0;
	net_enclave_json(&e, false, 0, out, sizeof(out));
	assert_non_null(strstr(out, "\"CPUIDs\": [],\n"));
	net_enclave_id("i-0abc\n;rm", 1, e.id, sizeof(e.id));
	assert_string_equal(e.id, "i-0abcrm-enc1");
	net_enclave_id("", 255, e.id, sizeof(e.id));
	assert_string_equal(e.id, "i-0000000000000000-encff");
}

static void test_fit_and_timeout(void **s)
{
	(void)s;
	const uint64_t mib = 1 << 20, gib = 1ull << 30;
	assert_int_equal(net_check_fit(64, 56 * mib, 8 * mib, err, sizeof(err)), 0);
	assert_int_equal(net_check_fit(64, 56 * mib + 1, 8 * mib, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "use --memory 66 or more"));
	assert_int_equal(net_check_fit(64, 100 * mib, 8 * mib, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "use --memory 110 or more"));
	/* nitro-cli: 90 s per started 6 GiB of image + 90 s per started 100 GiB of memory. */
	assert_int_equal(net_heartbeat_timeout_ms(14 * mib, 256 * mib), 180000);
	assert_int_equal(net_heartbeat_timeout_ms(6 * gib, 100 * gib), 180000);
	assert_int_equal(net_heartbeat_timeout_ms(6 * gib + 1, 100 * gib), 270000);
	assert_int_equal(net_heartbeat_timeout_ms(10 * gib, 128 * gib), 360000);
}

static void test_eif_check(void **s)
{
	(void)s;
	struct eif_build_in in = {.kernel = (const uint8_t *)"KERNEL",
				  .kernel_len = 6,
				  .cmdline = "console=ttyS0",
				  .nramdisks = 1};
	in.ramdisk[0] = (const uint8_t *)"RAMDISK";
	in.ramdisk_len[0] = 7;
	size_t len;
	uint8_t *img = eif_build(&in, &len, err, sizeof(err));
	assert_non_null(img);
	assert_int_equal(net_eif_check(img, len, err, sizeof(err)), 0);
	img[len - 1] ^= 1; /* a ramdisk byte */
	assert_int_equal(net_eif_check(img, len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "the EIF is damaged: its CRC32 is"));
	img[len - 1] ^= 1;
	assert_int_equal(net_eif_check(img, len - 1, err, sizeof(err)), -1); /* cut short */
	assert_int_equal(net_eif_check(img, 547, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "shorter than the 548-byte header"));
	img[5] = 5; /* version 5 */
	assert_int_equal(net_eif_check(img, len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "version 5"));
	img[5] = 4;
	img[27] = 0; /* no sections */
	assert_int_equal(net_eif_check(img, len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "0 sections"));
	img[0] = 'E';
	assert_int_equal(net_eif_check(img, len, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "no \".eif\" magic"));
	free(img);
}

/* The heartbeat broker's table: concurrent runs each get their own enclave's heartbeat. */
static void test_heartbeat_table(void **s)
{
	(void)s;
	struct net_hb_table t;
	net_hb_init(&t);
	assert_true(net_hb_idle(&t));
	/* three runs join before their STARTs */
	assert_int_equal(net_hb_add(&t, 10), 0);
	assert_int_equal(net_hb_add(&t, 11), 0);
	assert_int_equal(net_hb_add(&t, 12), 0);
	assert_int_equal(net_hb_add(&t, 11), -1); /* one key once */
	/* 11's enclave (CID 20) boots before its run named the CID: kept */
	assert_int_equal(net_hb_heartbeat(&t, 20), -1);
	assert_false(net_hb_set_cid(&t, 10, 16));
	assert_true(net_hb_set_cid(&t, 11, 20));	/* it came already: 11 is done */
	assert_int_equal(net_hb_heartbeat(&t, 20), -1); /* a second one: nobody's */
	/* 12 fails (its run ends); 10 gets its own, not another CID's */
	net_hb_remove(&t, 12);
	assert_int_equal(net_hb_heartbeat(&t, 17), -1);
	assert_int_equal(net_hb_heartbeat(&t, 16), 10);
	assert_true(net_hb_idle(&t));
	/* kept CIDs are forgotten once every waiter has a CID: a later run with CID 17
	 * does not take the heartbeat of an enclave nobody waited for */
	assert_int_equal(net_hb_add(&t, 13), 0);
	assert_false(net_hb_set_cid(&t, 13, 17));
	assert_false(net_hb_set_cid(&t, 13, 18)); /* named once */
	assert_int_equal(net_hb_heartbeat(&t, 18), -1);
	assert_int_equal(net_hb_heartbeat(&t, 17), 13);
	/* kept only while a waiter has no CID; forgotten when that waiter names its own */
	assert_int_equal(net_hb_add(&t, 14), 0);
	assert_int_equal(net_hb_heartbeat(&t, 30), -1);
	assert_false(net_hb_set_cid(&t, 14, 31));
	assert_int_equal(net_hb_add(&t, 15), 0);
	assert_false(net_hb_set_cid(&t, 15, 30));
	assert_int_equal(net_hb_heartbeat(&t, 31), 14);
	net_hb_remove(&t, 15);
	assert_false(net_hb_set_cid(&t, 99, 1)); /* not a waiter */
	/* bounded: a full table refuses, and a heartbeat storm of unknown CIDs keeps at most
	 * NET_HB_MAX of them (the newest) */
	for (int k = 0; k < NET_HB_MAX; k++)
		assert_int_equal(net_hb_add(&t, 100 + k), 0);
	assert_int_equal(net_hb_add(&t, 999), -1);
	for (uint64_t c = 1000; c < 1000 + 10 * NET_HB_MAX; c++)
		assert_int_equal(net_hb_heartbeat(&t, c), -1);
	assert_int_equal(t.nseen, NET_HB_MAX);
	assert_true(net_hb_set_cid(&t, 100, 1000 + 10 * NET_HB_MAX - 1));
	assert_false(net_hb_set_cid(&t, 101, 1000));
	for (int k = 0; k < NET_HB_MAX; k++)
		net_hb_remove(&t, 100 + k);
	assert_true(net_hb_idle(&t));
	assert_int_equal(t.nseen, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_run_options),	    cmocka_unit_test(test_run_refusals),
	    cmocka_unit_test(test_other_commands),  cmocka_unit_test(test_default_name),
	    cmocka_unit_test(test_ne_errors),	    cmocka_unit_test(test_cpu_lists),
	    cmocka_unit_test(test_pool_choice),	    cmocka_unit_test(test_json),
	    cmocka_unit_test(test_fit_and_timeout), cmocka_unit_test(test_eif_check),
	    cmocka_unit_test(test_heartbeat_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
